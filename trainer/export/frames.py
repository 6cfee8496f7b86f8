"""Closed-loop driving in the simulator, seeing every observation on the way.

Calibration data and the parity report's agreement frames are what the policy itself sees while it drives
the training track (`sim.evaluation.evaluate`, the one race loop): real frames in the states the policy
reaches, not random noise. A driver is `policy(obs) -> env action` (an action index or a normalised
continuous command), as `sim.evaluation` takes it.
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


def record_frames(driver: Driver, config: RunConfig, *, n_frames: int, seed: int) -> np.ndarray:
    """(n_frames, *obs shape) observations along `n_frames` steps of closed-loop driving by `driver`."""
    recorded: list[np.ndarray] = []
    drive(driver, config, seed=seed, frames=n_frames, on_frame=lambda obs: recorded.append(np.array(obs)))
    return np.stack(recorded)
