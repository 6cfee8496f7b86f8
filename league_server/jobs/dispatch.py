"""The league server's side of evaluation jobs: take queued submissions from the database, run them on an
engine (local workers or Ray), store how each ended and tell the race's pages.

    dispatcher = JobDispatcher(sessionmaker, make_engine(None), data_dir, events).start()
    ...
    dispatcher.stop()

One thread claims jobs while the engine has room (`claim_next_job`: several servers on one database never
take the same job), writes each one's folder (`uploads.job_folder`) and submits it; the engine's callback
stores the outcome (`finish_job`: laps with source "sim") and publishes a `lap` event for the race, so
leaderboards and big screens update as evaluations finish. At start, jobs a stopped server left running are
queued again, once (`requeue_interrupted`).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from league_server.crud import virtual
from league_server.jobs.engine import JobRun, LocalWorkers, RayWorkers
from league_server.jobs.sandbox import Limits
from league_server.jobs.uploads import job_folder
from league_server.models import Race, Submission

log = logging.getLogger(__name__)


class JobDispatcher:
    """Feeds queued submissions to `engine`, at most `capacity` at a time (default: the engine's own)."""

    def __init__(
        self,
        sessionmaker: Any,
        engine: LocalWorkers | RayWorkers,
        data_dir: Path,
        events: Any | None = None,
        *,
        capacity: int | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.data_dir = Path(data_dir)
        self.events = events
        self.capacity = capacity or engine.capacity
        self.poll_s = poll_s
        self._running: dict[int, Future[JobRun]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pitlane-dispatch", daemon=True)

    def start(self) -> JobDispatcher:
        with self.sessionmaker() as session:
            requeued, failed = virtual.requeue_interrupted(session)
            session.commit()
        if requeued or failed:
            log.info("jobs left running by the last server: %d queued again, %d failed", requeued, failed)
        self._thread.start()
        log.info("evaluation jobs on %s", self.engine.describe())
        return self

    def wake(self) -> None:
        """A submission was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.engine.close()

    def idle(self) -> bool:
        with self._lock:
            return not self._running

    # ------------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while self._has_room() and self._start_one():
                    pass
            except SQLAlchemyError:
                log.exception("dispatching evaluation jobs failed; retrying")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _has_room(self) -> bool:
        with self._lock:
            return len(self._running) < self.capacity

    def _start_one(self) -> bool:
        """Claim one queued job and submit it; False when none is queued."""
        with self.sessionmaker() as session:
            sub = virtual.claim_next_job(session)
            if sub is None:
                session.commit()
                return False
            spec = virtual.race_spec(session.get(Race, sub.race_id))
            folder = job_folder(self.data_dir, sub.id, sub.stored_path, sub.card, spec)
            job_id = sub.id
            session.commit()
        limits = Limits(spec.limits.cpu_s, spec.limits.memory_mb, spec.limits.wall_s)
        future = self.engine.submit(folder, limits)
        with self._lock:
            self._running[job_id] = future
        future.add_done_callback(lambda f, job_id=job_id: self._finished(job_id, f))
        return True

    def _finished(self, job_id: int, future: Future[JobRun]) -> None:
        try:
            run = future.result()
            outcome, failure = run.outcome, run.failure
        except Exception as exc:  # an engine failure (a lost Ray node) fails the job, not the server
            log.exception("job %d: the engine failed", job_id)
            outcome, failure = None, f"the evaluation could not run ({exc})"
        try:
            with self.sessionmaker() as session:
                sub: Submission = virtual.finish_job(session, job_id, outcome, failure)
                race_id, status = sub.race_id, sub.status
                session.commit()
        except SQLAlchemyError:
            log.exception("job %d: storing its outcome failed (it runs again at the next start)", job_id)
            return
        finally:
            with self._lock:
                self._running.pop(job_id, None)
            self._wake.set()
        log.info("job %d: %s%s", job_id, status, f" ({failure})" if failure else "")
        if self.events is not None:
            self.events.publish(race_id, {"type": "lap", "race_id": race_id, "submission_id": job_id})
