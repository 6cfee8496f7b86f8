"""Laps: idempotent insert (ingest), manual entry, invalidate/restore/soft delete (audited), listing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from league_server.crud import audit
from league_server.crud.cars import require_car
from league_server.crud.races import get_race
from league_server.errors import NotFoundError, RuleError
from league_server.models import Lap, utc_now

MAX_INT32 = 2**31 - 1
INSERT_CHUNK_ROWS = 1000

LAP_FIELDS = (
    "race_id",
    "car_id",
    "run_id",
    "seq",
    "lap_number",
    "lap_time_ms",
    "offtrack_count",
    "reset_count",
    "source",
    "racer_id",
    "model_sha256",
    "raw_payload",
    "sent_at",
    "received_at",
    "penalty_ms",
)


def _insert(session: Session) -> Any:
    """The session's dialect's INSERT (ON CONFLICT); imported here, as only that dialect's is needed (the
    PostgreSQL one costs a SQLite-only admin command ~40 ms)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _row(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(LAP_FIELDS)
    if unknown:
        raise TypeError(f"unknown lap fields {sorted(unknown)}; expected some of {LAP_FIELDS}")
    row = {
        "offtrack_count": 0,
        "reset_count": 0,
        "penalty_ms": 0,
        "racer_id": None,
        "model_sha256": None,
        "raw_payload": None,
        "sent_at": None,
        "valid": True,
        **values,
    }
    row.setdefault("received_at", utc_now())
    if row["received_at"] is None:
        row["received_at"] = utc_now()
    return row


def insert_lap_idempotent(
    session: Session,
    *,
    race_id: int,
    car_id: str,
    run_id: str,
    seq: int,
    lap_number: int,
    lap_time_ms: int,
    source: str,
    offtrack_count: int = 0,
    reset_count: int = 0,
    racer_id: int | None = None,
    model_sha256: str | None = None,
    raw_payload: dict[str, Any] | None = None,
    sent_at: datetime | None = None,
    received_at: datetime | None = None,
) -> tuple[Lap, bool]:
    """Insert a lap unless (car_id, run_id, seq) is already stored: (the stored lap, True if it is new).

    One INSERT ... ON CONFLICT DO NOTHING (SQLite and PostgreSQL), so concurrent or redelivered copies of
    a report never raise and never duplicate. Flushed, not committed.
    """
    created = insert_laps_idempotent(
        session,
        [
            {
                "race_id": race_id,
                "car_id": car_id,
                "run_id": run_id,
                "seq": seq,
                "lap_number": lap_number,
                "lap_time_ms": lap_time_ms,
                "source": source,
                "offtrack_count": offtrack_count,
                "reset_count": reset_count,
                "racer_id": racer_id,
                "model_sha256": model_sha256,
                "raw_payload": raw_payload,
                "sent_at": sent_at,
                "received_at": received_at,
            }
        ],
    )[0]
    lap = session.scalar(select(Lap).where(Lap.car_id == car_id, Lap.run_id == run_id, Lap.seq == seq))
    assert lap is not None  # inserted or already there: the unique key guarantees one row
    return lap, created


def insert_laps_idempotent(session: Session, rows: Sequence[dict[str, Any]]) -> list[bool]:
    """Batch form of `insert_lap_idempotent`: rows are dicts of LAP_FIELDS; returns, per input row, True if
    it was stored now (False: a duplicate, already stored or earlier in `rows`).

    (INGEST, for >= 1,000 laps/s) One SELECT of the keys already stored, then one executemany INSERT ... ON
    CONFLICT DO NOTHING of the new rows: about 10x less CPU than one multi-row VALUES ... RETURNING
    statement, whose huge SQL text SQLAlchemy compiles and psycopg re-parses on every batch. ON CONFLICT
    still makes a concurrent writer's copy harmless (never an error, never a second row); only the True/False
    flags assume one writer per key at a time (ingest's single writer thread), else both may say True.
    """
    if not rows:
        return []
    prepared = [_row(dict(r)) for r in rows]
    keys = [(row["car_id"], row["run_id"], row["seq"]) for row in prepared]
    seen: set[tuple[Any, ...]] = set()
    for start in range(0, len(keys), INSERT_CHUNK_ROWS):
        seen |= existing_keys(session, keys[start : start + INSERT_CHUNK_ROWS])
    flags = []
    for key in keys:
        flags.append(key not in seen)
        seen.add(key)  # a second copy inside the same batch is a duplicate
    new_rows = [row for row, new in zip(prepared, flags, strict=True) if new]
    if new_rows:
        stmt = _insert(session)(Lap).on_conflict_do_nothing(index_elements=["car_id", "run_id", "seq"])
        session.connection().execute(stmt, new_rows)  # executemany (psycopg pipelines it)
    session.expire_all()
    return flags


def existing_keys(session: Session, keys: Sequence[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
    """Which (car_id, run_id, seq) keys are already stored."""
    if not keys:
        return set()
    query = select(Lap.car_id, Lap.run_id, Lap.seq).where(tuple_(Lap.car_id, Lap.run_id, Lap.seq).in_(keys))
    return {tuple(r) for r in session.execute(query)}  # type: ignore[misc]


def add_manual_lap(
    session: Session,
    race_id: int,
    car_id: str,
    lap_time_ms: int,
    *,
    actor: str,
    reason: str,
    offtrack_count: int = 0,
    reset_count: int = 0,
    lap_number: int | None = None,
) -> Lap:
    """A lap a marshal entered by hand (source "manual"), audited."""
    get_race(session, race_id)
    car = require_car(session, car_id)
    if lap_time_ms <= 0:
        raise RuleError("lap_time_ms", f"expected > 0 ms, got {lap_time_ms}")
    previous = session.scalars(
        select(Lap.lap_number).where(Lap.race_id == race_id, Lap.car_id == car_id, Lap.deleted_at.is_(None))
    ).all()
    number = lap_number if lap_number is not None else (max(previous, default=0) + 1)
    if number > MAX_INT32:
        raise RuleError("lap_number", f"expected <= {MAX_INT32}; pass lap_number explicitly")
    lap, _ = insert_lap_idempotent(
        session,
        race_id=race_id,
        car_id=car_id,
        run_id=f"manual-{uuid.uuid4()}",
        seq=0,
        lap_number=number,
        lap_time_ms=lap_time_ms,
        source="manual",
        offtrack_count=offtrack_count,
        reset_count=reset_count,
        racer_id=car.racer_id,
    )
    audit.record(
        session,
        actor=actor,
        action="manual_entry",
        entity="lap",
        entity_id=lap.id,
        reason=reason,
        after=lap_snapshot(lap),
    )
    return lap


def get_lap(session: Session, lap_id: int) -> Lap:
    lap = session.get(Lap, lap_id)
    if lap is None:
        raise NotFoundError("lap", lap_id)
    return lap


def lap_snapshot(lap: Lap) -> dict[str, Any]:
    """The audited fields of a lap."""
    return {
        "race_id": lap.race_id,
        "car_id": lap.car_id,
        "lap_time_ms": lap.lap_time_ms,
        "penalty_ms": lap.penalty_ms,
        "valid": lap.valid,
        "invalid_reason": lap.invalid_reason,
        "deleted": lap.deleted_at is not None,
        "deleted_reason": lap.deleted_reason,
    }


def _edit(session: Session, lap_id: int, action: str, actor: str, reason: str, **changes: Any) -> Lap:
    if not reason or not reason.strip():
        raise RuleError("reason", "required: say why the lap is changed (it goes to the audit log)")
    lap = get_lap(session, lap_id)
    before = lap_snapshot(lap)
    for key, value in changes.items():
        setattr(lap, key, value)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="lap",
        entity_id=lap_id,
        reason=reason,
        before=before,
        after=lap_snapshot(lap),
    )
    return lap


def invalidate_lap(session: Session, lap_id: int, *, reason: str, actor: str) -> Lap:
    """Mark a lap invalid (it stays a driven lap: it breaks consecutive runs). Audited."""
    return _edit(session, lap_id, "invalidate", actor, reason, valid=False, invalid_reason=reason)


def restore_lap(session: Session, lap_id: int, *, reason: str, actor: str) -> Lap:
    """Undo invalidate and soft delete. Audited."""
    return _edit(
        session,
        lap_id,
        "restore",
        actor,
        reason,
        valid=True,
        invalid_reason=None,
        deleted_at=None,
        deleted_reason=None,
    )


def delete_lap(session: Session, lap_id: int, *, reason: str, actor: str) -> Lap:
    """Soft-delete a bogus lap (ignored by rankings and lists; kept for the audit). Audited."""
    return _edit(session, lap_id, "delete", actor, reason, deleted_at=utc_now(), deleted_reason=reason)


def set_penalty(session: Session, lap_id: int, *, penalty_ms: int, reason: str, actor: str) -> Lap:
    """Set a marshal's extra time penalty (ms) on a lap. Audited."""
    if penalty_ms < 0:
        raise RuleError("penalty_ms", f"expected >= 0 ms, got {penalty_ms}")
    return _edit(session, lap_id, "penalty", actor, reason, penalty_ms=penalty_ms)


def list_laps(
    session: Session,
    race_id: int,
    *,
    car_id: str | None = None,
    include_deleted: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[Lap]:
    """Laps of a race in driving order (received_at, then id)."""
    query = select(Lap).where(Lap.race_id == race_id)
    if car_id is not None:
        query = query.where(Lap.car_id == car_id)
    if not include_deleted:
        query = query.where(Lap.deleted_at.is_(None))
    query = query.order_by(Lap.received_at, Lap.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
