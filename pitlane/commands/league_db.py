"""What every `pitlane league` command shares: its options, the server's settings, migrating the database,
one database session (errors become one red line), the audit actor, and printing (JSON or a table).

Each helper imports the server's packages inside the function: `pitlane --help` stays fast and works without
the server extra. Migration runs only for a database that is behind: a command on a database at head costs one
query for the check (`upgrade_if_behind`), not Alembic.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pitlane.commands.common import fail, require

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="database URL: sqlite:///FILE.db or postgresql://USER@HOST/DB (default: $PITLANE_DATABASE_URL or ./pitlane-league.db)"),
]  # fmt: skip
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LeagueOption = Annotated[str, typer.Option("--league", help="League slug.")]
RaceId = Annotated[int, typer.Argument(min=1, help="Race id (list-races).")]
CarNumberOption = Annotated[
    int | None,
    typer.Option("--number", min=0, max=9999, help="Racing number 0..9999, unique within the league."),
]


def require_server() -> None:
    require("server", "fastapi", "sqlalchemy", "alembic", "pydantic_settings", "uvicorn")


def load_settings(db: str | None, **overrides: Any) -> Any:
    """Settings from the environment/.env with the given command-line values on top; bad values -> one line."""
    require_server()
    from pydantic import ValidationError

    from contracts.errors import validation_problems
    from league_server.core.config import Settings

    values = {k: v for k, v in {"database_url": db, **overrides}.items() if v is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        fail(f"settings: {validation_problems(exc)}")


def migrate_database(url: str, engine: Any = None) -> None:
    """Bring the database at `url` to the newest schema; Alembic runs only when it is behind. `engine`: one
    over `url` to check with (else a short-lived one). Database errors -> one red line."""
    from sqlalchemy.exc import SQLAlchemyError

    from league_server.core.db import upgrade_if_behind
    from league_server.errors import LeagueError

    try:
        upgrade_if_behind(url, engine)
    except (SQLAlchemyError, LeagueError) as exc:
        fail(f"database {safe_url(url)}: {getattr(exc, 'orig', None) or exc}")


def safe_url(url: str) -> str:
    """The database URL with its password hidden."""
    from league_server.core.db import normalise_url

    return normalise_url(url).render_as_string(hide_password=True)


@contextmanager
def database_session(db: str | None) -> Iterator[Any]:
    """A session over the migrated database; LeagueError and database errors become one red line (exit 2)."""
    from sqlalchemy.exc import SQLAlchemyError

    from league_server.core.db import make_engine, make_sessionmaker
    from league_server.errors import LeagueError

    settings = load_settings(db)
    engine = make_engine(settings.database_url)
    try:
        migrate_database(settings.database_url, engine)
        with make_sessionmaker(engine)() as session:
            try:
                yield session
            except LeagueError as exc:
                session.rollback()
                fail(exc)
            except SQLAlchemyError as exc:
                session.rollback()
                fail(f"database: {getattr(exc, 'orig', None) or exc}")
    finally:
        engine.dispose()


def cli_actor() -> str:
    """Who the audit log names for an edit made from this shell."""
    return f"cli:{getpass.getuser()}"


def print_out(data: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """`data` as indented JSON (with --json, or when there is no table for it), else through `render`."""
    if as_json or render is None:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        render(data)


def print_mapping(data: dict[str, Any]) -> None:
    """A two-column table of a mapping's keys and values."""
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in data.items():
        table.add_row(key, escape(str(value)))
    Console().print(table)


def league_id(session: Any, slug: str) -> int:
    """The id of the league `slug`; exits with how to create it when there is none."""
    from league_server.crud import leagues

    found = leagues.get_league_by_slug(session, slug)
    if found is None:
        fail(f"league {slug!r} does not exist (pitlane league admin create-league {slug} NAME)")
    return found.id


def print_table(title: str, columns: tuple[str, ...], rows: list[list[str]]) -> None:
    """A titled table of text rows (cells already escaped for rich)."""
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def dash(value: object) -> str:
    """A cell's text, escaped for rich: "-" for no value."""
    return "-" if value is None else escape(str(value))
