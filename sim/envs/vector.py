"""`TimeTrialVectorEnv`: n cars stepped in one numpy call — the same simulator as `TimeTrialEnv`, batched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from sim.core import BatchedSim, StepOutcome
from sim.envs.setup import build_parts, run_step
from sim.errors import EnvConfigError
from sim.observations import batch_copy, batch_put
from sim.rules import EpisodeStatus


class TimeTrialVectorEnv(VectorEnv):
    """`num_envs` independent time-trial cars on one track, stepped together (no subprocesses).

    Arguments are those of `TimeTrialEnv` (see its docstring) plus `num_envs`. Car i seeded through
    `reset(seed=s)` behaves exactly like a `TimeTrialEnv` reset with seed `s + i`.

    Autoreset is same-step (`metadata["autoreset_mode"] == AutoresetMode.SAME_STEP`): when a car's episode ends,
    `step` returns its first observation of the next episode, and the last observation of the ended one in
    `infos["final_obs"]` (with the mask `infos["_final_obs"]`); `infos["final_info"]` holds `episode_status`
    (an `EpisodeStatus` code per car), `progress` (%) and `lap_time_s` (NaN unless the lap was completed).

    Every step, `infos["episode_status"]` (int8 codes, see `sim.rules.EpisodeStatus`) and `infos["progress"]` (%)
    describe all cars.

    `step_hook`, when set, is called every step with the simulator's `StepOutcome` (its `params`: what was
    measured for all n cars, exactly what the reward function saw), before finished cars are reset. The params
    share memory with the simulator's state: after the step, a finished car's `progress` is its next episode's.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "render_fps": 15,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None:
            raise EnvConfigError(
                "the batched env does not render; use render_mode=None here and render a TimeTrialEnv "
                "(or `pitlane view`)"
            )
        self._parts = build_parts(num_envs, **kwargs)
        self.num_envs = num_envs
        self.single_action_space = self._parts.actions.gym_space()
        self.single_observation_space = self._parts.observe.space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.render_mode = None
        self._seeded = False
        self._all = np.arange(num_envs)
        self._first_obs: dict[tuple[bool, float], tuple[np.ndarray, float]] = {}
        self.step_hook: Callable[[StepOutcome], None] | None = None

    @property
    def sim(self) -> BatchedSim:
        """The simulator behind this env, for tools (viewer, evaluation)."""
        return self._parts.sim

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode for every car. `seed` an int (car i gets seed + i) or a list, one per car."""
        if seed is not None or not self._seeded:
            seeds = (
                seed
                if isinstance(seed, list)
                else [None if seed is None else int(seed) + i for i in range(self.num_envs)]
            )
            if len(seeds) != self.num_envs:
                raise EnvConfigError(f"reset(seed=[...]): expected {self.num_envs} seeds, got {len(seeds)}")
            for i, car_seed in enumerate(seeds):
                self._parts.sim.seed(i, seeding.np_random(car_seed)[0])
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
            self._seeded = True
        obs, progress = self._start_episodes(self._all)
        return obs, {"episode_status": np.zeros(self.num_envs, dtype=np.int8), "progress": progress}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, rewards, outcome = run_step(self._parts, actions)
        if self.step_hook is not None:
            self.step_hook(outcome)
        infos: dict[str, Any] = {"episode_status": outcome.status, "progress": outcome.params.progress}
        done = outcome.terminated | outcome.truncated
        if done.any():
            infos.update(self._autoreset(obs, outcome.status, outcome.params.progress, done))
        return obs, rewards, outcome.terminated, outcome.truncated, infos

    def _start_episodes(self, idx: np.ndarray) -> tuple[Any, np.ndarray]:
        """Reset cars `idx`; their first observations (a batch of k) and progress (k,).

        For the `state` observation, cars at the same start (direction, lap fraction) start identically, so
        each start's observation is computed once; sensors (noise, randomisation) are observed every time."""
        sim = self._parts.sim
        keys = sim.reset(idx)
        observe = self._parts.observe
        if not observe.cacheable:
            params = sim.standing(idx)
            return observe(params, idx), params.progress
        missing = [j for j, key in enumerate(keys) if key not in self._first_obs]
        if missing:
            cars = idx[missing]
            params = sim.standing(cars)
            fresh = observe(params, cars)
            for j, row, progress in zip(missing, fresh, params.progress.tolist(), strict=True):
                self._first_obs[keys[j]] = (row, progress)
        first = [self._first_obs[key] for key in keys]
        return np.stack([row for row, _ in first]), np.array([p for _, p in first])

    def _autoreset(
        self, obs: np.ndarray, status: np.ndarray, progress: np.ndarray, done: np.ndarray
    ) -> dict[str, Any]:
        """Store the ended episodes' last observations and start the next ones, in place in `obs`."""
        sim = self._parts.sim
        idx = np.flatnonzero(done)
        final_obs = batch_copy(obs)  # rows of cars still running are masked out by `_final_obs`
        lap_time = np.where(status == EpisodeStatus.LAP_COMPLETE, sim.episode_time_s, np.nan)
        final_info = {
            "episode_status": status.copy(),
            "_episode_status": done,
            "progress": progress.copy(),
            "_progress": done,
            "lap_time_s": lap_time,
            "_lap_time_s": done,
        }
        first, _ = self._start_episodes(idx)
        batch_put(obs, idx, first)
        return {"final_obs": final_obs, "_final_obs": done, "final_info": final_info, "_final_info": done}
