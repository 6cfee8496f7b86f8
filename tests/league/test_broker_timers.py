"""`broker-config` with trackside timers, run by the real mosquitto: each timer logs in with the database's
`$7$` hash and may publish only its own crossings topic (not as another timer, not as a car); ingest through
that broker pairs its crossings into a lap."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
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
    T0,
    Fleet,
    Publisher,
    crossing_payload,
    ingest_settings,
    lap_payload,
    provision,
    wait_until,
)


@pytest.fixture
def fleet(session_factory: Any) -> Fleet:
    return provision(session_factory, n_cars=1)


@pytest.fixture
def timers(session_factory: Any, fleet: Fleet) -> dict[str, Any]:
    from league_server.crud import timers as timers_crud

    with session_factory() as s:
        creds = {}
        for timer_id in ("gate-1", "gate-2"):
            _, creds[timer_id] = timers_crud.provision_timer(
                s, fleet.league_id, timer_id, race_id=fleet.race_id
            )
        s.commit()
    return creds


@pytest.fixture
def event_broker(migrated_url: str, timers: dict[str, Any], tmp_path: Path) -> Iterator[tuple[int, Any]]:
    if mosquitto_binary() is None:
        skip_or_fail("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    generated = generate_from_db(migrated_url, tmp_path / "mosquitto", port=port, bind="127.0.0.1")
    broker = MosquittoProcess(generated.files.conf, "127.0.0.1", port)
    broker.start()
    try:
        yield port, generated
    finally:
        broker.stop()


def test_timer_logins_and_acl(event_broker: tuple[int, Any], fleet: Fleet, timers: dict[str, Any]) -> None:
    port, generated = event_broker
    assert (generated.cars, generated.timers) == (1, 2)
    users = [line.split(":", 1)[0] for line in generated.files.passwords.read_text().splitlines()]
    assert users == [generated.server_username, "car-0", "timer-gate-1", "timer-gate-2"]
    assert all(c.mqtt_password not in generated.files.passwords.read_text() for c in timers.values())
    g1, g2 = timers["gate-1"], timers["gate-2"]
    wrong = Publisher(port, username=g1.mqtt_username, password=g2.mqtt_password)
    assert not wrong.accepted
    wrong.close()

    got: list[str] = []
    server = Publisher(port, username=generated.server_username, password=generated.server_password)
    server.client.on_message = lambda _c, _u, m: got.append(m.topic)
    server.client.subscribe(f"pitlane/{LEAGUE}/#", qos=1)
    time.sleep(0.3)  # the SUBACK
    gate = Publisher(port, username=g1.mqtt_username, password=g1.mqtt_password)
    assert gate.accepted
    forged = crossing_payload("gate-2", g2.hmac_secret, seq=0, at=T0)  # even with gate 2's secret
    gate.publish(protocol.timer_topic(LEAGUE, "gate-2"), forged)
    car = fleet.cars["car-0"]
    gate.publish(protocol.car_topic(LEAGUE, "car-0", "laps"), lap_payload("car-0", car.hmac_secret))
    gate.publish(protocol.car_topic(LEAGUE, "car-0", "status"), b'{"schema":1,"state":"online"}')
    gate.publish(
        protocol.timer_topic(LEAGUE, "gate-1"), crossing_payload("gate-1", g1.hmac_secret, seq=0, at=T0)
    )
    wait_until(lambda: got, 5, "gate 1's own crossing at the server")
    time.sleep(0.3)
    assert got == [protocol.timer_topic(LEAGUE, "gate-1")]
    # and a car cannot publish as a timer
    car_pub = Publisher(port, username=car.mqtt_username, password=car.mqtt_password)
    car_pub.publish(
        protocol.timer_topic(LEAGUE, "gate-1"), crossing_payload("gate-1", g1.hmac_secret, seq=1, at=T0)
    )
    time.sleep(0.5)
    assert got == [protocol.timer_topic(LEAGUE, "gate-1")]
    for client in (car_pub, gate, server):
        client.close()


def test_ingest_pairs_crossings_through_the_acld_broker(
    event_broker: tuple[int, Any], timers: dict[str, Any], migrated_url: str, session_factory: Any
) -> None:
    port, generated = event_broker
    settings = ingest_settings(
        migrated_url, port, mqtt_username=generated.server_username, mqtt_password=generated.server_password
    )
    service = IngestService(settings, session_factory).start()
    try:
        assert service.wait_connected(10), service.last_connect_error
        g1 = timers["gate-1"]
        gate = Publisher(port, username=g1.mqtt_username, password=g1.mqtt_password)
        for seq, at in ((0, T0), (1, T0 + timedelta(seconds=8.5))):
            gate.publish(
                protocol.timer_topic(LEAGUE, "gate-1"),
                crossing_payload("gate-1", g1.hmac_secret, seq=seq, at=at),
            )
        wait_until(lambda: service.stats.snapshot()["stored"] == 1, 10, "the timer lap")
        assert service.stats.snapshot()["crossings"] == 2
        gate.close()
    finally:
        service.stop()


def test_bad_timer_entries_are_named() -> None:
    with pytest.raises(ConfigError, match="timer_id"):
        render_acl([], "srv", [BrokerUser("timer-x", "$7$1$a$b", league=LEAGUE)])
    acl = render_acl([], "srv", [BrokerUser("timer-x", "$7$1$a$b", timer_id="x", league=LEAGUE)])
    assert f"user timer-x\ntopic write pitlane/{LEAGUE}/timers/x/crossings\n" in acl
    assert json.dumps(acl).count("topic") == 3  # server read + command write, one for the timer
