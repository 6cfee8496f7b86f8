"""Helpers for the INGEST tests (test_ingest_*, test_broker_*): a league with cars in a migrated database,
a real Mosquitto on a free port, paho publishers and bounded waits."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from contracts import wire as protocol

LEAGUE = "testleague"


@dataclass
class Fleet:
    league_id: int
    race_id: int
    cars: dict[str, Any]  # car_id -> CarCredentials


def provision(session_factory: Any, n_cars: int = 2, *, league: str = LEAGUE, **race_kwargs: Any) -> Fleet:
    """A league, an event, an open race (min lap 1 s unless given) and `n_cars` cars assigned to it."""
    from league_server.crud import cars, leagues, races

    with session_factory() as session:
        lg = leagues.create_league(session, league, "Test league")
        event = leagues.create_event(session, lg.id, "Test event")
        race = races.create_race(session, event.id, "Time trial", **race_kwargs)
        creds = {}
        for i in range(n_cars):
            racer = leagues.create_racer(session, lg.id, f"Racer {i}")
            _, cred = cars.provision_car(session, lg.id, f"car-{i}", racer_id=racer.id, race_id=race.id)
            creds[cred.car_id] = cred
        session.commit()
        return Fleet(lg.id, race.id, creds)


def lap_payload(
    car_id: str, secret: str | None, *, run_id: str = "run-1", seq: int = 0, **fields: Any
) -> bytes:
    """A signed (secret given) or unsigned lap report as wire bytes."""
    report = {
        "schema": 1,
        "car_id": car_id,
        "run_id": run_id,
        "seq": seq,
        "lap": seq + 1,
        "lap_time_ms": 12_345,
        "offtrack_count": 0,
        "reset_count": 0,
        "source": "car",
        "sent_at": protocol.utc_now_iso(),
        **fields,
    }
    if secret is not None:
        report = protocol.signed(report, secret)
    import json

    return json.dumps(report).encode("utf-8")


def wait_until(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    """Poll `predicate` until truthy (returned) or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


class Publisher:
    """A connected paho client (MQTT 5 unless `v311`); `publish` waits for the PUBACK."""

    def __init__(
        self,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        will: tuple[str, bytes] | None = None,
        v311: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311 if v311 else mqtt.MQTTv5,
        )
        if username:
            self.client.username_pw_set(username, password)
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.connack: list[Any] = []
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self.connack.append(rc)
        self.client.connect(host, port, keepalive=5)
        self.client.loop_start()
        wait_until(lambda: self.connack, 5, "CONNACK")

    @property
    def accepted(self) -> bool:
        return not self.connack[-1].is_failure

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT (the broker then sends the last will)."""
        sock = self.client.socket()
        self.client.loop_stop()
        if sock is not None:
            sock.close()


def ingest_settings(db_url: str, port: int, **extra: Any) -> Any:
    from league_server.core.config import Settings

    return Settings(_env_file=None, database_url=db_url, broker_url=f"mqtt://127.0.0.1:{port}", **extra)


T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def crossing_payload(
    timer_id: str,
    secret: str | None,
    *,
    seq: int,
    at: datetime,
    car_id: str | None = "car-0",
    run_id: str = "run-1",
    **fields: Any,
) -> bytes:
    """A signed (secret given) or unsigned crossing as wire bytes."""
    crossing = {
        "schema": 1,
        "timer_id": timer_id,
        "run_id": run_id,
        "seq": seq,
        "car_id": car_id,
        "crossed_at": iso(at),
        **fields,
    }
    if secret is not None:
        crossing = protocol.signed(crossing, secret)
    return json.dumps(crossing).encode("utf-8")


def add_lap(session: Any, race_id: int, car_id: str, seq: int, lap_time_ms: int) -> None:
    """Insert one "sim" lap of run "r" directly (no broker) and commit."""
    from league_server.crud import laps

    laps.insert_laps_idempotent(
        session,
        [
            {
                "race_id": race_id,
                "car_id": car_id,
                "run_id": "r",
                "seq": seq,
                "lap_number": seq + 1,
                "lap_time_ms": lap_time_ms,
                "source": "sim",
            }
        ],
    )
    session.commit()


class LapStream:
    """A car publishing signed laps (QoS 1) from a thread, about 500 a second, up to `n`; `acked()` gives the
    seqs the broker acknowledged with a success code. It stops at `stop()` or when its connection is gone (a
    real car's outbox would then replay the unacknowledged ones; those are not counted)."""

    def __init__(self, port: int, creds: Any, league: str, n: int, *, client_id: str | None = None) -> None:
        import threading

        self.creds, self.league, self.n = creds, league, n
        self.run_id = f"run-{uuid.uuid4().hex[:8]}"
        self.sent: dict[int, int] = {}  # mid -> seq
        self.done: dict[int, bool] = {}  # mid -> acknowledged with success
        self._stop = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or creds.car_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(creds.mqtt_username, creds.mqtt_password)
        # paho's callback thread only records; no lock is shared with publish() (it could deadlock)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.done.__setitem__(mid, not rc.is_failure)
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        topic = protocol.car_topic(self.league, self.creds.car_id, "laps")
        wait_until(self.client.is_connected, 5, f"{self.creds.car_id} to connect")
        for seq in range(self.n):
            if self._stop.is_set() or not self.client.is_connected():
                return
            payload = lap_payload(self.creds.car_id, self.creds.hmac_secret, run_id=self.run_id, seq=seq)
            self.sent[self.client.publish(topic, payload, qos=1).mid] = seq
            time.sleep(0.002)

    def acked(self) -> set[int]:
        return {seq for mid, seq in list(self.sent.items()) if self.done.get(mid)}

    def start(self) -> LapStream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)
        self.client.loop_stop()
        self.client.disconnect()
