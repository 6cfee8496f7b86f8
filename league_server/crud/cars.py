"""Cars: provisioning (credentials returned once), lookup by car id, assignment to a race and racer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from league_server.core.security import CarCredentials, hash_mqtt_password, new_car_credentials
from league_server.crud import audit, logins
from league_server.crud.leagues import _add, get_league, get_racer
from league_server.crud.races import get_race
from league_server.errors import ConflictError, NotFoundError
from league_server.models import Car

if TYPE_CHECKING:
    from contracts.wire import CarCredentialsFile


def provision_car(
    session: Session,
    league_id: int,
    car_id: str,
    *,
    name: str | None = None,
    number: int | None = None,
    racer_id: int | None = None,
    race_id: int | None = None,
    actor: str = "system",
) -> tuple[Car, CarCredentials]:
    """Register a car with fresh credentials. The returned CarCredentials is the only time the MQTT password
    is ever seen: only its Mosquitto hash is stored. ConflictError if the car id or its number (within the
    league) is taken, or its MQTT username is a timer's."""
    get_league(session, league_id)
    if racer_id is not None and get_racer(session, racer_id).league_id != league_id:
        raise ConflictError(f"racer {racer_id} belongs to another league")
    if race_id is not None:
        get_race(session, race_id)
    if get_car(session, car_id) is not None:
        raise ConflictError(f"car_id {car_id!r} is already registered")
    creds = new_car_credentials(car_id)
    logins.require_free_login(session, creds.mqtt_username, f"car {car_id!r}")
    car = Car(
        league_id=league_id,
        car_id=car_id,
        name=name,
        number=number,
        mqtt_username=creds.mqtt_username,
        password_hash=hash_mqtt_password(creds.mqtt_password),
        hmac_secret=creds.hmac_secret,
        racer_id=racer_id,
        race_id=race_id,
    )
    _add(session, car, f"car_id {car_id!r} / number {number} / mqtt username {creds.mqtt_username!r}")
    audit.record(
        session,
        actor=actor,
        action="provision",
        entity="car",
        entity_id=car_id,
        after={"league_id": league_id, "racer_id": racer_id, "race_id": race_id, "number": number},
    )
    return car, creds


def rotate_credentials(session: Session, car_id: str, *, actor: str) -> CarCredentials:
    """New password and HMAC secret for a car (the old ones stop working); returned once."""
    car = require_car(session, car_id)
    creds = new_car_credentials(car_id)
    car.password_hash = hash_mqtt_password(creds.mqtt_password)
    car.hmac_secret = creds.hmac_secret
    creds = CarCredentials(car_id, car.mqtt_username, creds.mqtt_password, creds.hmac_secret)
    session.flush()
    audit.record(session, actor=actor, action="rotate_credentials", entity="car", entity_id=car_id)
    return creds


def credentials_file(
    session: Session, car: Car, creds: CarCredentials, *, public_base_url: str | None = None
) -> CarCredentialsFile:
    """The document a car's owner saves as its credentials file (`pitlane drive --credentials`): the same for
    the API and the command line. public_base_url: the server's address for the leaderboard link."""
    # imported here: its pydantic models cost ~50 ms, which every admin command paid and few need
    from contracts.wire import CarCredentialsFile, car_topic

    league = get_league(session, car.league_id)
    leaderboard_url = None
    if public_base_url and car.race_id is not None:
        leaderboard_url = f"{public_base_url.rstrip('/')}/api/races/{car.race_id}/leaderboard"
    return CarCredentialsFile(
        league=league.slug,
        car_id=car.car_id,
        mqtt_username=creds.mqtt_username,
        mqtt_password=creds.mqtt_password,
        hmac_secret=creds.hmac_secret,
        lap_topic=car_topic(league.slug, car.car_id, "laps"),
        race_id=car.race_id,
        racer_id=car.racer_id,
        number=car.number,
        name=car.name,
        leaderboard_url=leaderboard_url,
    )


def get_car(session: Session, car_id: str) -> Car | None:
    """The car with this car id (the slug in its MQTT topics), or None."""
    return session.scalar(select(Car).where(Car.car_id == car_id))


def require_car(session: Session, car_id: str) -> Car:
    car = get_car(session, car_id)
    if car is None:
        raise NotFoundError("car", car_id)
    return car


def list_cars(session: Session, *, league_id: int | None = None, race_id: int | None = None) -> list[Car]:
    query = select(Car).order_by(Car.id)
    if league_id is not None:
        query = query.where(Car.league_id == league_id)
    if race_id is not None:
        query = query.where(Car.race_id == race_id)
    return list(session.scalars(query))


_UNSET = object()


def assign_car(
    session: Session,
    car_id: str,
    *,
    actor: str,
    race_id: int | object | None = _UNSET,
    racer_id: int | object | None = _UNSET,
    number: int | object | None = _UNSET,
) -> Car:
    """Assign a car to a race and/or a racer, or give it a number (None clears; omitted keeps). Audited.
    ConflictError if another car of the league has that number."""
    car = require_car(session, car_id)
    before = {"race_id": car.race_id, "racer_id": car.racer_id, "number": car.number}
    if race_id is not _UNSET:
        if race_id is not None:
            get_race(session, race_id)  # type: ignore[arg-type]
        car.race_id = race_id  # type: ignore[assignment]
    if racer_id is not _UNSET:
        if racer_id is not None and get_racer(session, racer_id).league_id != car.league_id:  # type: ignore[arg-type]
            raise ConflictError(f"racer {racer_id} belongs to another league than car {car_id!r}")
        car.racer_id = racer_id  # type: ignore[assignment]
    if number is not _UNSET:
        if number is not None and _number_taken(session, car, number):  # type: ignore[arg-type]
            raise ConflictError(f"car number {number} is already another car's in this league")
        car.number = number  # type: ignore[assignment]
    session.flush()
    session.refresh(car)
    audit.record(
        session,
        actor=actor,
        action="assign",
        entity="car",
        entity_id=car_id,
        before=before,
        after={"race_id": car.race_id, "racer_id": car.racer_id, "number": car.number},
    )
    return car


def _number_taken(session: Session, car: Car, number: int) -> bool:
    other = session.scalar(
        select(Car.car_id).where(Car.league_id == car.league_id, Car.number == number, Car.id != car.id)
    )
    return other is not None
