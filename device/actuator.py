"""The actuator layer: the only path to the drive. Converts through the calibration, caps the throttle, and
obeys the safety latch — whoever calls it (the loop, the watchdog, shutdown).

Thread-safety: one lock orders every write, so after `stop()` returns no loop command can slip through: a
command that arrives while the latch is tripped is replaced by neutral.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from contracts.hal import Drive
from device.calibration import Calibration, Pulses
from device.estop import SafetyLatch

log = logging.getLogger(__name__)


class Actuator:
    """drive + calibration + throttle cap (µs, None = no cap beyond the calibration) + latch."""

    def __init__(
        self,
        drive: Drive,
        calibration: Calibration,
        latch: SafetyLatch,
        *,
        throttle_cap_us: int | None,
        now_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self._drive = drive
        # the time base of command stamps (the watchdog's): the backend's clock, so a simulated car driven
        # faster than real time is judged in its own seconds (its world stands still while its loop stalls)
        self.now_s = now_s
        self.calibration = calibration
        self.latch = latch
        self.throttle_cap_us = throttle_cap_us
        self._lock = threading.Lock()
        self.last_command_s = now_s()
        self.last_pulses: Pulses | None = None
        self.clipped = 0
        latch.on_trip(lambda _reason: self.neutral())
        latch.on_rearm(self._rearmed)

    def cap(self, throttle_us: int) -> int:
        """Clip a throttle pulse to the cap, in the ESC's forward direction (µs)."""
        if self.throttle_cap_us is None:
            return throttle_us
        sign = self.calibration.hardware.throttle.forward_sign
        return self.throttle_cap_us if (throttle_us - self.throttle_cap_us) * sign > 0 else throttle_us

    def command(self, steering_deg: float, speed_mps: float) -> Pulses:
        """The loop's command (deg, m/s): calibrated, capped, sent unless latched. Returns what was sent."""
        return self.send(self.calibration.to_pulses(steering_deg, speed_mps))

    def send(self, pulses: Pulses) -> Pulses:
        """Send pulses (capped; neutral while latched) and stamp the command time for the watchdog."""
        with self._lock:
            if self.latch.tripped:
                pulses = self.calibration.neutral
            else:
                capped = self.cap(pulses.throttle_us)
                if capped != pulses.throttle_us:
                    self.clipped += 1
                    pulses = Pulses(pulses.steering_us, capped)
            self._drive.set_pulses(pulses.steering_us, pulses.throttle_us)
            self.last_pulses = pulses
            self.last_command_s = self.now_s()
            return pulses

    def neutral(self) -> None:
        """Centred steering, neutral throttle, now (bypasses nothing: neutral is always allowed)."""
        pulses = self.calibration.neutral
        with self._lock:
            self._drive.set_pulses(pulses.steering_us, pulses.throttle_us)
            self.last_pulses = pulses

    def _rearmed(self) -> None:
        # a fresh start for the watchdog: staleness counts from the re-arm, not from before the stop
        self.last_command_s = self.now_s()
