"""Timer crossings: idempotent storage on (timer_id, run_id, seq), the neighbours in time a pairing needs,
listing. Pairing itself (which crossings make a lap) is ingest/pairing.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from league_server.crud.leagues import _add
from league_server.models import TimerCrossing


def get_crossing(session: Session, timer_id: str, run_id: str, seq: int) -> TimerCrossing | None:
    """The stored crossing with this key, or None."""
    return session.scalar(
        select(TimerCrossing).where(
            TimerCrossing.timer_id == timer_id, TimerCrossing.run_id == run_id, TimerCrossing.seq == seq
        )
    )


def add_crossing(session: Session, crossing: TimerCrossing) -> TimerCrossing:
    """Store a new crossing (flushed in a savepoint; ConflictError if its key is already stored)."""
    _add(session, crossing, f"crossing {crossing.timer_id}/{crossing.run_id}/{crossing.seq}")
    return crossing


def _same_line(timer_id: str, race_id: int, car_id: str) -> tuple[object, ...]:
    return (
        TimerCrossing.timer_id == timer_id,
        TimerCrossing.race_id == race_id,
        TimerCrossing.car_id == car_id,
    )


def neighbours(
    session: Session, timer_id: str, race_id: int, car_id: str, at: datetime
) -> tuple[TimerCrossing | None, TimerCrossing | None]:
    """(the latest stored crossing of this car, timer and race at or before `at`, the earliest one after)."""
    where = _same_line(timer_id, race_id, car_id)
    before = session.scalar(
        select(TimerCrossing)
        .where(*where, TimerCrossing.crossed_at <= at)
        .order_by(TimerCrossing.crossed_at.desc(), TimerCrossing.id.desc())
        .limit(1)
    )
    after = session.scalar(
        select(TimerCrossing)
        .where(*where, TimerCrossing.crossed_at > at)
        .order_by(TimerCrossing.crossed_at, TimerCrossing.id)
        .limit(1)
    )
    return before, after


def count_before(session: Session, timer_id: str, race_id: int, car_id: str, at: datetime) -> int:
    """Stored crossings of this car, timer and race strictly before `at` (= the number of the lap `at`
    ends)."""
    where = _same_line(timer_id, race_id, car_id)
    query = select(func.count()).select_from(TimerCrossing).where(*where, TimerCrossing.crossed_at < at)
    return session.scalar(query) or 0


def list_crossings(
    session: Session, *, timer_id: str | None = None, race_id: int | None = None, limit: int = 100
) -> list[TimerCrossing]:
    """Crossings, newest first (by crossed_at)."""
    query = select(TimerCrossing)
    if timer_id is not None:
        query = query.where(TimerCrossing.timer_id == timer_id)
    if race_id is not None:
        query = query.where(TimerCrossing.race_id == race_id)
    query = query.order_by(TimerCrossing.crossed_at.desc(), TimerCrossing.id.desc()).limit(limit)
    return list(session.scalars(query))
