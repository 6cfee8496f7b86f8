"""Races and their rules (validated by contracts.race.RaceRules, the one implementation of the race rules)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.errors import RaceRulesError
from contracts.race import RaceRules
from league_server.crud.leagues import _add, get_event, get_or_404
from league_server.errors import NotFoundError, RuleError
from league_server.models import Event, Race, Track

RULE_FIELDS = (
    "format",
    "laps",
    "offtrack_penalty_s",
    "max_resets",
    "ranking",
    "ranked_laps",
    "time_window_s",
)


def rules_of(race: Race) -> RaceRules:
    """The race's rules as contracts.race sees them (resets are counted per lap in the league)."""
    return RaceRules(
        format=race.format,  # type: ignore[arg-type]
        laps=race.laps,
        offtrack_penalty_s=race.offtrack_penalty_s,
        max_resets=race.max_resets,
        max_resets_scope="lap",
        ranking=race.ranking,  # type: ignore[arg-type]
        ranked_laps=race.ranked_laps,
        time_window_s=race.time_window_s,
    )


def check_rules(race: Race) -> RaceRules:
    """RuleError naming the field when contracts.race rejects the race's rules."""
    try:
        return rules_of(race)
    except RaceRulesError as exc:
        field = str(exc).split(":", 1)[0]
        raise RuleError(field, str(exc).split(":", 1)[-1].strip()) from None


def create_race(
    session: Session,
    event_id: int,
    name: str,
    *,
    track_id: int | None = None,
    format: str = "time_trial",
    ranking: str = "best_lap",
    ranked_laps: int = 3,
    laps: int = 3,
    offtrack_penalty_s: float = 2.0,
    max_resets: int | None = None,
    min_lap_time_s: float = 1.0,
    time_window_s: float | None = None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    status: str = "open",
) -> Race:
    """A race in an event. RuleError for rules contracts.race rejects or a window that ends before it starts."""
    get_event(session, event_id)
    if track_id is not None:
        get_or_404(session, Track, track_id, "track")
    race = Race(
        event_id=event_id,
        name=name,
        track_id=track_id,
        format=format,
        ranking=ranking,
        ranked_laps=ranked_laps,
        laps=laps,
        offtrack_penalty_s=offtrack_penalty_s,
        max_resets=max_resets,
        min_lap_time_s=min_lap_time_s,
        time_window_s=time_window_s,
        window_start=window_start,
        window_end=window_end,
        status=status,
    )
    check_rules(race)
    _check_window(window_start, window_end)
    _add(session, race, f"race {name!r}")
    return race


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _check_window(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and _utc(end) <= _utc(start):
        raise RuleError("window_end", "must be after window_start")


def get_race(session: Session, race_id: int) -> Race:
    race = session.get(Race, race_id)
    if race is None:
        raise NotFoundError("race", race_id)
    return race


def list_races(session: Session, *, league_id: int | None = None, status: str | None = None) -> list[Race]:
    query = select(Race).order_by(Race.id)
    if league_id is not None:
        query = query.join(Event, Race.event_id == Event.id).where(Event.league_id == league_id)
    if status is not None:
        query = query.where(Race.status == status)
    return list(session.scalars(query))


def update_race(session: Session, race_id: int, *, actor: str, **changes: Any) -> Race:
    """Change a race's rules/window/status (audited). Unknown keys -> RuleError."""
    from league_server.crud import audit

    race = get_race(session, race_id)
    allowed = {*RULE_FIELDS, "name", "min_lap_time_s", "window_start", "window_end", "status", "track_id"}
    nullable = {"max_resets", "time_window_s", "window_start", "window_end", "track_id"}
    before: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in allowed:
            raise RuleError(key, f"not a race field; expected one of {sorted(allowed)}")
        if value is None and key not in nullable:
            raise RuleError(key, "cannot be null")
        if key == "track_id" and value is not None:
            get_or_404(session, Track, value, "track")
        before[key] = getattr(race, key)
        setattr(race, key, value)
    if any(key in RULE_FIELDS for key in changes):  # rules left as they were were checked when set
        check_rules(race)
    _check_window(race.window_start, race.window_end)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="update",
        entity="race",
        entity_id=race_id,
        before=_jsonable(before),
        after=_jsonable(changes),
    )
    return race


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
