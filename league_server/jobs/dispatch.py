"""The league server's side of jobs: take queued work from the database, run it on one engine (local workers
or Ray), store how each job ended and tell the pages.

    dispatcher = JobDispatcher(sessionmaker, make_engine(None), data_dir, events, console_events).start()
    ...
    dispatcher.stop()

Two kinds of job share the engine's capacity: virtual races' evaluations (`EvaluationJobs`: short, taken
first) and the console's training jobs (`TrainingJobs`). One thread claims jobs while the engine has room
(each source's claim is one guarded UPDATE: several servers on one database never take the same job), writes
the job's folder and submits it; the engine's callbacks store progress and the outcome and publish events:
a `lap` event for the race after an evaluation, `progress` and `status` events for a training job's watch
page. At start, jobs a stopped server left running are queued again, once.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from contracts.recipe import TRAINING_FILES, TrainingJob
from league_server.crud import console, virtual
from league_server.jobs.engine import (
    EVALUATION,
    OUT_DIR,
    STOP_FILE,
    TRAINING,
    JobRun,
    LocalWorkers,
    RayWorkers,
)
from league_server.jobs.sandbox import Limits
from league_server.jobs.uploads import job_folder
from league_server.models import Race, RacerModel, Submission

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """A job taken from the database: which source, its row id, its folder, limits and job module."""

    source: JobSource
    job_id: int
    folder: Path
    limits: Limits
    module: str

    @property
    def key(self) -> tuple[str, int]:
        return self.source.kind, self.job_id


class JobSource(Protocol):
    kind: str

    def requeue(self, session: Any) -> tuple[int, int]: ...

    def claim(self, session: Any) -> Claimed | None: ...

    def progress(self, session: Any, claimed: Claimed, line: dict[str, Any]) -> None: ...

    def finish(self, session: Any, claimed: Claimed, run: JobRun | None, failure: str | None) -> None: ...


class EvaluationJobs:
    """Virtual races' submissions: each evaluated once in `data_dir/jobs/<id>`, laps stored on finish."""

    kind = "evaluation"

    def __init__(self, data_dir: Path, events: Any | None) -> None:
        self.data_dir, self.events = data_dir, events

    def requeue(self, session: Any) -> tuple[int, int]:
        return virtual.requeue_interrupted(session)

    def claim(self, session: Any) -> Claimed | None:
        sub = virtual.claim_next_job(session)
        if sub is None:
            return None
        spec = virtual.race_spec(session.get(Race, sub.race_id))
        folder = job_folder(self.data_dir, sub.id, sub.stored_path, sub.card, spec)
        limits = Limits(spec.limits.cpu_s, spec.limits.memory_mb, spec.limits.wall_s)
        return Claimed(self, sub.id, folder, limits, EVALUATION)

    def progress(self, session: Any, claimed: Claimed, line: dict[str, Any]) -> None:
        """Evaluations write no progress."""

    def finish(self, session: Any, claimed: Claimed, run: JobRun | None, failure: str | None) -> None:
        sub: Submission = virtual.finish_job(session, claimed.job_id, run.outcome if run else None, failure)
        session.commit()
        log.info("evaluation %d: %s%s", sub.id, sub.status, f" ({failure})" if failure else "")
        if self.events is not None:
            self.events.publish(sub.race_id, {"type": "lap", "race_id": sub.race_id, "submission_id": sub.id})


@dataclass(frozen=True)
class TrainingSettings:
    """How the server runs training jobs: simulated cars per job, torch threads per job, and the limits on
    top of the recipe's budget (CPU and wall seconds for start-up, export and evaluation; address space)."""

    n_envs: int = 64
    torch_threads: int = 1
    memory_mb: int = 8192
    extra_cpu_s: float = 600.0
    extra_wall_s: float = 900.0


def training_folder(data_dir: Path, model_id: int) -> Path:
    return data_dir / "training" / str(model_id)


def training_output(data_dir: Path, model_id: int, role: str) -> Path:
    """A file a model's training job wrote (`TRAINING_FILES` role, or a file name), which may not exist."""
    return training_folder(data_dir, model_id) / OUT_DIR / TRAINING_FILES.get(role, role)


class TrainingJobs:
    """The console's training jobs: `data_dir/training/<model id>`, progress pushed to the watch page."""

    kind = "training"

    def __init__(self, data_dir: Path, events: Any | None, settings: TrainingSettings | None = None) -> None:
        self.data_dir, self.events = data_dir, events
        self.settings = settings or TrainingSettings()

    def requeue(self, session: Any) -> tuple[int, int]:
        return console.requeue_interrupted_training(session)

    def claim(self, session: Any) -> Claimed | None:
        model = console.claim_next_training(session)
        if model is None:
            return None
        folder = self.write_job(model)
        budget_s = model.budget_minutes * 60.0
        limits = Limits(
            budget_s + self.settings.extra_cpu_s,
            self.settings.memory_mb,
            budget_s + self.settings.extra_wall_s,
        )
        return Claimed(self, model.id, folder, limits, TRAINING)

    def write_job(self, model: RacerModel) -> Path:
        """The model's job folder, made afresh: job.json (the recipe and how to run it)."""
        folder = training_folder(self.data_dir, model.id)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        TrainingJob(
            recipe=console.recipe_of(model),
            n_envs=self.settings.n_envs,
            torch_threads=self.settings.torch_threads,
        ).write(folder / "job.json")
        return folder

    def progress(self, session: Any, claimed: Claimed, line: dict[str, Any]) -> None:
        console.record_progress(session, claimed.job_id, line)
        session.commit()
        self._publish(claimed.job_id, {"type": "progress", **line})

    def finish(self, session: Any, claimed: Claimed, run: JobRun | None, failure: str | None) -> None:
        stopped = (claimed.folder / STOP_FILE).exists()
        outcome = dict(run.outcome) if run is not None and run.outcome is not None else None
        onnx = claimed.folder / OUT_DIR / TRAINING_FILES["onnx"]
        if outcome is not None and failure is None and onnx.is_file():
            outcome["model_sha256"] = hashlib.sha256(onnx.read_bytes()).hexdigest()
        model = console.finish_training(session, claimed.job_id, outcome, failure, stopped=stopped)
        session.commit()
        log.info("training %d: %s%s", model.id, model.status, f" ({failure})" if failure else "")
        self._publish(model.id, {"type": "status", "status": model.status, "reason": model.reason})

    def _publish(self, model_id: int, event: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.publish(model_id, event)


class JobDispatcher:
    """Feeds queued jobs of every source to `engine`, at most `capacity` at a time (default: the engine's own).
    `events`: the races' EventHub; `console_events`: the console's, keyed by model id."""

    def __init__(
        self,
        sessionmaker: Any,
        engine: LocalWorkers | RayWorkers,
        data_dir: Path,
        events: Any | None = None,
        console_events: Any | None = None,
        *,
        capacity: int | None = None,
        poll_s: float = 0.5,
        training: TrainingSettings | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.data_dir = Path(data_dir)
        self.sources: tuple[JobSource, ...] = (
            EvaluationJobs(self.data_dir, events),
            TrainingJobs(self.data_dir, console_events, training),
        )
        self.capacity = capacity or engine.capacity
        self.poll_s = poll_s
        self._running: dict[tuple[str, int], Future[JobRun]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pitlane-dispatch", daemon=True)

    def start(self) -> JobDispatcher:
        with self.sessionmaker() as session:
            for source in self.sources:
                requeued, failed = source.requeue(session)
                if requeued or failed:
                    log.info("%s jobs left running by the last server: %d queued again, %d failed",
                             source.kind, requeued, failed)  # fmt: skip
            session.commit()
        self._thread.start()
        log.info("jobs on %s", self.engine.describe())
        return self

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop_training(self, model_id: int) -> bool:
        """Ask a running training job to stop early; False when it is not running here."""
        with self._lock:
            running = ("training", model_id) in self._running
        if not running:
            return False
        return self.engine.request_stop(training_folder(self.data_dir, model_id))

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
                log.exception("dispatching jobs failed; retrying")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _has_room(self) -> bool:
        with self._lock:
            return len(self._running) < self.capacity

    def _start_one(self) -> bool:
        """Claim one queued job (evaluations first: they are short) and submit it; False when none is queued."""
        for source in self.sources:
            with self.sessionmaker() as session:
                claimed = source.claim(session)
                session.commit()
            if claimed is not None:
                self._submit(claimed)
                return True
        return False

    def _submit(self, claimed: Claimed) -> None:
        future = self.engine.submit(
            claimed.folder,
            claimed.limits,
            module=claimed.module,
            on_progress=lambda line, claimed=claimed: self._progress(claimed, line),
        )
        with self._lock:
            self._running[claimed.key] = future
        future.add_done_callback(lambda f, claimed=claimed: self._finished(claimed, f))

    def _progress(self, claimed: Claimed, line: dict[str, Any]) -> None:
        try:
            with self.sessionmaker() as session:
                claimed.source.progress(session, claimed, line)
        except SQLAlchemyError:
            log.exception("%s %d: storing progress failed", claimed.source.kind, claimed.job_id)

    def _finished(self, claimed: Claimed, future: Future[JobRun]) -> None:
        run: JobRun | None = None
        try:
            run = future.result()
            failure = run.failure
        except Exception as exc:  # an engine failure (a lost Ray node, a cancelled task) fails the job
            log.exception("%s %d: the engine failed", claimed.source.kind, claimed.job_id)
            failure = f"the job could not run ({exc})"
        try:
            with self.sessionmaker() as session:
                claimed.source.finish(session, claimed, run, failure)
        except SQLAlchemyError:
            log.exception("%s %d: storing its outcome failed (it runs again at the next start)", *claimed.key)
        finally:
            with self._lock:
                self._running.pop(claimed.key, None)
            self._wake.set()
