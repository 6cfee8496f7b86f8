"""Database engines, sessions and migrations. Nothing is built at import time.

SQLite (the default, one file on a laptop or a Pi) gets WAL journaling (readers never block the ingest
writer), foreign keys on, a busy timeout (concurrent writers wait instead of failing) and synchronous=NORMAL
(safe with WAL: a power cut can lose the last commits' durability but never corrupts the file).
PostgreSQL gets a connection pool sized for a few uvicorn workers plus ingest.
"""

from __future__ import annotations

import ast
import functools
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from league_server.errors import ConfigError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
ALEMBIC_VERSION_TABLE = "alembic_version"  # Alembic's default; migrations/env.py keeps it


def normalise_url(url: str | URL) -> URL:
    """A SQLAlchemy URL; plain `postgresql://` means the psycopg 3 driver (the one the server extra installs)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as exc:
        raise ConfigError(f"database url: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"database url: expected sqlite:///FILE or postgresql://..., got backend {parsed.get_backend_name()!r}"
        )
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An Engine for `url` (SQLite: WAL, foreign keys, busy timeout; PostgreSQL: pooled, pre-ping)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (expire_on_commit=False: routes return them)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str | URL) -> Any:
    """An Alembic Config pointing at league_server/migrations and `url` (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    rendered = normalise_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision` (Alembic upgrade)."""
    from alembic import command

    log.info("migrating %s to %s", normalise_url(url).render_as_string(hide_password=True), revision)
    command.upgrade(alembic_config(url), revision)


def upgrade_if_behind(url: str | URL, engine: Engine | None = None) -> bool:
    """Migrate the database at `url` to head unless it is there already; True when Alembic ran.

    Reading the stored revision is one query; loading Alembic and running its upgrade costs ~0.2 s even
    when there is nothing to do, which every `pitlane league admin` command paid. `engine` (optional): an
    engine over `url` to read the revision with (the caller's, so no second engine is made).
    """
    own = engine is None
    engine = make_engine(url) if own else engine
    try:
        current = schema_at_head(engine)
    finally:
        if own:
            engine.dispose()
    if current:
        return False
    upgrade(url)
    return True


def schema_at_head(engine: Engine) -> bool:
    """True when the database's Alembic revisions are exactly the migrations' heads (False also when the
    heads cannot be read from the revision files: then Alembic decides)."""
    heads = head_revisions()
    if not heads:
        return False
    with engine.connect() as connection:
        if not inspect(connection).has_table(ALEMBIC_VERSION_TABLE):
            return False
        stored = connection.execute(text(f"SELECT version_num FROM {ALEMBIC_VERSION_TABLE}")).scalars()
        return frozenset(stored) == heads


@functools.cache
def head_revisions(versions_dir: Path = MIGRATIONS_DIR / "versions") -> frozenset[str]:
    """The revisions no other revision builds on, read from the revision files' `revision` and
    `down_revision` assignments without importing them (Alembic's script directory imports every revision
    and Alembic itself: ~0.2 s). Empty when a file does not say plainly (Alembic's own reading decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted(versions_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        assigned = _module_constants(path, ("revision", "down_revision"))
        revision, down = assigned.get("revision"), assigned.get("down_revision")
        if not isinstance(revision, str) or not _is_down_revision(down):
            log.debug("%s: no plain revision/down_revision; leaving the head check to Alembic", path)
            return frozenset()
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else (down or ()))
    return frozenset(revisions - parents)


def _is_down_revision(value: object) -> bool:
    """None (the first revision), a revision id, or several (a merge)."""
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, tuple | list) and all(isinstance(v, str) for v in value)


def _module_constants(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """Literal values assigned at module level to `names` in the Python file `path` (a name assigned a
    non-literal maps to a sentinel that is neither a str nor None)."""
    found: dict[str, object] = {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return found
    for node in tree.body:
        target, value = _assignment(node)
        if target in names and value is not None:
            try:
                found[target] = ast.literal_eval(value)
            except (ValueError, TypeError):
                found[target] = _NOT_LITERAL
    return found


_NOT_LITERAL = object()


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    return None, None


def downgrade(url: str | URL, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision`."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
