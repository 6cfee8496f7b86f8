"""`pitlane league admin ...`: administer leagues, races, cars, timers and laps from the shell with the same
crud code as the admin API (edits audited as `cli:<user>`), and the database helpers every `pitlane league`
command shares (settings, migration, one session, printing).

Each command imports only what it uses, inside the function, and migrates only a database that is behind:
an admin command on a database at head costs one query for the check (`upgrade_if_behind`), not Alembic.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pitlane.commands.common import fail, require

admin_app = typer.Typer(
    help="Administer leagues, races, cars and laps (audited, like the admin API).", no_args_is_help=True
)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="database URL: sqlite:///FILE.db or postgresql://USER@HOST/DB (default: $PITLANE_DATABASE_URL or ./pitlane-league.db)"),
]  # fmt: skip
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LeagueOption = Annotated[str, typer.Option("--league", help="League slug.")]
RaceId = Annotated[int, typer.Argument(min=1, help="Race id (list-races).")]
CarNumberOption = Annotated[
    int | None,
    typer.Option("--number", min=0, max=9999, help="Racing number 0..9999, unique within the league."),
]
# a page of dead letters an organiser can read in a terminal; --limit for more
DEAD_LETTERS_SHOWN = 20
PAYLOAD_CHARS_SHOWN = 80


# ------------------------------------------------------------------------------------ shared helpers


def require_server() -> None:
    require("server", "fastapi", "sqlalchemy", "alembic", "pydantic_settings", "uvicorn")


def load_settings(db: str | None, **overrides: Any) -> Any:
    """Settings from the environment/.env with the given command-line values on top; bad values -> one line."""
    require_server()
    from pydantic import ValidationError

    from league_server.core.config import Settings

    values = {k: v for k, v in {"database_url": db, **overrides}.items() if v is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        fail(f"settings: {problems}")


def migrate_database(url: str, engine: Any = None) -> None:
    """Bring the database at `url` to the newest schema; Alembic runs only when it is behind. `engine`: one
    over `url` to check with (else a short-lived one). Database errors -> one red line."""
    from sqlalchemy.exc import SQLAlchemyError

    from league_server.core.db import upgrade_if_behind
    from league_server.errors import LeagueError

    try:
        upgrade_if_behind(url, engine)
    except (SQLAlchemyError, LeagueError) as exc:
        fail(f"database {safe_url(url)}: {getattr(exc, 'orig', None) or exc}")


def safe_url(url: str) -> str:
    """The database URL with its password hidden."""
    from league_server.core.db import normalise_url

    return normalise_url(url).render_as_string(hide_password=True)


@contextmanager
def database_session(db: str | None) -> Iterator[Any]:
    """A session over the migrated database; LeagueError and database errors become one red line (exit 2)."""
    from sqlalchemy.exc import SQLAlchemyError

    from league_server.core.db import make_engine, make_sessionmaker
    from league_server.errors import LeagueError

    settings = load_settings(db)
    engine = make_engine(settings.database_url)
    try:
        migrate_database(settings.database_url, engine)
        with make_sessionmaker(engine)() as session:
            try:
                yield session
            except LeagueError as exc:
                session.rollback()
                fail(exc)
            except SQLAlchemyError as exc:
                session.rollback()
                fail(f"database: {getattr(exc, 'orig', None) or exc}")
    finally:
        engine.dispose()


def cli_actor() -> str:
    """Who the audit log names for an edit made from this shell."""
    return f"cli:{getpass.getuser()}"


def print_out(data: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """`data` as indented JSON (with --json, or when there is no table for it), else through `render`."""
    if as_json or render is None:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        render(data)


def print_mapping(data: dict[str, Any]) -> None:
    """A two-column table of a mapping's keys and values."""
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in data.items():
        table.add_row(key, escape(str(value)))
    Console().print(table)


def league_id(session: Any, slug: str) -> int:
    """The id of the league `slug`; exits with how to create it when there is none."""
    from league_server.crud import leagues

    found = leagues.get_league_by_slug(session, slug)
    if found is None:
        fail(f"league {slug!r} does not exist (pitlane league admin create-league {slug} NAME)")
    return found.id


def _table(title: str, columns: tuple[str, ...], rows: list[list[str]]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _dash(value: object) -> str:
    return "-" if value is None else escape(str(value))


# ---------------------------------------------------------------------------------- league structure


@admin_app.command("create-league")
def create_league_command(slug: str, name: str, db: DbOption = None) -> None:
    """Create a league (SLUG is the <league> of MQTT topics)."""
    from league_server.crud import leagues

    with database_session(db) as session:
        league = leagues.create_league(session, slug, name)
        session.commit()
        typer.echo(f"league {league.slug} (id {league.id})")


@admin_app.command("create-event")
def create_event_command(
    name: str,
    league: LeagueOption,
    location: Annotated[str | None, typer.Option("--location")] = None,
    db: DbOption = None,
) -> None:
    """Create an event in a league."""
    from league_server.crud import leagues

    with database_session(db) as session:
        event = leagues.create_event(session, league_id(session, league), name, location=location)
        session.commit()
        typer.echo(f"event {event.name!r} (id {event.id})")


@admin_app.command("create-race")
def create_race_command(
    name: str,
    event: Annotated[int, typer.Option("--event", min=1, help="Event id.")],
    ranking: Annotated[
        str, typer.Option("--ranking", help="best_lap | best_average_of | total_time | most_laps_in")
    ] = "best_lap",
    ranked_laps: Annotated[
        int, typer.Option("--ranked-laps", min=1, help="N of best_average_of / total_time.")
    ] = 3,
    laps: Annotated[int, typer.Option("--laps", min=1, help="Laps to drive.")] = 3,
    offtrack_penalty_s: Annotated[
        float, typer.Option("--offtrack-penalty-s", min=0, help="Seconds per off-track.")
    ] = 2.0,
    max_resets: Annotated[
        int | None, typer.Option("--max-resets", min=0, help="Resets allowed per lap.")
    ] = None,
    min_lap_time_s: Annotated[
        float, typer.Option("--min-lap-time-s", min=0, help="Faster laps are refused.")
    ] = 1.0,
    time_window_s: Annotated[
        float | None, typer.Option("--time-window-s", min=0, help="T of most_laps_in.")
    ] = None,
    track: Annotated[
        str | None,
        typer.Option(
            "--track",
            help="The track's name (a simulator track such as reinvent_base); laps reported on another are refused.",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Create a race with its rules (checked by the simulator's race rules)."""
    from league_server.crud import leagues, races

    with database_session(db) as session:
        track_id = leagues.track_by_slug(session, track).id if track else None
        race = races.create_race(
            session, event, name, track_id=track_id, ranking=ranking, ranked_laps=ranked_laps, laps=laps,
            offtrack_penalty_s=offtrack_penalty_s, max_resets=max_resets, min_lap_time_s=min_lap_time_s,
            time_window_s=time_window_s,
        )  # fmt: skip
        session.commit()
        on_track = f", on {track}" if track else ""
        typer.echo(f"race {race.name!r} (id {race.id}, {race.ranking}{on_track})")


@admin_app.command("create-team")
def create_team_command(name: str, league: LeagueOption, db: DbOption = None) -> None:
    """Create a team in a league."""
    from league_server.crud import leagues

    with database_session(db) as session:
        team = leagues.create_team(session, league_id(session, league), name)
        session.commit()
        typer.echo(f"team {team.name!r} (id {team.id})")


@admin_app.command("create-racer")
def create_racer_command(
    name: str,
    league: LeagueOption,
    team: Annotated[int | None, typer.Option("--team", min=1, help="Team id.")] = None,
    db: DbOption = None,
) -> None:
    """Create a racer (optionally in a team)."""
    from league_server.crud import leagues

    with database_session(db) as session:
        racer = leagues.create_racer(session, league_id(session, league), name, team_id=team)
        session.commit()
        typer.echo(f"racer {racer.name!r} (id {racer.id})")


# ---------------------------------------------------------------------------------------------- races


@admin_app.command("list-races")
def list_races_command(as_json: JsonOption = False, db: DbOption = None) -> None:
    """List races: ranking method, status and time window (UTC)."""
    from league_server.crud import races
    from league_server.schemas import RaceOut

    with database_session(db) as session:
        data = [RaceOut.model_validate(r).model_dump(mode="json") for r in races.list_races(session)]

    def render(rows: list[dict[str, Any]]) -> None:
        _table(
            "Races",
            ("id", "name", "ranking", "ranked laps", "status", "window start", "window end"),
            [
                [str(r["id"]), escape(r["name"]), r["ranking"], str(r["ranked_laps"]), r["status"],
                 _dash(r["window_start"]), _dash(r["window_end"])]
                for r in rows
            ],
        )  # fmt: skip

    print_out(data, as_json, render)


def _race_line(race: Any) -> str:
    status = "open" if race.status == "open" else f"{race.status} (its laps are refused)"
    if race.window_start is None and race.window_end is None:
        window = "no time window"
    else:
        start = race.window_start.isoformat() if race.window_start else "open"
        end = race.window_end.isoformat() if race.window_end else "open"
        window = f"time window from {start} until {end}"
    return f"race {race.name!r} (id {race.id}): {status}; {window}"


def _update_race(race_id: int, db: str | None, **changes: Any) -> None:
    from league_server.crud import races

    with database_session(db) as session:
        race = races.update_race(session, race_id, actor=cli_actor(), **changes)
        session.commit()
        typer.echo(_race_line(race))


@admin_app.command("open-race")
def open_race_command(race_id: RaceId, db: DbOption = None) -> None:
    """Open a race: its laps are accepted again (within its window; audited)."""
    _update_race(race_id, db, status="open")


@admin_app.command("close-race")
def close_race_command(race_id: RaceId, db: DbOption = None) -> None:
    """Close a race: its laps are refused from now on; its leaderboard stays (audited).

    Refused laps are kept as dead letters (see dead-letters)."""
    _update_race(race_id, db, status="closed")


def parse_when(option: str, value: str | None) -> datetime | None:
    """An ISO 8601 time as UTC (a time without an offset is taken as UTC, as the API does); `none` -> None.
    Exits naming `option` when the value is not a time."""
    if value is None or value.strip().lower() == "none":
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat does not read the Z suffix
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"{option}: expected an ISO 8601 time such as 2026-06-01T18:00:00+02:00 (or none), got {value!r}"
        )
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


_WHEN_HELP = "ISO 8601 time, e.g. 2026-06-01T18:00+02:00 (no offset: UTC), or none for no bound."


@admin_app.command("set-window")
def set_window_command(
    race_id: RaceId,
    start: Annotated[str | None, typer.Option("--start", help=f"Laps accepted from: {_WHEN_HELP}")] = None,
    end: Annotated[str | None, typer.Option("--end", help=f"Laps accepted until: {_WHEN_HELP}")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="No window: laps accepted at any time.")] = False,
    db: DbOption = None,
) -> None:
    """Set or clear the time window a race accepts laps in (audited).

    A lap finished outside the window is refused. An option left out keeps its bound."""
    if clear and (start is not None or end is not None):
        fail("set-window: pass --clear alone, or --start and/or --end")
    if clear:
        changes: dict[str, Any] = {"window_start": None, "window_end": None}
    else:
        given = {"window_start": ("--start", start), "window_end": ("--end", end)}
        changes = {key: parse_when(*arg) for key, arg in given.items() if arg[1] is not None}
    if not changes:
        fail("set-window: pass --start ISO and/or --end ISO, or --clear")
    _update_race(race_id, db, **changes)


@admin_app.command("leaderboard")
def leaderboard_command(race_id: int, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Show a race's leaderboard (the same ranking as the API and the web page)."""
    from league_server import ranking

    with database_session(db) as session:
        board = ranking.leaderboard(session, race_id).model_dump(mode="json")

    def render(data: dict[str, Any]) -> None:
        from rich.table import Table

        table = Table(title=f"{escape(data['race_name'])} ({data['ranking']})")
        for column in ("pos", "no.", "racer", "team", "car", "value (s)", "gap (s)", "best (s)", "laps"):
            table.add_column(column)
        for e in data["entries"]:
            position = "DNF" if e["status"] == "dnf" else str(e["position"] or "-")
            number = "" if e["car_number"] is None else str(e["car_number"])
            table.add_row(
                position, number, escape(e["racer"] or ""), escape(e["team"] or ""), e["car_id"],
                _num(e["ranking_value_s"]), _num(e["gap_s"]), _num(e["best_lap_s"]), str(e["laps"]),
            )  # fmt: skip
        Console().print(table)

    print_out(board, as_json, render)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# ----------------------------------------------------------------------------------------------- cars


def _credentials_document(session: Any, car: Any, creds: Any, db: str | None) -> dict[str, Any]:
    """The credentials file `pitlane drive --credentials` reads (the API returns the same document)."""
    from league_server.crud import cars

    public_base_url = load_settings(db).public_base_url
    return cars.credentials_file(session, car, creds, public_base_url=public_base_url).model_dump(mode="json")


@admin_app.command("add-car")
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


@admin_app.command("rotate-car")
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


@admin_app.command("assign-car")
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


@admin_app.command("list-cars")
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
        _table(
            "Cars",
            ("car", "number", "name", "racer", "race", "mqtt username"),
            [
                [escape(r["car_id"]), _dash(r["number"]), _dash(r["name"]), _dash(r["racer_id"]),
                 _dash(r["race_id"]), escape(r["mqtt_username"])]
                for r in rows
            ],
        )  # fmt: skip

    print_out(data, as_json, render)


# --------------------------------------------------------------------------------------------- timers


def _timer_credentials(timer: Any, creds: Any, league: str) -> dict[str, Any]:
    from device.protocol import timer_topic

    return {
        "timer_id": timer.timer_id,
        "mqtt_username": creds.mqtt_username,
        "mqtt_password": creds.mqtt_password,
        "hmac_secret": creds.hmac_secret,
        "crossing_topic": timer_topic(league, timer.timer_id),
        "race_id": timer.race_id,
    }


@admin_app.command("add-timer")
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


@admin_app.command("assign-timer")
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


@admin_app.command("rotate-timer")
def rotate_timer_command(timer_id: str, as_json: JsonOption = False, db: DbOption = None) -> None:
    """New MQTT password and HMAC secret for a timer (the old ones stop working), printed this once."""
    from league_server.crud import leagues, timers

    with database_session(db) as session:
        creds = timers.rotate_timer_credentials(session, timer_id, actor=cli_actor())
        session.commit()
        timer = timers.require_timer(session, timer_id)
        data = _timer_credentials(timer, creds, leagues.get_league(session, timer.league_id).slug)
    print_out(data, as_json, print_mapping)


@admin_app.command("list-timers")
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
        _table(
            "Timers",
            ("timer", "name", "mqtt username", "race"),
            [[r["timer_id"], escape(r["name"] or ""), r["mqtt_username"], str(r["race_id"] or "-")] for r in rows],
        )  # fmt: skip

    print_out(data, as_json, render)


# ----------------------------------------------------------------------------------------------- laps

ReasonOption = Annotated[str, typer.Option("--reason", help="Why (written to the audit log).")]


def _lap_edit(action: str, lap_id: int, reason: str, db: str | None) -> None:
    from league_server.crud import laps

    edit = {"invalidate": laps.invalidate_lap, "restore": laps.restore_lap, "delete": laps.delete_lap}[action]
    with database_session(db) as session:
        lap = edit(session, lap_id, reason=reason, actor=cli_actor())
        session.commit()
        state = "deleted" if lap.deleted_at else ("valid" if lap.valid else "invalid")
        typer.echo(f"lap {lap.id} ({lap.car_id}, {lap.lap_time_ms / 1000:.3f} s): {state}")


@admin_app.command("invalidate-lap")
def invalidate_lap_command(lap_id: int, reason: ReasonOption, db: DbOption = None) -> None:
    """Invalidate a lap (it no longer counts; audited)."""
    _lap_edit("invalidate", lap_id, reason, db)


@admin_app.command("restore-lap")
def restore_lap_command(lap_id: int, reason: ReasonOption, db: DbOption = None) -> None:
    """Restore an invalidated or deleted lap (audited)."""
    _lap_edit("restore", lap_id, reason, db)


@admin_app.command("delete-lap")
def delete_lap_command(lap_id: int, reason: ReasonOption, db: DbOption = None) -> None:
    """Soft-delete a bogus lap (audited; restore-lap brings it back)."""
    _lap_edit("delete", lap_id, reason, db)


@admin_app.command("add-lap")
def add_lap_command(
    race: Annotated[int, typer.Option("--race", min=1, help="Race id.")],
    car: Annotated[str, typer.Option("--car", help="Car id.")],
    time_ms: Annotated[int, typer.Option("--time-ms", min=1, help="Lap time in ms, penalties not included.")],
    reason: ReasonOption,
    offtrack: Annotated[int, typer.Option("--offtrack", min=0, help="Off-tracks in the lap.")] = 0,
    resets: Annotated[int, typer.Option("--resets", min=0, help="Resets in the lap.")] = 0,
    db: DbOption = None,
) -> None:
    """Enter a lap by hand (source "manual"; audited)."""
    from league_server.crud import laps

    with database_session(db) as session:
        lap = laps.add_manual_lap(
            session, race, car, time_ms, actor=cli_actor(), reason=reason, offtrack_count=offtrack,
            reset_count=resets,
        )  # fmt: skip
        session.commit()
        typer.echo(f"lap {lap.id}: {car} lap {lap.lap_number}, {time_ms / 1000:.3f} s")


# --------------------------------------------------------------------------------------- dead letters


@admin_app.command("dead-letters")
def dead_letters_command(
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="How many, newest first.")
    ] = DEAD_LETTERS_SHOWN,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Messages the server refused, newest first, with the reason: why laps miss the leaderboard.

    A car with a wrong secret, a closed race, a lap outside the window, an unknown car: each refused lap
    report is kept with its topic, reason and payload."""
    from league_server.crud import dead_letters
    from league_server.schemas import DeadLetterOut

    with database_session(db) as session:
        found = dead_letters.list_recent(session, limit)
        data = [DeadLetterOut.model_validate(d).model_dump(mode="json") for d in found]

    def render(rows: list[dict[str, Any]]) -> None:
        # one block per letter, not a table: reasons run to a sentence and topics to 60 characters
        if not rows:
            typer.echo("no dead letters: every message the server received was taken")
        for r in rows:
            typer.echo(
                f"{r['received_at']}  {r['topic']}\n  {r['reason']}\n  payload: {_shorten(r['payload'])}"
            )

    print_out(data, as_json, render)


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PAYLOAD_CHARS_SHOWN else flat[: PAYLOAD_CHARS_SHOWN - 3] + "..."
