"""`pitlane league admin` commands for cars and trackside timers: provision, assign, rotate secrets, list.

Secrets (MQTT password, HMAC secret) are printed once, at provisioning or rotation; lists never show them.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from pitlane.commands.common import fail
from pitlane.commands.league_db import (
    CarNumberOption,
    DbOption,
    JsonOption,
    LeagueOption,
    cli_actor,
    dash,
    database_session,
    league_id,
    load_settings,
    print_mapping,
    print_out,
    print_table,
)

cars_app = typer.Typer()


# ----------------------------------------------------------------------------------------------- cars


def _credentials_document(session: Any, car: Any, creds: Any, db: str | None) -> dict[str, Any]:
    """The credentials file `pitlane drive --credentials` reads (the API returns the same document)."""
    from league_server.crud import cars

    public_base_url = load_settings(db).public_base_url
    return cars.credentials_file(session, car, creds, public_base_url=public_base_url).model_dump(mode="json")


@cars_app.command("add-car")
def add_car_command(
    car_id: str,
    league: LeagueOption,
    race: Annotated[int | None, typer.Option("--race", min=1, help="Race id its laps count for.")] = None,
    racer: Annotated[int | None, typer.Option("--racer", min=1, help="Racer id.")] = None,
    number: CarNumberOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Provision a car; its credentials file is printed this once (audited).

    The file holds the MQTT password and HMAC secret: save the --json output as the file
    `pitlane drive --credentials` reads."""
    from league_server.crud import cars

    with database_session(db) as session:
        car, creds = cars.provision_car(
            session, league_id(session, league), car_id, number=number, racer_id=racer, race_id=race,
            actor=cli_actor(),
        )  # fmt: skip
        session.commit()
        document = _credentials_document(session, car, creds, db)
    print_out(document, as_json, print_mapping)


@cars_app.command("rotate-car")
def rotate_car_command(car_id: str, as_json: JsonOption = False, db: DbOption = None) -> None:
    """New MQTT password and HMAC secret for a car, printed this once (audited).

    The old ones stop working: save the --json output as the car's new credentials file (`pitlane drive
    --credentials`). With an external broker, run broker-config again and reload it; until then the car's
    old password still logs in there and its laps are refused as bad_signature (see dead-letters)."""
    from league_server.crud import cars

    with database_session(db) as session:
        creds = cars.rotate_credentials(session, car_id, actor=cli_actor())
        session.commit()
        document = _credentials_document(session, cars.require_car(session, car_id), creds, db)
    print_out(document, as_json, print_mapping)


@cars_app.command("assign-car")
def assign_car_command(
    car_id: str,
    race: Annotated[int | None, typer.Option("--race", min=1, help="Race id.")] = None,
    racer: Annotated[int | None, typer.Option("--racer", min=1, help="Racer id.")] = None,
    number: CarNumberOption = None,
    no_number: Annotated[bool, typer.Option("--no-number", help="Take the car's number away.")] = False,
    db: DbOption = None,
) -> None:
    """Assign a car to a race and/or racer, or give it a racing number (audited)."""
    from league_server.crud import cars

    if number is not None and no_number:
        fail("assign-car: pass --number N or --no-number, not both")
    given = {"race_id": race, "racer_id": racer, "number": number}
    changes: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    if no_number:
        changes["number"] = None
    if not changes:
        fail("assign-car: pass --race ID, --racer ID and/or --number N (or --no-number)")
    with database_session(db) as session:
        car = cars.assign_car(session, car_id, actor=cli_actor(), **changes)
        session.commit()
        typer.echo(f"car {car.car_id}: race {car.race_id}, racer {car.racer_id}, number {car.number}")


@cars_app.command("list-cars")
def list_cars_command(
    league: Annotated[str | None, typer.Option("--league", help="League slug.")] = None,
    race: Annotated[int | None, typer.Option("--race", min=1, help="Race id.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """List cars: number, racer and race (never their secrets; rotate-car issues new ones)."""
    from league_server.crud import cars
    from league_server.schemas import CarOut

    with database_session(db) as session:
        found = cars.list_cars(
            session, league_id=None if league is None else league_id(session, league), race_id=race
        )
        data = [CarOut.model_validate(c).model_dump(mode="json") for c in found]

    def render(rows: list[dict[str, Any]]) -> None:
        print_table(
            "Cars",
            ("car", "number", "name", "racer", "race", "mqtt username"),
            [
                [escape(r["car_id"]), dash(r["number"]), dash(r["name"]), dash(r["racer_id"]),
                 dash(r["race_id"]), escape(r["mqtt_username"])]
                for r in rows
            ],
        )  # fmt: skip

    print_out(data, as_json, render)


# --------------------------------------------------------------------------------------------- timers


def _timer_credentials(timer: Any, creds: Any, league: str) -> dict[str, Any]:
    from contracts.wire import timer_topic

    return {
        "timer_id": timer.timer_id,
        "mqtt_username": creds.mqtt_username,
        "mqtt_password": creds.mqtt_password,
        "hmac_secret": creds.hmac_secret,
        "crossing_topic": timer_topic(league, timer.timer_id),
        "race_id": timer.race_id,
    }


@cars_app.command("add-timer")
def add_timer_command(
    timer_id: str,
    league: LeagueOption,
    race: Annotated[int | None, typer.Option("--race", min=1, help="Race id it times.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Where it stands, e.g. 'start line'.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Provision a trackside timer; its MQTT password and HMAC secret are printed this once."""
    from league_server.crud import timers

    with database_session(db) as session:
        timer, creds = timers.provision_timer(
            session, league_id(session, league), timer_id, name=name, race_id=race, actor=cli_actor()
        )
        session.commit()
        data = _timer_credentials(timer, creds, league)
    print_out(data, as_json, print_mapping)


@cars_app.command("assign-timer")
def assign_timer_command(
    timer_id: str,
    race: Annotated[int | None, typer.Option("--race", min=1, help="Race id it times.")] = None,
    no_race: Annotated[bool, typer.Option("--no-race", help="Time no race (crossings refused).")] = False,
    db: DbOption = None,
) -> None:
    """Set the race a timer times (audited)."""
    from league_server.crud import timers

    if (race is None) == (not no_race):
        fail("assign-timer: pass either --race ID or --no-race")
    with database_session(db) as session:
        timer = timers.assign_timer(session, timer_id, actor=cli_actor(), race_id=race)
        session.commit()
        typer.echo(f"timer {timer.timer_id}: race {timer.race_id}")


@cars_app.command("rotate-timer")
def rotate_timer_command(timer_id: str, as_json: JsonOption = False, db: DbOption = None) -> None:
    """New MQTT password and HMAC secret for a timer (the old ones stop working), printed this once."""
    from league_server.crud import leagues, timers

    with database_session(db) as session:
        creds = timers.rotate_timer_credentials(session, timer_id, actor=cli_actor())
        session.commit()
        timer = timers.require_timer(session, timer_id)
        data = _timer_credentials(timer, creds, leagues.get_league(session, timer.league_id).slug)
    print_out(data, as_json, print_mapping)


@cars_app.command("list-timers")
def list_timers_command(
    league: Annotated[str | None, typer.Option("--league", help="League slug.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """List trackside timers and the race each times (never their secrets)."""
    from league_server.crud import timers
    from league_server.schemas import TimerOut

    with database_session(db) as session:
        found = timers.list_timers(session, league_id=None if league is None else league_id(session, league))
        data = [TimerOut.model_validate(t).model_dump(mode="json") for t in found]

    def render(rows: list[dict[str, Any]]) -> None:
        print_table(
            "Timers",
            ("timer", "name", "mqtt username", "race"),
            [[r["timer_id"], escape(r["name"] or ""), r["mqtt_username"], str(r["race_id"] or "-")] for r in rows],
        )  # fmt: skip

    print_out(data, as_json, render)
