"""Alembic environment for the league server (run by `league_server.core.db.upgrade`, no alembic.ini).

render_as_batch: SQLite cannot ALTER most things in place; batch mode rebuilds the table, and on PostgreSQL
it emits plain ALTERs, so one revision runs on both.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from league_server.core.db import make_engine
from league_server.models import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection: Any) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table and drops the old one; with foreign keys on, SQLite's DROP TABLE deletes
        # the rows first and cascades (a rebuilt `races` would take every lap with it). The pragma only takes
        # effect outside a transaction; the keys are checked once the migration has run.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()  # end SQLAlchemy's autobegun transaction, so Alembic's own commits the migration
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
        if broken:
            raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")


if context.is_offline_mode():
    run_offline()
else:
    run_online()
