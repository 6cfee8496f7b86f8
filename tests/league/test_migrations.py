"""The newest migration on a database with data, on SQLite and a real PostgreSQL: it builds exactly what the
models say, keeps the data, and goes back down."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from league_server.core.db import current_revision, downgrade, make_engine, make_sessionmaker, upgrade
from league_server.crud import cars, leagues
from league_server.errors import ConflictError
from league_server.models import Base, Car


def test_0003_car_numbers_on_a_0002_database_with_data(db_url: str) -> None:
    upgrade(db_url, "0002")
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            league = leagues.create_league(s, "acme", "ACME")
            row = {"league_id": league.id, "car_id": "car-1", "mqtt_username": "car-1", "password_hash": "x",
                   "hmac_secret": "y"}  # fmt: skip
            s.execute(Car.__table__.insert().values(**row))
            s.commit()
        upgrade(db_url)
        assert current_revision(engine) == "0003"
        with engine.connect() as conn:  # the migrations build exactly what the models say
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        with make_sessionmaker(engine)() as s:
            assert cars.require_car(s, "car-1").number is None  # data kept, no number yet
            cars.assign_car(s, "car-1", actor="ada", number=7)
            cars.provision_car(s, league.id, "car-2", number=8)
            with pytest.raises(ConflictError, match="number 7"):
                cars.assign_car(s, "car-2", actor="ada", number=7)
            with pytest.raises(ConflictError, match="number"):
                cars.provision_car(s, league.id, "car-3", number=8)
            other = leagues.create_league(s, "other", "Other")
            cars.provision_car(s, other.id, "car-4", number=7)  # unique within a league only
            s.commit()
        downgrade(db_url, "0002")
        assert "number" not in {c["name"] for c in inspect(engine).get_columns("cars")}
        with make_sessionmaker(engine)() as s:
            assert s.execute(Car.__table__.select().with_only_columns(Car.car_id)).scalars().all() == [
                "car-1", "car-2", "car-4"
            ]  # fmt: skip
    finally:
        engine.dispose()
