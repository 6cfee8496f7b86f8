"""Migration 0002 (timers, timer_crossings) and the timer registry on SQLite and a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import column, inspect, select, table, text

from league_server.core.db import current_revision, downgrade, make_engine, make_sessionmaker, upgrade
from league_server.core.security import verify_mqtt_password
from league_server.crud import audit, cars, crossings, leagues, races, timers
from league_server.errors import ConflictError, NotFoundError
from league_server.models import Car, TimerCrossing

NEW_TABLES = {"timers", "timer_crossings"}


def test_0002_upgrades_a_0001_database_with_data_and_downgrades(db_url: str) -> None:
    upgrade(db_url, "0001")
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            # a league and a car as a 0001 server wrote them (0001's columns only)
            s.execute(
                text("INSERT INTO leagues (slug, name, created_at) VALUES ('acme', 'ACME', '2026-01-01')")
            )
            league_id = s.execute(text("SELECT id FROM leagues")).scalar_one()
            row = {"league_id": league_id, "car_id": "car-1", "mqtt_username": "car-1", "password_hash": "x",
                   "hmac_secret": "y", "created_at": datetime(2026, 1, 1)}  # fmt: skip
            # the 0001 columns only (today's model has more, with defaults the old table lacks)
            s.execute(table("cars", *(column(name) for name in row)).insert().values(**row))
            s.commit()
        upgrade(db_url, "0002")
        assert current_revision(engine) == "0002"
        assert set(inspect(engine).get_table_names()) >= NEW_TABLES
        upgrade(db_url)  # provision_timer below uses today's models
        with make_sessionmaker(engine)() as s:
            assert cars.require_car(s, "car-1").league_id == league_id  # data kept
            timers.provision_timer(s, league_id, "gate-1")
            s.commit()
        downgrade(db_url, "0001")
        assert current_revision(engine) == "0001"
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        with engine.connect() as conn:  # today's Car model has columns 0001 lacks: read the row itself
            assert conn.execute(select(Car.__table__.c.car_id)).scalars().all() == ["car-1"]
    finally:
        engine.dispose()


def test_timer_registry(session: Any) -> None:
    league = leagues.create_league(session, "acme", "ACME")
    event = leagues.create_event(session, league.id, "Friday")
    race = races.create_race(session, event.id, "TT")
    timer, creds = timers.provision_timer(session, league.id, "gate-1", name="Start line", actor="ada")
    session.commit()
    assert creds.mqtt_username == timer.mqtt_username == "timer-gate-1"
    assert verify_mqtt_password(creds.mqtt_password, timer.password_hash)
    assert creds.mqtt_password not in timer.password_hash and timer.hmac_secret == creds.hmac_secret
    with pytest.raises(ConflictError, match="gate-1"):
        timers.provision_timer(session, league.id, "gate-1")
    cars.provision_car(session, league.id, "timer-gate-2")  # a car named like gate-2's login
    with pytest.raises(ConflictError, match="already a car's"):
        timers.provision_timer(session, league.id, "gate-2")
    with pytest.raises(ConflictError, match="already a timer's"):  # and the other way round
        cars.provision_car(session, league.id, "timer-gate-1")
    with pytest.raises(NotFoundError):
        timers.provision_timer(session, league.id, "gate-3", race_id=999)
    assert timers.assign_timer(session, "gate-1", actor="ada", race_id=race.id).race_id == race.id
    assert [t.timer_id for t in timers.list_timers(session, race_id=race.id)] == ["gate-1"]
    rotated = timers.rotate_timer_credentials(session, "gate-1", actor="ada")
    assert rotated.hmac_secret != creds.hmac_secret and rotated.mqtt_username == "timer-gate-1"
    assert verify_mqtt_password(rotated.mqtt_password, timers.require_timer(session, "gate-1").password_hash)
    assert not verify_mqtt_password(
        creds.mqtt_password, timers.require_timer(session, "gate-1").password_hash
    )
    with pytest.raises(NotFoundError):
        timers.assign_timer(session, "nope", actor="ada", race_id=None)
    session.commit()
    actions = [(e.action, e.entity_id) for e in audit.list_entries(session, entity="timer")]
    assert sorted(actions) == [
        ("assign", "gate-1"),
        ("provision", "gate-1"),
        ("rotate_credentials", "gate-1"),
    ]


def test_crossing_key_is_unique(session: Any) -> None:
    league = leagues.create_league(session, "acme", "ACME")
    timers.provision_timer(session, league.id, "gate-1")
    at = datetime(2026, 12, 1, 20, 0, 0, 123000, tzinfo=timezone.utc)
    crossings.add_crossing(
        session, TimerCrossing(timer_id="gate-1", run_id="r", seq=0, car_id=None, crossed_at=at)
    )
    with pytest.raises(ConflictError):
        crossings.add_crossing(
            session, TimerCrossing(timer_id="gate-1", run_id="r", seq=0, car_id="x", crossed_at=at)
        )
    session.commit()
    stored = session.scalars(select(TimerCrossing)).one()
    assert stored.crossed_at == at and stored.car_id is None  # milliseconds and UTC survive
