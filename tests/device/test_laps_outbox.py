"""Lap reports (seq, run_id, source) and the SQLite WAL outbox that keeps them until the broker's PUBACK."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from contracts.hal import LapEvent
from contracts.wire import parse_lap_report, verify
from device.hal.mock import SteppedClock
from device.laps import LapBook, ManualLapTimer
from device.outbox import Outbox
from tests.device.conftest import SECRET


def test_lap_book_numbers_laps_and_reports_the_source() -> None:
    book = LapBook(car_id="car-1", model_sha256="ab" * 32)
    first = book.record(LapEvent(9.4123, "sim", offtrack_count=2, reset_count=2))
    second = book.record(LapEvent(8.0, "manual"))
    assert (first.seq, first.lap, first.lap_time_ms, first.source, first.offtrack_count) == (
        0,
        1,
        9412,
        "sim",
        2,
    )
    assert (second.seq, second.lap, second.source) == (1, 2, "manual")
    assert first.run_id == second.run_id and LapBook(car_id="car-1", model_sha256=None).run_id != first.run_id
    report, raw = parse_lap_report(first.to_wire(SECRET))
    verify(raw, SECRET)  # signed as contracts.wire specifies
    assert report == first.model_copy(update={"sig": raw["sig"]})


def test_manual_lap_key() -> None:
    clock = SteppedClock()
    timer = ManualLapTimer(clock)
    for t_s in (3.0, 13.5, 24.0):
        clock.sleep_until(t_s)
        timer.press()
    assert [(lap.lap_time_s, lap.source) for lap in timer.poll()] == [(10.5, "manual"), (10.5, "manual")]


def test_outbox_keeps_laps_until_acked_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path)
    ids = [box.add("run-a", seq, "t/laps", f"a{seq}".encode()) for seq in range(3)]
    assert box.add("run-a", 1, "t/laps", b"again") == ids[1]  # idempotent on (run_id, seq)
    box.ack(ids[1])
    box.close()
    box = Outbox(path)  # a restart
    box.add("run-b", 0, "t/laps", b"b0")
    pending = box.pending()
    assert [(p.run_id, p.seq, p.payload) for p in pending] == [
        ("run-a", 0, b"a0"),
        ("run-a", 2, b"a2"),
        ("run-b", 0, b"b0"),
    ]
    assert box.counts() == (4, 3)
    box.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_outbox_that_cannot_be_opened(tmp_path: Path) -> None:
    from device.errors import OutboxError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutboxError, match="cannot open the lap outbox"):
        Outbox(blocker / "sub" / "outbox.sqlite")
