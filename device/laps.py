"""Lap sources beyond the backends' own (a manual key press), and the lap book that turns lap events into
signed, numbered lap reports (`contracts.wire.LapReport`).

A drive session has a new `run_id` (uuid4) and numbers its reports `seq` 0, 1, 2, ...; a restart is a new
session (new run_id, seq from 0), while the outbox still sends the unsent laps of earlier runs.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

from contracts.hal import Clock, LapEvent
from contracts.wire import LapReport, utc_now_iso


class ManualLapTimer:
    """A marshal presses a key at the line: the time between two presses is a lap (source `manual`)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last_s: float | None = None
        self._laps: list[LapEvent] = []

    def press(self, at_s: float | None = None) -> None:
        t_s = self._clock.now_s() if at_s is None else at_s
        with self._lock:
            if self._last_s is not None and t_s > self._last_s:
                self._laps.append(LapEvent(t_s - self._last_s, "manual"))
            self._last_s = t_s

    def poll(self) -> list[LapEvent]:
        with self._lock:
            laps, self._laps = self._laps, []
        return laps

    def close(self) -> None:
        pass


@dataclass
class LapBook:
    """Numbers the laps of one drive session. `reports` keeps them for the end-of-run summary."""

    car_id: str
    model_sha256: str | None
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    reports: list[LapReport] = field(default_factory=list)

    def record(self, event: LapEvent) -> LapReport:
        """A LapReport for `event`: the next seq, the next lap number, the time in ms, now as sent_at."""
        seq = len(self.reports)
        report = LapReport(
            car_id=self.car_id,
            run_id=self.run_id,
            seq=seq,
            lap=seq + 1,
            lap_time_ms=max(1, round(event.lap_time_s * 1000.0)),
            offtrack_count=event.offtrack_count,
            reset_count=event.reset_count,
            model_sha256=self.model_sha256,
            source=event.source,
            sent_at=utc_now_iso(),
            track=event.track,
        )
        self.reports.append(report)
        return report
