"""The interface every sensor implements, and the pose batch it reads.

A sensor renders n cars at once. It is built once per environment (`Sensor(track, car_config, ...)`), exposes
`space` (the gymnasium space of ONE car's reading) and `render(poses, idx)` returning a batch whose first axis
is the cars. Per-episode randomisation (brightness, noise, camera jitter, ...) reaches a sensor through the
`EpisodeRandomization` arrays it is given, indexed by the same car indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from gymnasium import spaces


@dataclass(frozen=True)
class Poses:
    """Chassis poses of n cars (arrays (n,)): position in metres and the cosine/sine of the heading.

    The chassis origin is the mid-point between the axles (the car config's frame), x forward, y left.
    """

    x_m: np.ndarray
    y_m: np.ndarray
    cos_yaw: np.ndarray
    sin_yaw: np.ndarray
    #: per-car int64 noise keys (see `sim.sensors.noise`): change every step, repeat with the seed. None: a
    #: sensor used on its own draws noise from its own generator.
    noise_key: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.x_m)

    @classmethod
    def single(cls, x_m: float, y_m: float, yaw_rad: float) -> Poses:
        """One car's pose, for tools and tests."""
        return cls(np.array([x_m]), np.array([y_m]), np.array([np.cos(yaw_rad)]), np.array([np.sin(yaw_rad)]))


class Sensor(Protocol):
    """What `sim.observations` needs of a sensor."""

    space: spaces.Space

    def render(self, poses: Poses, idx: np.ndarray | slice) -> np.ndarray:
        """Readings of the cars at `poses`; `idx` are those cars' indices in the batch (for per-car state such
        as randomisation draws). Returns an array of shape (n, *space.shape) and dtype space.dtype."""
        ...
