"""Re-ranking in a process of its own, for the leaderboard cache's background refresh.

Why a process: a re-rank is ~0.1 s of Python. In a thread of the server it holds the GIL in 5 ms slices, and
on a busy 2-core machine (PostgreSQL, the broker and the load on the same cores) the OS can pre-empt that
thread *while it holds the GIL*, so the event loop — which serves every cached request — waited up to
~110 ms (`pitlane bench ingest` on PostgreSQL: p99 109 ms with the thread, see docs/benchmarks.md). In a child
process the ranking has its own interpreter; the server only receives the finished JSON bytes.

The child opens its own engine on the same database URL (so not for ``sqlite://`` in-memory databases,
which another process cannot see). `start()` (the app's startup) spawns it without waiting; until it has
imported and connected (about a second), `ready` is False and the cache re-ranks in its own thread.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

_sessions: Any = None  # the child's sessionmaker


# How often the child checks that the server that started it still lives.
PARENT_CHECK_S = 1.0


def _exit_with_parent(parent_pid: int) -> None:
    """End this child once its parent is gone. Why: a pool worker blocks on its task queue forever when the
    server is killed (-9), and keeps multiprocessing's resource tracker alive with it: two orphans."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _init(database_url: str, parent_pid: int) -> None:
    global _sessions
    from league_server.core.db import make_engine, make_sessionmaker

    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
    logging.getLogger().setLevel(logging.WARNING)
    _sessions = make_sessionmaker(make_engine(database_url))


def _ping() -> bool:
    return True


def _rank(race_id: int) -> tuple[tuple[int, int], bytes]:
    """(data version the result reflects at least, leaderboard JSON bytes) of `race_id` (in the child)."""
    from league_server import ranking
    from league_server.leaderboard_cache import data_version

    with _sessions() as session:
        version = data_version(session)
        return version, ranking.leaderboard(session, race_id).model_dump_json().encode("utf-8")


def can_rank_elsewhere(database_url: str) -> bool:
    """False for databases only this process can see (SQLite in memory)."""
    url = str(database_url)
    return not (
        url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite:/"))
    )


class RankerProcess:
    """One child process that ranks races on request (`submit(race_id) -> Future[(version, bytes)]`)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._pool: ProcessPoolExecutor | None = None
        self._warm: Future[bool] | None = None

    def start(self) -> RankerProcess:
        """Spawn the child (returns at once; `ready` tells when it can take work)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1,
                mp_context=mp.get_context("spawn"),
                initializer=_init,
                initargs=(self.database_url, os.getpid()),
            )
            self._warm = self._pool.submit(_ping)
        return self

    @property
    def ready(self) -> bool:
        return self._warm is not None and self._warm.done() and self._warm.exception() is None

    def submit(self, race_id: int) -> Future[tuple[tuple[int, int], bytes]]:
        self.start()
        return self._pool.submit(_rank, race_id)  # type: ignore[union-attr]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
