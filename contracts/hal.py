"""The interfaces every hardware backend implements (structural `Protocol`s), the records they return (`Frame`,
`LapEvent`), and the bundle the runtime gets (`Hal`). The car's backends (`device/hal/`) and the simulator's
(`sim/hal_backend.py`) implement them; the car runtime (`device/`) reads them.

Units: time in seconds from the backend's clock (`Clock.now_s`, monotonic), pulse widths in microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from contracts.vocabulary import LapSource


@dataclass(frozen=True)
class Frame:
    """One observation and the clock time its light was captured (for glass-to-actuation latency)."""

    data: np.ndarray
    captured_s: float


@dataclass(frozen=True)
class LapEvent:
    """A lap finished. lap_time_s: its clock time; offtrack_count / reset_count: in this lap; track: the
    track's name when the backend knows it (the simulator does), else None."""

    lap_time_s: float
    source: LapSource
    offtrack_count: int = 0
    reset_count: int = 0
    track: str | None = None


@runtime_checkable
class Camera(Protocol):
    """Gives the model's observation, exactly: `shape` and `dtype` as the model card says."""

    def capture(self) -> Frame: ...

    def close(self) -> None: ...


@runtime_checkable
class Drive(Protocol):
    """The servo and the ESC. `set_pulses` must be safe to call from two threads (the loop and the watchdog)."""

    def set_pulses(self, steering_us: int, throttle_us: int) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class LapTimer(Protocol):
    """Where laps come from: `poll()` returns the laps finished since the last call (never blocks)."""

    def poll(self) -> list[LapEvent]: ...

    def close(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Time for the loop. A real clock sleeps; a simulated one advances the world (the `sim` backend)."""

    def now_s(self) -> float: ...

    def sleep_until(self, t_s: float) -> None: ...


@dataclass
class Hal:
    """One backend's parts, passed to the runtime explicitly. `lap_timers`: zero or more lap sources."""

    name: str
    camera: Camera
    drive: Drive
    clock: Clock
    lap_timers: list[LapTimer] = field(default_factory=list)
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Close every part (the drive last, after it was sent neutral by its owner)."""
        for part in (*self.lap_timers, self.camera):
            part.close()
        for fn in self.on_close:
            fn()
        self.drive.close()
