"""The watchdog: its own thread, outside the control loop. When the last command is older than
`watchdog_ms`, it trips the safety latch (neutral throttle, centred steering), which stays latched until a
person re-arms. A PCA9685 repeats its last pulse forever, so a hung loop would otherwise keep driving.

It cannot survive the death of its own process (kill -9): `device.deadman`, a child process, covers that on
PCA9685 cars; a frozen or unpowered computer still needs the ESC's own signal-loss failsafe.
"""

from __future__ import annotations

import logging
import threading

from device.actuator import Actuator

log = logging.getLogger(__name__)


class Watchdog:
    """Checks `actuator.last_command_s` every watchdog_ms / 5 of real time (so it fires within ~1.2 x
    watchdog_ms), measuring the age on the actuator's clock (the backend's: real seconds on a car)."""

    def __init__(self, actuator: Actuator, watchdog_ms: float) -> None:
        self._actuator = actuator
        self.watchdog_s = watchdog_ms / 1000.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = 0

    def start(self) -> None:
        self._actuator.last_command_s = self._actuator.now_s()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period_s = self.watchdog_s / 5.0
        while not self._stop.wait(period_s):
            age_s = self._actuator.now_s() - self._actuator.last_command_s
            if age_s > self.watchdog_s and not self._actuator.latch.tripped:
                self.fired += 1
                self._actuator.latch.trip(
                    f"watchdog: last command {age_s * 1000:.0f} ms ago (limit {self.watchdog_s * 1000:.0f} ms)"
                )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
