"""Migrations, engine settings and the crud layer on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from league_server.core.db import (
    current_revision,
    downgrade,
    head_revisions,
    make_engine,
    normalise_url,
    schema_at_head,
    upgrade,
    upgrade_if_behind,
)
from league_server.core.security import hash_mqtt_password, verify_mqtt_password
from league_server.crud import audit, cars, dead_letters, laps, leagues, presence, races
from league_server.errors import ConfigError, ConflictError, NotFoundError, RuleError
from league_server.models import Lap

TABLES = {
    "leagues",
    "seasons",
    "tracks",
    "events",
    "races",
    "teams",
    "racers",
    "cars",
    "laps",
    "audit_log",
    "dead_letters",
    "car_presence",
    "timers",
    "timer_crossings",
    "submissions",
}
HEAD = "0005"


def test_migrations_up_down_up(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert current_revision(engine) == HEAD
        downgrade(db_url)
        assert not TABLES & set(inspect(engine).get_table_names())
        assert current_revision(engine) is None
        upgrade(db_url)
        upgrade(db_url)  # idempotent
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_upgrade_if_behind_runs_alembic_only_when_the_schema_is_behind(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert not schema_at_head(engine)  # empty: no alembic_version table
        assert upgrade_if_behind(db_url, engine) is True
        assert schema_at_head(engine) and current_revision(engine) == HEAD
        assert upgrade_if_behind(db_url, engine) is False
        assert upgrade_if_behind(db_url) is False  # with an engine of its own
        downgrade(db_url, "0002")
        assert not schema_at_head(engine)
        assert upgrade_if_behind(db_url, engine) is True and current_revision(engine) == HEAD
    finally:
        engine.dispose()


def _revision_file(folder, name: str, revision: str, down: str) -> None:  # type: ignore[no-untyped-def]
    folder.joinpath(name).write_text(
        f'"""{name}"""\nrevision: str = "{revision}"\ndown_revision = {down}\n', encoding="utf-8"
    )


def test_head_revisions_read_from_the_revision_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _revision_file(tmp_path, "0001_a.py", "0001", "None")
    _revision_file(tmp_path, "0002_b.py", "0002", '"0001"')
    _revision_file(tmp_path, "0003_c.py", "0003", '"0001"')  # a branch
    (tmp_path / "__init__.py").write_text("", encoding="utf-8")
    assert head_revisions(tmp_path) == frozenset({"0002", "0003"})
    merge = tmp_path / "merge"
    merge.mkdir()
    for name in ("0001_a.py", "0002_b.py", "0003_c.py"):
        merge.joinpath(name).write_text(tmp_path.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
    _revision_file(merge, "0004_merge.py", "0004", '("0002", "0003")')
    assert head_revisions(merge) == frozenset({"0004"})
    computed = tmp_path / "computed"
    computed.mkdir()
    _revision_file(computed, "0001_a.py", "0001", "None")
    _revision_file(computed, "0002_b.py", "0002", "PARENT")  # not plain: leave the check to Alembic
    assert head_revisions(computed) == frozenset()


def test_sqlite_engine_uses_wal_foreign_keys_and_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        engine.dispose()


def test_bad_database_urls_are_named() -> None:
    with pytest.raises(ConfigError, match="database url"):
        normalise_url("mysql://x/y")
    with pytest.raises(ConfigError, match="database url"):
        normalise_url("not a url")
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"


def _race_with_car(session):  # type: ignore[no-untyped-def]
    league = leagues.create_league(session, "acme", "ACME league")
    event = leagues.create_event(session, league.id, "Friday")
    race = races.create_race(session, event.id, "TT", offtrack_penalty_s=2.0, min_lap_time_s=3.0)
    racer = leagues.create_racer(session, league.id, "Ada")
    car, creds = cars.provision_car(session, league.id, "car-1", racer_id=racer.id, race_id=race.id)
    session.commit()
    return league, race, racer, car, creds


def test_provisioning_stores_only_a_mosquitto_hash(session) -> None:  # type: ignore[no-untyped-def]
    _, _, _, car, creds = _race_with_car(session)
    assert car.password_hash.startswith("$7$101$")
    assert creds.mqtt_password not in car.password_hash
    assert verify_mqtt_password(creds.mqtt_password, car.password_hash)
    assert car.hmac_secret == creds.hmac_secret and len(creds.hmac_secret) == 64
    with pytest.raises(ConflictError, match="car-1"):
        cars.provision_car(session, car.league_id, "car-1")
    # the failed attempt left the session usable
    assert cars.require_car(session, "car-1").id == car.id
    with pytest.raises(NotFoundError):
        cars.require_car(session, "nope")


def test_insert_lap_idempotent_drops_duplicates(session) -> None:  # type: ignore[no-untyped-def]
    _, race, racer, _, _ = _race_with_car(session)
    kwargs = dict(race_id=race.id, car_id="car-1", run_id="r1", seq=0, lap_number=1, lap_time_ms=9412)
    lap, created = laps.insert_lap_idempotent(session, source="car", racer_id=racer.id, **kwargs)
    assert created and lap.id is not None
    again, created_again = laps.insert_lap_idempotent(session, source="car", **{**kwargs, "lap_time_ms": 1})
    assert not created_again and again.id == lap.id and again.lap_time_ms == 9412
    flags = laps.insert_laps_idempotent(
        session,
        [
            {**kwargs, "source": "car"},
            {**kwargs, "seq": 1, "lap_number": 2, "source": "car"},
            {**kwargs, "seq": 1, "lap_number": 2, "source": "car"},
        ],
    )
    assert flags == [False, True, False]
    session.commit()
    assert len(session.scalars(select(Lap)).all()) == 2


def test_lap_edits_are_audited(session) -> None:  # type: ignore[no-untyped-def]
    _, race, _, _, _ = _race_with_car(session)
    lap = laps.add_manual_lap(session, race.id, "car-1", 10_000, actor="marshal", reason="timer failed")
    assert lap.source == "manual" and lap.lap_number == 1
    with pytest.raises(RuleError, match="reason"):
        laps.invalidate_lap(session, lap.id, reason=" ", actor="marshal")
    laps.invalidate_lap(session, lap.id, reason="cut the chicane", actor="marshal")
    assert not laps.get_lap(session, lap.id).valid
    laps.restore_lap(session, lap.id, reason="video shows it was fine", actor="chief")
    laps.delete_lap(session, lap.id, reason="test entry", actor="chief")
    session.commit()
    assert laps.list_laps(session, race.id) == []
    assert len(laps.list_laps(session, race.id, include_deleted=True)) == 1
    actions = [e.action for e in audit.list_entries(session, entity="lap", entity_id=lap.id)]
    assert actions == ["delete", "restore", "invalidate", "manual_entry"]
    entry = audit.list_entries(session, entity="lap", entity_id=lap.id)[2]
    assert entry.before["valid"] is True and entry.after["valid"] is False
    assert entry.reason == "cut the chicane" and entry.actor == "marshal"


def test_race_rules_are_checked_by_sim_race(session) -> None:  # type: ignore[no-untyped-def]
    league = leagues.create_league(session, "l", "L")
    event = leagues.create_event(session, league.id, "E")
    with pytest.raises(RuleError, match="time_window_s"):
        races.create_race(session, event.id, "bad", ranking="most_laps_in")
    with pytest.raises(RuleError, match="ranking"):
        races.create_race(session, event.id, "bad", ranking="fastest")


def test_a_status_or_window_change_keeps_the_rules_check_for_rule_changes(session) -> None:  # type: ignore[no-untyped-def]
    league = leagues.create_league(session, "l", "L")
    event = leagues.create_event(session, league.id, "E")
    race = races.create_race(session, event.id, "TT")
    assert races.update_race(session, race.id, actor="t", status="closed").status == "closed"
    with pytest.raises(RuleError, match="time_window_s"):
        races.update_race(session, race.id, actor="t", ranking="most_laps_in")


def test_a_races_audit_entries(session) -> None:  # type: ignore[no-untyped-def]
    league = leagues.create_league(session, "l", "L")
    event = leagues.create_event(session, league.id, "E")
    race, other = races.create_race(session, event.id, "A"), races.create_race(session, event.id, "B")
    cars.provision_car(session, league.id, "c1")
    mine = laps.add_manual_lap(session, race.id, "c1", 9_000, actor="t", reason="timer down")
    theirs = laps.add_manual_lap(session, other.id, "c1", 9_000, actor="t", reason="timer down")
    laps.delete_lap(session, mine.id, reason="bogus", actor="t")
    races.update_race(session, race.id, actor="t", status="closed")
    races.update_race(session, other.id, actor="t", status="closed")
    session.commit()
    entries = audit.race_entries(session, race.id)
    assert [(e.entity, e.entity_id, e.action) for e in entries] == [
        ("race", str(race.id), "update"),
        ("lap", str(mine.id), "delete"),
        ("lap", str(mine.id), "manual_entry"),
    ]
    assert str(theirs.id) not in {e.entity_id for e in entries}
    assert len(audit.race_entries(session, race.id, limit=1)) == 1


def test_dead_letters_and_presence(session) -> None:  # type: ignore[no-untyped-def]
    dead_letters.record(session, "pitlane/x/cars/c/laps", b"\xff\xfe not utf-8", "not UTF-8 JSON")
    dead_letters.record(session, "pitlane/x/cars/c/laps", "{}", "missing keys")
    presence.set_state(session, "c", "online", run_id="r")
    presence.set_state(session, "c", "offline")
    session.commit()
    assert dead_letters.count(session) == 2
    assert dead_letters.list_recent(session)[1].payload == b"\xff\xfe not utf-8"
    assert [(p.car_id, p.state) for p in presence.list_presence(session)] == [("c", "offline")]


def test_mqtt_hash_format() -> None:
    encoded = hash_mqtt_password("pw", salt=b"0123456789ab")
    _, seven, iterations, salt_b64, key_b64 = encoded.split("$")
    assert (seven, iterations, salt_b64) == ("7", "101", "MDEyMzQ1Njc4OWFi")
    assert len(key_b64) == 88  # 64 bytes in base64
    assert verify_mqtt_password("pw", encoded) and not verify_mqtt_password("pW", encoded)
    assert not verify_mqtt_password("pw", "$6$abc$def") and not verify_mqtt_password("pw", "$7$x$y$z")


def test_batch_insert_larger_than_one_statement(session) -> None:  # type: ignore[no-untyped-def]
    _, race, _, _, _ = _race_with_car(session)
    rows = [
        {"race_id": race.id, "car_id": "car-1", "run_id": "big", "seq": i, "lap_number": i + 1,
         "lap_time_ms": 9000 + i, "source": "sim"}
        for i in range(2500)
    ]  # fmt: skip
    flags = laps.insert_laps_idempotent(session, [*rows, rows[1234]])
    assert flags == [True] * 2500 + [False]
    session.commit()
    assert len(laps.list_laps(session, race.id)) == 2500


def test_settings_read_the_pitlane_environment_and_dotenv(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from league_server.core.config import Settings

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "PITLANE_DATA_DIR=/srv/from-dotenv\nPITLANE_ADMIN_TOKEN=s3cret\n", encoding="utf-8"
    )
    monkeypatch.setenv("PITLANE_DATABASE_URL", "postgresql://u@h/db")
    settings = Settings()
    assert settings.database_url == "postgresql://u@h/db" and str(settings.data_dir) == "/srv/from-dotenv"
    assert settings.admin_token is not None and settings.admin_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    monkeypatch.setenv("PITLANE_EMBEDDED_BROKER_PORT", "99999")
    with pytest.raises(ValueError, match="embedded_broker_port"):
        Settings()


def test_nothing_is_built_at_import_time(repo_root) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    code = (
        "import league_server.main, league_server.core.db, league_server.ranking, sys;"
        "assert 'psycopg' not in sys.modules, 'an engine was built at import'"
    )
    env = {"PITLANE_DATABASE_URL": "not a url", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_concurrent_writers_never_duplicate_a_lap(session_factory) -> None:  # type: ignore[no-untyped-def]
    """Four writers store the same 200 reports at once (a redelivery storm): one row each, no error."""
    import threading

    with session_factory() as session:
        _, race, _, _, _ = _race_with_car(session)
        race_id = race.id
    rows = [
        {"race_id": race_id, "car_id": "car-1", "run_id": "storm", "seq": i, "lap_number": i + 1,
         "lap_time_ms": 9000 + i, "source": "car"}
        for i in range(200)
    ]  # fmt: skip
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer() -> None:
        try:
            start.wait()
            for chunk in range(0, 200, 50):
                with session_factory() as session:
                    laps.insert_laps_idempotent(session, rows[chunk : chunk + 50])
                    session.commit()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below (a thread must not swallow it)
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with session_factory() as session:
        stored = laps.list_laps(session, race_id)
    assert sorted(lap.seq for lap in stored) == list(range(200))
