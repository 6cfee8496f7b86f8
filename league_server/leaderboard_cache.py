"""Cached leaderboards: `ranking.leaderboard` re-ranks every lap of a race (about 110 ms at 10,000 laps on
this 2-core machine), far too slow to run per request when 100 screens poll a live race. The cache keeps the
last leaderboard of each race, already serialised to JSON, and reuses it until the data changes.

When is a copy current?

- The database's *data version* = (largest lap id, largest audit-log id). Every new lap raises the first
  (ids only grow); every edit that can change a leaderboard — lap invalidate/restore/delete/penalty, race
  rule updates, car assignment — writes an audit entry and raises the second. One ``max(id)`` query answers
  "has anything changed?" for writes from any process (several uvicorn workers, a separate ingest process,
  the admin CLI).
- A copy validated less than `recheck_s` (0.2 s) ago is served as is (the request fast path: no database,
  no thread).
- An older one is still served (*stale-while-revalidate*) while one background thread validates it,
  re-ranking only if the version moved. So a screen never waits for a re-rank while laps stream in, a
  race is re-ranked at most about once per recheck_s however fast laps arrive (a re-rank is ~0.1 s of CPU:
  re-ranking after every lap would keep a core busy), and what a screen shows is at most recheck_s + one
  re-rank old (well within the live page's "within a second"). A copy older than `max_stale_s` (1 s, e.g.
  the refresher is stuck on a slow database) is not served: the request validates first.
- Audited edits through this process (a marshal invalidates a lap) are read-your-writes: the commit that
  wrote an `AuditLog` row makes the next request validate before answering, so the marshal's next GET shows
  the edit.

Where the background re-rank runs: in a child process (`ranker_process.py`, when the app's database can be
opened from another process) so the event loop never waits on a GIL held by a pre-empted ranking thread;
in the refresher thread otherwise.

Single flight: one re-rank per race at a time; requests that must wait for one wait for its result instead
of re-ranking too. Caveat: a lap committed by another process with a smaller id than one already counted
(two concurrent PostgreSQL writers) is picked up with the next change, not at once.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from league_server import ranking
from league_server.models import AuditLog, Lap

log = logging.getLogger(__name__)

Version = tuple[int, int]
RECHECK_S = 0.2
MAX_STALE_S = 1.0


@dataclass
class CachedLeaderboard:
    version: Version
    json: bytes
    checked_at: float  # time.monotonic() of the last validation against the database
    edits: int  # this process's audited-edit generation at that validation


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

    sessions: the app's sessionmaker (json_in_new_session and the background refresh open their own
    sessions; audited edits committed through it are what `fresh` watches).
    """

    def __init__(
        self,
        sessions: Any = None,
        recheck_s: float = RECHECK_S,
        max_stale_s: float = MAX_STALE_S,
        ranker: Any = None,
    ) -> None:
        self.sessions = sessions
        self.ranker = ranker  # a ranker_process.RankerProcess, or None: re-rank in the refresher thread
        self.recheck_s = recheck_s
        self.max_stale_s = max_stale_s
        self.edits = 0  # commits through `sessions` that wrote an audit entry
        self.hits = 0
        self.misses = 0
        self.stale_served = 0
        self._entries: dict[int, CachedLeaderboard] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._refreshing: set[int] = set()
        self._guard = threading.Lock()
        self._refresher: ThreadPoolExecutor | None = None
        self._audited: set[int] = set()  # ids of sessions that flushed an AuditLog row, until they commit
        if sessions is not None:
            event.listen(sessions, "after_flush", self._note_audit)
            event.listen(sessions, "after_commit", self._note_commit)
            event.listen(sessions, "after_rollback", self._forget_audit)

    # ------------------------------------------------------------------ commit listeners (any thread)

    def _note_audit(self, session: Session, _flush_context: Any) -> None:
        if any(isinstance(obj, AuditLog) for obj in session.new):
            self._audited.add(id(session))

    def _forget_audit(self, session: Session) -> None:
        self._audited.discard(id(session))

    def _note_commit(self, session: Session) -> None:
        if id(session) in self._audited:
            self._audited.discard(id(session))
            self.edits += 1  # a lost increment under a race still changes the value: good enough

    # ------------------------------------------------------------------ reading

    def fresh(self, race_id: int) -> bytes | None:
        """The cached JSON if it may be served without waiting (see module doc), else None (validate).
        A copy that is past its window is still returned, and a background validation is started."""
        entry = self._entries.get(race_id)
        if entry is None or entry.edits != self.edits:
            return None
        age_s = time.monotonic() - entry.checked_at
        if age_s < self.recheck_s:
            self.hits += 1
            return entry.json
        if age_s >= self.max_stale_s or self.sessions is None:
            return None
        self._refresh_in_background(race_id)
        self.stale_served += 1
        return entry.json

    def json(self, session: Session, race_id: int) -> bytes:
        """The race's leaderboard as JSON bytes (`schemas.Leaderboard`), validated against the database now;
        NotFoundError for unknown races."""
        entry, version = self._still_current(session, race_id)
        if entry is not None:
            self.hits += 1
            return entry.json
        # Give the connection back before queueing behind another request's re-ranking: waiting requests
        # must not hold the pool's connections (that starved the pool under 100 concurrent clients).
        session.rollback()
        with self._lock(race_id):
            entry = self._entries.get(race_id)
            if _covers(entry, version):  # another request just computed it
                self.hits += 1
                return entry.json  # type: ignore[union-attr]
            edits = self.edits
            version = data_version(session)  # the result reflects at least this version
            body = ranking.leaderboard(session, race_id).model_dump_json().encode("utf-8")
            self._entries[race_id] = CachedLeaderboard(version, body, time.monotonic(), edits)
            self.misses += 1
            return body

    def _still_current(self, session: Session, race_id: int) -> tuple[CachedLeaderboard | None, Version]:
        """(the cached entry, marked validated now, if the database's data version has not moved past it,
        else None; that version)."""
        edits = self.edits
        version = data_version(session)
        entry = self._entries.get(race_id)
        if not _covers(entry, version):
            return None, version
        entry.checked_at, entry.edits = time.monotonic(), edits  # type: ignore[union-attr]
        return entry, version

    def json_in_new_session(self, race_id: int) -> bytes:
        """`json` with a session of its own (for callers running it in a worker thread)."""
        with self.sessions() as session:
            return self.json(session, race_id)

    def json_validated(self, race_id: int) -> bytes:
        """`json_in_new_session` for callers in a worker thread that push the result (the live pages' feeds):
        a re-rank, when one is needed, runs in the ranker process if it is up, so the waiting thread holds no
        GIL while it ranks (see ranker_process.py); else in this thread."""
        if self.ranker is not None and self.ranker.ready and self._refresh_elsewhere(race_id):
            entry = self._entries.get(race_id)
            if entry is not None:
                return entry.json
        return self.json_in_new_session(race_id)

    # ------------------------------------------------------------------ background validation

    def _refresh_in_background(self, race_id: int) -> None:
        with self._guard:
            if race_id in self._refreshing:
                return
            self._refreshing.add(race_id)
            if self._refresher is None:
                self._refresher = ThreadPoolExecutor(1, thread_name_prefix="leaderboard-refresh")
            self._refresher.submit(self._refresh, race_id)

    def _refresh(self, race_id: int) -> None:
        try:
            if self.ranker is None or not self.ranker.ready or not self._refresh_elsewhere(race_id):
                self.json_in_new_session(race_id)
        except Exception:  # a failed refresh must not kill the refresher: the next request retries
            log.exception("background refresh of race %s's leaderboard failed", race_id)
        finally:
            with self._guard:
                self._refreshing.discard(race_id)

    def _refresh_elsewhere(self, race_id: int) -> bool:
        """Validate here (one small query), re-rank in the ranker process; False if that process failed
        (the caller then re-ranks in this thread)."""
        edits = self.edits
        with self.sessions() as session:
            if self._still_current(session, race_id)[0] is not None:
                return True
        try:
            version, body = self.ranker.submit(race_id).result(timeout=60)
        except Exception:  # a broken child (killed, out of memory): rank in this thread from now on
            log.exception("ranker process failed; re-ranking in the server process from now on")
            self.ranker.close()
            self.ranker = None
            return False
        with self._lock(race_id):
            current = self._entries.get(race_id)
            if current is None or _covers(CachedLeaderboard(version, b"", 0.0, 0), current.version):
                self._entries[race_id] = CachedLeaderboard(version, body, time.monotonic(), edits)
                self.misses += 1
        return True

    def wait_for_refreshes(self, timeout_s: float = 10.0) -> None:
        """Block until no background validation is running (tests; shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._refreshing and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        """Stop the background refresher (the app's shutdown)."""
        if self._refresher is not None:
            self._refresher.shutdown(wait=True, cancel_futures=True)
            self._refresher = None
        if self.ranker is not None:
            self.ranker.close()

    def _lock(self, race_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(race_id, threading.Lock())


_CREATE = threading.Lock()


def cache_of(state: Any) -> LeaderboardCache:
    """The app's cache (``app.state.leaderboard_cache``), created on first use over ``state.sessionmaker``."""
    cache = getattr(state, "leaderboard_cache", None)
    if cache is None:
        with _CREATE:
            cache = getattr(state, "leaderboard_cache", None)
            if cache is None:
                cache = LeaderboardCache(state.sessionmaker, ranker=_ranker_for(state))
                state.leaderboard_cache = cache
    return cache


def _ranker_for(state: Any) -> Any:
    """A RankerProcess on the app's database, or None (no settings, or an in-memory database)."""
    from league_server.ranker_process import RankerProcess, can_rank_elsewhere

    settings = getattr(state, "settings", None)
    url = getattr(settings, "database_url", None)
    if url is None or not getattr(settings, "rank_in_process", False) or not can_rank_elsewhere(url):
        return None
    return RankerProcess(str(url)).start()
