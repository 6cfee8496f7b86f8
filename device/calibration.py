"""The car's calibration: steering degrees <-> servo pulse (µs), speed m/s <-> ESC pulse (µs).

Steering is piecewise linear through (+max_steer_deg, left_us), (0, centre_us), (-max_steer_deg, right_us)
(+ = left, as in the simulator). Speed goes through the measured speed table (`[hardware.speed_table]`),
linearly between rows; a speed <= 0 is neutral (the car does not reverse under a policy). Both are clamped to
the calibrated range. The throttle *cap* is not applied here but in the actuator layer (`device.actuator`),
so that no caller can bypass it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contracts.car_file import HardwareConfig


@dataclass(frozen=True)
class Pulses:
    """One actuation: servo and ESC pulse widths in microseconds."""

    steering_us: int
    throttle_us: int


@dataclass(frozen=True)
class Calibration:
    """Conversions for one car. `max_steer_deg` from the car's `[vehicle]`."""

    hardware: HardwareConfig
    max_steer_deg: float

    @property
    def neutral(self) -> Pulses:
        """Centred steering, neutral throttle: what every stop commands."""
        return Pulses(self.hardware.steering.centre_us, self.hardware.throttle.neutral_us)

    def steering_us(self, steering_deg: float) -> int:
        """Servo pulse (µs) for a wheel angle in degrees (+ = left), clamped to the end points."""
        s = self.hardware.steering
        frac = (
            float(np.clip(steering_deg / self.max_steer_deg, -1.0, 1.0)) if np.isfinite(steering_deg) else 0.0
        )
        end = s.left_us if frac >= 0 else s.right_us
        return round(s.centre_us + abs(frac) * (end - s.centre_us))

    def throttle_us(self, speed_mps: float) -> int:
        """ESC pulse (µs) for a speed in m/s through the speed table, clamped to the table's range."""
        table = self.hardware.speed_table
        if not np.isfinite(speed_mps) or speed_mps <= 0.0:
            return self.hardware.throttle.neutral_us
        return round(float(np.interp(speed_mps, table.speed_mps, table.throttle_us)))

    def to_pulses(self, steering_deg: float, speed_mps: float) -> Pulses:
        """Both pulses of one command."""
        return Pulses(self.steering_us(steering_deg), self.throttle_us(speed_mps))

    # inverses: what a simulated servo and ESC do with a pulse (the `sim` backend), and readable logs

    def steering_deg(self, steering_us: float) -> float:
        """Wheel angle (deg, + = left) a servo holds at `steering_us`."""
        s = self.hardware.steering
        end = s.left_us if (steering_us - s.centre_us) * (s.left_us - s.centre_us) >= 0 else s.right_us
        frac = min(abs(steering_us - s.centre_us) / abs(end - s.centre_us), 1.0)
        return frac * self.max_steer_deg * (1.0 if end == s.left_us else -1.0)

    def speed_mps(self, throttle_us: float) -> float:
        """Steady speed (m/s) the car reaches at `throttle_us`; 0 at or behind neutral."""
        t = self.hardware.throttle
        if (throttle_us - t.neutral_us) * t.forward_sign <= 0:
            return 0.0
        table = self.hardware.speed_table
        pulses, speeds = np.asarray(table.throttle_us, float), np.asarray(table.speed_mps, float)
        if pulses[0] > pulses[-1]:  # np.interp needs increasing x
            pulses, speeds = pulses[::-1], speeds[::-1]
        return float(np.interp(throttle_us, pulses, speeds))
