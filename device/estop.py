"""The safety latch and the e-stop inputs that trip it: keyboard, GPIO push button, MQTT command.

Every stop (e-stop, watchdog, shutdown) trips one `SafetyLatch`. Tripping commands neutral at once through
the actuator and latches: the loop's later commands are replaced by neutral until a person re-arms.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

log = logging.getLogger(__name__)


class SafetyLatch:
    """Armed or tripped (with the first reason). Listeners run on every trip and re-arm, in the caller's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None
        self.trips: list[str] = []
        self._on_trip: list[Callable[[str], None]] = []
        self._on_rearm: list[Callable[[], None]] = []

    @property
    def tripped(self) -> bool:
        return self._reason is not None

    @property
    def reason(self) -> str | None:
        return self._reason

    def on_trip(self, fn: Callable[[str], None]) -> None:
        self._on_trip.append(fn)

    def on_rearm(self, fn: Callable[[], None]) -> None:
        self._on_rearm.append(fn)

    def trip(self, reason: str) -> None:
        """Stop and latch. A second trip keeps the first reason but runs the listeners again (neutral again)."""
        with self._lock:
            first = self._reason is None
            if first:
                self._reason = reason
            self.trips.append(reason)
        if first:
            log.warning("STOP: %s (latched until re-armed)", reason)
        for fn in self._on_trip:
            fn(reason)

    def rearm(self, who: str = "operator") -> None:
        """A person re-arms: commands pass again."""
        with self._lock:
            was, self._reason = self._reason, None
        if was is not None:
            log.warning("re-armed by %s (was: %s)", who, was)
        for fn in self._on_rearm:
            fn()


class KeyReader:
    """E-stop and re-arm from single key presses, read in its own thread from a text stream.

    `feed(key)` is what a key press does (tests call it directly). `start()` reads a real terminal in cbreak
    mode (no Enter needed) when stdin is a TTY; on anything else it reads lines (each character is a key).
    """

    def __init__(
        self,
        latch: SafetyLatch,
        *,
        estop_key: str | None = " ",
        rearm_key: str = "r",
        on_key: Callable[[str], None] | None = None,
    ) -> None:
        self._latch = latch
        self._estop_key = estop_key
        self._rearm_key = rearm_key
        self._on_key = on_key
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._restore: Callable[[], None] | None = None

    def feed(self, key: str) -> None:
        """One key press: the e-stop key (or Escape / 'q') trips; the re-arm key re-arms; others go to on_key."""
        if key in (self._estop_key, "\x1b", "q"):
            self._latch.trip(f"keyboard e-stop ({key!r})")
        elif key == self._rearm_key:
            self._latch.rearm("keyboard")
        elif self._on_key is not None:
            self._on_key(key)

    def start(self, stream: TextIO | None = None) -> None:
        stream = sys.stdin if stream is None else stream
        if stream.isatty():
            self._restore = _cbreak(stream)
        self._thread = threading.Thread(target=self._read, args=(stream,), name="estop-keys", daemon=True)
        self._thread.start()

    def _read(self, stream: TextIO) -> None:
        fd = stream.fileno() if hasattr(stream, "fileno") else None
        while not self._stop.is_set():
            if fd is not None:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(fd, 32).decode("utf-8", "replace")
            else:
                chunk = stream.readline()
            if not chunk:
                return
            for key in chunk:
                if key not in "\r\n":
                    self.feed(key)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        if self._restore is not None:
            self._restore()
            self._restore = None


def _cbreak(stream: TextIO) -> Callable[[], None]:
    """Put a terminal in cbreak mode (keys without Enter, Ctrl-C still a signal); returns the restorer."""
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class GpioEStop:
    """A push button (BCM pin) that trips the latch; gpiozero imported when it opens."""

    def __init__(self, latch: SafetyLatch, pin: int, *, pull_up: bool = True, backend: str = "pi") -> None:
        from device.hal.gpio import gpio_button

        self._button: Any = gpio_button(
            pin,
            pull_up=pull_up,
            on_press=lambda: latch.trip(f"GPIO e-stop button (pin {pin})"),
            backend=backend,
        )

    def close(self) -> None:
        self._button.close()
