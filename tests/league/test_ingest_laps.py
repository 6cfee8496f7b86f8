"""Ingest against a real Mosquitto and real databases (SQLite, PostgreSQL): laps stored once, everything
refused dead-lettered with its reason, presence from retained status and the last will."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts import wire as protocol
from league_server.ingest import IngestService
from league_server.models import CarPresence, DeadLetter, Lap
from tests.league.ingest_support import (
    LEAGUE,
    Fleet,
    Publisher,
    ingest_settings,
    lap_payload,
    provision,
    wait_until,
)


class RecordingHub:
    """Stands in for WEB's EventHub interface only to record what ingest publishes (the hub itself is
    tested by WEB); thread-safe list append."""

    def __init__(self) -> None:
        self.events: list[tuple[int, dict[str, Any]]] = []

    def publish(self, race_id: int, event: dict[str, Any]) -> None:
        self.events.append((race_id, event))


@pytest.fixture
def fleet(session_factory: Any) -> Fleet:
    return provision(session_factory, n_cars=2, min_lap_time_s=5.0)


@pytest.fixture
def hub() -> RecordingHub:
    return RecordingHub()


@pytest.fixture
def ingest(
    migrated_url: str, session_factory: Any, local_broker: Any, fleet: Fleet, hub: RecordingHub
) -> Iterator[IngestService]:
    service = IngestService(ingest_settings(migrated_url, local_broker.port), session_factory, hub)
    service.start()
    assert service.wait_connected(10), service.last_connect_error
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def car0(local_broker: Any) -> Iterator[Publisher]:
    pub = Publisher(local_broker.port)
    try:
        yield pub
    finally:
        pub.close()


def laps_topic(car_id: str) -> str:
    return protocol.car_topic(LEAGUE, car_id, "laps")


def count(session_factory: Any, model: Any) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def dead_reasons(session_factory: Any) -> list[str]:
    with session_factory() as s:
        return [r.split(":", 1)[0] for r in s.scalars(select(DeadLetter.reason).order_by(DeadLetter.id))]


def test_signed_laps_are_stored_once_and_duplicates_are_counted(
    ingest: IngestService, car0: Publisher, fleet: Fleet, session_factory: Any, hub: RecordingHub
) -> None:
    secret = fleet.cars["car-0"].hmac_secret
    payloads = [lap_payload("car-0", secret, seq=i) for i in range(5)]
    for p in payloads:
        car0.publish(laps_topic("car-0"), p)
    for p in payloads[:3]:  # redelivered / replayed unchanged
        car0.publish(laps_topic("car-0"), p)
    wait_until(lambda: ingest.stats.snapshot()["duplicates"] == 3, what="3 duplicates")
    with session_factory() as s:
        rows = s.scalars(select(Lap).order_by(Lap.seq)).all()
        assert [r.seq for r in rows] == [0, 1, 2, 3, 4]
        assert {r.race_id for r in rows} == {fleet.race_id}
        assert rows[0].lap_time_ms == 12_345 and rows[0].source == "car" and rows[0].raw_payload["sig"]
    stats = ingest.stats.snapshot()
    assert stats["stored"] == 5 and stats["dead_letters_total"] == 0
    assert stats["acked"] == 8  # duplicates are acknowledged too
    assert count(session_factory, DeadLetter) == 0
    assert [e["seq"] for _, e in hub.events if e.get("type") == "lap"] == [0, 1, 2, 3, 4]


def test_refused_messages_become_dead_letters_with_their_reason(
    ingest: IngestService, car0: Publisher, fleet: Fleet, session_factory: Any
) -> None:
    s0 = fleet.cars["car-0"].hmac_secret
    s1 = fleet.cars["car-1"].hmac_secret
    good = json.loads(lap_payload("car-0", s0, seq=7))
    replay_changed = dict(good, lap_time_ms=good["lap_time_ms"] - 1000)  # signature of the original
    too_fast = lap_payload("car-0", s0, seq=8, lap_time_ms=4_000)  # race minimum: 5 s
    cases = [
        (laps_topic("car-0"), lap_payload("car-0", "not-the-secret", seq=1), "bad_signature"),
        (laps_topic("car-0"), lap_payload("car-0", None, seq=2), "unsigned"),
        (laps_topic("car-0"), json.dumps(replay_changed).encode(), "bad_signature"),
        (laps_topic("car-0"), b"{not json", "malformed"),
        (laps_topic("car-0"), b"\xff\xfe", "malformed"),
        (laps_topic("car-0"), b"[1, 2]", "malformed"),
        (laps_topic("car-0"), json.dumps({"schema": 1, "car_id": "car-0"}).encode(), "invalid_schema"),
        (laps_topic("car-0"), lap_payload("car-1", s1, seq=3), "topic_mismatch"),  # car 0 posing as car 1
        (laps_topic("ghost"), lap_payload("ghost", "x", seq=4), "unknown_car"),
        (laps_topic("car-0"), too_fast, "implausible_lap_time"),
        (laps_topic("car-0"), lap_payload("car-0", s0, seq=9, sent_at="yesterday"), "bad_sent_at"),
        (laps_topic("car-0"), lap_payload("car-0", s0, seq=10, extra=float("nan")), "malformed"),
        (f"pitlane/{LEAGUE}/timers/gate-1/crossings", b'{"schema":1}', "invalid_schema"),
    ]
    for topic, payload, _ in cases:
        car0.publish(topic, payload)
    wait_until(lambda: count(session_factory, DeadLetter) == len(cases), what="every dead letter")
    assert dead_reasons(session_factory) == [reason for _, _, reason in cases]
    assert count(session_factory, Lap) == 0
    stats = ingest.stats.snapshot()
    expected: dict[str, int] = {}
    for _, _, reason in cases:
        expected[reason] = expected.get(reason, 0) + 1
    assert stats["dead_letters"] == dict(sorted(expected.items()))
    assert stats["acked"] == len(cases)  # a poison message is acknowledged, never redelivered forever
    with session_factory() as s:
        letter = s.scalars(select(DeadLetter).where(DeadLetter.reason.like("topic_mismatch%"))).one()
        assert letter.topic == laps_topic("car-0") and json.loads(letter.payload)["car_id"] == "car-1"
        assert "car-1" in letter.reason and "car-0" in letter.reason
    # ingest is still alive after all that
    car0.publish(laps_topic("car-0"), lap_payload("car-0", s0, seq=11))
    wait_until(lambda: count(session_factory, Lap) == 1, what="a good lap after the bad ones")


def test_unassigned_car_closed_race_and_window(
    ingest: IngestService, car0: Publisher, fleet: Fleet, session_factory: Any
) -> None:
    from league_server.crud import cars, races

    s0, s1 = fleet.cars["car-0"].hmac_secret, fleet.cars["car-1"].hmac_secret
    now = datetime.now(timezone.utc)
    with session_factory() as s:
        cars.assign_car(s, "car-1", actor="test", race_id=None)
        races.update_race(
            s,
            fleet.race_id,
            actor="test",
            window_start=now - timedelta(hours=1),
            window_end=now + timedelta(hours=1),
        )
        s.commit()
    ingest.writer.directory.max_age_s = 0.0  # pick the edits up at once
    early = (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    car0.publish(laps_topic("car-1"), lap_payload("car-1", s1, seq=0))
    car0.publish(laps_topic("car-0"), lap_payload("car-0", s0, seq=0, sent_at=early))
    car0.publish(laps_topic("car-0"), lap_payload("car-0", s0, seq=1))
    wait_until(lambda: count(session_factory, DeadLetter) == 2 and count(session_factory, Lap) == 1)
    assert dead_reasons(session_factory) == ["unassigned_car", "outside_race_window"]
    with session_factory() as s:
        races.update_race(s, fleet.race_id, actor="test", status="closed")
        s.commit()
    car0.publish(laps_topic("car-0"), lap_payload("car-0", s0, seq=2))
    wait_until(lambda: count(session_factory, DeadLetter) == 3)
    assert dead_reasons(session_factory)[-1] == "race_closed"


def test_presence_from_retained_status_and_last_will(
    ingest: IngestService,
    local_broker: Any,
    session_factory: Any,
) -> None:
    status_topic = protocol.car_topic(LEAGUE, "car-1", "status")
    car = Publisher(
        local_broker.port, client_id="car-1", will=(status_topic, protocol.offline_status_bytes())
    )
    online = json.dumps({"schema": 1, "state": "online", "car_id": "car-1", "run_id": "r1"}).encode()
    car.publish(status_topic, online, retain=True)

    def state() -> str | None:
        with session_factory() as s:
            row = s.get(CarPresence, "car-1")
            return None if row is None else row.state

    wait_until(lambda: state() == "online", what="online presence")
    car.kill()  # no DISCONNECT: the broker publishes the last will
    wait_until(lambda: state() == "offline", what="offline presence from the last will")


def test_retained_status_reaches_a_server_that_starts_later(
    migrated_url: str,
    session_factory: Any,
    local_broker: Any,
    fleet: Fleet,
) -> None:
    status_topic = protocol.car_topic(LEAGUE, "car-0", "status")
    car = Publisher(local_broker.port)
    car.publish(status_topic, json.dumps({"schema": 1, "state": "driving"}).encode(), retain=True)
    car.close()
    service = IngestService(
        ingest_settings(migrated_url, local_broker.port), session_factory, client_id="late"
    )
    service.start()
    try:
        assert service.wait_connected(10)
        wait_until(lambda: service.stats.snapshot()["presence"] >= 1, what="retained status")
        with session_factory() as s:
            assert s.get(CarPresence, "car-0").state == "driving"
    finally:
        service.stop()
