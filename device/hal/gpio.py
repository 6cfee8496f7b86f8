"""GPIO inputs through gpiozero: a lap gate (beam break / pressure strip) and an e-stop push button."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from contracts.car_file import LapGateConfig
from contracts.hal import Clock, LapEvent
from device.hal.vendor import import_vendor

log = logging.getLogger(__name__)


def gpio_button(pin: int, *, pull_up: bool, on_press: Callable[[], None], backend: str) -> Any:
    """A gpiozero Button on BCM `pin` calling `on_press` (in gpiozero's thread) on each press."""
    gpiozero = import_vendor("gpiozero", backend)
    button = gpiozero.Button(pin, pull_up=pull_up)
    button.when_pressed = on_press
    return button


class GpioGateTimer:
    """Laps from a gate on a GPIO pin: the time between two accepted crossings is a lap (source `timer`).

    Debounce is done here, in software, on the clock's timestamps, rather than with gpiozero's `bounce_time`
    (whose behaviour differs between pin factories): an edge within `debounce_ms` of the last edge is contact
    bounce; a crossing within `min_lap_s` of the last accepted one is the same car still in the gate (a beam
    broken by the front and then the rear wheels) and is ignored. The first crossing starts the clock.
    """

    def __init__(self, config: LapGateConfig, clock: Clock, *, backend: str = "pi") -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._last_edge_s: float | None = None
        self._last_crossing_s: float | None = None
        self._laps: list[LapEvent] = []
        self._button = gpio_button(
            config.pin, pull_up=not config.active_high, on_press=self.crossing, backend=backend
        )

    def crossing(self, at_s: float | None = None) -> None:
        """An edge on the pin at clock time `at_s` (now if None)."""
        t_s = self._clock.now_s() if at_s is None else at_s
        with self._lock:
            last_edge, self._last_edge_s = self._last_edge_s, t_s
            if last_edge is not None and (t_s - last_edge) * 1000.0 < self._config.debounce_ms:
                return
            last = self._last_crossing_s
            if last is not None and t_s - last < self._config.min_lap_s:
                log.debug("gate: crossing %.3f s after the last one ignored (< min_lap_s)", t_s - last)
                return
            self._last_crossing_s = t_s
            if last is not None:
                self._laps.append(LapEvent(t_s - last, "timer"))

    def poll(self) -> list[LapEvent]:
        with self._lock:
            laps, self._laps = self._laps, []
        return laps

    def close(self) -> None:
        self._button.close()
