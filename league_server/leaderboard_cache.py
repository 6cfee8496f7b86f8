"""Cached leaderboards: `ranking.leaderboard` re-ranks every lap of a race (hundreds of ms at 10,000 laps),
far too slow to run per request when 100 screens poll a live race. The cache keeps the last leaderboard of
each race, already serialised to JSON, and reuses it until the data changes.

When is a copy current?

- The database's *data version* = (largest lap id, largest audit-log id). Every new lap raises the first
  (ids only grow); every edit that can change a leaderboard — lap invalidate/restore/delete/penalty, race
  rule updates, car assignment — writes an audit entry and raises the second. One ``max(id)`` query answers
  "has anything changed?" for writes from any process (several uvicorn workers, a separate ingest process,
  the admin CLI).
- Every commit through this process's sessionmaker (ingest, admin API) bumps an in-process *generation*
  (a SQLAlchemy ``after_commit`` listener), so this process's own writes are seen at once.
- `fresh` (the request fast path, no database, no thread): a copy validated less than `recheck_s` ago with
  no commit in this process since. So writes from *other* processes show up within `recheck_s` (0.2 s;
  the live page promises "within a second"), this process's own writes immediately.

Single flight: while one request re-ranks a race, the others for that race wait for its result instead of
re-ranking too. Caveat: a lap committed by another process with a smaller id than one already counted (two
concurrent PostgreSQL writers) is picked up with the next change, not at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from league_server import ranking
from league_server.models import AuditLog, Lap

Version = tuple[int, int]
RECHECK_S = 0.2


@dataclass
class CachedLeaderboard:
    version: Version
    json: bytes
    checked_at: float  # time.monotonic() of the last validation against the database
    generation: int  # this process's commit generation at that validation


def data_version(session: Session) -> Version:
    """(max lap id, max audit id), 0 for empty tables: grows whenever a leaderboard could change."""
    laps_max = select(func.coalesce(func.max(Lap.id), 0)).scalar_subquery()
    audit_max = select(func.coalesce(func.max(AuditLog.id), 0)).scalar_subquery()
    row = session.execute(select(laps_max, audit_max)).one()
    return int(row[0]), int(row[1])


def _covers(entry: CachedLeaderboard | None, version: Version) -> bool:
    return entry is not None and entry.version[0] >= version[0] and entry.version[1] >= version[1]


class LeaderboardCache:
    """Per-process cache of serialised leaderboards by race id (thread-safe).

    sessions: the app's sessionmaker (json() opens its own sessions; commits through it bump the generation).
    """

    def __init__(self, sessions: Any = None, recheck_s: float = RECHECK_S) -> None:
        self.sessions = sessions
        self.recheck_s = recheck_s
        self.generation = 0
        self.hits = 0
        self.misses = 0
        self._entries: dict[int, CachedLeaderboard] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        if sessions is not None:
            event.listen(sessions, "after_commit", self._bump)

    def _bump(self, _session: Session) -> None:
        self.generation += 1  # a lost increment under a race still changes the value: good enough

    def _lock(self, race_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(race_id, threading.Lock())

    def fresh(self, race_id: int) -> bytes | None:
        """The cached JSON if validated < recheck_s ago and nothing committed in this process since."""
        entry = self._entries.get(race_id)
        if entry is None or entry.generation != self.generation:
            return None
        if time.monotonic() - entry.checked_at >= self.recheck_s:
            return None
        self.hits += 1
        return entry.json

    def json(self, session: Session, race_id: int) -> bytes:
        """The race's leaderboard as JSON bytes (`schemas.Leaderboard`), validated against the database now;
        NotFoundError for unknown races."""
        generation = self.generation
        version = data_version(session)
        entry = self._entries.get(race_id)
        if _covers(entry, version):
            self.hits += 1
            entry.checked_at, entry.generation = time.monotonic(), generation  # type: ignore[union-attr]
            return entry.json  # type: ignore[union-attr]
        # Give the connection back before queueing behind another request's re-ranking: waiting requests
        # must not hold the pool's connections (that starved the pool under 100 concurrent clients).
        session.rollback()
        with self._lock(race_id):
            entry = self._entries.get(race_id)
            if _covers(entry, version):  # another request just computed it
                self.hits += 1
                return entry.json  # type: ignore[union-attr]
            generation = self.generation
            version = data_version(session)  # the result reflects at least this version
            body = ranking.leaderboard(session, race_id).model_dump_json().encode("utf-8")
            self._entries[race_id] = CachedLeaderboard(version, body, time.monotonic(), generation)
            self.misses += 1
            return body

    def json_in_new_session(self, race_id: int) -> bytes:
        """`json` with a session of its own (for callers running it in a worker thread)."""
        with self.sessions() as session:
            return self.json(session, race_id)


_CREATE = threading.Lock()


def cache_of(state: Any) -> LeaderboardCache:
    """The app's cache (``app.state.leaderboard_cache``), created on first use over ``state.sessionmaker``."""
    cache = getattr(state, "leaderboard_cache", None)
    if cache is None:
        with _CREATE:
            cache = getattr(state, "leaderboard_cache", None)
            if cache is None:
                cache = LeaderboardCache(state.sessionmaker)
                state.leaderboard_cache = cache
    return cache
