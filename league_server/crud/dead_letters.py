"""Dead letters: every broker message ingest refused, verbatim, with the reason."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from league_server.models import DeadLetter, utc_now

MAX_REASON_CHARS = 2000


def record(session: Session, topic: str, payload: bytes | str, reason: str) -> DeadLetter:
    """Keep a refused message (payload as bytes, str is UTF-8 encoded). Flushed, not committed."""
    data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    letter = DeadLetter(topic=topic, payload=data, reason=reason[:MAX_REASON_CHARS], received_at=utc_now())
    session.add(letter)
    session.flush()
    return letter


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DeadLetter)) or 0


def list_recent(session: Session, limit: int = 100) -> list[DeadLetter]:
    """Newest first."""
    return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)))
