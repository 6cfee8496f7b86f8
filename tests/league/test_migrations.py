"""The newest migration on a database with data, on SQLite and a real PostgreSQL: it builds exactly what the
models say, keeps the data, and goes back down."""

from __future__ import annotations

from datetime import datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from league_server.core.db import current_revision, downgrade, make_engine, make_sessionmaker, upgrade
from league_server.models import Base, Lap, League, Racer

NOW = datetime(2026, 12, 1, 12, 0)


def test_0004_virtual_races_on_a_0003_database_with_data(db_url: str) -> None:
    upgrade(db_url, "0003")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:  # rows as a 0003 server wrote them (no column of 0004)
            conn.execute(
                text("INSERT INTO leagues (slug, name, created_at) VALUES ('acme', 'ACME', :t)"), {"t": NOW}
            )
            conn.execute(
                text("INSERT INTO racers (league_id, name, created_at) VALUES (1, 'Ada', :t)"), {"t": NOW}
            )
            conn.execute(
                text("INSERT INTO events (league_id, name, created_at) VALUES (1, 'Cup', :t)"), {"t": NOW}
            )
            conn.execute(
                text("INSERT INTO races (event_id, name, format, ranking, ranked_laps, laps, offtrack_penalty_s, "
                     "min_lap_time_s, status, created_at) VALUES (1, 'Final', 'time_trial', 'best_lap', 3, 3, 2.0, "
                     "1.0, 'open', :t)"),
                {"t": NOW},
            )  # fmt: skip
            conn.execute(
                text("INSERT INTO cars (league_id, car_id, mqtt_username, password_hash, hmac_secret, racer_id, "
                     "race_id, created_at) VALUES (1, 'car-1', 'car-1', 'x', 'y', 1, 1, :t)"),
                {"t": NOW},
            )  # fmt: skip
            conn.execute(
                text("INSERT INTO laps (race_id, car_id, racer_id, run_id, seq, lap_number, lap_time_ms, "
                     "offtrack_count, reset_count, penalty_ms, source, received_at, valid) VALUES "
                     "(1, 'car-1', 1, 'r', 1, 1, 9000, 0, 0, 0, 'car', :t, true)"),
                {"t": NOW},
            )  # fmt: skip
        upgrade(db_url, "0004")
        assert current_revision(engine) == "0004"
        with make_sessionmaker(engine)() as s:  # data kept, with the new columns' defaults
            assert s.execute(text("SELECT simulated FROM cars")).scalar_one() in (False, 0)
            race = s.execute(text("SELECT id, kind, counts, virtual_spec FROM races")).one()
            assert tuple(race)[1:] == ("physical", "best", None)
            assert s.execute(text("SELECT token_hash FROM racers")).scalar_one() is None
            assert s.execute(text("SELECT public_aliases FROM leagues")).scalar_one() in (False, 0)
            # rebuilding races, racers and cars (SQLite's batch mode) kept the laps and their links
            lap = s.scalar(select(Lap))
            assert (lap.race_id, lap.car_id, lap.racer_id, lap.lap_time_ms) == (race.id, "car-1", 1, 9000)
        downgrade(db_url, "0003")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT lap_time_ms FROM laps")).scalars().all() == [9000]
        assert "simulated" not in {c["name"] for c in inspect(engine).get_columns("cars")}
        assert "submissions" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT car_id FROM cars")).scalars().all() == ["car-1"]
    finally:
        engine.dispose()


def test_0005_console_on_a_0004_database_with_data(db_url: str) -> None:
    upgrade(db_url, "0004")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO leagues (slug, name, public_aliases, created_at) VALUES ('acme', 'ACME', "
                     "false, :t)"),
                {"t": NOW},
            )  # fmt: skip
            conn.execute(
                text("INSERT INTO racers (league_id, name, token_hash, created_at) VALUES (1, 'Ada', 'h', :t)"),
                {"t": NOW},
            )  # fmt: skip
        upgrade(db_url)
        assert current_revision(engine) == "0005"
        with engine.connect() as conn:  # the migrations build exactly what the models say
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        with make_sessionmaker(engine)() as s:  # the league's default quotas; the racer follows the league's
            league = s.scalar(select(League))
            assert (league.quota_concurrent_jobs, league.quota_minutes_per_day) == (1, 60.0)
            racer = s.scalar(select(Racer))
            assert (racer.token_hash, racer.quota_concurrent_jobs, racer.quota_minutes_per_day) == (
                "h",
                None,
                None,
            )
        downgrade(db_url, "0004")
        assert "racer_models" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT token_hash FROM racers")).scalars().all() == ["h"]
    finally:
        engine.dispose()
