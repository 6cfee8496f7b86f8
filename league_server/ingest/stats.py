"""Ingest counters (thread-safe): what came in, what was stored, what was refused and why."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class IngestStats:
    """Counters since the service started. `dead_letters` counts refusals per reason (see reasons.py).

    received: messages handed over by the broker; stored: new laps committed (car reports and paired timer
    crossings); duplicates: laps or crossings already stored (redelivered or replayed unchanged:
    acknowledged, not an error); crossings: new timer crossings stored; presence: status updates stored;
    acked: acknowledgements sent (only after the commit); db_errors: failed commits (not acknowledged, retried);
    batches: committed transactions; internal_errors: batches a bug stopped (not acknowledged, retried).
    """

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    crossings: int = 0
    presence: int = 0
    acked: int = 0
    db_errors: int = 0
    batches: int = 0
    internal_errors: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def add_dead_letters(self, reasons: Counter[str]) -> None:
        with self._lock:
            self.dead_letters.update(reasons)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy: the counters and ``dead_letters`` {reason: count}."""
        with self._lock:
            return {
                "received": self.received,
                "stored": self.stored,
                "duplicates": self.duplicates,
                "crossings": self.crossings,
                "presence": self.presence,
                "acked": self.acked,
                "db_errors": self.db_errors,
                "batches": self.batches,
                "internal_errors": self.internal_errors,
                "dead_letters": dict(sorted(self.dead_letters.items())),
                "dead_letters_total": sum(self.dead_letters.values()),
            }
