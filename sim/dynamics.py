"""Vehicle dynamics: a batched kinematic bicycle with actuator limits, a grip limit and actuation latency.

One copy of the physics for every car of every environment: all functions take arrays of shape (n,).

Model, per control step of `dt_s` (15 Hz by default, as DeepRacer):
1. Commands are clipped to the car's limits (steering ±max_steer, speed 0..max_speed).
2. The wheels turn toward the commanded angle at most `max_steer_rate` rad/s; the speed moves toward the
   commanded speed by at most `max_accel` (speeding up) or `max_brake` (slowing down) m/s².
3. The bicycle's yaw rate is v tan(δ) / wheelbase. When that asks for more lateral acceleration (v ω) than the
   tyres give (`lateral_grip_mps2`), the yaw rate is cut to what they give: the car runs wide of the path it
   asked for (understeer), the way a model car on a foam mat slides out of a fast corner.
4. Position and heading advance exactly along the resulting arc (constant speed and yaw rate over the step),
   so the result does not depend on a sub-step count.

Latency is handled by :class:`CommandDelay`: a command acts `latency_steps` steps after it was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.fastmath import ARRAYS, Math

if TYPE_CHECKING:
    from contracts.car_file import VehicleParams

_TWO_PI = 2.0 * np.pi


class VehicleState:
    """Batched state of n cars; every attribute is a float64 array of shape (n,).

    `cos_yaw` and `sin_yaw` are kept with the yaw (rotated each step, never recomputed with trigonometry:
    sin and cos cost ten times an addition on these arrays).
    """

    def __init__(self, n: int) -> None:
        self.x_m = np.zeros(n)
        self.y_m = np.zeros(n)
        self.yaw_rad = np.zeros(n)
        self.cos_yaw = np.ones(n)
        self.sin_yaw = np.zeros(n)
        self.speed_mps = np.zeros(n)
        self.steer_rad = np.zeros(n)

    def place(self, idx: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, yaw_rad: np.ndarray) -> None:
        """Put cars `idx` at rest at the given poses."""
        self.x_m[idx] = x_m
        self.y_m[idx] = y_m
        self.cos_yaw[idx] = np.cos(yaw_rad)
        self.sin_yaw[idx] = np.sin(yaw_rad)
        self.yaw_rad[idx] = np.arctan2(self.sin_yaw[idx], self.cos_yaw[idx])  # into (-pi, pi]
        self.speed_mps[idx] = 0.0
        self.steer_rad[idx] = 0.0


def advance(
    state: VehicleState,
    steer_cmd_rad: np.ndarray,
    speed_cmd_mps: np.ndarray,
    limits: VehicleParams,
    dt_s: float,
    grip_scale: np.ndarray | None = None,
    m: Math = ARRAYS,
) -> np.ndarray:
    """Advance every car by one control step of `dt_s` seconds, in place. Returns the distance travelled (n,), m.

    `grip_scale` (n,) multiplies each car's lateral grip (domain randomisation); None means 1.
    With `m=SCALARS` (a state of one car) the commands and `grip_scale` are floats and so is the result: the
    same arithmetic on Python floats (see `sim.fastmath`).
    """
    steer_cmd = m.clamp(steer_cmd_rad, -limits.max_steer_rad, limits.max_steer_rad)
    speed_cmd = m.clamp(speed_cmd_mps, 0.0, limits.max_speed_mps)

    max_turn = limits.max_steer_rate_radps * dt_s
    steer = m.unbox(state.steer_rad)
    steer += m.clamp(steer_cmd - steer, -max_turn, max_turn)  # in place for arrays
    state.steer_rad = m.store(state.steer_rad, steer)

    v0 = m.unbox(state.speed_mps)
    v1 = v0 + m.clamp(speed_cmd - v0, -limits.max_brake_mps2 * dt_s, limits.max_accel_mps2 * dt_s)
    v_mean = 0.5 * (v0 + v1)
    state.speed_mps = m.store(state.speed_mps, v1)

    yaw_rate = v_mean * m.tan(steer) / limits.wheelbase_m
    grip = limits.lateral_grip_mps2 if grip_scale is None else limits.lateral_grip_mps2 * grip_scale
    max_yaw_rate = grip / m.maximum(v_mean, 1e-6)
    yaw_rate = m.clamp(yaw_rate, -max_yaw_rate, max_yaw_rate)

    dyaw = yaw_rate * dt_s
    distance = v_mean * dt_s
    # Exact arc: the chord has length 2R sin(h) = distance * sin(h)/h with h = dyaw/2, along yaw + h.
    half = 0.5 * dyaw
    cos_h, sin_h, ratio = small_angle_trig(half, m)
    cos_yaw, sin_yaw = m.unbox(state.cos_yaw), m.unbox(state.sin_yaw)
    cos_mid = cos_yaw * cos_h - sin_yaw * sin_h
    sin_mid = sin_yaw * cos_h + cos_yaw * sin_h
    chord = distance * ratio
    x, y = m.unbox(state.x_m), m.unbox(state.y_m)
    x += chord * cos_mid  # in place for arrays
    y += chord * sin_mid
    state.x_m = m.store(state.x_m, x)
    state.y_m = m.store(state.y_m, y)
    cos_end = cos_mid * cos_h - sin_mid * sin_h
    sin_end = sin_mid * cos_h + cos_mid * sin_h
    norm = 1.0 / m.sqrt(cos_end * cos_end + sin_end * sin_end)  # keeps rounding from drifting the length
    cos_end = cos_end * norm
    sin_end = sin_end * norm
    state.cos_yaw = m.store(state.cos_yaw, cos_end)
    state.sin_yaw = m.store(state.sin_yaw, sin_end)
    state.yaw_rad = m.store(state.yaw_rad, m.arctan2(sin_end, cos_end))
    return distance


def wrap_angle(angle_rad: np.ndarray) -> np.ndarray:
    """Angles wrapped into (-pi, pi] (with floor: `np.mod` costs 4x more on float arrays)."""
    b = np.pi - angle_rad
    return np.pi - (b - _TWO_PI * np.floor(b / _TWO_PI))


def small_angle_trig(h: np.ndarray, m: Math = ARRAYS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cos(h), sin(h) and sin(h)/h for angles of one step's yaw change (arrays, or floats with `SCALARS`).

    Taylor polynomials, exact to 1e-11 for |h| <= 0.5 rad (half a step's yaw change of every car we model);
    larger |h| are computed with numpy's trigonometry (on arrays in both paths, so both give the same bits).
    """
    h2 = h * h
    ratio = 1.0 - h2 / 6.0 * (1.0 - h2 / 20.0 * (1.0 - h2 / 42.0 * (1.0 - h2 / 72.0 * (1.0 - h2 / 110.0))))
    cos_h = 1.0 - h2 / 2.0 * (1.0 - h2 / 12.0 * (1.0 - h2 / 30.0 * (1.0 - h2 / 56.0 * (1.0 - h2 / 90.0))))
    sin_h = h * ratio
    large = m.absolute(h) > 0.5
    if m.any(large):
        large = m.flatnonzero(large)
        hl = m.subset(h, large)
        cos_l, sin_l = np.cos(hl), np.sin(hl)
        cos_h = m.patch(cos_h, large, cos_l)
        sin_h = m.patch(sin_h, large, sin_l)
        ratio = m.patch(ratio, large, sin_l / hl)
    return cos_h, sin_h, ratio


class CommandDelay:
    """Per-car actuation latency: a command acts `lag` steps after it was given (each car its own lag).

    A ring of the last `max_lag + 1` commands per car; cars that are reset start from "stand still, wheels
    straight". Lags can change per episode (domain randomisation) with `set_lag`.
    """

    def __init__(self, n: int, latency_steps: int, max_latency_steps: int | None = None) -> None:
        self.max_lag = max(int(latency_steps), int(max_latency_steps or 0))
        self.lag = np.full(n, int(latency_steps), dtype=np.intp)
        self._uniform = True
        self._ring = np.zeros((self.max_lag + 1, 2, n))
        self._head = 0
        self._cars = np.arange(n)

    def set_lag(self, idx: np.ndarray, lag_steps: np.ndarray) -> None:
        """Cars `idx` get lags `lag_steps` (clipped to 0..max_lag)."""
        self.lag[idx] = np.clip(lag_steps, 0, self.max_lag)
        self._uniform = bool((self.lag == self.lag[0]).all())

    def push(
        self, steer_rad: np.ndarray, speed_mps: np.ndarray, m: Math = ARRAYS
    ) -> tuple[np.ndarray, np.ndarray]:
        """Record this step's commands; return the commands that act now (n,), (n,) (floats with `SCALARS`)."""
        if self.max_lag == 0:
            return steer_rad, speed_mps
        self._head = (self._head + 1) % len(self._ring)
        self._ring[self._head, 0] = steer_rad
        self._ring[self._head, 1] = speed_mps
        if self._uniform:
            slot = self._ring[(self._head - self.lag[0]) % len(self._ring)]
            return m.copy(m.unbox(slot[0])), m.copy(m.unbox(slot[1]))
        rows = (self._head - self.lag) % len(self._ring)
        return m.unbox(self._ring[rows, 0, self._cars]), m.unbox(self._ring[rows, 1, self._cars])

    def clear(self, idx: np.ndarray) -> None:
        """Forget the commands of cars `idx`."""
        self._ring[:, :, idx] = 0.0
