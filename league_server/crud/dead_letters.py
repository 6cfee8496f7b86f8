"""Dead letters: every broker message ingest refused, verbatim, with the reason."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from league_server.models import DeadLetter, utc_now

MAX_REASON_CHARS = 2000
# Bytes of a refused payload kept: enough to see what it was; a padded megabyte is not stored whole.
MAX_PAYLOAD_KEPT_BYTES = 4096


def record(session: Session, topic: str, payload: bytes | str, reason: str) -> DeadLetter:
    """Keep a refused message (payload as bytes, str is UTF-8 encoded; the first MAX_PAYLOAD_KEPT_BYTES of a
    longer one, which the reason says). Flushed, not committed."""
    data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    if len(data) > MAX_PAYLOAD_KEPT_BYTES:
        reason = f"{reason} (payload cut to its first {MAX_PAYLOAD_KEPT_BYTES:,} of {len(data):,} bytes)"
        data = data[:MAX_PAYLOAD_KEPT_BYTES]
    letter = DeadLetter(topic=topic, payload=data, reason=reason[:MAX_REASON_CHARS], received_at=utc_now())
    session.add(letter)
    session.flush()
    return letter


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DeadLetter)) or 0


def list_recent(session: Session, limit: int = 100) -> list[DeadLetter]:
    """Newest first."""
    return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)))
