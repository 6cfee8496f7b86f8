"""The `mock` backend: a camera of fixed frames, a drive that records every pulse, a stepped clock. For tests
and for checking a model and a car file on a desk (no hardware is touched)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from contracts.hal import Frame, Hal, LapTimer
from device.hal.clock import MonotonicClock


class MockCamera:
    """Frames of `shape`/`dtype`: zeros, or a fixed array, with a monotonic capture time."""

    def __init__(
        self, shape: tuple[int, ...], dtype: np.dtype | str, frame: np.ndarray | None = None
    ) -> None:
        self.frame = np.zeros(shape, dtype=dtype) if frame is None else frame
        self.captures = 0

    def capture(self) -> Frame:
        self.captures += 1
        return Frame(self.frame, time.monotonic())

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Command:
    """One recorded actuation: monotonic time (s) and the pulses (µs)."""

    t_s: float
    steering_us: int
    throttle_us: int


class MockDrive:
    """Records every `set_pulses` call (thread-safe); `last` is what a PCA9685 would now be holding."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.closed = False
        self._lock = threading.Lock()

    def set_pulses(self, steering_us: int, throttle_us: int) -> None:
        with self._lock:
            self.commands.append(Command(time.monotonic(), int(steering_us), int(throttle_us)))

    @property
    def last(self) -> Command | None:
        with self._lock:
            return self.commands[-1] if self.commands else None

    def snapshot(self) -> list[Command]:
        with self._lock:
            return list(self.commands)

    def close(self) -> None:
        self.closed = True


class SteppedClock:
    """A clock that never sleeps: `sleep_until` jumps to the time (fixed-step tests run at full speed)."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.t_s = start_s

    def now_s(self) -> float:
        return self.t_s

    def sleep_until(self, t_s: float) -> None:
        self.t_s = max(self.t_s, t_s)


def open_mock(
    shape: tuple[int, ...],
    dtype: np.dtype | str,
    *,
    realtime: bool = True,
    lap_timers: list[LapTimer] | None = None,
) -> Hal:
    """A mock Hal for a model input of `shape`/`dtype`; `realtime=False` uses a SteppedClock."""
    clock = MonotonicClock() if realtime else SteppedClock()
    return Hal("mock", MockCamera(shape, dtype), MockDrive(), clock, list(lap_timers or []))
