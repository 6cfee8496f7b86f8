"""Leagues, seasons, events, tracks, teams and racers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from league_server.errors import ConflictError, NotFoundError
from league_server.models import Base, Event, League, Racer, Season, Team, Track


def _add(session: Session, obj: Base, what: str) -> None:
    """Add and flush inside a savepoint, so a uniqueness clash becomes a ConflictError and the caller's
    transaction stays usable."""
    try:
        with session.begin_nested():
            session.add(obj)
    except IntegrityError as exc:
        raise ConflictError(f"{what} already exists ({exc.orig})") from None


def get_or_404(session: Session, model: type[Base], key: int, entity: str) -> Base:
    obj = session.get(model, key)
    if obj is None:
        raise NotFoundError(entity, key)
    return obj


def create_league(session: Session, slug: str, name: str) -> League:
    league = League(slug=slug, name=name)
    _add(session, league, f"league slug {slug!r}")
    return league


def get_league(session: Session, league_id: int) -> League:
    return get_or_404(session, League, league_id, "league")  # type: ignore[return-value]


def get_league_by_slug(session: Session, slug: str) -> League | None:
    return session.scalar(select(League).where(League.slug == slug))


def list_leagues(session: Session) -> list[League]:
    return list(session.scalars(select(League).order_by(League.id)))


def create_season(session: Session, league_id: int, name: str) -> Season:
    get_league(session, league_id)
    season = Season(league_id=league_id, name=name)
    _add(session, season, f"season {name!r} in league {league_id}")
    return season


def create_track(session: Session, slug: str, name: str, length_m: float | None = None) -> Track:
    track = Track(slug=slug, name=name, length_m=length_m)
    _add(session, track, f"track slug {slug!r}")
    return track


def track_by_slug(session: Session, slug: str) -> Track:
    """The track with this slug, created (named as its slug) if the league has none yet: a race names its
    track as the simulator does (`reinvent_base`) or as the organiser calls a physical one."""
    track = session.scalar(select(Track).where(Track.slug == slug))
    return track if track is not None else create_track(session, slug, slug)


def list_tracks(session: Session) -> list[Track]:
    return list(session.scalars(select(Track).order_by(Track.id)))


def create_event(
    session: Session,
    league_id: int,
    name: str,
    *,
    season_id: int | None = None,
    location: str | None = None,
    starts_at: datetime | None = None,
) -> Event:
    get_league(session, league_id)
    if season_id is not None:
        season = get_or_404(session, Season, season_id, "season")
        if season.league_id != league_id:  # type: ignore[attr-defined]
            raise ConflictError(f"season {season_id} belongs to another league")
    event = Event(league_id=league_id, name=name, season_id=season_id, location=location, starts_at=starts_at)
    _add(session, event, f"event {name!r}")
    return event


def get_event(session: Session, event_id: int) -> Event:
    return get_or_404(session, Event, event_id, "event")  # type: ignore[return-value]


def list_events(session: Session, league_id: int | None = None) -> list[Event]:
    query = select(Event).order_by(Event.id)
    if league_id is not None:
        query = query.where(Event.league_id == league_id)
    return list(session.scalars(query))


def create_team(session: Session, league_id: int, name: str) -> Team:
    get_league(session, league_id)
    team = Team(league_id=league_id, name=name)
    _add(session, team, f"team {name!r} in league {league_id}")
    return team


def create_racer(session: Session, league_id: int, name: str, team_id: int | None = None) -> Racer:
    get_league(session, league_id)
    if team_id is not None:
        team = get_or_404(session, Team, team_id, "team")
        if team.league_id != league_id:  # type: ignore[attr-defined]
            raise ConflictError(f"team {team_id} belongs to another league")
    racer = Racer(league_id=league_id, name=name, team_id=team_id)
    _add(session, racer, f"racer {name!r}")
    return racer


def get_racer(session: Session, racer_id: int) -> Racer:
    return get_or_404(session, Racer, racer_id, "racer")  # type: ignore[return-value]
