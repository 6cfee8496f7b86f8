"""The local broker `pitlane league serve` starts without --broker: Mosquitto as a child process when it is
installed, the in-process amqtt fallback otherwise. Both are exercised for real with paho-mqtt 2 clients and
the ingest: QoS 1 laps, retained status, last will (and amqtt's MQTT-3.1.1-only limit)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from contracts import wire as protocol
from league_server.broker.embedded import EmbeddedBroker, free_port, mosquitto_binary
from league_server.ingest import IngestService
from league_server.models import CarPresence, Lap
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


@pytest.fixture(params=["mosquitto", "amqtt"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedBroker]:
    if request.param == "mosquitto" and mosquitto_binary() is None:
        skip_or_fail("mosquitto is not installed (apt-get install mosquitto)")
    if request.param == "amqtt":
        pytest.importorskip("amqtt")
    embedded = EmbeddedBroker("127.0.0.1", free_port(), backend=request.param, data_dir=tmp_path / "b")
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


def v311(broker: EmbeddedBroker) -> bool:
    return broker.backend == "amqtt"


def test_auto_prefers_mosquitto(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        skip_or_fail("mosquitto is not installed (apt-get install mosquitto)")
    with EmbeddedBroker("127.0.0.1", free_port(), data_dir=tmp_path) as embedded:
        assert embedded.backend == "mosquitto" and embedded.mqtt_protocols == ("3.1.1", "5")
        assert Publisher(embedded.port).accepted


def test_qos1_laps_retained_status_and_last_will(
    broker: EmbeddedBroker, migrated_url: str, session_factory: Any
) -> None:
    fleet: Fleet = provision(session_factory, n_cars=1)
    secret = fleet.cars["car-0"].hmac_secret
    status_topic = protocol.car_topic(LEAGUE, "car-0", "status")
    old = v311(broker)
    # A car online before the server: its retained status must reach the server when it subscribes.
    car = Publisher(
        broker.port,
        username="car-0",
        password="x",
        client_id="car-0",
        v311=old,
        will=(status_topic, protocol.offline_status_bytes()),
    )
    car.publish(status_topic, json.dumps({"schema": 1, "state": "online"}).encode(), retain=True)
    service = IngestService(
        ingest_settings(migrated_url, broker.port, mqtt_username="server", mqtt_password="x"),
        session_factory,
        protocol_version="3.1.1" if old else "5",
    ).start()

    def presence() -> str | None:
        with session_factory() as s:
            row = s.get(CarPresence, "car-0")
            return None if row is None else row.state

    def laps() -> int:
        with session_factory() as s:
            return s.scalar(select(func.count()).select_from(Lap)) or 0

    try:
        assert service.wait_connected(10), service.last_connect_error
        wait_until(lambda: presence() == "online", 10, "retained online status")
        for seq in range(20):
            car.publish(protocol.car_topic(LEAGUE, "car-0", "laps"), lap_payload("car-0", secret, seq=seq))
        wait_until(lambda: laps() == 20, 10, "20 QoS 1 laps")
        car.kill()
        wait_until(lambda: presence() == "offline", 15, "the last will")
        # The server is down for a moment: QoS 1 laps wait in its persistent session.
        service.stop()
        car2 = Publisher(broker.port, username="car-0", password="x", client_id="car-0b", v311=old)
        for seq in range(20, 30):
            car2.publish(protocol.car_topic(LEAGUE, "car-0", "laps"), lap_payload("car-0", secret, seq=seq))
        car2.close()
        service.start()
        wait_until(lambda: laps() == 30, 15, "laps queued while the server was down")
        # stop() acknowledged what it had committed: nothing came back as a duplicate
        assert service.stats.snapshot()["duplicates"] == 0
    finally:
        service.stop()


def test_amqtt_refuses_mqtt5() -> None:
    """The documented limit: amqtt speaks MQTT 3.1.1 only (ingest uses protocol_version="3.1.1" with it)."""
    pytest.importorskip("amqtt")
    with EmbeddedBroker("127.0.0.1", free_port(), backend="amqtt") as embedded:
        assert embedded.mqtt_protocols == ("3.1.1",)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="v5", protocol=mqtt.MQTTv5)
        client.username_pw_set("u", "x")
        results: list[Any] = []
        client.on_connect = lambda _c, _u, _f, rc, _p: results.append(rc)
        client.connect("127.0.0.1", embedded.port)
        client.loop_start()
        time.sleep(1.0)
        client.loop_stop()
        assert all(rc.is_failure for rc in results)  # refused or closed without a CONNACK
