"""MQTT logins: cars and timers share the broker's one username namespace (one password file)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from league_server.errors import ConflictError
from league_server.models import Car, Timer

_OWNERS = (("car", Car), ("timer", Timer))


def require_free_login(session: Session, mqtt_username: str, owner: str) -> None:
    """ConflictError naming who holds `mqtt_username` if a car or a timer already does; `owner` says who
    asks (e.g. "car 'car-7'")."""
    for kind, model in _OWNERS:
        if session.scalar(select(model.id).where(model.mqtt_username == mqtt_username)) is not None:
            raise ConflictError(
                f"mqtt username {mqtt_username!r} of {owner} is already a {kind}'s; pick another id"
            )
