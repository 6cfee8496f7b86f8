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


class PooledVecEnv(VecEnv):
    """SB3 VecEnv over several `BatchedVecEnv`s (a pool of tracks or directions), their cars end to end: the
    first env's cars come first. Car 0's simtrace is the first env's (`car0_trace`, `car0_episode`).

    Written here because SB3 has no VecEnv that concatenates VecEnvs (its `DummyVecEnv`/`SubprocVecEnv` take
    single-car envs, which would undo the batched simulator's one numpy call for all cars of a track).
    """

    def __init__(self, envs: Sequence[BatchedVecEnv]) -> None:
        if not envs:
            raise ValueError("PooledVecEnv: expected at least one env")
        self.envs = list(envs)
        first = self.envs[0]
        for env in self.envs[1:]:
            if env.observation_space != first.observation_space or env.action_space != first.action_space:
                raise ValueError("PooledVecEnv: every env of the pool must have the same spaces")
        self._bounds = np.cumsum([0, *(env.num_envs for env in self.envs)])
        super().__init__(int(self._bounds[-1]), first.observation_space, first.action_space)

    @property
    def car0_trace(self) -> SimTraceWriter | None:
        return self.envs[0].car0_trace

    @car0_trace.setter
    def car0_trace(self, writer: SimTraceWriter | None) -> None:
        self.envs[0].car0_trace = writer

    @property
    def car0_episode(self) -> int:
        return self.envs[0].car0_episode

    @car0_episode.setter
    def car0_episode(self, episode: int) -> None:
        self.envs[0].car0_episode = episode

    def _parts(self) -> list[tuple[BatchedVecEnv, slice]]:
        starts, ends = self._bounds[:-1], self._bounds[1:]
        return [(env, slice(int(a), int(b))) for env, a, b in zip(self.envs, starts, ends, strict=True)]

    def reset(self) -> VecEnvObs:
        for env, part in self._parts():  # car i keeps seed + i across the pool, as SB3's seed() promises
            env._seeds = list(self._seeds[part])
        self._reset_seeds()
        self._reset_options()
        return _concat([env.reset() for env in self.envs])

    def step_async(self, actions: np.ndarray) -> None:
        for env, part in self._parts():
            env.step_async(actions[part])

    def step_wait(self) -> VecEnvStepReturn:
        results = [env.step_wait() for env in self.envs]
        obs = _concat([r[0] for r in results])
        rewards = np.concatenate([r[1] for r in results])
        dones = np.concatenate([r[2] for r in results])
        infos = [info for r in results for info in r[3]]
        return obs, rewards, dones, infos

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def _selected(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)

    def _owner(self, i: int) -> BatchedVecEnv:
        return self.envs[int(np.searchsorted(self._bounds, i, side="right")) - 1]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self._owner(i).env, attr_name) for i in self._selected(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for env in {id(self._owner(i)): self._owner(i) for i in self._selected(indices)}.values():
            env.set_attr(attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        return [getattr(self._owner(i).env, method_name)(*method_args, **method_kwargs)
                for i in self._selected(indices)]  # fmt: skip

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._selected(indices))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs


def _concat(parts: list[VecEnvObs]) -> VecEnvObs:
    """Observations of several envs end to end (a Dict observation key by key)."""
    if isinstance(parts[0], dict):
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return np.concatenate(parts)
