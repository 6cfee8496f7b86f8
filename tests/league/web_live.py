"""Helpers for the WEB tests (test_web_*): the real app served by uvicorn on a free 127.0.0.1 port in a thread,
over a SQLite file, with its embedded MQTT broker and ingest when a broker can be started; races with cars; laps
published over MQTT (signed) or stored through crud and announced on the EventHub the way the ingest does."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contracts import wire as protocol

PUBLIC_BASE_URL = "http://league.example.test:8000"  # what the QR code must point at
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ADMIN_TOKEN = "web-test-token"


@dataclass
class Race:
    race_id: int
    league_id: int
    secrets: dict[str, str]  # car_id -> HMAC secret
    logins: dict[str, tuple[str, str]] = field(default_factory=dict)  # car_id -> (MQTT username, password)
    runs: dict[str, str] = field(default_factory=dict)  # car_id -> run id
    seqs: dict[str, int] = field(default_factory=dict)  # car_id -> next seq


@dataclass
class LiveServer:
    url: str
    app: Any
    league: str
    league_id: int
    public_base_url: str = PUBLIC_BASE_URL

    @property
    def sessions(self) -> Any:
        return self.app.state.sessionmaker

    @property
    def events(self) -> Any:
        return self.app.state.events

    @property
    def ingest(self) -> Any:
        return getattr(self.app.state, "ingest", None)

    def invalidate(self, lap_id: int, reason: str) -> None:
        """A marshal's invalidation through the admin API (which commits, then publishes ``lap_updated``)."""
        self._lap_edit(lap_id, "invalidate", reason)

    def delete(self, lap_id: int, reason: str) -> None:
        """A marshal's soft delete through the admin API."""
        self._lap_edit(lap_id, "delete", reason)

    def _lap_edit(self, lap_id: int, action: str, reason: str) -> None:
        import httpx

        response = httpx.post(
            f"{self.url}/api/admin/laps/{lap_id}/{action}",
            json={"reason": reason},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=5,
        )
        assert response.status_code == 200, response.text


def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (for a module-scoped ``browser`` fixture); skips locally / fails
    in CI when either is missing."""
    from tests.conftest import skip_or_fail

    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing (apt-get install -y chromium; scripts/test.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright Python package is missing (pip install -e .[dev])")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def page_without_errors(browser: Any, **context_options: Any) -> Iterator[Any]:
    """A page in a new browser context (for a ``page`` fixture); after the test, no JavaScript error was raised
    on it and no dialog (alert, confirm) opened."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"dialog opened: {dialog.message}"))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors or dialogs on the page: {errors}"


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve(tmp_dir: Path, **overrides: Any) -> Iterator[LiveServer]:
    """Run create_app(settings) under uvicorn until the generator is closed (used by the live_server fixture);
    `overrides`: settings to change (e.g. jobs_enabled)."""
    import uvicorn

    from league_server.broker.embedded import free_port
    from league_server.core.config import Settings
    from league_server.crud import leagues
    from league_server.main import create_app

    league = f"web{uuid.uuid4().hex[:10]}"
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_dir / 'league.db'}",
        admin_token=ADMIN_TOKEN,
        broker_url=None,  # the app starts its embedded broker, as `pitlane league serve` does
        embedded_broker_port=free_port(),
        data_dir=tmp_dir / "data",  # the embedded broker's folder: never the default one in the working dir
        league=league,
        ingest_enabled=True,
        public_rate_limit_per_minute=0,
        public_base_url=PUBLIC_BASE_URL,
    ).model_copy(update=overrides)
    app = create_app(settings)
    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-web-test", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail("uvicorn did not start the league app within 30 s (see the log above)")
        time.sleep(0.05)
    try:
        with app.state.sessionmaker() as session:
            lg = leagues.create_league(session, league, "Web test league")
            session.commit()
            league_id = lg.id
        ingest = getattr(app.state, "ingest", None)
        if ingest is not None:
            ingest.wait_connected(10)
        yield LiveServer(url=f"http://127.0.0.1:{port}", app=app, league=league, league_id=league_id)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def make_race(
    server: LiveServer,
    name: str,
    cars: list[tuple[str, str, str | None]],
    *,
    numbers: list[int | None] | None = None,
    **race_kwargs: Any,
) -> Race:
    """An event with one open race and one car per (car_id, racer name, team name or None), assigned to it,
    with racing numbers from `numbers` (None: none). Car ids and numbers are unique in the whole database
    (one league per server): each test passes its own."""
    from league_server.crud import cars as cars_crud
    from league_server.crud import leagues, races

    with server.sessions() as session:
        event = leagues.create_event(session, server.league_id, f"Event for {name}")
        race = races.create_race(session, event.id, name, min_lap_time_s=1.0, **race_kwargs)
        teams: dict[str, int] = {}
        secrets = {}
        logins = {}
        for index, (car_id, racer_name, team_name) in enumerate(cars):
            team_id = None
            if team_name is not None:
                if team_name not in teams:
                    teams[team_name] = leagues.create_team(session, server.league_id, f"{team_name}").id
                team_id = teams[team_name]
            racer = leagues.create_racer(session, server.league_id, racer_name, team_id=team_id)
            number = numbers[index] if numbers is not None else None
            _, creds = cars_crud.provision_car(
                session, server.league_id, car_id, number=number, racer_id=racer.id, race_id=race.id
            )
            secrets[car_id] = creds.hmac_secret
            logins[car_id] = (creds.mqtt_username, creds.mqtt_password)
        session.commit()
        race_id = race.id
    return Race(race_id=race_id, league_id=server.league_id, secrets=secrets, logins=logins)


def _next_seq(race: Race, car_id: str) -> tuple[str, int]:
    run_id = race.runs.setdefault(car_id, f"run-{uuid.uuid4().hex[:8]}")
    seq = race.seqs.get(car_id, 0)
    race.seqs[car_id] = seq + 1
    return run_id, seq


def add_lap(
    server: LiveServer,
    race: Race,
    car_id: str,
    *,
    lap_time_ms: int,
    offtrack_count: int = 0,
    reset_count: int = 0,
) -> int:
    """Store a lap through crud and announce it on the EventHub after the commit (what the ingest does)."""
    from league_server.crud import cars as cars_crud
    from league_server.crud import laps

    run_id, seq = _next_seq(race, car_id)
    with server.sessions() as session:
        car = cars_crud.require_car(session, car_id)
        lap, _ = laps.insert_lap_idempotent(
            session,
            race_id=race.race_id,
            car_id=car_id,
            run_id=run_id,
            seq=seq,
            lap_number=seq + 1,
            lap_time_ms=lap_time_ms,
            source="sim",
            offtrack_count=offtrack_count,
            reset_count=reset_count,
            racer_id=car.racer_id,
        )
        session.commit()
        lap_id = lap.id
    server.events.publish(
        race.race_id, {"type": "lap", "race_id": race.race_id, "car_id": car_id, "lap_id": lap_id}
    )
    return lap_id


def publish_lap_over_mqtt(server: LiveServer, race: Race, car_id: str, *, lap_time_ms: int) -> None:
    """Publish a signed LapReport to the app's broker as the car would (QoS 1, waits for the PUBACK)."""
    import paho.mqtt.client as mqtt

    run_id, seq = _next_seq(race, car_id)
    report = protocol.LapReport(
        car_id=car_id,
        run_id=run_id,
        seq=seq,
        lap=seq + 1,
        lap_time_ms=lap_time_ms,
        source="sim",
        sent_at=protocol.utc_now_iso(),
    )
    broker = server.app.state.broker
    host, port = broker.host, broker.port
    username, password = race.logins[car_id]
    # The car's own login (the broker `serve` starts takes no anonymous clients and binds client ids to logins).
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=username)
    client.username_pw_set(username, password)
    client.connect(host, port, keepalive=10)
    client.loop_start()
    try:
        # a publish before the broker's CONNACK fails ("the client is not currently connected")
        deadline = time.monotonic() + 10
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)
        info = client.publish(
            protocol.car_topic(server.league, car_id, "laps"),
            report.to_wire(race.secrets[car_id]),
            qos=protocol.LAP_QOS,
        )
        info.wait_for_publish(5)
        assert info.is_published(), f"the broker did not acknowledge {car_id}'s lap"
    finally:
        client.disconnect()
        client.loop_stop()


def set_presence(server: LiveServer, car_id: str, state: str) -> None:
    """Store a car's presence as the ingest does from its retained status topic (no event is published)."""
    from league_server.crud import presence

    with server.sessions() as session:
        presence.set_state(session, car_id, state)
        session.commit()


def invalidate_like_the_cli(server: LiveServer, lap_id: int, reason: str) -> None:
    """A marshal's invalidation as `pitlane league admin invalidate-lap` makes it: crud on a database
    connection of its own, committed, and nothing published on the server's EventHub."""
    from league_server.core.db import make_engine, make_sessionmaker
    from league_server.crud import laps

    engine = make_engine(server.app.state.settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            laps.invalidate_lap(session, lap_id, reason=reason, actor="cli-marshal")
            session.commit()
    finally:
        engine.dispose()
