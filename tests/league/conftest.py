"""Fixtures shared by the league server tests (CORE, INGEST and WEB add theirs with minimal edits).

- ``sqlite_url``: a SQLite file in the test's tmp dir (not migrated).
- ``postgres_url``: a fresh database ``pitlane_<random>`` on 127.0.0.1:5432, created for the test and dropped
  after it (skips locally / fails in CI when PostgreSQL is absent, through the ``postgres`` fixture).
- ``db_url``: parametrised over both ("sqlite", "postgresql").
- ``migrated_url``: ``db_url`` after ``alembic upgrade head``; ``session_factory`` / ``session`` over it.
- ``settings``, ``app``, ``client`` (a TestClient with the lifespan running), ``admin_headers``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ADMIN_TOKEN = "test-admin-token"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in the test's tmp dir (created on first connect)."""
    return f"sqlite:///{tmp_path / 'league.db'}"


@contextmanager
def fresh_postgres_database(host: str, port: int) -> Iterator[str]:
    """CREATE DATABASE pitlane_<random> (unique: helpers never collide), yield its URL, DROP it after."""
    import psycopg

    name = f"pitlane_{uuid.uuid4().hex[:12]}"
    admin_dsn = f"host={host} port={port} user=postgres dbname=test"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@{host}:{port}/{name}"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres: tuple[str, int]) -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    with fresh_postgres_database(*postgres) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """``db_url`` migrated to the newest Alembic revision."""
    from league_server.core.db import upgrade

    upgrade(db_url)
    return db_url


@pytest.fixture
def session_factory(migrated_url: str) -> Iterator[Any]:
    """A sessionmaker over the migrated database (engine disposed after the test)."""
    from league_server.core.db import make_engine, make_sessionmaker

    engine = make_engine(migrated_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@pytest.fixture
def session(session_factory: Any) -> Iterator[Any]:
    """One Session (rolled back and closed after the test)."""
    with session_factory() as db:
        yield db


@pytest.fixture
def settings(db_url: str) -> Any:
    """Settings for an app over ``db_url``: admin token set, no ingest, no broker, no rate limit."""
    from league_server.core.config import Settings

    return Settings(
        _env_file=None,
        database_url=db_url,
        admin_token=ADMIN_TOKEN,
        ingest_enabled=False,
        public_rate_limit_per_minute=0,
        public_base_url="http://testserver",
        rank_in_process=False,  # a child process per test app costs ~1 s of CPU; test_ingest_cache covers it
    )


@pytest.fixture
def app(settings: Any) -> Any:
    """The FastAPI app (lifespan not started: use ``client``)."""
    from league_server.main import create_app

    return create_app(settings)


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    """A TestClient with the app's lifespan running (migrations applied at startup)."""
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    """The bearer header the ``settings`` fixture's admin token accepts."""
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """WEB: the app under uvicorn on a free 127.0.0.1 port over SQLite, embedded broker + ingest (web_live.py)."""
    from tests.league.web_live import serve

    yield from serve(tmp_path_factory.mktemp("web"))


@pytest.fixture
def local_broker(tmp_path: Path) -> Iterator[Any]:
    """(INGEST) A real Mosquitto on a free localhost port with the embedded broker's config (anonymous,
    persistence in tmp_path), stopped after the test; skips locally / fails in CI without mosquitto."""
    from league_server.broker.embedded import EmbeddedBroker, free_port, mosquitto_binary
    from tests.conftest import skip_or_fail

    if mosquitto_binary() is None:
        skip_or_fail("mosquitto is not installed (apt-get install mosquitto)")
    broker = EmbeddedBroker("127.0.0.1", free_port(), backend="mosquitto", data_dir=tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
