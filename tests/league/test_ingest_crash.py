"""kill -9 the ingest process while laps are delivered but not yet committed, restart it: every lap is
stored exactly once (persistent session + acknowledgement after commit), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from contracts import wire as protocol
from league_server.models import Lap
from tests.league.ingest_support import (
    LEAGUE,
    Publisher,
    lap_payload,
    provision,
    wait_until,
)

PER_PHASE = 100


def start_ingest(db_url: str, port: int, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    ready = tmp_path / f"{name}.ready"
    log = (tmp_path / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "league_server.ingest",
            "--db",
            db_url,
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--ready-file",
            str(ready),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    wait_until(lambda: ready.exists() or proc.poll() is not None, 20, "the ingest process to subscribe")
    assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
    return proc


@contextmanager
def writes_blocked(db_url: str) -> Iterator[None]:
    """Hold a write lock so ingest's INSERT waits (delivered, not committed, not acknowledged)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database, timeout=1, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        import psycopg

        with psycopg.connect(
            f"host={url.host} port={url.port} user={url.username} dbname={url.database}"
        ) as conn:
            conn.execute("LOCK TABLE laps IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()


def test_kill_9_during_ingest_loses_nothing(
    migrated_url: str,
    session_factory: Any,
    local_broker: Any,
    tmp_path: Path,
) -> None:
    fleet = provision(session_factory, n_cars=2)
    secrets = {c: cred.hmac_secret for c, cred in fleet.cars.items()}
    car = Publisher(local_broker.port)

    def publish(seqs: range) -> None:
        for seq in seqs:
            car_id = f"car-{seq % 2}"
            car.publish(
                protocol.car_topic(LEAGUE, car_id, "laps"), lap_payload(car_id, secrets[car_id], seq=seq)
            )

    def stored() -> int:
        with session_factory() as s:
            return s.scalar(select(func.count()).select_from(Lap)) or 0

    proc = start_ingest(migrated_url, local_broker.port, tmp_path, "first")
    try:
        publish(range(0, PER_PHASE))
        wait_until(lambda: stored() == PER_PHASE, 20, "phase 1 laps")
        with writes_blocked(migrated_url):
            publish(range(PER_PHASE, 2 * PER_PHASE))  # delivered to ingest, stuck before the commit
            time.sleep(1.0)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        assert stored() == PER_PHASE
        publish(range(2 * PER_PHASE, 3 * PER_PHASE))  # while the server is dead: queued by the broker
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    proc = start_ingest(migrated_url, local_broker.port, tmp_path, "second")
    try:
        wait_until(lambda: stored() >= 3 * PER_PHASE, 30, "every lap after the restart")
        time.sleep(0.5)  # would any duplicate still arrive?
        with session_factory() as s:
            keys = s.execute(select(Lap.car_id, Lap.run_id, Lap.seq)).all()
        assert len(keys) == 3 * PER_PHASE
        assert sorted(k.seq for k in keys) == list(range(3 * PER_PHASE))
    finally:
        proc.terminate()
        proc.wait(10)
        car.close()
