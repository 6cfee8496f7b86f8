"""`pitlane league`: serve the league server, migrate its database, provision a demo, and administer leagues
from the shell (the same crud code as the admin API).

The server's packages (fastapi, sqlalchemy, ...) are imported inside the commands: `pitlane --help` stays
fast and works without the server extra.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pitlane.commands.common import fail, port_in_use, require

app = typer.Typer(
    help="League server: live leaderboards fed by MQTT lap reports (SQLite by default, PostgreSQL at scale).",
    no_args_is_help=True,
)
admin_app = typer.Typer(
    help="Administer leagues, races, cars and laps (audited, like the admin API).", no_args_is_help=True
)
app.add_typer(admin_app, name="admin")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="database URL: sqlite:///FILE.db or postgresql://USER@HOST/DB (default: $PITLANE_DATABASE_URL or ./pitlane-league.db)"),
]  # fmt: skip
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _require_server() -> None:
    require("server", "fastapi", "sqlalchemy", "alembic", "pydantic_settings", "uvicorn")


def _settings(db: str | None, **overrides: Any) -> Any:
    """Settings from the environment/.env with the given command-line values on top; bad values -> one line."""
    _require_server()
    from pydantic import ValidationError

    from league_server.core.config import Settings

    values = {k: v for k, v in {"database_url": db, **overrides}.items() if v is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        fail(f"settings: {problems}")


def _migrate(url: str) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from league_server.core.db import upgrade
    from league_server.errors import LeagueError

    try:
        upgrade(url)
    except (SQLAlchemyError, LeagueError) as exc:
        fail(f"database {_safe_url(url)}: {getattr(exc, 'orig', None) or exc}")


def _safe_url(url: str) -> str:
    from league_server.core.db import normalise_url

    return normalise_url(url).render_as_string(hide_password=True)


@contextmanager
def _session(db: str | None) -> Iterator[Any]:
    """A migrated database session; LeagueError and database errors become one red line (exit 2)."""
    from sqlalchemy.exc import SQLAlchemyError

    from league_server.core.db import make_engine, make_sessionmaker
    from league_server.errors import LeagueError

    settings = _settings(db)
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
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


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _out(data: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    if as_json or render is None:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        render(data)


# -------------------------------------------------------------------------------------------- serve


@app.command("serve")
def serve_command(
    db: DbOption = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="HTTP port.")] = 8000,
    host: Annotated[
        str, typer.Option("--host", help="HTTP address (0.0.0.0 for the whole network).")
    ] = "127.0.0.1",
    broker: Annotated[
        str | None,
        typer.Option("--broker", help="mqtt://HOST:PORT of a running broker (default: start one)."),
    ] = None,
    broker_port: Annotated[
        int | None,
        typer.Option("--broker-port", min=1, max=65535, help="Port of the embedded broker (1883)."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The server's files: the embedded broker's logins and queued laps (default ./pitlane-league-data).",
        ),
    ] = None,
    no_ingest: Annotated[
        bool, typer.Option("--no-ingest", help="Serve the API and pages only (no MQTT).")
    ] = False,
    admin_token: Annotated[
        str | None,
        typer.Option(
            "--admin-token", help="Admin bearer token (default: $PITLANE_ADMIN_TOKEN, else a new one)."
        ),
    ] = None,
) -> None:
    """Serve the league: API, live pages, and MQTT ingest of every league in the database (with an embedded
    broker unless --broker is given)."""
    settings = _settings(
        db,
        broker_url=broker,
        embedded_broker_port=broker_port,
        data_dir=data_dir,
        admin_token=admin_token,
        ingest_enabled=not no_ingest,
    )
    import uvicorn

    from league_server.core.security import new_admin_token
    from league_server.main import create_app

    if port_in_use(host if host not in ("0.0.0.0", "::") else "127.0.0.1", port):
        fail(f"HTTP port {host}:{port} is in use (another server?): pass --port N")
    _migrate(settings.database_url)
    generated = settings.admin_token is None
    if generated:
        settings = settings.model_copy(update={"admin_token": _secret(new_admin_token())})
    if settings.public_base_url == "http://127.0.0.1:8000" and (host, port) != ("127.0.0.1", 8000):
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        settings = settings.model_copy(update={"public_base_url": f"http://{shown_host}:{port}"})
    if settings.ingest_enabled and settings.broker_url is None:
        from league_server.broker.embedded import stop_embedded_leftover

        b_host, b_port = settings.embedded_broker_host, settings.embedded_broker_port
        stop_embedded_leftover(settings.data_dir / "broker")  # a killed server's broker: its queue is kept
        if port_in_use(b_host, b_port):
            fail(
                f"MQTT port {b_host}:{b_port} is in use (another broker?): pass --broker mqtt://{b_host}:{b_port} "
                "to ingest from it, or --broker-port N for the embedded broker"
            )
    console = Console(stderr=True)
    console.print(
        f"[bold]pitlane league[/bold] on http://{escape(host)}:{port}  database {escape(_safe_url(settings.database_url))}"
    )
    if generated:
        console.print(
            f"admin token (this run only; set PITLANE_ADMIN_TOKEN to keep one): [bold]{escape(settings.admin_token.get_secret_value())}[/bold]"
        )
    if settings.ingest_enabled:
        where = (
            settings.broker_url
            or f"embedded broker mqtt://{settings.embedded_broker_host}:{settings.embedded_broker_port}"
        )
        console.print(f"ingesting every league (pitlane/+/...) from {escape(where)}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


# ------------------------------------------------------------------------------------------ migrate


@app.command("migrate")
def migrate_command(db: DbOption = None) -> None:
    """Create or upgrade the database schema (Alembic upgrade head)."""
    settings = _settings(db)
    _migrate(settings.database_url)
    from league_server.core.db import current_revision, make_engine

    engine = make_engine(settings.database_url)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    typer.echo(f"{_safe_url(settings.database_url)}: schema at revision {revision}")


# ------------------------------------------------------------------------------------- broker-config


@app.command("broker-config")
def broker_config_command(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for mosquitto.conf, passwords and acl (created).")
    ],
    db: DbOption = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Mosquitto listener port.")] = 1883,
    bind: Annotated[
        str | None,
        typer.Option("--bind", help="Listener address (default: every interface, for cars on the LAN)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a Mosquitto config for an event from the car and timer registries of every league: per-car and
    per-timer logins (the database's password hashes), an ACL letting each car publish only under its own
    topics and each timer only its own crossings, client ids bound to logins, persistence, no anonymous logins."""
    settings = _settings(db)
    from sqlalchemy.exc import SQLAlchemyError

    from league_server.broker.mosquitto import DEFAULT_SERVER_USERNAME, generate_from_db
    from league_server.errors import LeagueError

    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    try:
        generated = generate_from_db(
            settings.database_url,
            out,
            port=port,
            bind=bind,
            server_username=settings.mqtt_username or DEFAULT_SERVER_USERNAME,
            server_password=password,
        )
    except (LeagueError, SQLAlchemyError, OSError) as exc:
        fail(f"broker-config: {exc}")
    data = {
        "cars": generated.cars,
        "timers": generated.timers,
        "conf": str(generated.files.conf),
        "passwords": str(generated.files.passwords),
        "acl": str(generated.files.acl),
        "server_username": generated.server_username,
        "server_env": None if generated.server_env is None else str(generated.server_env),
        "run_as": generated.run_as,
    }
    if as_json:
        typer.echo(json.dumps(data))
        return
    console = Console(soft_wrap=True)
    console.print(f"{generated.cars} cars and {generated.timers} timers: wrote {escape(str(out))}/")
    console.print(f"  run the broker:  mosquitto -c {escape(str(generated.files.conf))}")
    if generated.run_as == "root":
        console.print(
            f"  it runs as root: the mosquitto account cannot enter a folder above {escape(str(out))} "
            "(choose --out under /etc/mosquitto or /var/lib to run it unprivileged)"
        )
    elif generated.run_as:
        console.print(f"  it runs as {escape(generated.run_as)} (the files are handed to that account)")
    if generated.server_env is not None:
        console.print(
            f"  server login (new password) in {escape(str(generated.server_env))}: "
            f"set -a; . {escape(str(generated.server_env))}; set +a; pitlane league serve ..."
        )
    console.print(
        "  after provisioning more cars or timers: run broker-config again, then kill -HUP the mosquitto process"
    )


# ------------------------------------------------------------------------------------ provision-demo


@app.command("provision-demo")
def provision_demo_command(
    db: DbOption = None,
    as_json: JsonOption = False,
    league: Annotated[
        str, typer.Option("--league", help="League slug (the <league> of MQTT topics).")
    ] = "demo",
    car_id: Annotated[str, typer.Option("--car-id", help="Car id (re-used: new credentials).")] = "demo-car",
    track: Annotated[
        str | None, typer.Option("--track", help="The race's track (laps reported on another are refused).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="Server URL for the printed links (default $PITLANE_PUBLIC_BASE_URL)."
        ),
    ] = None,
) -> None:
    """Create a league, an event, an open time-trial race and one car; print the car's credentials file once
    (save the --json output as the file `pitlane drive --credentials` reads)."""
    settings = _settings(db, public_base_url=base_url)
    from league_server.crud import cars, leagues, races

    with _session(db) as session:
        found = leagues.get_league_by_slug(session, league)
        the_league = found or leagues.create_league(session, league, f"{league} league")
        event = leagues.create_event(session, the_league.id, "Demo event")
        track_id = leagues.track_by_slug(session, track).id if track else None
        race = races.create_race(
            session, event.id, "Open time trial", track_id=track_id, ranking="best_lap", laps=3
        )
        racer = leagues.create_racer(session, the_league.id, "Demo racer")
        existing = cars.get_car(session, car_id)
        if existing is None:
            car, creds = cars.provision_car(
                session, the_league.id, car_id, racer_id=racer.id, race_id=race.id, actor=_actor()
            )
        else:
            if existing.league_id != the_league.id:
                fail(f"car_id {car_id!r} belongs to another league; pass --car-id")
            cars.assign_car(session, car_id, actor=_actor(), race_id=race.id, racer_id=racer.id)
            creds = cars.rotate_credentials(session, car_id, actor=_actor())
            car = existing
        session.commit()
        document = cars.credentials_file(session, car, creds, public_base_url=settings.public_base_url)
    _out(document.model_dump(mode="json"), as_json, _print_mapping)


def _print_mapping(data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in data.items():
        table.add_row(key, escape(str(value)))
    Console().print(table)


# -------------------------------------------------------------------------------------------- admin


def _league_id(session: Any, slug: str) -> int:
    from league_server.crud import leagues

    found = leagues.get_league_by_slug(session, slug)
    if found is None:
        fail(f"league {slug!r} does not exist (pitlane league admin create-league {slug} NAME)")
    return found.id


@admin_app.command("create-league")
def create_league_command(slug: str, name: str, db: DbOption = None) -> None:
    """Create a league (SLUG is the <league> of MQTT topics)."""
    from league_server.crud import leagues

    with _session(db) as session:
        league = leagues.create_league(session, slug, name)
        session.commit()
        typer.echo(f"league {league.slug} (id {league.id})")


@admin_app.command("create-event")
def create_event_command(
    name: str,
    league: Annotated[str, typer.Option("--league", help="League slug.")],
    location: Annotated[str | None, typer.Option("--location")] = None,
    db: DbOption = None,
) -> None:
    """Create an event in a league."""
    from league_server.crud import leagues

    with _session(db) as session:
        event = leagues.create_event(session, _league_id(session, league), name, location=location)
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

    with _session(db) as session:
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
def create_team_command(
    name: str, league: Annotated[str, typer.Option("--league", help="League slug.")], db: DbOption = None
) -> None:
    """Create a team in a league."""
    from league_server.crud import leagues

    with _session(db) as session:
        team = leagues.create_team(session, _league_id(session, league), name)
        session.commit()
        typer.echo(f"team {team.name!r} (id {team.id})")


@admin_app.command("create-racer")
def create_racer_command(
    name: str,
    league: Annotated[str, typer.Option("--league", help="League slug.")],
    team: Annotated[int | None, typer.Option("--team", min=1, help="Team id.")] = None,
    db: DbOption = None,
) -> None:
    """Create a racer (optionally in a team)."""
    from league_server.crud import leagues

    with _session(db) as session:
        racer = leagues.create_racer(session, _league_id(session, league), name, team_id=team)
        session.commit()
        typer.echo(f"racer {racer.name!r} (id {racer.id})")


@admin_app.command("add-car")
def add_car_command(
    car_id: str,
    league: Annotated[str, typer.Option("--league", help="League slug.")],
    race: Annotated[int | None, typer.Option("--race", min=1, help="Race id its laps count for.")] = None,
    racer: Annotated[int | None, typer.Option("--racer", min=1, help="Racer id.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Provision a car; its credentials file (MQTT password, HMAC secret) is printed this once: save the
    --json output as the file `pitlane drive --credentials` reads."""
    from league_server.crud import cars

    settings = _settings(db)
    with _session(db) as session:
        league_id = _league_id(session, league)
        car, creds = cars.provision_car(
            session, league_id, car_id, racer_id=racer, race_id=race, actor=_actor()
        )
        session.commit()
        document = cars.credentials_file(session, car, creds, public_base_url=settings.public_base_url)
    _out(document.model_dump(mode="json"), as_json, _print_mapping)


@admin_app.command("assign-car")
def assign_car_command(
    car_id: str,
    race: Annotated[int | None, typer.Option("--race", min=1, help="Race id.")] = None,
    racer: Annotated[int | None, typer.Option("--racer", min=1, help="Racer id.")] = None,
    db: DbOption = None,
) -> None:
    """Assign a car to a race and/or racer (audited)."""
    from league_server.crud import cars

    changes = {k: v for k, v in {"race_id": race, "racer_id": racer}.items() if v is not None}
    if not changes:
        fail("assign-car: pass --race ID and/or --racer ID")
    with _session(db) as session:
        car = cars.assign_car(session, car_id, actor=_actor(), **changes)
        session.commit()
        typer.echo(f"car {car.car_id}: race {car.race_id}, racer {car.racer_id}")


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
    league: Annotated[str, typer.Option("--league", help="League slug.")],
    race: Annotated[int | None, typer.Option("--race", min=1, help="Race id it times.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Where it stands, e.g. 'start line'.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Provision a trackside timer; its MQTT password and HMAC secret are printed this once."""
    from league_server.crud import timers

    with _session(db) as session:
        league_id = _league_id(session, league)
        timer, creds = timers.provision_timer(
            session, league_id, timer_id, name=name, race_id=race, actor=_actor()
        )
        session.commit()
        data = _timer_credentials(timer, creds, league)
    _out(data, as_json, _print_mapping)


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
    with _session(db) as session:
        timer = timers.assign_timer(session, timer_id, actor=_actor(), race_id=race)
        session.commit()
        typer.echo(f"timer {timer.timer_id}: race {timer.race_id}")


@admin_app.command("rotate-timer")
def rotate_timer_command(timer_id: str, as_json: JsonOption = False, db: DbOption = None) -> None:
    """New MQTT password and HMAC secret for a timer (the old ones stop working), printed this once."""
    from league_server.crud import leagues, timers

    with _session(db) as session:
        creds = timers.rotate_timer_credentials(session, timer_id, actor=_actor())
        session.commit()
        timer = timers.require_timer(session, timer_id)
        data = _timer_credentials(timer, creds, leagues.get_league(session, timer.league_id).slug)
    _out(data, as_json, _print_mapping)


@admin_app.command("list-timers")
def list_timers_command(
    league: Annotated[str | None, typer.Option("--league", help="League slug.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """List trackside timers and the race each times (never their secrets)."""
    from league_server.crud import timers
    from league_server.schemas import TimerOut

    with _session(db) as session:
        league_id = None if league is None else _league_id(session, league)
        found = timers.list_timers(session, league_id=league_id)
        data = [TimerOut.model_validate(t).model_dump(mode="json") for t in found]

    def render(rows: list[dict[str, Any]]) -> None:
        from rich.table import Table

        table = Table(title="Timers")
        for column in ("timer", "name", "mqtt username", "race"):
            table.add_column(column)
        for r in rows:
            table.add_row(
                r["timer_id"], escape(r["name"] or ""), r["mqtt_username"], str(r["race_id"] or "-")
            )
        Console().print(table)

    _out(data, as_json, render)


ReasonOption = Annotated[str, typer.Option("--reason", help="Why (written to the audit log).")]


def _lap_edit(action: str, lap_id: int, reason: str, db: str | None) -> None:
    from league_server.crud import laps

    edit = {"invalidate": laps.invalidate_lap, "restore": laps.restore_lap, "delete": laps.delete_lap}[action]
    with _session(db) as session:
        lap = edit(session, lap_id, reason=reason, actor=_actor())
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

    with _session(db) as session:
        lap = laps.add_manual_lap(
            session,
            race,
            car,
            time_ms,
            actor=_actor(),
            reason=reason,
            offtrack_count=offtrack,
            reset_count=resets,
        )
        session.commit()
        typer.echo(f"lap {lap.id}: {car} lap {lap.lap_number}, {time_ms / 1000:.3f} s")


@admin_app.command("list-races")
def list_races_command(as_json: JsonOption = False, db: DbOption = None) -> None:
    """List races with their ranking method."""
    from league_server.crud import races
    from league_server.schemas import RaceOut

    with _session(db) as session:
        data = [RaceOut.model_validate(r).model_dump(mode="json") for r in races.list_races(session)]

    def render(rows: list[dict[str, Any]]) -> None:
        from rich.table import Table

        table = Table(title="Races")
        for column in ("id", "name", "ranking", "ranked laps", "status"):
            table.add_column(column)
        for r in rows:
            table.add_row(str(r["id"]), escape(r["name"]), r["ranking"], str(r["ranked_laps"]), r["status"])
        Console().print(table)

    _out(data, as_json, render)


@admin_app.command("leaderboard")
def leaderboard_command(race_id: int, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Show a race's leaderboard (the same ranking as the API and the web page)."""
    from league_server import ranking

    with _session(db) as session:
        board = ranking.leaderboard(session, race_id).model_dump(mode="json")

    def render(data: dict[str, Any]) -> None:
        from rich.table import Table

        table = Table(title=f"{escape(data['race_name'])} ({data['ranking']})")
        for column in ("pos", "racer", "team", "car", "value (s)", "gap (s)", "best (s)", "laps"):
            table.add_column(column)
        for e in data["entries"]:
            table.add_row(
                str(e["position"] or "-"), escape(e["racer"] or ""), escape(e["team"] or ""), e["car_id"],
                _num(e["ranking_value_s"]), _num(e["gap_s"]), _num(e["best_lap_s"]), str(e["laps"]),
            )  # fmt: skip
        Console().print(table)

    _out(board, as_json, render)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
