"""`BatchedVecEnv`: stable-baselines3's `VecEnv` interface over one `TimeTrialVectorEnv` (no subprocesses).

The simulator already steps all cars in one numpy call and resets finished cars in the same step, which is
exactly SB3's VecEnv contract; this adapter only renames things:
- gymnasium's `infos["final_obs"]` (masked) -> `infos[i]["terminal_observation"]` for each finished car i;
- truncation (time up) -> `infos[i]["TimeLimit.truncated"]`, so PPO bootstraps the value of a cut episode;
- `infos[i]["episode"] = {"r", "l", "t"}` as SB3's Monitor writes it, so `rollout/ep_rew_mean` is logged;
- `infos[i]["episode_status"]` (an `EpisodeStatus` label), `progress` (%), `lap_time_s` (lap completed only).
Info dicts of cars still running are empty: building 64 full dicts per step would cost more than the physics.

Optionally it writes car 0's steps as DeepRacer simtrace rows (`car0_trace`), for training simtraces: each
episode begins with DeepRacer's `prepare` row (the car standing at its start, step 1) and its last row keeps
the progress the episode ended with.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from sim.core import StepOutcome
from sim.envs.vector import TimeTrialVectorEnv
from sim.measure import Measurements
from sim.rules import STATUS_LABELS
from sim.simtrace import SimTraceWriter

_CAR0 = np.array([0])


class BatchedVecEnv(VecEnv):
    """SB3 VecEnv view of a `TimeTrialVectorEnv`: car i is env i.

    `trace_car0=True` keeps each step's measured params (through the env's `step_hook`); while `car0_trace`
    holds a `SimTraceWriter`, car 0's row is written to it every step (the trainer opens one file per iteration),
    numbered `car0_episode` (counted on here at each of car 0's episode ends).
    """

    def __init__(self, env: TimeTrialVectorEnv, *, trace_car0: bool = False) -> None:
        self.env = env
        self._trace_car0 = trace_car0
        self._last_params: Measurements | None = None  # what the reward function saw this step, all cars
        if trace_car0:
            env.step_hook = self._keep_params
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(env.num_envs)
        self._lengths = np.zeros(env.num_envs, dtype=np.int64)
        self._t0 = time.monotonic()
        self.car0_episode = 0
        self._car0_start: Measurements | None = None  # car 0 standing at its start: its prepare row is due
        self.car0_trace: SimTraceWriter | None = None  # set by the trainer; a new file each iteration
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    # ------------------------------------------------------------------ stepping

    def reset(self) -> VecEnvObs:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, _ = self.env.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0.0
        self._lengths[:] = 0
        if self._trace_car0:
            self._car0_start = self.env.sim.standing(_CAR0)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        actions = self._actions
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        dones = terminated | truncated
        self._returns += rewards
        self._lengths += 1
        if self._trace_car0:
            self._record_car0(actions, rewards, bool(dones[0]), infos)
        info_list: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            self._fill_done_infos(info_list, np.flatnonzero(dones), terminated, infos)
        return obs, rewards.astype(np.float32), dones, info_list

    def _fill_done_infos(
        self, info_list: list[dict[str, Any]], done_idx: np.ndarray, terminated: np.ndarray, infos: dict
    ) -> None:
        final_obs = infos["final_obs"]
        final = infos["final_info"]
        wall = round(time.monotonic() - self._t0, 6)
        for i in done_idx.tolist():
            info = info_list[i]
            if isinstance(final_obs, dict):
                info["terminal_observation"] = {key: value[i] for key, value in final_obs.items()}
            else:
                info["terminal_observation"] = final_obs[i]
            info["TimeLimit.truncated"] = not bool(terminated[i])
            info["episode"] = {"r": float(self._returns[i]), "l": int(self._lengths[i]), "t": wall}
            info["episode_status"] = STATUS_LABELS[int(final["episode_status"][i])]
            info["progress"] = float(final["progress"][i])
            lap = float(final["lap_time_s"][i])
            if lap == lap:  # not NaN: the lap was completed
                info["lap_time_s"] = lap
        self._returns[done_idx] = 0.0
        self._lengths[done_idx] = 0

    def _keep_params(self, outcome: StepOutcome) -> None:
        self._last_params = outcome.params

    def _record_car0(self, actions: np.ndarray, rewards: np.ndarray, done: bool, infos: dict) -> None:
        """Car 0's row of this step, through `sim.simtrace.SimTraceWriter` (the one writer of the format)."""
        p = self._last_params
        if p is None or self.car0_trace is None:
            return
        car0 = _first_car(p)
        action = np.asarray(actions)[:1]
        if self._car0_start is not None:
            self.car0_trace.write_prepare(self._car0_start, action, episode=self.car0_episode)
            self._car0_start = None
        if done:
            # the autoreset wrote the next episode's progress (0) into this step's array: keep the ended one's
            car0 = dataclasses.replace(car0, progress=infos["final_info"]["progress"][:1])
        self.car0_trace.write(
            car0,
            infos["episode_status"][:1],
            action,
            rewards[:1],
            episode=self.car0_episode,
            done=np.array([done]),
        )
        if done:
            self.car0_episode += 1
            self._car0_start = self.env.sim.standing(_CAR0)  # the autoreset put it at its next start

    # ------------------------------------------------------------------ the rest of SB3's interface

    def close(self) -> None:
        self.env.close()

    def _count(self, indices: VecEnvIndices) -> int:
        if indices is None:
            return self.num_envs
        if isinstance(indices, int):
            return 1
        return len(list(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The batched env's attribute, once per requested car (all cars share one env object)."""
        return [getattr(self.env, attr_name)] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Sets the attribute on the one batched env (it applies to every car)."""
        setattr(self.env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Calls the batched env's method once; its result is repeated for each requested car."""
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result] * self._count(indices)

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        # No gymnasium wrappers: the cars live inside one batched env.
        return [False] * self._count(indices)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs


_ARRAY_FIELDS = tuple(
    f.name for f in dataclasses.fields(Measurements) if f.name not in ("forward", "backward", "m")
)


def _first_car(p: Measurements) -> Measurements:
    """The params of car 0 alone (views, no copies)."""
    return dataclasses.replace(p, **{name: getattr(p, name)[:1] for name in _ARRAY_FIELDS})
