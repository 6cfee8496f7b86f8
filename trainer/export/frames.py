"""Closed-loop driving in the simulator, seeing every observation on the way.

Calibration data and the parity report's agreement frames are what the policy itself sees while it drives
the training track: real frames in the states the policy reaches, not random noise. Two ways to drive:
- `drive`: one car, from the start line, under the race rules (`sim.evaluation.evaluate`, the one race loop);
  closed-loop evaluations use it;
- `fleet_frames`: several cars of the training environment (`TimeTrialVectorEnv`, the run's own env
  settings) starting at seeded round-robin points of the lap, each driven by the policy. A deterministic
  policy from the start line repeats nearly the same lap, so 5,000 frames of `drive` would be a few hundred
  distinct frames counted many times; the fleet sees the whole track from different states, and another
  seed gives other starts (calibration and agreement frames are not the same frames).
A driver is `policy(obs) -> env action` (an action index or a normalised continuous command), as
`sim.evaluation` takes it; a batch driver maps a batch of observations to a batch of actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sim.core import EpisodeOptions
from trainer.config import RunConfig

Driver = Callable[[Any], Any]


def drive(
    driver: Driver,
    config: RunConfig,
    *,
    seed: int,
    frames: int | None = None,
    laps: int = 3,
    max_time_s: float | None = None,
    on_frame: Callable[[np.ndarray], None] | None = None,
) -> Any:
    """Drive `driver` on the run's track under the time-trial rules (unlimited resets) and return the
    EvaluationResult. `frames`: drive exactly this many control steps (laps back to back, however many fit)
    instead of `laps`. `on_frame(obs)` sees each observation before the driver acts on it."""
    from trainer.evaluate import evaluate_policy

    if frames is not None:
        laps = 1_000_000  # the clock ends this drive, not the lap count
        max_time_s = (frames - 0.5) * EpisodeOptions().dt_s

    def watched(obs: Any) -> Any:
        if on_frame is not None:
            on_frame(obs)
        return driver(obs)

    return evaluate_policy(watched, config, laps=laps, seed=seed, max_time_s=max_time_s)


def fleet_frames(
    batch_driver: Callable[[np.ndarray], np.ndarray],
    config: RunConfig,
    *,
    n_frames: int,
    seed: int,
    n_cars: int = 8,
) -> np.ndarray:
    """(n_frames, *obs shape) observations of `n_cars` cars of the run's training environment driven by
    `batch_driver` (obs (n_cars, ...) -> actions (n_cars, ...)); finished episodes restart at the next
    round-robin start, as in training."""
    from sim.envs.vector import TimeTrialVectorEnv

    env = TimeTrialVectorEnv(num_envs=n_cars, **config.env_kwargs())
    try:
        obs, _ = env.reset(seed=seed)
        chunks: list[np.ndarray] = []
        for _ in range(-(-n_frames // n_cars)):
            chunks.append(np.array(obs))
            obs, *_ = env.step(np.asarray(batch_driver(obs)))
    finally:
        env.close()
    return np.concatenate(chunks)[:n_frames]


def each_car(driver: Driver) -> Callable[[np.ndarray], np.ndarray]:
    """A batch driver from a one-car driver (one call per car)."""
    return lambda obs: np.stack([np.asarray(driver(row)) for row in obs])


def record_frames(driver: Driver, config: RunConfig, *, n_frames: int, seed: int) -> np.ndarray:
    """(n_frames, *obs shape) observations along `n_frames` steps of closed-loop driving by `driver`."""
    recorded: list[np.ndarray] = []
    drive(driver, config, seed=seed, frames=n_frames, on_frame=lambda obs: recorded.append(np.array(obs)))
    return np.stack(recorded)
