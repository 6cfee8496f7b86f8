"""Cached leaderboards: `ranking.leaderboard` re-ranks every lap of a race (hundreds of ms at 10,000 laps),
far too slow to run per request when 100 screens poll a live race. The cache keeps the last leaderboard of
each race, already serialised to JSON, and reuses it until the data changes.

Invalidation without a message bus: the cache key is the database's *data version* = (largest lap id,
largest audit-log id). Every new lap raises the first (ids only grow); every edit that can change a
leaderboard — lap invalidate/restore/delete/penalty, race rule updates, car assignment — writes an audit
entry and raises the second. One indexed ``max(id)`` query per request therefore answers "is my copy
current?" correctly across processes (several uvicorn workers, a separate ingest process).

Single flight: while one request re-ranks a race, the others for that race wait for its result instead of
re-ranking too; a result computed after a request arrived is current for that request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from league_server import ranking
from league_server.models import AuditLog, Lap

Version = tuple[int, int]


@dataclass(frozen=True)
class CachedLeaderboard:
    version: Version
    json: bytes


def data_version(session: Session) -> Version:
    """(max lap id, max audit id), 0 for empty tables: grows whenever a leaderboard could change."""
    laps_max = select(func.coalesce(func.max(Lap.id), 0)).scalar_subquery()
    audit_max = select(func.coalesce(func.max(AuditLog.id), 0)).scalar_subquery()
    row = session.execute(select(laps_max, audit_max)).one()
    return int(row[0]), int(row[1])


def _current(entry: CachedLeaderboard | None, version: Version) -> bool:
    return entry is not None and entry.version[0] >= version[0] and entry.version[1] >= version[1]


class LeaderboardCache:
    """Per-process cache of serialised leaderboards by race id (thread-safe)."""

    def __init__(self) -> None:
        self._entries: dict[int, CachedLeaderboard] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _lock(self, race_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(race_id, threading.Lock())

    def json(self, session: Session, race_id: int) -> bytes:
        """The race's leaderboard as JSON bytes (`schemas.Leaderboard`); NotFoundError for unknown races."""
        version = data_version(session)
        entry = self._entries.get(race_id)
        if _current(entry, version):
            self.hits += 1
            return entry.json  # type: ignore[union-attr]
        # Give the connection back before queueing behind another request's re-ranking: waiting requests
        # must not hold the pool's connections (that starved the pool under 100 concurrent clients).
        session.rollback()
        with self._lock(race_id):
            entry = self._entries.get(race_id)
            if _current(entry, version):  # another request just computed it
                self.hits += 1
                return entry.json  # type: ignore[union-attr]
            # Read the version again inside the lock: the result reflects at least this version.
            version = data_version(session)
            body = ranking.leaderboard(session, race_id).model_dump_json().encode("utf-8")
            self._entries[race_id] = CachedLeaderboard(version, body)
            self.misses += 1
            return body

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()
