"""Trackside timers through a real Mosquitto into SQLite and PostgreSQL: signed crossings are stored once and
paired into "timer" laps (out of order too); everything refused is a dead letter with its reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts import wire as protocol
from league_server.ingest import IngestService
from league_server.ingest.pairing import timer_lap_run_id
from league_server.models import DeadLetter, Lap, TimerCrossing
from tests.league.ingest_support import (
    LEAGUE,
    T0,
    Fleet,
    Publisher,
    crossing_payload,
    ingest_settings,
    iso,
    lap_payload,
    provision,
    wait_until,
)


def topic(timer_id: str) -> str:
    return protocol.timer_topic(LEAGUE, timer_id)


@pytest.fixture
def fleet(session_factory: Any) -> Fleet:
    return provision(session_factory, n_cars=2, min_lap_time_s=5.0)


@pytest.fixture
def timers(session_factory: Any, fleet: Fleet) -> dict[str, Any]:
    """gate-1 and gate-2 timing the fleet's race; spare-gate timing nothing. timer id -> TimerCredentials."""
    from league_server.crud import timers as timers_crud

    with session_factory() as s:
        creds = {}
        for timer_id, race_id in (("gate-1", fleet.race_id), ("gate-2", fleet.race_id), ("spare-gate", None)):
            _, creds[timer_id] = timers_crud.provision_timer(s, fleet.league_id, timer_id, race_id=race_id)
        s.commit()
    return creds


@pytest.fixture
def ingest(
    migrated_url: str, session_factory: Any, local_broker: Any, timers: dict[str, Any]
) -> Iterator[IngestService]:
    service = IngestService(ingest_settings(migrated_url, local_broker.port), session_factory)
    service.start()
    assert service.wait_connected(10), service.last_connect_error
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def pub(local_broker: Any) -> Iterator[Publisher]:
    publisher = Publisher(local_broker.port)
    try:
        yield publisher
    finally:
        publisher.close()


def count(session_factory: Any, model: Any) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def laps_of(session_factory: Any) -> list[tuple[str, int, int, str]]:
    """(car_id, seq, lap_time_ms, source) of every lap, in crossing order."""
    with session_factory() as s:
        rows = s.scalars(select(Lap).order_by(Lap.sent_at)).all()
        return [(r.car_id, r.seq, r.lap_time_ms, r.source) for r in rows]


def dead_reasons(session_factory: Any) -> list[str]:
    with session_factory() as s:
        return [r.split(":", 1)[0] for r in s.scalars(select(DeadLetter.reason).order_by(DeadLetter.id))]


def settled(ingest: IngestService, n: int) -> None:
    """Wait until `n` messages were committed (stored, duplicate or dead-lettered) and acknowledged."""
    wait_until(lambda: ingest.stats.snapshot()["acked"] >= n, what=f"{n} acknowledged messages")


def test_two_crossings_make_one_timer_lap_and_replays_add_nothing(
    ingest: IngestService, pub: Publisher, fleet: Fleet, timers: dict[str, Any], session_factory: Any
) -> None:
    secret = timers["gate-1"].hmac_secret
    first = crossing_payload("gate-1", secret, seq=0, at=T0)
    second = crossing_payload("gate-1", secret, seq=1, at=T0 + timedelta(milliseconds=9_412))
    pub.publish(topic("gate-1"), first)
    pub.publish(topic("gate-1"), second)
    settled(ingest, 2)
    with session_factory() as s:
        (lap,) = s.scalars(select(Lap)).all()
        assert (lap.car_id, lap.lap_time_ms, lap.source, lap.race_id) == (
            "car-0",
            9_412,
            "timer",
            fleet.race_id,
        )
        assert (lap.run_id, lap.seq, lap.lap_number) == ("timer:gate-1:run-1", 1, 1)
        assert lap.racer_id is not None and lap.sent_at == T0 + timedelta(milliseconds=9_412)
        assert lap.raw_payload["from"]["seq"] == 0 and lap.raw_payload["to"]["seq"] == 1
        rows = s.scalars(select(TimerCrossing).order_by(TimerCrossing.seq)).all()
        assert [(c.seq, c.lap_id) for c in rows] == [(0, None), (1, lap.id)]
    for payload in (first, second, second):  # redelivered / replayed
        pub.publish(topic("gate-1"), payload)
    settled(ingest, 5)
    assert count(session_factory, Lap) == 1 and count(session_factory, TimerCrossing) == 2
    stats = ingest.stats.snapshot()
    assert stats["duplicates"] == 3 and stats["crossings"] == 2 and stats["stored"] == 1
    assert stats["dead_letters_total"] == 0
    pub.publish(topic("gate-1"), crossing_payload("gate-1", secret, seq=2, at=T0 + timedelta(seconds=19)))
    wait_until(lambda: count(session_factory, Lap) == 2, what="the second lap")
    assert laps_of(session_factory)[-1] == ("car-0", 2, 9_588, "timer")
    with session_factory() as s:
        assert s.scalars(select(Lap.lap_number).order_by(Lap.lap_number)).all() == [1, 2]


def test_cars_and_timers_are_paired_separately(
    ingest: IngestService, pub: Publisher, timers: dict[str, Any], session_factory: Any
) -> None:
    s1, s2 = timers["gate-1"].hmac_secret, timers["gate-2"].hmac_secret
    sends = [
        ("gate-1", s1, 0, T0, "car-0"),
        ("gate-1", s1, 1, T0 + timedelta(seconds=1), "car-1"),  # another car: not a 1 s lap of car 0
        ("gate-2", s2, 0, T0 + timedelta(seconds=3), "car-0"),  # another timer: not a 3 s lap
        ("gate-1", s1, 2, T0 + timedelta(seconds=10), "car-0"),
        ("gate-1", s1, 3, T0 + timedelta(seconds=12), "car-1"),
        ("gate-1", s1, 4, T0 + timedelta(seconds=13), None),  # unidentified: kept, no lap
    ]
    for timer_id, secret, seq, at, car in sends:
        pub.publish(topic(timer_id), crossing_payload(timer_id, secret, seq=seq, at=at, car_id=car))
    settled(ingest, len(sends))
    assert sorted(laps_of(session_factory)) == [("car-0", 2, 10_000, "timer"), ("car-1", 3, 11_000, "timer")]
    assert count(session_factory, TimerCrossing) == len(sends)
    with session_factory() as s:
        unknown = s.scalars(select(TimerCrossing).where(TimerCrossing.car_id.is_(None))).one()
        assert unknown.seq == 4 and unknown.lap_id is None


def test_refused_crossings_become_dead_letters_with_their_reason(
    ingest: IngestService, pub: Publisher, timers: dict[str, Any], fleet: Fleet, session_factory: Any
) -> None:
    s1, s2 = timers["gate-1"].hmac_secret, timers["gate-2"].hmac_secret
    at = T0 + timedelta(seconds=30)
    good = json.loads(crossing_payload("gate-1", s1, seq=0, at=T0))
    altered = dict(good, crossed_at=iso(T0 - timedelta(seconds=1)))  # the original's signature
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    cases = [
        (topic("gate-1"), crossing_payload("gate-1", s2, seq=1, at=at), "bad_signature"),  # gate-2's key
        (topic("gate-1"), crossing_payload("gate-1", None, seq=2, at=at), "unsigned"),
        (topic("gate-1"), json.dumps(altered).encode(), "bad_signature"),
        (topic("ghost"), crossing_payload("ghost", "x", seq=0, at=at), "unknown_timer"),
        (topic("gate-2"), crossing_payload("gate-1", s1, seq=3, at=at), "topic_mismatch"),  # as gate-2
        (topic("gate-1"), crossing_payload("gate-1", s1, seq=4, at=at, crossed_at="soon"), "bad_crossed_at"),
        (topic("gate-1"), crossing_payload("gate-1", s1, seq=5, at=future), "bad_crossed_at"),
        (topic("gate-1"), crossing_payload("gate-1", s1, seq=6, at=at, car_id="nobody"), "unknown_car"),
        (topic("spare-gate"), crossing_payload("spare-gate", timers["spare-gate"].hmac_secret, seq=0, at=at),
         "unassigned_timer"),
        (topic("gate-1"), b"{not json", "malformed"),
        (topic("gate-1"), json.dumps({"schema": 1, "timer_id": "gate-1"}).encode(), "invalid_schema"),
        # a car's own signed lap under a timer run's id would make gate-1's laps look like duplicates
        (protocol.car_topic(LEAGUE, "car-0", "laps"),
         lap_payload("car-0", fleet.cars["car-0"].hmac_secret, run_id=timer_lap_run_id("gate-1", "run-1")),
         "invalid_schema"),
    ]  # fmt: skip
    for where, payload, _ in cases:
        pub.publish(where, payload)
    wait_until(lambda: count(session_factory, DeadLetter) == len(cases), what="every dead letter")
    assert dead_reasons(session_factory) == [reason for _, _, reason in cases]
    assert count(session_factory, TimerCrossing) == 0 and count(session_factory, Lap) == 0
    with session_factory() as s:
        letter = s.scalars(select(DeadLetter).where(DeadLetter.reason.like("topic_mismatch%"))).one()
        assert letter.topic == topic("gate-2") and "gate-1" in letter.reason
    assert ingest.stats.snapshot()["acked"] == len(cases)


def test_below_min_lap_time_is_refused_and_the_lap_runs_on(
    ingest: IngestService, pub: Publisher, timers: dict[str, Any], session_factory: Any
) -> None:
    """Race minimum 5 s: a second reading 300 ms after a crossing is refused like a too-fast car lap, and is
    not the start of the next lap."""
    secret = timers["gate-1"].hmac_secret
    for seq, at_ms in ((0, 0), (1, 300), (2, 9_000)):
        pub.publish(
            topic("gate-1"),
            crossing_payload("gate-1", secret, seq=seq, at=T0 + timedelta(milliseconds=at_ms)),
        )
    settled(ingest, 3)
    assert dead_reasons(session_factory) == ["implausible_lap_time"]
    assert laps_of(session_factory) == [("car-0", 2, 9_000, "timer")]
    assert count(session_factory, TimerCrossing) == 2


def test_out_of_order_crossings_pair_by_time_and_a_late_one_inside_a_lap_is_refused(
    ingest: IngestService, pub: Publisher, timers: dict[str, Any], session_factory: Any
) -> None:
    secret = timers["gate-1"].hmac_secret

    def send(seq: int, at_s: float, car: str = "car-0") -> None:
        pub.publish(
            topic("gate-1"),
            crossing_payload("gate-1", secret, seq=seq, at=T0 + timedelta(seconds=at_s), car_id=car),
        )

    # car 0: arrival order 20 s, 10 s, 0 s -> laps 0-10 and 10-20 all the same
    send(2, 20)
    send(1, 10)
    send(0, 0)
    settled(ingest, 3)
    assert sorted(laps_of(session_factory)) == [("car-0", 1, 10_000, "timer"), ("car-0", 2, 10_000, "timer")]
    # car 1: 0 s and 30 s paired (a missed crossing between) -> a late 15 s crossing does not rewrite the lap
    send(10, 0, "car-1")
    send(11, 30, "car-1")
    settled(ingest, 5)
    send(12, 15, "car-1")
    wait_until(lambda: count(session_factory, DeadLetter) == 1, what="the late crossing's dead letter")
    assert dead_reasons(session_factory) == ["timer_crossing_late"]
    assert [lap for lap in laps_of(session_factory) if lap[0] == "car-1"] == [("car-1", 11, 30_000, "timer")]
    with session_factory() as s:
        assert s.scalars(select(TimerCrossing).where(TimerCrossing.seq == 12)).first() is None


def test_race_rules_apply_as_for_car_laps(
    ingest: IngestService, pub: Publisher, fleet: Fleet, timers: dict[str, Any], session_factory: Any
) -> None:
    from league_server.crud import cars, races

    secret = timers["gate-1"].hmac_secret
    with session_factory() as s:
        cars.assign_car(s, "car-1", actor="test", race_id=None)
        races.update_race(
            s, fleet.race_id, actor="test", window_start=T0, window_end=T0 + timedelta(minutes=1)
        )
        s.commit()
    ingest.writer.directory.max_age_s = 0.0  # pick the edits up at once
    pub.publish(
        topic("gate-1"),
        crossing_payload("gate-1", secret, seq=0, at=T0 + timedelta(seconds=1), car_id="car-1"),
    )
    pub.publish(topic("gate-1"), crossing_payload("gate-1", secret, seq=1, at=T0 - timedelta(seconds=5)))
    pub.publish(topic("gate-1"), crossing_payload("gate-1", secret, seq=2, at=T0 + timedelta(seconds=2)))
    pub.publish(topic("gate-1"), crossing_payload("gate-1", secret, seq=3, at=T0 + timedelta(seconds=12)))
    pub.publish(topic("gate-1"), crossing_payload("gate-1", secret, seq=4, at=T0 + timedelta(minutes=2)))
    settled(ingest, 5)
    assert dead_reasons(session_factory) == ["unassigned_car", "outside_race_window", "outside_race_window"]
    assert laps_of(session_factory) == [("car-0", 3, 10_000, "timer")]  # from the first crossing inside
    with session_factory() as s:
        races.update_race(s, fleet.race_id, actor="test", status="closed")
        s.commit()
    pub.publish(topic("gate-1"), crossing_payload("gate-1", secret, seq=5, at=T0 + timedelta(seconds=30)))
    wait_until(lambda: count(session_factory, DeadLetter) == 4)
    assert dead_reasons(session_factory)[-1] == "race_closed"


def test_long_ids_give_a_deterministic_64_char_run_id() -> None:
    long_timer, long_run = "t" * 64, "r" * 64
    run_id = timer_lap_run_id(long_timer, long_run)
    assert len(run_id) == 64 and run_id == timer_lap_run_id(long_timer, long_run)
    assert run_id != timer_lap_run_id(long_timer, long_run[:-1] + "s")
    assert timer_lap_run_id("a-b", "c") != timer_lap_run_id("a", "b-c")
