"""The audit log: who changed what, when and why."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import String, and_, cast, or_, select
from sqlalchemy.orm import Session

from league_server.models import AuditLog, Lap


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: object,
    reason: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    """Add one audit entry (flushed, not committed: it commits with the edit it describes)."""
    entry = AuditLog(
        actor=actor,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        reason=reason,
        before=before,
        after=after,
    )
    session.add(entry)
    session.flush()
    return entry


def list_entries(
    session: Session,
    *,
    entity: str | None = None,
    entity_id: object | None = None,
    entity_ids: Collection[object] | None = None,
    limit: int | None = 100,
) -> list[AuditLog]:
    """Newest first, optionally for one entity (e.g. entity="lap", entity_id=12) or several (entity_ids)."""
    query = select(AuditLog).order_by(AuditLog.id.desc())
    if entity is not None:
        query = query.where(AuditLog.entity == entity)
    if entity_id is not None:
        query = query.where(AuditLog.entity_id == str(entity_id))
    if entity_ids is not None:
        query = query.where(AuditLog.entity_id.in_([str(i) for i in entity_ids]))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def race_entries(session: Session, race_id: int, *, limit: int | None = None) -> list[AuditLog]:
    """The audit log of one race, newest first: changes to the race itself and edits of its laps (entered
    by hand, invalidated, restored, deleted, penalised; deleted laps included)."""
    lap_ids = select(cast(Lap.id, String)).where(Lap.race_id == race_id)
    query = (
        select(AuditLog)
        .where(
            or_(
                and_(AuditLog.entity == "race", AuditLog.entity_id == str(race_id)),
                and_(AuditLog.entity == "lap", AuditLog.entity_id.in_(lap_ids)),
            )
        )
        .order_by(AuditLog.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
