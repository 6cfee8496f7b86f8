"""Scripted drivers for n cars: follow the centre line without a learned policy.

Used to make realistic driving (reward checks, tests, benchmarks of evaluation) and as a baseline a trained
policy should beat. A driver maps the current `Measurements` of the cars to commands: steering (deg, + =
left) and speed (m/s), arrays of shape (n,). `onnx_driver` turns an exported model's commands into the
one-car policy the simulator's evaluation takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sim.core import BatchedSim
from sim.measure import Measurements


class PurePursuitDriver:
    """Pure pursuit on the centre line: steer toward the centre-line point `lookahead_m` ahead.

    `lateral_offset_m` makes the cars aim that far left (+) or right of the centre line; `noise_deg` adds
    Gaussian steering noise from `rng`, so runs cover the track's width realistically.
    """

    def __init__(
        self,
        sim: BatchedSim,
        *,
        speed_mps: float = 1.5,
        lookahead_m: float = 0.45,
        lateral_offset_m: float | np.ndarray = 0.0,
        noise_deg: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        self._sim = sim
        self.speed_mps = speed_mps
        self.lookahead_m = lookahead_m
        self.lateral_offset_m = lateral_offset_m
        self.noise_deg = noise_deg
        self._rng = rng or np.random.default_rng(0)

    def __call__(self, params: Measurements) -> tuple[np.ndarray, np.ndarray]:
        sim = self._sim
        length = sim.forward.length_m
        rev = params.is_reversed
        s_fwd = np.where(rev, length - params.projection_distance, params.projection_distance)
        target_s = s_fwd + np.where(rev, -1.0, 1.0) * self.lookahead_m
        target = sim.forward.centre_points(target_s)
        ahead = sim.forward.centre_points(target_s + np.where(rev, -0.01, 0.01))
        tangent = ahead - target
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) / np.linalg.norm(tangent, axis=1)[:, None]
        target = target + normal * np.asarray(self.lateral_offset_m, dtype=np.float64).reshape(-1, 1)
        # the car's rear axle is the bicycle model's pivot
        rear_x = params.x - (0.14 + 0.5 * sim.vehicle.wheelbase_m) * params.cos_yaw
        rear_y = params.y - (0.14 + 0.5 * sim.vehicle.wheelbase_m) * params.sin_yaw
        dx, dy = target[:, 0] - rear_x, target[:, 1] - rear_y
        alpha = np.arctan2(dy, dx) - np.arctan2(params.sin_yaw, params.cos_yaw)
        distance = np.maximum(np.hypot(dx, dy), 1e-6)
        steer = np.degrees(np.arctan2(2.0 * sim.vehicle.wheelbase_m * np.sin(alpha), distance))
        if self.noise_deg > 0:
            steer = steer + self._rng.normal(0.0, self.noise_deg, size=len(steer))
        limit = np.degrees(sim.vehicle.max_steer_rad)
        return np.clip(steer, -limit, limit), np.full(len(steer), self.speed_mps)


def onnx_driver(onnx_policy: Any, action_space: Any) -> Callable[[Any], Any]:
    """`policy(obs) -> env action` from an exported model's `act(obs) -> (steering_deg, speed_mps)` (the car's
    `device.policy.OnnxPolicy`): the action index whose command it is (discrete) or the normalised command
    (continuous), as the simulator takes actions."""

    def policy(obs: Any) -> Any:
        steering_deg, speed_mps = onnx_policy.act(obs)
        return action_space.encode_nearest(steering_deg, speed_mps)[0]

    return policy
