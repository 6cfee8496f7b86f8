"""`pitlane league ...`: migrate, provision-demo, admin commands over the crud code, and serve (a real uvicorn
process with the embedded broker: a signed lap published over MQTT shows up in the JSON leaderboard)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pitlane.cli import app
from tests.conftest import REPO_ROOT

runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, ["league", *args], catch_exceptions=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_migrate_on_both_databases(db_url: str) -> None:
    result = run("migrate", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert "schema at revision 0005" in result.output


def test_provision_demo_prints_working_credentials(sqlite_url: str, tmp_path: Path) -> None:
    result = run("provision-demo", "--db", sqlite_url, "--json", "--base-url", "http://league.local:8000")
    assert result.exit_code == 0, result.output
    demo = json.loads(result.output)
    assert demo["leaderboard_url"] == f"http://league.local:8000/api/races/{demo['race_id']}/leaderboard"
    assert demo["league"] == "demo" and demo["lap_topic"] == "pitlane/demo/cars/demo-car/laps"
    assert_the_car_takes_it(result.output, tmp_path)
    from league_server.core.db import make_engine, make_sessionmaker
    from league_server.core.security import verify_mqtt_password
    from league_server.crud import cars, races

    engine = make_engine(sqlite_url)
    with make_sessionmaker(engine)() as session:
        car = cars.require_car(session, demo["car_id"])
        assert verify_mqtt_password(demo["mqtt_password"], car.password_hash)
        assert car.hmac_secret == demo["hmac_secret"] and car.race_id == demo["race_id"]
        race = races.get_race(session, demo["race_id"])
        assert (race.format, race.ranking, race.status) == ("time_trial", "best_lap", "open")
    # a second demo on the same database: a new race, the car re-assigned with fresh credentials
    again = json.loads(run("provision-demo", "--db", sqlite_url, "--json").output)
    assert again["race_id"] != demo["race_id"] and again["mqtt_password"] != demo["mqtt_password"]
    with make_sessionmaker(engine)() as session:
        car = cars.require_car(session, demo["car_id"])
        assert car.race_id == again["race_id"] and verify_mqtt_password(
            again["mqtt_password"], car.password_hash
        )
    engine.dispose()


def assert_the_car_takes_it(printed_json: str, tmp_path: Path) -> None:
    """`--json > car.json` is the file `pitlane drive --credentials car.json` reads, as printed."""
    from device.config import load_runtime_config
    from device.drive import league_setup

    saved = tmp_path / "car.json"
    saved.write_text(printed_json, encoding="utf-8")
    printed = json.loads(printed_json)
    car_file = Path(__file__).resolve().parents[2] / "firmware_configs" / "deepracer.toml"
    setup = league_setup(
        load_runtime_config(car_file), broker_url="mqtt://127.0.0.1:1883", credentials_file=saved,
        outbox_path=tmp_path / "outbox.sqlite",
    )  # fmt: skip
    assert (setup.league.league, setup.league.car_id) == (printed["league"], printed["car_id"])
    assert setup.credentials.hmac_secret == printed["hmac_secret"]


def test_admin_commands_share_the_crud_code(sqlite_url: str, tmp_path: Path) -> None:
    db = ("--db", sqlite_url)
    assert run("admin", "create-league", "acme", "ACME", *db).exit_code == 0
    assert "event 'Fri' (id 1)" in run("admin", "create-event", "Fri", "--league", "acme", *db).output
    created = run(
        "admin", "create-race", "TT", "--event", "1", "--ranking", "total_time", "--ranked-laps", "2", *db
    )
    assert "race 'TT' (id 1, total_time)" in created.output
    assert "racer 'Ada' (id 1)" in run("admin", "create-racer", "Ada", "--league", "acme", *db).output
    car = run("admin", "add-car", "c1", "--league", "acme", "--race", "1", "--racer", "1", "--json", *db)
    creds = json.loads(car.output)
    assert creds["lap_topic"] == "pitlane/acme/cars/c1/laps" and len(creds["hmac_secret"]) == 64
    assert_the_car_takes_it(car.output, tmp_path)
    for ms in ("9000", "9500"):
        assert (
            run(
                "admin", "add-lap", "--race", "1", "--car", "c1", "--time-ms", ms, "--reason", "t", *db
            ).exit_code
            == 0
        )
    board = json.loads(run("admin", "leaderboard", "1", "--json", *db).output)
    assert board["entries"][0]["ranking_value_s"] == 18.5 and board["entries"][0]["racer"] == "Ada"
    assert "invalid" in run("admin", "invalidate-lap", "2", "--reason", "cut", *db).output
    board = json.loads(run("admin", "leaderboard", "1", "--json", *db).output)
    assert board["entries"][0]["position"] is None  # total_time needs both laps valid
    assert "valid" in run("admin", "restore-lap", "2", "--reason", "ok", *db).output
    assert json.loads(run("admin", "list-races", "--json", *db).output)[0]["ranking"] == "total_time"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("admin", "create-race", "X", "--event", "1", "--ranking", "most_laps_in"), "time_window_s"),
        (("admin", "add-car", "c1", "--league", "nope"), "league 'nope' does not exist"),
        (("admin", "invalidate-lap", "42", "--reason", "x"), "lap 42 does not exist"),
        (("admin", "assign-car", "c1"), "pass --race ID"),
    ],
)
def test_admin_errors_are_one_line(sqlite_url: str, args: tuple[str, ...], message: str) -> None:
    run("admin", "create-league", "l", "L", "--db", sqlite_url)
    run("admin", "create-event", "E", "--league", "l", "--db", sqlite_url)
    result = runner.invoke(app, ["league", *args, "--db", sqlite_url])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_bad_database_url_is_named() -> None:
    result = runner.invoke(app, ["league", "migrate", "--db", "mysql://x/y"])
    assert result.exit_code == 2 and "database_url" in result.output


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


def _wait(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} ({last})")


def test_serve_with_the_embedded_broker_ingests_a_signed_lap(tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt

    from contracts.wire import LapReport, car_topic, utc_now_iso

    db = f"sqlite:///{tmp_path / 'league.db'}"
    http_port, mqtt_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    demo = json.loads(run("provision-demo", "--db", db, "--json", "--base-url", base).output)
    env = {**os.environ, "PITLANE_ADMIN_TOKEN": "t0ken"}
    cmd = [sys.executable, "-c", "from pitlane.cli import main; main()", "league", "serve", "--db", db,
           "--port", str(http_port), "--broker-port", str(mqtt_port), "--data-dir", str(tmp_path / "data")]  # fmt: skip
    server = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4()}", protocol=mqtt.MQTTv5
    )
    try:
        health = _wait(lambda: _get_json(f"{base}/api/health"), 20, "the server")
        assert health["broker_url"] == f"mqtt://127.0.0.1:{mqtt_port}"
        _wait(lambda: _get_json(f"{base}/api/health")["ingest_connected"], 10, "ingest to connect")
        client.username_pw_set(demo["mqtt_username"], demo["mqtt_password"])
        client.connect("127.0.0.1", mqtt_port)
        client.loop_start()
        report = LapReport(
            car_id=demo["car_id"], run_id=str(uuid.uuid4()), seq=0, lap=1, lap_time_ms=9_412,
            offtrack_count=1, source="sim", sent_at=utc_now_iso(),
        )  # fmt: skip
        topic = car_topic(demo["league"], demo["car_id"], "laps")
        client.publish(topic, report.to_wire(demo["hmac_secret"]), qos=1).wait_for_publish(5)
        entries = _wait(
            lambda: [e for e in _get_json(demo["leaderboard_url"])["entries"] if e["laps"]],
            10,
            "the lap on the leaderboard",
        )
        assert (
            entries[0]["car_id"] == demo["car_id"] and entries[0]["ranking_value_s"] == 11.412
        )  # +2 s off-track
        request = urllib.request.Request(f"{base}/api/admin/cars", headers={"Authorization": "Bearer t0ken"})
        with urllib.request.urlopen(request, timeout=2) as response:
            assert json.loads(response.read())[0]["car_id"] == demo["car_id"]
    finally:
        client.loop_stop()
        client.disconnect()
        server.send_signal(signal.SIGINT)
        try:
            output = server.communicate(timeout=15)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            server.kill()
            output = server.communicate()[0].decode(errors="replace")
    assert server.returncode == 0, output
    assert "admin token (this run only" not in output  # PITLANE_ADMIN_TOKEN was used, none generated
    with socket.socket() as sock:  # the embedded broker stopped with the server
        assert sock.connect_ex(("127.0.0.1", mqtt_port)) != 0


def test_serve_refuses_a_taken_broker_port(sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["league", "serve", "--db", sqlite_url, "--broker-port", str(port)])
    assert result.exit_code == 2
    assert f"--broker mqtt://127.0.0.1:{port}" in " ".join(result.output.split())


def test_a_race_names_its_track(sqlite_url: str) -> None:
    from league_server.core.db import make_engine, make_sessionmaker
    from league_server.crud import races
    from league_server.schemas import RaceOut

    db = ("--db", sqlite_url)
    run("admin", "create-league", "acme", "ACME", *db)
    run("admin", "create-event", "Fri", "--league", "acme", *db)
    created = run("admin", "create-race", "Sim round", "--event", "1", "--track", "reInvent2019_track", *db)
    assert "on reInvent2019_track" in created.output, created.output
    run("admin", "create-race", "Same track", "--event", "1", "--track", "reInvent2019_track", *db)
    engine = make_engine(sqlite_url)
    with make_sessionmaker(engine)() as session:
        first, second = races.get_race(session, 1), races.get_race(session, 2)
        assert RaceOut.model_validate(first).track == "reInvent2019_track"
        assert first.track_id == second.track_id  # one track, named once
    engine.dispose()
