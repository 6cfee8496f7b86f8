"""Observations the policy sees: `state`, camera and lidar kinds, alone or combined.

`observation=` takes one kind or several joined with "+" (or a list; DeepRacer's sensor names work too):

| kind | DeepRacer name | one car's reading |
|---|---|---|
| `state` | — | Box (11,) float32, below (simulator only) |
| `camera` | FRONT_FACING_CAMERA | Box (H, W) uint8 grayscale, from the car config's `[camera]` |
| `stereo_camera` | STEREO_CAMERAS | Box (H, W, 2) uint8 |
| `lidar` | LIDAR | ranges, m (see `sim.sensors.lidar`) |
| `sector_lidar` | SECTOR_LIDAR | per-sector occupancy |
| `discretized_sector_lidar` | DISCRETIZED_SECTOR_LIDAR | per-sector discretised distance |
| `scan` | — | F1TENTH-style 2-D scan, m |

One kind gives that kind's space; several give a `Dict` with keys `state`, `camera`, `lidar` (at most one
camera kind and one lidar kind, as DeepRacer's sensor list allows).

`state` (float32, shape (11,)) — privileged features a real car does not have, for fast training and as a
teacher for camera students:

| index | feature | unit |
|---|---|---|
| 0 | speed | m/s (measured, not commanded) |
| 1 | steering angle of the wheels | rad, + = left |
| 2, 3 | sin, cos of the heading error to the centre line's direction | — |
| 4 | lateral offset from the centre line | half track widths, + = left; beyond ±1 a border is crossed |
| 5..10 | centre-line curvature 0.25, 0.5, 1, 1.5, 2, 3 m ahead | 1/m, + = turning left |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from contracts.vocabulary import CAMERA_KINDS, DEEPRACER_SENSORS, OBSERVATION_KINDS, SLOT
from sim.core import BatchedSim
from sim.errors import EnvConfigError
from sim.measure import Measurements
from sim.sensors.base import Poses
from sim.tracks.arc_table import ArcTable

if TYPE_CHECKING:
    from contracts.car_file import CarConfig

LOOKAHEAD_M = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0])
ObservationSpec = str | list[str] | tuple[str, ...]


def parse_observation(spec: ObservationSpec) -> tuple[str, ...]:
    """Kinds from "camera+lidar", ["FRONT_FACING_CAMERA", "LIDAR"], "state", ... (EnvConfigError if unusable)."""
    parts = spec.split("+") if isinstance(spec, str) else list(spec)
    kinds = tuple(DEEPRACER_SENSORS.get(p.strip(), p.strip().lower()) for p in parts)
    unknown = [k for k in kinds if k not in OBSERVATION_KINDS]
    if unknown or not kinds:
        raise EnvConfigError(
            f"observation: unknown kind(s) {unknown or [spec]}; expected one or more of {OBSERVATION_KINDS} "
            f"(or DeepRacer's {sorted(DEEPRACER_SENSORS)}) joined with '+'"
        )
    slots = [SLOT[k] for k in kinds]
    for slot in set(slots):
        if slots.count(slot) > 1:
            raise EnvConfigError(
                f"observation: at most one {slot} kind, got {[k for k in kinds if SLOT[k] == slot]}"
            )
    return kinds


class StateObservation:
    """Builds the `state` observation of the cars in a `Measurements` batch."""

    def __init__(self, sim: BatchedSim) -> None:
        self._sim = sim
        n_features = 5 + len(LOOKAHEAD_M)
        low = np.full(n_features, -50.0, dtype=np.float32)
        high = np.full(n_features, 50.0, dtype=np.float32)
        low[0], high[0] = 0.0, 50.0
        low[1], high[1] = -np.pi / 2, np.pi / 2
        low[2:4], high[2:4] = -1.0, 1.0
        low[4], high[4] = -20.0, 20.0
        self.space = spaces.Box(low, high, dtype=np.float32)
        self._low, self._high = low.tolist(), high.tolist()
        track = sim.forward
        # curvature ahead of each arc length, for both driving directions (forward-direction arc length);
        # curvature is continuous in arc length, so there are no jumps to split
        self._ahead_fwd = ArcTable.sample(
            track.length_m, lambda s: track.curvature_at(s[:, None] + LOOKAHEAD_M), split_jumps=False
        )
        self._ahead_back = ArcTable.sample(
            track.length_m, lambda s: -track.curvature_at(s[:, None] - LOOKAHEAD_M), split_jumps=False
        )

    def __call__(self, params: Measurements, idx: np.ndarray | slice | int) -> np.ndarray:
        """(n, 11) float32 observations of cars `idx` (the cars `params` describes); (1, 11) for `SCALARS`
        measurements of car `idx` (an int)."""
        sim = self._sim
        m = params.m
        sin_err, cos_err, lateral = sim.track_frame(params)
        s_fwd = m.where(
            params.is_reversed, sim.forward.length_m - params.projection_distance, params.projection_distance
        )
        kappa = self._ahead_fwd.at(s_fwd, m)
        if m.any(params.is_reversed):
            kappa = m.where(m.column(params.is_reversed), self._ahead_back.at(s_fwd, m), kappa)
        if m.scalar:
            # one row from floats; clamping before the float32 rounding gives the same values as after it
            # (rounding is monotonic and the bounds are float32 numbers)
            speed, steer = sim.state.speed_mps.item(idx), sim.state.steer_rad.item(idx)
            features = (speed, steer, sin_err, cos_err, lateral, *kappa)
            bounds = zip(features, self._low, self._high, strict=True)
            return np.array([[min(max(v, lo), hi) for v, lo, hi in bounds]], dtype=np.float32)
        obs = np.empty((params.n, self.space.shape[0]), dtype=np.float32)
        obs[:, 0] = sim.state.speed_mps[idx]
        obs[:, 1] = sim.state.steer_rad[idx]
        obs[:, 2] = sin_err
        obs[:, 3] = cos_err
        obs[:, 4] = lateral
        obs[:, 5:] = kappa
        np.maximum(obs, self.space.low, out=obs)
        return np.minimum(obs, self.space.high, out=obs)


class Observer:
    """All the observation kinds of an environment: `space` for one car, and `(params, idx)` -> the batch
    (an array for one kind, a dict of arrays keyed by `SLOT` for several).

    `cacheable`: a car's first observation depends on its start pose only (the vector env reuses it).
    """

    def __init__(self, kinds: tuple[str, ...], parts: dict[str, Any]) -> None:
        self.kinds = kinds
        self._parts = parts  # slot -> StateObservation or a sensor
        spaces_ = {slot: part.space for slot, part in parts.items()}
        self.space = next(iter(spaces_.values())) if len(parts) == 1 else spaces.Dict(spaces_)
        self.cacheable = kinds == ("state",)
        self._sim: BatchedSim | None = None

    @classmethod
    def build(cls, spec: ObservationSpec, sim: BatchedSim, car: CarConfig) -> Observer:
        kinds = parse_observation(spec)
        parts = {SLOT[kind]: _make_part(kind, sim, car) for kind in kinds}
        observer = cls(kinds, parts)
        observer._sim = sim
        return observer

    def sensor(self, slot: str) -> Any:
        """The part that fills `slot` ("state", "camera", "lidar"), or None."""
        return self._parts.get(slot)

    def one(self, params: Measurements) -> Any:
        """The observation of the single environment's car (no batch axis), from `SCALARS` measurements."""
        if self.kinds == ("state",):
            return self._parts["state"](params, 0)[0]
        return batch_take(self(params.as_arrays(), slice(0, 1)), 0)

    def __call__(self, params: Measurements, idx: np.ndarray | slice) -> Any:
        poses = None
        out = {}
        for slot, part in self._parts.items():
            if slot == "state":
                out[slot] = part(params, idx)
            else:
                if poses is None:
                    st = self._sim.state
                    keys = self._sim.noise_keys(idx)
                    poses = Poses(st.x_m[idx], st.y_m[idx], st.cos_yaw[idx], st.sin_yaw[idx], keys)
                out[slot] = part.render(poses, idx)
        return out if len(out) > 1 else next(iter(out.values()))


def _make_part(kind: str, sim: BatchedSim, car: CarConfig) -> Any:
    """The sensor (or state builder) of one kind; sensor modules are imported only when asked for."""
    if kind == "state":
        return StateObservation(sim)
    if kind in CAMERA_KINDS:
        from sim.sensors.camera import CameraSensor

        return CameraSensor(sim.forward, car, randomization=sim.randomization, stereo=kind == "stereo_camera")
    from sim.sensors.lidar import LidarSensor

    return LidarSensor(sim.forward, kind=kind, randomization=sim.randomization)


# ------------------------------------------------------------------ batches that may be dicts of arrays


def batch_take(batch: Any, idx: np.ndarray) -> Any:
    """Rows `idx` of an observation batch (array or dict of arrays)."""
    if isinstance(batch, dict):
        return {key: value[idx] for key, value in batch.items()}
    return batch[idx]


def batch_put(batch: Any, idx: np.ndarray, rows: Any) -> None:
    """Write `rows` into rows `idx` of a batch, in place."""
    if isinstance(batch, dict):
        for key, value in batch.items():
            value[idx] = rows[key]
    else:
        batch[idx] = rows


def batch_copy(batch: Any) -> Any:
    if isinstance(batch, dict):
        return {key: value.copy() for key, value in batch.items()}
    return batch.copy()
