"""A PostgreSQL outage during ingest: nothing is acknowledged while the database refuses connections, the
batch is retried, and every lap is stored once when it comes back. A lap the database refuses (its car was
deleted while it was in flight) is dead-lettered alone and acknowledged, not retried forever."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url

from contracts import wire as protocol
from league_server.core.db import make_engine, make_sessionmaker, upgrade
from league_server.ingest import IngestService
from league_server.models import Car, DeadLetter, Lap
from tests.league.ingest_support import LEAGUE, Publisher, ingest_settings, lap_payload, provision, wait_until


@pytest.fixture
def pg(postgres_url: str) -> Iterator[tuple[str, Any]]:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        yield postgres_url, make_sessionmaker(engine)
    finally:
        engine.dispose()


def allow_connections(url: str, allowed: bool) -> None:
    parsed = make_url(url)
    with psycopg.connect(
        f"host={parsed.host} port={parsed.port} user=postgres dbname=test", autocommit=True
    ) as c:
        c.execute(f'ALTER DATABASE "{parsed.database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (parsed.database,),
            )


def stored(sessions: Any) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Lap)) or 0


def test_database_outage_acknowledges_nothing_until_the_commit(
    pg: tuple[str, Any], local_broker: Any
) -> None:
    url, sessions = pg
    fleet = provision(sessions, n_cars=1)
    secret = fleet.cars["car-0"].hmac_secret
    service = IngestService(ingest_settings(url, local_broker.port), sessions).start()
    car = Publisher(local_broker.port)
    topic = protocol.car_topic(LEAGUE, "car-0", "laps")
    try:
        assert service.wait_connected(10)
        for seq in range(5):
            car.publish(topic, lap_payload("car-0", secret, seq=seq))
        wait_until(lambda: service.stats.snapshot()["acked"] == 5, 10, "the first laps")
        allow_connections(url, False)
        try:
            for seq in range(5, 10):
                car.publish(topic, lap_payload("car-0", secret, seq=seq))
            wait_until(lambda: service.stats.snapshot()["db_errors"] >= 2, 15, "failed commits")
            snap = service.stats.snapshot()
            assert snap["acked"] == 5 and snap["stored"] == 5 and snap["dead_letters_total"] == 0
        finally:
            allow_connections(url, True)
        wait_until(lambda: service.stats.snapshot()["acked"] == 10, 20, "the laps after the outage")
        assert stored(sessions) == 10
    finally:
        car.close()
        service.stop()


def test_a_value_the_database_refuses_is_dead_lettered_alone(pg: tuple[str, Any], local_broker: Any) -> None:
    url, sessions = pg
    fleet = provision(sessions, n_cars=2)
    doomed, kept = fleet.cars["car-0"], fleet.cars["car-1"]
    service = IngestService(ingest_settings(url, local_broker.port), sessions).start()
    car = Publisher(local_broker.port)
    try:
        assert service.wait_connected(10)
        car.publish(
            protocol.car_topic(LEAGUE, "car-1", "laps"), lap_payload("car-1", kept.hmac_secret, seq=0)
        )
        wait_until(lambda: stored(sessions) == 1, 10, "the first lap (the directory has both cars now)")
        service.writer.directory.max_age_s = 3600.0  # ingest keeps believing in car-0 for this test
        with sessions() as s:  # an organiser deletes car-0 while its lap is on the way
            s.execute(delete(Car).where(Car.car_id == "car-0"))
            s.commit()
        poison = lap_payload("car-0", doomed.hmac_secret, seq=0)  # signed, valid; its car row is gone
        car.publish(protocol.car_topic(LEAGUE, "car-0", "laps"), poison)
        car.publish(
            protocol.car_topic(LEAGUE, "car-1", "laps"), lap_payload("car-1", kept.hmac_secret, seq=1)
        )
        wait_until(lambda: service.stats.snapshot()["acked"] == 3, 20, "all three acknowledged")
        assert stored(sessions) == 2  # car-1's second lap went in beside the refused one
        with sessions() as s:
            letter = s.scalars(select(DeadLetter)).one()
        assert letter.reason.startswith("db_rejected") and json.loads(letter.payload)["car_id"] == "car-0"
    finally:
        car.close()
        service.stop()
