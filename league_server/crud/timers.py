"""Trackside timers: provisioning (credentials returned once), lookup, assignment to the race they time,
credential rotation. Mirrors crud/cars.py."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from league_server.core.security import TimerCredentials, hash_mqtt_password, new_timer_credentials
from league_server.crud import audit, logins
from league_server.crud.leagues import _add, get_league
from league_server.crud.races import get_race
from league_server.errors import ConflictError, NotFoundError
from league_server.models import Timer


def provision_timer(
    session: Session,
    league_id: int,
    timer_id: str,
    *,
    name: str | None = None,
    race_id: int | None = None,
    actor: str = "system",
) -> tuple[Timer, TimerCredentials]:
    """Register a timer with fresh credentials; the returned TimerCredentials is the only time its MQTT
    password is seen (only the Mosquitto hash is stored). ConflictError if the timer id is taken or its
    MQTT username is a car's."""
    get_league(session, league_id)
    if race_id is not None:
        get_race(session, race_id)
    if get_timer(session, timer_id) is not None:
        raise ConflictError(f"timer_id {timer_id!r} is already registered")
    creds = new_timer_credentials(timer_id)
    logins.require_free_login(session, creds.mqtt_username, f"timer {timer_id!r}")
    timer = Timer(
        league_id=league_id,
        timer_id=timer_id,
        name=name,
        mqtt_username=creds.mqtt_username,
        password_hash=hash_mqtt_password(creds.mqtt_password),
        hmac_secret=creds.hmac_secret,
        race_id=race_id,
    )
    _add(session, timer, f"timer_id {timer_id!r} / mqtt username {creds.mqtt_username!r}")
    audit.record(
        session,
        actor=actor,
        action="provision",
        entity="timer",
        entity_id=timer_id,
        after={"league_id": league_id, "race_id": race_id},
    )
    return timer, creds


def rotate_timer_credentials(session: Session, timer_id: str, *, actor: str) -> TimerCredentials:
    """New password and HMAC secret for a timer (the old ones stop working); returned once."""
    timer = require_timer(session, timer_id)
    fresh = new_timer_credentials(timer_id)
    timer.password_hash = hash_mqtt_password(fresh.mqtt_password)
    timer.hmac_secret = fresh.hmac_secret
    session.flush()
    audit.record(session, actor=actor, action="rotate_credentials", entity="timer", entity_id=timer_id)
    return TimerCredentials(timer_id, timer.mqtt_username, fresh.mqtt_password, fresh.hmac_secret)


def get_timer(session: Session, timer_id: str) -> Timer | None:
    """The timer with this id (the slug in its MQTT topic), or None."""
    return session.scalar(select(Timer).where(Timer.timer_id == timer_id))


def require_timer(session: Session, timer_id: str) -> Timer:
    timer = get_timer(session, timer_id)
    if timer is None:
        raise NotFoundError("timer", timer_id)
    return timer


def list_timers(session: Session, *, league_id: int | None = None, race_id: int | None = None) -> list[Timer]:
    query = select(Timer).order_by(Timer.id)
    if league_id is not None:
        query = query.where(Timer.league_id == league_id)
    if race_id is not None:
        query = query.where(Timer.race_id == race_id)
    return list(session.scalars(query))


def assign_timer(session: Session, timer_id: str, *, actor: str, race_id: int | None) -> Timer:
    """Set the race a timer times (None: none; its crossings are then refused). Audited."""
    timer = require_timer(session, timer_id)
    before = {"race_id": timer.race_id}
    if race_id is not None:
        get_race(session, race_id)
    timer.race_id = race_id
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="assign",
        entity="timer",
        entity_id=timer_id,
        before=before,
        after={"race_id": timer.race_id},
    )
    return timer
