"""The ingest writer thread: takes broker messages off a queue, decides each (decide.py), writes a batch in
ONE transaction (timer crossings are paired into laps inside it: pairing.py), and only after the commit
acknowledges every message of the batch to the broker.

Why a thread: paho's network thread must keep reading while a batch commits (>= 1,000 laps/s needs batches;
one commit per lap would cap SQLite at a few hundred). Failure handling, the point of this module:

- a database outage (connection refused, disk full, locked too long): the batch is rolled back and retried
  with backoff; nothing is acknowledged, so the broker still holds the messages (and re-sends them to the
  persistent session if the server dies meanwhile);
- a message the database refuses (a value PostgreSQL cannot store): the batch is retried one message at a
  time, and the one that still fails becomes a dead letter (``db_rejected``) and is acknowledged, so a
  poison message cannot block ingest or be redelivered forever;
- a bug in decide() on odd input: logged, dead-lettered as ``internal_error``, acknowledged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from league_server.crud import dead_letters, laps, presence
from league_server.ingest import pairing, reasons
from league_server.ingest.decide import (
    CrossingRow,
    LapRow,
    Message,
    Outcome,
    PresenceUpdate,
    Rejected,
    decide,
)
from league_server.ingest.directory import Directory
from league_server.ingest.stats import IngestStats

log = logging.getLogger(__name__)

DB_REJECTED = "db_rejected"
INTERNAL_ERROR = "internal_error"
# Events published per race and batch; past this one summary event (the page refetches anyway).
MAX_EVENTS_PER_RACE_BATCH = 50
# Refusals that may only mean "provisioned a moment ago": reload the directory sooner and decide again.
_UNKNOWN = (reasons.UNKNOWN_CAR, reasons.UNKNOWN_TIMER, reasons.UNKNOWN_LEAGUE)


class EventSink(Protocol):
    def publish(self, race_id: int, event: dict[str, Any]) -> None: ...


def is_outage(exc: SQLAlchemyError) -> bool:
    """False only for errors of the data (a value the database refuses: DataError, IntegrityError), which
    are isolated and dead-lettered; anything else (connection lost, database down or locked, a missing
    table after a bad deploy) is the database's problem: retry, acknowledge nothing."""
    return not isinstance(exc, DataError | IntegrityError)


class BatchWriter:
    """Decides and commits messages in batches of <= batch_max (waiting <= batch_wait_s to fill one), then
    calls ``ack(mid, qos)`` for each committed message. Start with `start()`, stop with `stop()`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ack: Callable[[int, int], None],
        stats: IngestStats,
        events: EventSink | None = None,
        *,
        batch_max: int = 500,
        batch_wait_s: float = 0.02,
        retry_max_s: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.ack = ack
        self.stats = stats
        self.events = events
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.retry_max_s = retry_max_s
        self.directory = Directory()
        self.queue: queue.Queue[Message] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pitlane-ingest-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Commit what is queued (unless the database is down), then end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def submit(self, message: Message) -> None:
        """Called from paho's network thread for every message."""
        self.stats.add(received=1)
        self.queue.put(message)

    # ------------------------------------------------------------------------------------------- loop
    def _run(self) -> None:
        while not (self._stop.is_set() and self.queue.empty()):
            batch = self._take()
            if batch:
                self._commit_guarded(batch)

    def _commit_guarded(self, batch: list[Message]) -> None:
        """`_commit_with_retry`, kept alive through a bug outside decide(): a dead writer thread would stop
        ingest without a word. Nothing of the batch is acknowledged until it commits."""
        while True:
            try:
                self._commit_with_retry(batch)
                return
            except Exception:  # logged with its traceback; the batch is retried, not lost
                self.stats.add(internal_errors=1)
                log.exception("ingest writer failed on a batch of %d; retrying in 1 s", len(batch))
                if self._stop.wait(1.0):
                    return

    def _take(self) -> list[Message]:
        try:
            first = self.queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_max:
            remaining_s = deadline - time.monotonic()
            try:
                batch.append(
                    self.queue.get(timeout=remaining_s) if remaining_s > 0 else self.queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _commit_with_retry(self, batch: list[Message]) -> None:
        delay_s = 0.1
        while True:
            try:
                self._commit(batch)
                return
            except SQLAlchemyError as exc:
                self.stats.add(db_errors=1)
                if not is_outage(exc):
                    log.warning("database refused a batch of %d (%s); retrying one by one", len(batch), exc)
                    self._commit_one_by_one(batch)
                    return
                if self._stop.is_set():
                    log.error("database down while stopping: %d messages left unacknowledged", len(batch))
                    return
                log.error("database unavailable (%s); retrying in %.1f s, nothing acknowledged", exc, delay_s)
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, self.retry_max_s)

    def _commit_one_by_one(self, batch: list[Message]) -> None:
        for message in batch:
            try:
                self._commit([message])
            except SQLAlchemyError as exc:
                if is_outage(exc):
                    self._commit_with_retry([message])
                    continue
                rejected = Rejected(
                    DB_REJECTED, f"the database refused the message: {exc.__class__.__name__}"
                )
                self._commit_with_retry_outcomes([message], [rejected])

    def _commit_with_retry_outcomes(self, batch: list[Message], outcomes: list[Outcome]) -> None:
        delay_s = 0.1
        while not self._stop.is_set():
            try:
                self._write(batch, outcomes)
                return
            except SQLAlchemyError as exc:
                log.error("cannot store a dead letter (%s); retrying in %.1f s", exc, delay_s)
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, self.retry_max_s)

    # ---------------------------------------------------------------------------------------- one batch
    def _decide_all(self, batch: Sequence[Message]) -> list[Outcome]:
        outcomes = [self._decide(m) for m in batch]
        unknown = any(isinstance(o, Rejected) and o.reason in _UNKNOWN for o in outcomes)
        if unknown and self.directory.stale(unknown_car=True):
            with self.sessions() as session:
                self.directory.refresh(session)
            outcomes = [self._decide(m) for m in batch]
        return outcomes

    def _decide(self, message: Message) -> Outcome:
        try:
            return decide(message, self.directory)
        except Exception as exc:
            log.exception("ingest decide() failed on %s", message.topic)
            return Rejected(INTERNAL_ERROR, f"{exc.__class__.__name__}: {exc}")

    def _commit(self, batch: list[Message]) -> None:
        if self.directory.stale():
            with self.sessions() as session:
                self.directory.refresh(session)
        self._write(batch, self._decide_all(batch))

    def _write(self, batch: list[Message], outcomes: list[Outcome]) -> None:
        lap_pairs = [(m, o) for m, o in zip(batch, outcomes, strict=True) if isinstance(o, LapRow)]
        rejected: Counter[str] = Counter()
        presence_updates = crossings_stored = crossing_duplicates = 0
        timer_laps: list[dict[str, Any]] = []
        with self.sessions() as session:
            created = laps.insert_laps_idempotent(session, [o.row for _, o in lap_pairs])
            for message, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, CrossingRow):
                    # In arrival order, each seeing the ones before it (same transaction, flushed).
                    paired = pairing.store_crossing(session, outcome)
                    crossings_stored += paired.stored
                    crossing_duplicates += not paired.stored and paired.rejected is None
                    timer_laps.extend(paired.laps)
                    outcome = paired.rejected if paired.rejected is not None else outcome
                if isinstance(outcome, Rejected):
                    dead_letters.record(session, message.topic, message.payload, outcome.text)
                    rejected[outcome.reason] += 1
                elif isinstance(outcome, PresenceUpdate):
                    presence.set_state(
                        session, outcome.car_id, outcome.state, run_id=outcome.run_id, at=outcome.at
                    )
                    presence_updates += 1
            session.commit()
        # Committed: now (and only now) the broker may forget these messages.
        for message in batch:
            if message.qos > 0:
                self.ack(message.mid, message.qos)
        new_rows = [o.row for (_, o), new in zip(lap_pairs, created, strict=True) if new]
        self.stats.add(
            stored=len(new_rows) + len(timer_laps),
            duplicates=len(lap_pairs) - len(new_rows) + crossing_duplicates,
            crossings=crossings_stored,
            presence=presence_updates,
            acked=sum(1 for m in batch if m.qos > 0),
            batches=1,
        )
        if rejected:
            self.stats.add_dead_letters(rejected)
            log.info("dead letters: %s", dict(rejected))
        self._publish(new_rows + timer_laps)

    def _publish(self, rows: list[dict[str, Any]]) -> None:
        if self.events is None or not rows:
            return
        by_race: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            by_race.setdefault(int(row["race_id"]), []).append(row)
        for race_id, race_rows in by_race.items():
            for row in race_rows[:MAX_EVENTS_PER_RACE_BATCH]:
                self._safe_publish(
                    race_id,
                    {
                        "type": "lap",
                        "race_id": race_id,
                        "car_id": row["car_id"],
                        "run_id": row["run_id"],
                        "seq": row["seq"],
                        "lap": row["lap_number"],
                        "lap_time_ms": row["lap_time_ms"],
                    },
                )
            if len(race_rows) > MAX_EVENTS_PER_RACE_BATCH:
                self._safe_publish(race_id, {"type": "lap", "race_id": race_id, "count": len(race_rows)})

    def _safe_publish(self, race_id: int, event: dict[str, Any]) -> None:
        assert self.events is not None
        try:
            self.events.publish(race_id, event)
        except Exception:
            log.exception("events.publish failed for race %d", race_id)
