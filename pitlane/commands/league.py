"""`pitlane league`: serve the league server, migrate its database, write a broker config, provision a demo;
`pitlane league admin ...` (league_admin.py, league_cars.py, league_laps.py) administers leagues from the
shell with the same crud code as the admin API; league_db.py holds what they all share.

The server's packages (fastapi, sqlalchemy, ...) are imported inside the commands: `pitlane --help` stays
fast and works without the server extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pitlane.commands.common import fail, port_in_use
from pitlane.commands.league_admin import admin_app
from pitlane.commands.league_db import (
    DbOption,
    JsonOption,
    cli_actor,
    database_session,
    load_settings,
    migrate_database,
    print_mapping,
    print_out,
    safe_url,
)

if TYPE_CHECKING:
    from league_server.broker.mosquitto import GeneratedConfig

app = typer.Typer(
    help="League server: live leaderboards fed by MQTT lap reports (SQLite by default, PostgreSQL at scale).",
    no_args_is_help=True,
)
app.add_typer(admin_app, name="admin")


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
    broker_host: Annotated[
        str | None,
        typer.Option(
            "--broker-host",
            help="Address of the embedded broker (127.0.0.1; 0.0.0.0 for cars on the network).",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="This server's address as phones and cars reach it, e.g. http://192.168.1.10:8000 (the big screen's QR code).",
        ),
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
    workers: Annotated[
        str | None,
        typer.Option(
            "--workers",
            help="Where virtual races' evaluations run: a number of local worker processes (default: cores - 1) "
            "or a Ray address, ray://HOST:PORT (default: $RAY_ADDRESS when set).",
        ),
    ] = None,
) -> None:
    """Serve the league: API, live pages, and MQTT ingest of every league in the database (with an embedded
    broker unless --broker is given)."""
    settings = load_settings(
        db,
        broker_url=broker,
        embedded_broker_port=broker_port,
        embedded_broker_host=broker_host,
        public_base_url=public_url,
        data_dir=data_dir,
        admin_token=admin_token,
        ingest_enabled=not no_ingest,
        jobs_enabled=True,
        job_workers=workers,
    )
    import uvicorn

    from league_server.core.serve_plan import loopback_for, plan_serve
    from league_server.main import create_app

    if port_in_use(loopback_for(host), port):
        fail(f"HTTP port {host}:{port} is in use (another server?): pass --port N")
    migrate_database(settings.database_url)
    plan = plan_serve(settings, host, port)
    settings = plan.settings
    if plan.embedded_broker is not None and port_in_use(*plan.embedded_broker):
        b_host, b_port = plan.embedded_broker
        fail(
            f"MQTT port {b_host}:{b_port} is in use by another broker (installing Debian's mosquitto starts "
            "one: `sudo systemctl disable --now mosquitto`), or pass --broker-port N for this server's own "
            f"broker; to ingest from that broker instead, --broker mqtt://127.0.0.1:{b_port}"
        )
    console = Console(stderr=True)
    console.print(
        f"[bold]pitlane league[/bold] on http://{escape(host)}:{port}  database {escape(safe_url(settings.database_url))}"
    )
    if plan.admin_token_generated:
        console.print(
            f"admin token (this run only; set PITLANE_ADMIN_TOKEN to keep one): [bold]{escape(settings.admin_token.get_secret_value())}[/bold]"
        )
    if plan.ingest_source is not None:
        console.print(f"ingesting every league (pitlane/+/...) from {escape(plan.ingest_source)}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


# ------------------------------------------------------------------------------------------ migrate


@app.command("migrate")
def migrate_command(db: DbOption = None) -> None:
    """Create or upgrade the database schema (Alembic upgrade head)."""
    settings = load_settings(db)
    migrate_database(settings.database_url)
    from league_server.core.db import current_revision, make_engine

    engine = make_engine(settings.database_url)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    typer.echo(f"{safe_url(settings.database_url)}: schema at revision {revision}")


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
    settings = load_settings(db)
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
    if as_json:
        typer.echo(json.dumps(generated.summary()))
    else:
        _print_broker_config(generated, out)


def _print_broker_config(generated: GeneratedConfig, out: Path) -> None:
    """How to run the broker just configured, as the organiser reads it."""
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
    settings = load_settings(db, public_base_url=base_url)
    from league_server.crud.provision import provision_demo

    with database_session(db) as session:
        document = provision_demo(
            session,
            league,
            car_id,
            track_slug=track,
            public_base_url=settings.public_base_url,
            actor=cli_actor(),
        )
        session.commit()
    print_out(document.model_dump(mode="json"), as_json, print_mapping)


@app.command("assets")
def assets_command(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="The server's data folder [default: PITLANE_DATA_DIR].")
    ] = None,
) -> None:
    """Fetch the console's browser libraries (CodeMirror, uPlot) from the npm registry into the data folder,
    checked against their pinned sha512 (the server also does it at its first console page)."""
    from league_server.web.assets import WEB_ASSETS_DIR, AssetsError, ensure_assets, shared_cache_dir
    from pitlane.commands.league_db import load_settings

    folder = (data_dir or load_settings(None).data_dir) / WEB_ASSETS_DIR
    try:
        status = ensure_assets(folder, cache=shared_cache_dir())
    except AssetsError as exc:
        fail(str(exc))
    if not status.ok:
        fail(status.problem or f"{folder}: the console's libraries are not in place")
    versions = ", ".join(f"{name} {version}" for name, version in sorted(status.versions.items()))
    how = f"fetched {', '.join(status.fetched)}" if status.fetched else "already in place"
    typer.echo(f"{folder}: {versions} ({how})")
