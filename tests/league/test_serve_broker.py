"""`pitlane league serve` with its embedded broker, as the README runs it, on SQLite and PostgreSQL: one server
ingests every league; no car can take the server's MQTT session; a kill -9 of the server loses no lap a car
had acknowledged and leaves no process behind; logins follow the registry."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from league_server.broker.embedded import mosquitto_binary
from league_server.ingest.service import CLIENT_ID
from league_server.serve_process import ServeProcess, alive
from tests.conftest import skip_or_fail
from tests.league.ingest_support import LEAGUE, LapStream, Publisher, lap_payload, provision, wait_until

pytestmark = pytest.mark.usefixtures("needs_mosquitto")


@pytest.fixture
def needs_mosquitto() -> None:
    if mosquitto_binary() is None:
        skip_or_fail("mosquitto is not installed (apt-get install mosquitto)")


@pytest.fixture
def served(migrated_url: str, tmp_path: Path) -> Any:
    server = ServeProcess(migrated_url, tmp_path / "data", tmp_path / "serve.log", "served-admin-token")
    yield server
    server.stop()


def stored_seqs(session_factory: Any, car_id: str, run_id: str) -> list[int]:
    from sqlalchemy import select

    from league_server.models import Lap

    with session_factory() as session:
        return list(session.scalars(select(Lap.seq).where(Lap.car_id == car_id, Lap.run_id == run_id)))


def test_no_car_or_stranger_can_take_the_servers_session(served: Any, session_factory: Any) -> None:
    fleet = provision(session_factory, n_cars=2)
    victim, intruder = fleet.cars["car-0"], fleet.cars["car-1"]
    served.start()
    stream = LapStream(served.mqtt_port, victim, LEAGUE, 180).start()
    takeovers = []
    for _ in range(6):  # a car's own login with the server's client id, over and over (9 s in the report)
        attempt = Publisher(
            served.mqtt_port, username=intruder.mqtt_username, password=intruder.mqtt_password,
            client_id=CLIENT_ID,
        )  # fmt: skip
        takeovers.append(attempt.accepted)
        assert served.health()["ingest_connected"], "the server's session was taken over"
        attempt.close()
        time.sleep(0.05)
    stranger = Publisher(served.mqtt_port, client_id=CLIENT_ID)  # no login at all
    assert not stranger.accepted
    stranger.close()
    stream.thread.join(30)
    stream.stop()
    acked = stream.acked()
    assert len(acked) == 180
    wait_until(
        lambda: len(stored_seqs(session_factory, "car-0", stream.run_id)) == 180, 20, "180 stored laps"
    )
    assert sorted(stored_seqs(session_factory, "car-0", stream.run_id)) == sorted(acked)
    assert all(takeovers)  # the car logged in (its own session), and the server never noticed
    log = Path(served.log_path).read_text(encoding="utf-8")
    assert "ingest disconnected" not in log


def test_one_server_ingests_every_league_and_leagues_created_later(served: Any, session_factory: Any) -> None:
    first = provision(session_factory, n_cars=1, league="first")
    served.start()
    second = provision(session_factory, n_cars=0, league="second")  # created while the server runs
    from league_server.crud import cars

    with session_factory() as session:
        _, late = cars.provision_car(session, second.league_id, "late-car", race_id=second.race_id)
        session.commit()
    for league, creds in (("first", first.cars["car-0"]), ("second", late)):
        # the broker's logins follow the registry: a car provisioned a moment ago can log in within seconds
        car = wait_until(lambda c=creds: _logged_in(served.mqtt_port, c), 10, f"{creds.car_id} to be let in")
        car.publish(
            f"pitlane/{league}/cars/{creds.car_id}/laps", lap_payload(creds.car_id, creds.hmac_secret)
        )
        car.close()
        wait_until(
            lambda c=creds: stored_seqs(session_factory, c.car_id, "run-1") == [0], 10, f"{league}'s lap"
        )


def test_rotated_credentials_stop_working(served: Any, session_factory: Any) -> None:
    from league_server.crud import cars

    fleet = provision(session_factory, n_cars=1)
    old = fleet.cars["car-0"]
    served.start()
    assert _logged_in(served.mqtt_port, old)
    with session_factory() as session:
        new = cars.rotate_credentials(session, "car-0", actor="test")
        session.commit()
    wait_until(lambda: _login_refused(served.mqtt_port, old), 10, "the old password to be refused")
    assert _logged_in(served.mqtt_port, new)


def test_kill_9_of_the_server_loses_no_acknowledged_lap_and_leaves_no_process(
    served: Any, session_factory: Any
) -> None:
    fleet = provision(session_factory, n_cars=4)
    served.start()
    streams = [LapStream(served.mqtt_port, creds, LEAGUE, 600).start() for creds in fleet.cars.values()]
    wait_until(lambda: sum(len(s.acked()) for s in streams) >= 400, 20, "400 acknowledged laps")
    children = served.kill9()  # mid-stream: laps are in flight, queued, half-committed
    assert len(children) >= 2, children  # at least the broker and the ranker
    wait_until(lambda: not any(alive(pid) for pid in children), 10, "the server's children to end")
    for stream in streams:
        stream.stop()
    acked = {s.creds.car_id: (s.run_id, s.acked()) for s in streams}
    total = sum(len(seqs) for _, seqs in acked.values())
    assert total >= 400
    served.start()  # the same data directory: the broker's queue and the server's session come back

    def all_stored() -> bool:
        return all(set(stored_seqs(session_factory, car, run)) >= seqs for car, (run, seqs) in acked.items())

    wait_until(all_stored, 30, f"all {total} acknowledged laps stored after the restart")
    for car, (run, _) in acked.items():
        seqs = stored_seqs(session_factory, car, run)
        assert len(seqs) == len(set(seqs))  # and none twice


def _logged_in(port: int, creds: Any) -> Any:
    client = Publisher(port, username=creds.mqtt_username, password=creds.mqtt_password)
    if client.accepted:
        return client
    client.close()
    return None


def _login_refused(port: int, creds: Any) -> bool:
    client = Publisher(port, username=creds.mqtt_username, password=creds.mqtt_password)
    refused = not client.accepted
    client.close()
    return refused


def test_an_oversized_report_disconnects_its_sender_and_stores_nothing(
    served: Any, session_factory: Any
) -> None:
    fleet = provision(session_factory, n_cars=1)
    creds = fleet.cars["car-0"]
    served.start()
    car = _logged_in(served.mqtt_port, creds)
    dropped = threading.Event()
    car.client.on_disconnect = lambda *_: dropped.set()
    padded = lap_payload("car-0", creds.hmac_secret, padding="x" * 1_000_000)
    info = car.client.publish(f"pitlane/{LEAGUE}/cars/car-0/laps", padded, qos=1)
    assert dropped.wait(15), "the broker kept a client that sent a 1 MB packet"
    car.client.loop_stop()  # paho would reconnect and send it again, and be dropped again
    assert not info.is_published()
    assert served.health()["ingest_connected"]
    assert served.admin_get("/api/admin/ingest")["received"] == 0


def test_serve_with_its_http_port_taken_fails_before_printing_a_token(
    migrated_url: str, tmp_path: Path
) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "PITLANE_ADMIN_TOKEN"}
        cmd = [sys.executable, "-m", "pitlane", "league", "serve", "--db", migrated_url, "--port", str(port),
               "--data-dir", str(tmp_path / "data")]  # fmt: skip
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"HTTP port 127.0.0.1:{port} is in use" in result.stderr
    assert "admin token" not in result.stdout + result.stderr  # a token printed for a server that never ran


def test_an_event_server_shows_its_public_address_and_takes_cars_from_the_network(
    migrated_url: str, session_factory: Any, tmp_path: Path
) -> None:
    import socket
    import urllib.request

    fleet = provision(session_factory, n_cars=1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # no packet is sent: routing only
        probe.connect(("192.0.2.1", 9))
        lan_ip = probe.getsockname()[0]
    public = "http://league.example.test:8000"
    args = ("--public-url", public, "--broker-host", "0.0.0.0")
    server = ServeProcess(migrated_url, tmp_path / "data", tmp_path / "serve.log", "t0ken", args).start()
    try:
        with urllib.request.urlopen(f"{server.base}/races/{fleet.race_id}/bigscreen", timeout=5) as page:
            assert f"{public}/races/{fleet.race_id}" in page.read().decode()
        creds = fleet.cars["car-0"]
        car = Publisher(
            server.mqtt_port, username=creds.mqtt_username, password=creds.mqtt_password, host=lan_ip
        )
        assert car.accepted, f"a car on the network ({lan_ip}) could not log in"
        car.close()
    finally:
        server.stop()
