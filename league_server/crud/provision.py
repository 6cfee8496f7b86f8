"""The demo provisioning behind `pitlane league provision-demo` (and `pitlane demo`): a league, an event, an
open time-trial race, a racer and one car, with the car's credentials file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from league_server.crud import cars, leagues, races
from league_server.errors import ConflictError

if TYPE_CHECKING:
    from contracts.wire import CarCredentialsFile


def provision_demo(
    session: Session,
    league_slug: str,
    car_id: str,
    *,
    track_slug: str | None = None,
    public_base_url: str | None = None,
    actor: str = "system",
) -> CarCredentialsFile:
    """Create the league `league_slug` (or reuse it), a "Demo event", an open best-lap race of 3 laps (on
    `track_slug` when given), a "Demo racer" and the car `car_id` assigned to both. A car id already in this
    league is re-assigned and gets new credentials; one in another league is a ConflictError. Flushes, never
    commits (the caller commits). Returns the car's credentials file: the only time its password is seen."""
    found = leagues.get_league_by_slug(session, league_slug)
    league = found or leagues.create_league(session, league_slug, f"{league_slug} league")
    event = leagues.create_event(session, league.id, "Demo event")
    track_id = leagues.track_by_slug(session, track_slug).id if track_slug else None
    race = races.create_race(
        session, event.id, "Open time trial", track_id=track_id, ranking="best_lap", laps=3
    )
    racer = leagues.create_racer(session, league.id, "Demo racer")
    existing = cars.get_car(session, car_id)
    if existing is None:
        car, creds = cars.provision_car(
            session, league.id, car_id, racer_id=racer.id, race_id=race.id, actor=actor
        )
    else:
        if existing.league_id != league.id:
            raise ConflictError(f"car_id {car_id!r} belongs to another league; pass --car-id")
        cars.assign_car(session, car_id, actor=actor, race_id=race.id, racer_id=racer.id)
        creds = cars.rotate_credentials(session, car_id, actor=actor)
        car = existing
    return cars.credentials_file(session, car, creds, public_base_url=public_base_url)
