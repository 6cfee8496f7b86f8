"""`broker-config` output run by the real /usr/sbin/mosquitto: per-car logins from the database's `$7$`
hashes, the ACL (a car cannot publish as another car), no anonymous logins; and ingest through it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import wire as protocol
from league_server.broker.embedded import MosquittoProcess, free_port, mosquitto_binary
from league_server.broker.mosquitto import BrokerUser, generate_from_db, render_acl
from league_server.errors import ConfigError
from league_server.ingest import IngestService
from tests.conftest import skip_or_fail
from tests.league.ingest_support import (
    LEAGUE,
    Fleet,
    Publisher,
    ingest_settings,
    lap_payload,
    provision,
    wait_until,
)


@pytest.fixture
def fleet(session_factory: Any) -> Fleet:
    return provision(session_factory, n_cars=2)


@pytest.fixture
def event_broker(migrated_url: str, fleet: Fleet, tmp_path: Path) -> Iterator[tuple[int, Any]]:
    """Mosquitto on a free port with the generated config; (port, GeneratedConfig)."""
    if mosquitto_binary() is None:
        skip_or_fail("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    out = tmp_path / "mosquitto"
    generated = generate_from_db(migrated_url, out, port=port, bind="127.0.0.1")
    broker = MosquittoProcess(generated.files.conf, "127.0.0.1", port)
    broker.start()
    try:
        yield port, generated
    finally:
        broker.stop()


class Collector:
    """The server's login subscribed to the whole league; records (topic, payload)."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.pub = Publisher(port, username=username, password=password)
        assert self.pub.accepted
        self.pub.client.on_message = lambda _c, _u, m: self.got.append((m.topic, bytes(m.payload)))
        self.pub.client.subscribe(f"pitlane/{LEAGUE}/#", qos=1)


def test_files_come_from_the_registry(event_broker: tuple[int, Any], fleet: Fleet) -> None:
    _, generated = event_broker
    files = generated.files
    assert generated.cars == 2
    lines = files.passwords.read_text().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [generated.server_username, "car-0", "car-1"]
    assert all(line.split(":", 1)[1].startswith("$7$101$") for line in lines)
    assert all(cred.mqtt_password not in files.passwords.read_text() for cred in fleet.cars.values())
    assert files.passwords.stat().st_mode & 0o777 == 0o600
    conf = files.conf.read_text()
    assert "allow_anonymous false" in conf and "persistence true" in conf
    assert f"persistence_location {files.conf.parent.resolve()}/" in conf
    env = generated.server_env.read_text()
    assert f"PITLANE_MQTT_PASSWORD={generated.server_password}" in env


def test_car_logins_wrong_password_and_anonymous(event_broker: tuple[int, Any], fleet: Fleet) -> None:
    port, _ = event_broker
    cred = fleet.cars["car-0"]
    good = Publisher(port, username=cred.mqtt_username, password=cred.mqtt_password)
    assert good.accepted
    good.close()
    wrong = Publisher(port, username=cred.mqtt_username, password=cred.mqtt_password + "x")
    assert not wrong.accepted and "authori" in str(wrong.connack[-1]).lower()
    wrong.close()
    anonymous = Publisher(port)
    assert not anonymous.accepted
    anonymous.close()
    other = fleet.cars["car-1"]
    swapped = Publisher(port, username=other.mqtt_username, password=cred.mqtt_password)
    assert not swapped.accepted  # car 1's name with car 0's password
    swapped.close()


def test_a_car_cannot_publish_as_another_car(event_broker: tuple[int, Any], fleet: Fleet) -> None:
    port, generated = event_broker
    server = Collector(port, generated.server_username, generated.server_password)
    a, b = fleet.cars["car-0"], fleet.cars["car-1"]
    car_a = Publisher(port, username=a.mqtt_username, password=a.mqtt_password)
    forged = lap_payload("car-1", b.hmac_secret, seq=0)  # even with car 1's secret: the ACL stops it
    for channel in ("laps", "status", "telemetry"):
        car_a.publish(protocol.car_topic(LEAGUE, "car-1", channel), forged)
    car_a.publish(f"pitlane/{LEAGUE}/timers/gate/crossings", b"{}")
    car_a.publish(protocol.car_topic(LEAGUE, "car-0", "command"), b"{}")  # a car cannot command itself
    own = lap_payload("car-0", a.hmac_secret, seq=1)
    car_a.publish(protocol.car_topic(LEAGUE, "car-0", "laps"), own)  # the only one allowed
    wait_until(lambda: server.got, 5, "car 0's own lap at the server")
    car_a.publish(protocol.car_topic(LEAGUE, "car-0", "status"), b'{"schema":1,"state":"online"}')
    wait_until(lambda: len(server.got) >= 2, 5, "car 0's status")
    assert [t for t, _ in server.got] == [
        protocol.car_topic(LEAGUE, "car-0", "laps"),
        protocol.car_topic(LEAGUE, "car-0", "status"),
    ]
    # reading: car 0 gets its own commands, never car 1's
    got_a: list[str] = []
    car_a.client.on_message = lambda _c, _u, m: got_a.append(m.topic)
    car_a.client.subscribe(f"pitlane/{LEAGUE}/cars/+/command", qos=1)
    time.sleep(0.3)  # the SUBACK
    command = json.dumps({"schema": 1, "command": "estop"}).encode()
    server.pub.publish(protocol.car_topic(LEAGUE, "car-1", "command"), command)
    server.pub.publish(protocol.car_topic(LEAGUE, "car-0", "command"), command)
    wait_until(lambda: got_a, 5, "car 0's own command")
    time.sleep(0.3)
    assert got_a == [protocol.car_topic(LEAGUE, "car-0", "command")]
    car_a.close()
    server.pub.close()


def test_ingest_logs_in_with_the_server_user(
    event_broker: tuple[int, Any], fleet: Fleet, migrated_url: str, session_factory: Any
) -> None:
    port, generated = event_broker
    settings = ingest_settings(
        migrated_url, port, mqtt_username=generated.server_username, mqtt_password=generated.server_password
    )
    service = IngestService(settings, session_factory).start()
    try:
        assert service.wait_connected(10), service.last_connect_error
        a = fleet.cars["car-0"]
        car = Publisher(port, username=a.mqtt_username, password=a.mqtt_password)
        car.publish(protocol.car_topic(LEAGUE, "car-0", "laps"), lap_payload("car-0", a.hmac_secret, seq=0))
        wait_until(lambda: service.stats.snapshot()["stored"] == 1, 10, "the lap through the ACL'd broker")
        car.close()
    finally:
        service.stop()
    bad = ingest_settings(migrated_url, port, mqtt_username=generated.server_username, mqtt_password="wrong")
    refused = IngestService(bad, session_factory, client_id="refused").start()
    try:
        wait_until(lambda: refused.last_connect_error, 10, "the refused login")
        assert not refused.connected.is_set()
    finally:
        refused.stop()


def test_bad_registry_entries_are_named() -> None:
    with pytest.raises(ConfigError, match="password hash"):
        render_acl([BrokerUser("car-x", "plaintext", "car-x", league=LEAGUE)], "srv")
    with pytest.raises(ConfigError, match="league"):
        render_acl([BrokerUser("car-x", "$7$1$a$b", "car-x", league="bad/league")], "srv")
