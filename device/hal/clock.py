"""The real-time clock (monotonic, sleeps), for hardware backends and the sim backend in real time."""

from __future__ import annotations

import time


class MonotonicClock:
    """`time.monotonic()` seconds; `sleep_until` sleeps (returns at once if `t_s` is past)."""

    def now_s(self) -> float:
        return time.monotonic()

    def sleep_until(self, t_s: float) -> None:
        delay_s = t_s - time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)
