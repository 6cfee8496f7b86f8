"""A driver for a person: the arrow keys of the viewer's window become steering and speed commands.

Beside the scripted drivers of `sim.drivers`, for one car: it reads held keys (pygame's key state), not the
cars' measurements.
"""

from __future__ import annotations

from typing import Any


class KeyboardDriver:
    """Arrow keys drive: up/down raise/lower the target speed while held, left/right steer while held
    (centring when released), space brakes to the lowest speed. Steering in degrees (+ = left), m/s."""

    def __init__(
        self, max_steer_deg: float, speed_low_mps: float, speed_high_mps: float, rate_hz: float
    ) -> None:
        self.max_steer_deg = max_steer_deg
        self.speed_low_mps, self.speed_high_mps = speed_low_mps, speed_high_mps
        self.steer_step_deg = 150.0 / rate_hz  # lock to lock in about 0.4 s
        self.speed_step_mps = 2.0 / rate_hz  # 2 m/s per second held
        self.steer_deg = 0.0
        self.speed_mps = speed_low_mps

    def update(self, pressed: Any, keys: Any) -> tuple[float, float]:
        """Apply one frame of held keys (`pressed[key]` true while held; `keys` holds pygame's K_* codes) and
        return the command (steering deg, speed m/s)."""
        steer_target = self.max_steer_deg * (bool(pressed[keys.K_LEFT]) - bool(pressed[keys.K_RIGHT]))
        delta = max(-self.steer_step_deg, min(self.steer_step_deg, steer_target - self.steer_deg))
        self.steer_deg += delta
        if pressed[keys.K_SPACE]:
            self.speed_mps = self.speed_low_mps
        else:
            change = self.speed_step_mps * (bool(pressed[keys.K_UP]) - bool(pressed[keys.K_DOWN]))
            self.speed_mps = max(self.speed_low_mps, min(self.speed_high_mps, self.speed_mps + change))
        return self.steer_deg, self.speed_mps

    def reset(self) -> None:
        """Centre the steering and drop to the lowest speed (the car was put back on the start line)."""
        self.steer_deg, self.speed_mps = 0.0, self.speed_low_mps
