"""`DeadlineSteps`: a VecEnv whose every step runs inside `trainer.guard.deadline`, so a reward function that
never returns fails the job within `reasons.STEP_DEADLINE_S` instead of burning its CPU budget."""

from __future__ import annotations

from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from trainer.guard import deadline
from trainer.job.reasons import STEP_DEADLINE_S


class DeadlineSteps(VecEnvWrapper):
    """Steps of `venv` (all cars at once: where the reward functions run) each within `seconds`."""

    def __init__(self, venv: VecEnv, seconds: float = STEP_DEADLINE_S) -> None:
        super().__init__(venv)
        self.seconds = seconds

    def reset(self) -> VecEnvObs:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        with deadline(self.seconds, "a step of the training cars (where reward_function runs)"):
            return self.venv.step_wait()
