"""The on-disk lap outbox: SQLite in WAL mode. A lap is written (signed bytes, as they will be published)
before it is sent, and stays until the broker's PUBACK for it; unsent laps replay in order (oldest run first,
then seq) after a reconnect or a restart. A lap report is a few hundred bytes at most once a second, so
`synchronous=FULL` (an fsync per lap: durable against power loss, not only against a killed process) is cheap.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from device.errors import OutboxError

#: how long acknowledged laps are kept in the outbox file (s)
KEEP_ACKED_S = 30 * 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS laps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_s REAL NOT NULL,
    acked_s REAL,
    UNIQUE (run_id, seq)
);
CREATE INDEX IF NOT EXISTS laps_pending ON laps (acked_s, id);
"""


@dataclass(frozen=True)
class PendingLap:
    """One unsent lap: outbox row id, run, seq, topic and the exact bytes to publish."""

    id: int
    run_id: str
    seq: int
    topic: str
    payload: bytes


class Outbox:
    """A thread-safe handle (the loop adds, paho's network thread acknowledges)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            # acknowledged laps stay a while as the car's own log, then go (the file must not grow forever)
            self._db.execute(
                "DELETE FROM laps WHERE acked_s IS NOT NULL AND acked_s < ?", (time.time() - KEEP_ACKED_S,)
            )
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"{self.path}: cannot open the lap outbox ({exc})") from None
        self._lock = threading.Lock()

    def add(self, run_id: str, seq: int, topic: str, payload: bytes) -> int:
        """Store a lap (idempotent on (run_id, seq)); returns its row id."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO laps (run_id, seq, topic, payload, created_s) VALUES (?, ?, ?, ?, ?)",
                (run_id, seq, topic, payload, time.time()),
            )
            row = self._db.execute(
                "SELECT id FROM laps WHERE run_id = ? AND seq = ?", (run_id, seq)
            ).fetchone()
        return int(row[0])

    def ack(self, row_id: int) -> None:
        """The broker acknowledged the lap (PUBACK)."""
        with self._lock:
            self._db.execute(
                "UPDATE laps SET acked_s = ? WHERE id = ? AND acked_s IS NULL", (time.time(), row_id)
            )

    def pending(self) -> list[PendingLap]:
        """Unacknowledged laps, oldest first (by insertion: earlier runs first, then seq)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, run_id, seq, topic, payload FROM laps WHERE acked_s IS NULL ORDER BY id"
            ).fetchall()
        return [PendingLap(int(r[0]), r[1], int(r[2]), r[3], bytes(r[4])) for r in rows]

    def counts(self) -> tuple[int, int]:
        """(laps stored, laps still unacknowledged)."""
        with self._lock:
            total, pending = self._db.execute(
                "SELECT COUNT(*), COUNT(*) - COUNT(acked_s) FROM laps"
            ).fetchone()
        return int(total), int(pending)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def default_outbox_path(car_id: str) -> Path:
    """`$PITLANE_HOME/outbox/<car_id>.sqlite`, else `$XDG_DATA_HOME/pitlane/outbox/...`, else
    `~/.local/share/pitlane/outbox/...` (the same folders as imported tracks)."""
    import os

    if home := os.environ.get("PITLANE_HOME"):
        root = Path(home).expanduser()
    elif xdg := os.environ.get("XDG_DATA_HOME"):
        root = Path(xdg).expanduser() / "pitlane"
    else:
        root = Path.home() / ".local" / "share" / "pitlane"
    return root / "outbox" / f"{car_id}.sqlite"
