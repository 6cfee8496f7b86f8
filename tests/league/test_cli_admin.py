"""`pitlane league admin ...` for what only the API did before: list and rotate cars, racing numbers, open and
close races, their time window, the dead letters; audited with the CLI's actor, on SQLite and PostgreSQL.
And the commands' cost: no migration on a database at head, no Alembic, gymnasium or FastAPI loaded."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pitlane.cli import app
from tests.conftest import REPO_ROOT
from tests.league.test_cli_league import assert_the_car_takes_it

runner = CliRunner()
ACTOR = f"cli:{getpass.getuser()}"


def admin(db: str, *args: str) -> Any:
    """One `pitlane league admin ...` command, as an organiser types it."""
    return runner.invoke(app, ["league", "admin", *args, "--db", db])


def ok(db: str, *args: str) -> str:
    result = admin(db, *args)
    assert result.exit_code == 0, result.output
    return result.output


def refused(db: str, *args: str) -> str:
    """The one-line error of a refused command (exit status 2, no traceback), whitespace folded."""
    result = admin(db, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


@contextmanager
def db_session(url: str) -> Iterator[Any]:
    from league_server.core.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()


def audit_of(url: str, entity: str, entity_id: object) -> list[tuple[str, str]]:
    """(action, actor) of an entity's audit entries, newest first."""
    from league_server.crud import audit

    with db_session(url) as session:
        return [(e.action, e.actor) for e in audit.list_entries(session, entity=entity, entity_id=entity_id)]


@pytest.fixture
def league(db_url: str) -> str:
    """A league `acme` with an event, a race (id 1) on reinvent_base and a racer (id 1)."""
    ok(db_url, "create-league", "acme", "ACME")
    ok(db_url, "create-event", "Fri", "--league", "acme")
    ok(db_url, "create-race", "TT", "--event", "1", "--track", "reinvent_base")
    ok(db_url, "create-racer", "Ada", "--league", "acme")
    return db_url


def test_list_cars_shows_numbers_and_never_secrets(league: str) -> None:
    creds = json.loads(ok(league, "add-car", "c1", "--league", "acme", "--race", "1", "--racer", "1",
                          "--number", "7", "--json"))  # fmt: skip
    assert creds["number"] == 7
    ok(league, "add-car", "c2", "--league", "acme")
    ok(league, "create-league", "other", "Other")
    ok(league, "add-car", "c3", "--league", "other", "--number", "7")  # numbers are per league
    listed = json.loads(ok(league, "list-cars", "--json"))
    assert [(c["car_id"], c["number"], c["race_id"], c["racer_id"]) for c in listed] == [
        ("c1", 7, 1, 1),
        ("c2", None, None, None),
        ("c3", 7, None, None),
    ]
    assert [c["car_id"] for c in json.loads(ok(league, "list-cars", "--league", "acme", "--json"))] == [
        "c1",
        "c2",
    ]
    assert [c["car_id"] for c in json.loads(ok(league, "list-cars", "--race", "1", "--json"))] == ["c1"]
    table = ok(league, "list-cars")
    assert "c1" in table and "7" in table
    with db_session(league) as session:
        from league_server.crud import cars

        password_hash = cars.require_car(session, "c1").password_hash
    for shown in (json.dumps(listed), table):
        for secret in (creds["mqtt_password"], creds["hmac_secret"], password_hash):
            assert secret not in shown
        assert "hmac_secret" not in shown and "password" not in shown
    assert "league 'nope' does not exist" in refused(league, "list-cars", "--league", "nope")


def test_rotate_car_prints_the_new_credentials_file_once(league: str, tmp_path: Path) -> None:
    from league_server.core.security import verify_mqtt_password

    first = json.loads(ok(league, "add-car", "c1", "--league", "acme", "--race", "1", "--json"))
    printed = ok(league, "rotate-car", "c1", "--json")
    rotated = json.loads(printed)
    assert rotated.keys() == first.keys()  # the document add-car and the API print
    assert {k: v for k, v in rotated.items() if k not in ("mqtt_password", "hmac_secret")} == {
        k: v for k, v in first.items() if k not in ("mqtt_password", "hmac_secret")
    }
    assert (
        rotated["mqtt_password"] != first["mqtt_password"] and rotated["hmac_secret"] != first["hmac_secret"]
    )
    assert_the_car_takes_it(printed, tmp_path)
    with db_session(league) as session:
        from league_server.crud import cars

        car = cars.require_car(session, "c1")
        assert verify_mqtt_password(rotated["mqtt_password"], car.password_hash)
        assert not verify_mqtt_password(
            first["mqtt_password"], car.password_hash
        )  # the old one stops working
        assert car.hmac_secret == rotated["hmac_secret"]
    assert audit_of(league, "car", "c1")[0] == ("rotate_credentials", ACTOR)
    table = ok(league, "rotate-car", "c1")
    assert "mqtt_password" in table and "lap_topic" in table
    assert "car 'nope' does not exist" in refused(league, "rotate-car", "nope")


def test_racing_numbers_on_add_car_and_assign_car(league: str) -> None:
    ok(league, "add-car", "c1", "--league", "acme", "--number", "7")
    assert "number 7" in refused(league, "add-car", "c2", "--league", "acme", "--number", "7")
    ok(league, "add-car", "c2", "--league", "acme")
    assert "car number 7 is already another car's" in refused(league, "assign-car", "c2", "--number", "7")
    assert "number 8" in ok(league, "assign-car", "c2", "--number", "8")
    assert "racer 1, number 7" in ok(league, "assign-car", "c1", "--racer", "1")  # the number is kept
    assert "number None" in ok(league, "assign-car", "c1", "--no-number")
    assert "number 7" in ok(league, "assign-car", "c2", "--number", "7")  # free again
    assert audit_of(league, "car", "c2")[0] == ("assign", ACTOR)
    assert "not both" in refused(league, "assign-car", "c2", "--number", "3", "--no-number")
    assert "pass --race ID" in refused(league, "assign-car", "c2")
    too_big = admin(league, "assign-car", "c2", "--number", "10000")
    assert too_big.exit_code == 2 and "--number" in too_big.output and "9999" in too_big.output


def test_open_and_close_a_race(league: str) -> None:
    assert "race 'TT' (id 1): closed" in ok(league, "close-race", "1")
    assert json.loads(ok(league, "list-races", "--json"))[0]["status"] == "closed"
    assert "race 'TT' (id 1): open" in ok(league, "open-race", "1")
    assert json.loads(ok(league, "list-races", "--json"))[0]["status"] == "open"
    assert [a for a in audit_of(league, "race", 1)] == [("update", ACTOR), ("update", ACTOR)]
    assert "race 42 does not exist" in refused(league, "close-race", "42")


def test_set_and_clear_a_race_window(league: str) -> None:
    out = ok(league, "set-window", "1", "--start", "2026-06-01T10:00:00+02:00", "--end", "2026-06-01T18:00Z")
    assert "from 2026-06-01T08:00:00+00:00 until 2026-06-01T18:00:00+00:00" in out
    race = json.loads(ok(league, "list-races", "--json"))[0]
    assert (race["window_start"], race["window_end"]) == ("2026-06-01T08:00:00Z", "2026-06-01T18:00:00Z")
    with db_session(league) as session:
        from league_server.crud import races

        stored = races.get_race(session, 1)
        assert stored.window_start == datetime(2026, 6, 1, 8, tzinfo=timezone.utc)
    assert "until 2026-06-01T19:00:00+00:00" in ok(
        league, "set-window", "1", "--end", "2026-06-01T19:00"
    )  # UTC
    assert "from 2026-06-01T08:00:00+00:00 until open" in ok(league, "set-window", "1", "--end", "none")
    assert "window_end" in refused(league, "set-window", "1", "--end", "2026-06-01T07:00:00Z")  # before start
    assert "--start: expected an ISO 8601 time" in refused(league, "set-window", "1", "--start", "tomorrow")
    assert "race 'TT' (id 1): open; no time window" in ok(league, "set-window", "1", "--clear")
    assert "pass --clear alone" in refused(league, "set-window", "1", "--clear", "--end", "2026-06-01T19:00")
    assert "pass --start ISO" in refused(league, "set-window", "1")
    assert len(audit_of(league, "race", 1)) == 4 and {a for _, a in audit_of(league, "race", 1)} == {ACTOR}


def _ingest(url: str, topic: str, payload: bytes) -> None:
    """One message through the server's ingest writer (decide, store or dead-letter, commit), no broker."""
    from league_server.core.db import make_engine, make_sessionmaker
    from league_server.ingest.decide import Message
    from league_server.ingest.stats import IngestStats
    from league_server.ingest.worker import BatchWriter

    engine = make_engine(url)
    writer = BatchWriter(make_sessionmaker(engine), lambda _mid, _qos: None, IngestStats())
    writer.start()
    writer.submit(Message(topic, payload, mid=1, qos=1, retain=False, received_at=datetime.now(timezone.utc)))
    writer.stop()
    engine.dispose()


def test_dead_letters_say_why_a_cars_laps_are_refused(league: str) -> None:
    from tests.league.ingest_support import lap_payload

    creds = json.loads(ok(league, "add-car", "c1", "--league", "acme", "--race", "1", "--json"))
    assert json.loads(ok(league, "dead-letters", "--json")) == []
    wrong = lap_payload("c1", "0" * 64)  # signed with a secret from before a rotation: every lap refused
    _ingest(league, creds["lap_topic"], wrong)
    _ingest(league, "pitlane/acme/cars/nobody/laps", lap_payload("nobody", "0" * 64))
    _ingest(league, creds["lap_topic"], b"\xff\xfe not json")
    letters = json.loads(ok(league, "dead-letters", "--json"))
    assert [(d["topic"], d["reason"].split(":")[0]) for d in letters] == [  # newest first
        (creds["lap_topic"], "malformed"),
        ("pitlane/acme/cars/nobody/laps", "unknown_car"),
        (creds["lap_topic"], "bad_signature"),
    ]
    assert letters[2]["payload"] == wrong.decode() and letters[0]["payload"] == "\ufffd\ufffd not json"
    assert letters[0]["received_at"] >= letters[1]["received_at"] >= letters[2]["received_at"]
    newest = json.loads(ok(league, "dead-letters", "--limit", "1", "--json"))
    assert [d["reason"].split(":")[0] for d in newest] == ["malformed"]
    table = ok(league, "dead-letters")
    assert "bad_signature" in table and "unknown_car" in table and creds["lap_topic"] in table


# ---------------------------------------------------------------------------------------------- cost


def test_head_revisions_are_alembics(sqlite_url: str) -> None:
    """The cheap reading of the revision files agrees with Alembic's own."""
    from alembic.script import ScriptDirectory

    from league_server.core.db import alembic_config, head_revisions

    assert head_revisions() == frozenset(ScriptDirectory.from_config(alembic_config(sqlite_url)).get_heads())


@pytest.fixture
def upgrades(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of Alembic's upgrade, recorded (and still run)."""
    from alembic import command

    calls: list[str] = []
    real = command.upgrade

    def recorded(config: Any, revision: str, **kwargs: Any) -> None:
        calls.append(revision)
        real(config, revision, **kwargs)

    monkeypatch.setattr(command, "upgrade", recorded)
    return calls


def test_admin_commands_migrate_only_a_database_that_is_behind(db_url: str, upgrades: list[str]) -> None:
    from league_server.core.db import current_revision, downgrade, make_engine

    ok(db_url, "create-league", "acme", "ACME")  # a new database: created by Alembic
    assert upgrades == ["head"]
    for args in (("create-event", "Fri", "--league", "acme"), ("list-races",), ("list-cars",),
                 ("dead-letters",), ("add-car", "c1", "--league", "acme"), ("rotate-car", "c1")):  # fmt: skip
        ok(db_url, *args)
    assert upgrades == ["head"]  # at head: not one more upgrade
    downgrade(db_url, "0002")  # code newer than the database: the next command migrates it
    ok(db_url, "list-timers")
    assert upgrades == ["head", "head"]
    engine = make_engine(db_url)
    assert current_revision(engine) != "0002"
    engine.dispose()


def test_an_admin_command_loads_neither_alembic_nor_the_simulator(migrated_url: str) -> None:
    """On a database at head, in a fresh interpreter as an organiser runs it: what the command imports."""
    heavy = ("alembic", "gymnasium", "numpy", "fastapi", "uvicorn", "sqlalchemy.dialects.postgresql")
    script = (
        "import sys\n"
        "from pitlane.cli import app\n"
        f"args = ['league', 'admin', sys.argv[1], '--db', {migrated_url!r}]\n"
        "try:\n    app(args)\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "import json\n"
        f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))\n"
    )
    for command in ("list-cars", "dead-letters", "list-races"):
        done = subprocess.run(
            [sys.executable, "-c", script, command], cwd=REPO_ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        loaded = json.loads(done.stdout.strip().splitlines()[-1])
        expected = ["sqlalchemy.dialects.postgresql"] if migrated_url.startswith("postgresql") else []
        assert loaded == expected, (command, loaded)
