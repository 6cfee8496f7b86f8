"""Car presence (retained status messages and last wills)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from league_server.models import CarPresence, utc_now


def set_state(
    session: Session, car_id: str, state: str, *, run_id: str | None = None, at: datetime | None = None
) -> CarPresence:
    """Upsert the car's presence. Flushed, not committed."""
    presence = session.get(CarPresence, car_id)
    when = at or utc_now()
    if presence is None:
        presence = CarPresence(car_id=car_id, state=state, run_id=run_id, updated_at=when)
        session.add(presence)
    else:
        presence.state, presence.run_id, presence.updated_at = state, run_id, when
    session.flush()
    return presence


def list_presence(session: Session) -> list[CarPresence]:
    return list(session.scalars(select(CarPresence).order_by(CarPresence.car_id)))
