"""Turns an environment's user-facing arguments (names, paths, dicts) into the simulator's parts.

Shared by the single-car and the batched environment so both accept exactly the same arguments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contracts.car_file import CarConfig
from firmware_configs import load_car
from sim.action_space import (
    DEFAULT_ACTION_SPACE,
    ContinuousActionSpace,
    DiscreteActionSpace,
    load_model_metadata,
    parse_action_space,
)
from sim.core import BatchedSim, EpisodeOptions
from sim.errors import EnvConfigError
from sim.fastmath import ARRAYS, Math
from sim.observations import ObservationSpec, Observer, parse_observation
from sim.reward.sources import RewardSource, RewardSpec, resolve_reward
from sim.tracks import Track, load_track

ActionSpace = DiscreteActionSpace | ContinuousActionSpace
ActionSpaceSpec = ActionSpace | str | Path | list[Any] | dict[str, Any] | None


@dataclass
class EnvParts:
    """Everything an environment is made of."""

    sim: BatchedSim
    actions: ActionSpace
    observe: Observer
    reward: RewardSource
    car: CarConfig


def resolve_action_space(spec: ActionSpaceSpec) -> ActionSpace:
    """An action space from None (the default), a ready space, a DeepRacer JSON structure (list or dict),
    or a path to a DeepRacer `model_metadata.json`."""
    if spec is None:
        return DEFAULT_ACTION_SPACE
    if isinstance(spec, DiscreteActionSpace | ContinuousActionSpace):
        return spec
    if isinstance(spec, str | Path):
        path = Path(spec)
        if path.suffix == ".json" and path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and "action_space" in data:
                return load_model_metadata(path).action_space
            return parse_action_space(data, source=str(path))
        raise EnvConfigError(f"action_space: {spec!r} is not a model_metadata.json file")
    return parse_action_space(spec)


def build_parts(
    n: int,
    track: str | Path | Track = "reinvent_base",
    car: str | Path | CarConfig = "deepracer",
    observation: ObservationSpec = "state",
    action_space: ActionSpaceSpec = None,
    reward: RewardSpec = "centerline",
    **episode: Any,
) -> EnvParts:
    """Build the parts of an environment with n cars; `episode` holds `EpisodeOptions` fields."""
    parse_observation(observation)  # fail fast, before the track's rasters are built
    unknown = set(episode) - set(EpisodeOptions.__dataclass_fields__)
    if unknown:
        raise EnvConfigError(
            f"unknown environment option(s) {sorted(unknown)}; expected track, car, observation, action_space, "
            f"reward, or one of {sorted(EpisodeOptions.__dataclass_fields__)}"
        )
    track_obj = track if isinstance(track, Track) else load_track(track)
    car_cfg = car if isinstance(car, CarConfig) else load_car(car)
    sim = BatchedSim(n, track_obj, car_cfg.vehicle_params(), EpisodeOptions(**episode))
    # every DeepRacer params dict has `track_width`: build (or read from the cache) its table now, not
    # lazily inside the first step of the user's loop, which made the first seconds look slow
    _ = track_obj.width_table
    source = resolve_reward(reward)
    source.bind(n)
    observer = Observer.build(observation, sim, car_cfg)
    return EnvParts(sim, resolve_action_space(action_space), observer, source, car_cfg)


def run_step(parts: EnvParts, actions: Any, m: Math = ARRAYS) -> tuple[Any, Any, Any]:
    """One step for all cars: decode the actions, move, judge, reward, observe.

    Returns (observations (n, d) float32, rewards (n,) float64, StepOutcome). With `m=SCALARS` (the single
    environment: `actions` is one car's action) the step runs on Python floats and returns that car's
    observation (d,) and reward as a float.
    """
    if m.scalar:
        outcome = parts.sim.step(*_decode_one(parts.actions, actions), m)
        return parts.observe.one(outcome.params), parts.reward.one(outcome.params), outcome
    steer_deg, speed_mps = parts.actions.decode(actions)
    outcome = parts.sim.step(steer_deg, speed_mps)
    rewards = parts.reward(outcome.params)
    return parts.observe(outcome.params, slice(None)), rewards, outcome


def _decode_one(actions: ActionSpace, action: Any) -> tuple[float, float]:
    """One car's action -> (steering_deg, speed_mps) floats. An in-range index into a discrete list reads the
    list (`decode`'s array checks cost ~4 µs, a tenth of a one-car step); anything else goes through
    `decode`, which checks it and names what is wrong."""
    if (
        isinstance(actions, DiscreteActionSpace)
        and isinstance(action, int | np.integer)
        and not isinstance(action, bool)
        and 0 <= action < len(actions.actions)
    ):
        return actions.actions[action]
    steer_deg, speed_mps = actions.decode(np.asarray(action)[None, ...])
    return steer_deg.item(), speed_mps.item()
