"""`pitlane bench ingest`: simulated cars publish signed QoS 1 laps through a real Mosquitto into the real
league server (uvicorn serving `league_server.main:create_app` with ingest on), on SQLite and PostgreSQL.

Per database it measures:

- laps_per_s: laps stored / (last lap committed - first lap published), with every car publishing as fast
  as its QoS 1 flow allows (each car signs its own laps with its own secret before the clock starts, logs in
  with its own password, and Mosquitto's generated ACL is in force: the event setup, not a shortcut);
- lost: laps published and acknowledged by the broker but not in the database; duplicated: rows beyond one
  per (car_id, run_id, seq);
- leaderboard_p50_ms / p99_ms: ``GET /api/races/{id}/leaderboard`` latency with `clients` concurrent
  keep-alive HTTP clients in closed loop (each sends its next request as soon as the last one returned: the
  worst case), measured while the cars keep lapping (`live_laps_per_s`, 20 laps/s in all: 100 cars on
  5-second laps), so the leaderboard cache is re-validated and re-ranked throughout;
  leaderboard_req_per_s is that loop's throughput;
- leaderboard_poll_p50_ms / p99_ms: the same `clients` each polling once per `poll_interval_s` (what live
  screens do), started at random offsets;
- leaderboard_live_laps: laps stored during those measurements; leaderboard_catch_up_s: from the commit of
  the last of them until the leaderboard counted it (what a screen lags behind the database).

Then, per database, a crash run on the README's path (`pitlane league serve` with its embedded broker and a
data directory; league_server/serve_process.py): the cars publish again; while they do, one car's login
connects with the server's MQTT client id (a takeover attempt) and a stranger tries without a login; then the
server is killed with SIGKILL mid-stream and started again on the same data directory:

- crash_acked: laps the broker acknowledged to the cars before the kill (a car forgets those: its outbox
  deletes a lap at its PUBACK); crash_unstored_at_kill: how many of them were not yet in the database when
  the server died (in the broker's queue or in flight); crash_lost: of all acknowledged, not in the database
  after the restart; crash_duplicated: rows beyond one per (car_id, run_id, seq);
- takeover_session_kept: the server's ingest stayed subscribed through the takeover attempt;
- crash_orphans: processes the killed server had started still running 5 s later (broker, ranker);
- crash_recovery_s: from the restart until every acknowledged lap was stored.

The HTTP clients (bench/ingest_loadgen.py, its own process) run on the same 2 cores as the server, the
broker and the cars: their CPU time is part of the measured latency.

Everything runs on 127.0.0.1 with free ports, bounded in count and time, and is stopped at the end.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.errors import IngestBenchError
from league_server.errors import LeagueError

log = logging.getLogger(__name__)

LEAGUE = "bench"
PUBLISHER_PROCESSES = 2
READY_TIMEOUT_S = 30.0
# The crash run's cars spread their laps over this long (default), so the takeover attempt and the kill (at
# half the laps stored) both happen while laps are being published, in flight and queued.
CRASH_STREAM_S = 10.0


@dataclass(frozen=True)
class IngestBenchResult:
    database: str
    cars: int
    laps: int
    stored: int
    laps_per_s: float
    lost: int
    duplicated: int
    leaderboard_p50_ms: float
    leaderboard_p99_ms: float
    leaderboard_req_per_s: float
    leaderboard_poll_p50_ms: float
    leaderboard_poll_p99_ms: float
    leaderboard_requests: int
    leaderboard_live_laps: int
    leaderboard_catch_up_s: float
    ingest_seconds: float
    ingest_duplicates: int | None = None
    dead_letters: int | None = None
    ingest_batches: int | None = None
    publish_seconds: float | None = None
    crash_acked: int | None = None
    crash_unstored_at_kill: int | None = None
    crash_lost: int | None = None
    crash_duplicated: int | None = None
    takeover_session_kept: bool | None = None
    crash_orphans: int | None = None
    crash_recovery_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------- cars (processes)


def _lap_message(car_id: str, run_id: str, seq: int, secret: str) -> tuple[str, bytes]:
    """(topic, signed JSON bytes) of one simulated lap report (`contracts.wire`'s wire format)."""
    from contracts import wire as protocol

    report = protocol.LapReport(
        car_id=car_id,
        run_id=run_id,
        seq=seq,
        lap=seq + 1,
        lap_time_ms=9_000 + (hash((car_id, seq)) % 4_000),
        offtrack_count=int(seq % 3 == 0),
        source="sim",
        sent_at=protocol.utc_now_iso(),
    )
    return protocol.car_topic(LEAGUE, car_id, "laps"), report.to_wire(secret)


def _connect_cars(port: int, cars: list[tuple[str, str, str, str]], suffix: str = "") -> list[Any]:
    """One started paho client per car, each with its own login, connected (or 10 s passed)."""
    import paho.mqtt.client as mqtt

    clients = []
    for car_id, username, password, _secret in cars:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=car_id + suffix, protocol=mqtt.MQTTv5
        )
        client.username_pw_set(username, password)
        client.max_inflight_messages_set(100)
        client.connect("127.0.0.1", port, keepalive=30)
        client.loop_start()
        clients.append(client)
    deadline = time.monotonic() + 10
    while not all(c.is_connected() for c in clients) and time.monotonic() < deadline:
        time.sleep(0.01)
    return clients


def _unacked(infos: list[Any]) -> int:
    unacked = 0
    for info in infos:
        try:
            info.wait_for_publish(timeout=60)
        except (RuntimeError, ValueError):
            unacked += 1
        if not info.is_published():
            unacked += 1
    return unacked


def _disconnect(clients: list[Any]) -> None:
    for client in clients:
        client.disconnect()
        client.loop_stop()


def _car_process(
    port: int, cars: list[tuple[str, str, str, str]], laps_per_car: int, start_at: float, out: Any
) -> None:
    """One publisher process: a paho client per car (own login), laps signed in advance, published from
    `start_at` (wall clock) on as fast as QoS 1 allows; puts (first_publish_s, all_acked_s, unacked) on `out`."""
    run_id = uuid.uuid4().hex
    clients = _connect_cars(port, cars)
    payloads = [[_lap_message(car[0], run_id, seq, car[3]) for seq in range(laps_per_car)] for car in cars]
    time.sleep(max(0.0, start_at - time.time()))
    first = time.time()
    infos = []
    for seq in range(laps_per_car):
        for client, reports in zip(clients, payloads, strict=True):
            infos.append(client.publish(*reports[seq], qos=1))
    unacked = _unacked(infos)
    done = time.time()
    _disconnect(clients)
    out.put((first, done, unacked))


def _live_car_process(
    port: int, cars: list[tuple[str, str, str, str]], laps_per_s: float, ready: Any, stop: Any, out: Any
) -> None:
    """Laps at a race's pace while the leaderboard is being read: the cars take turns, `laps_per_s` laps a
    second in all, signed as they go, until `stop` is set; puts (published, unacked) on `out`."""
    run_id = uuid.uuid4().hex
    clients = _connect_cars(port, cars, suffix="-live")
    ready.set()
    infos = []
    next_at = time.perf_counter()
    seq = 0
    while not stop.is_set():
        for client, car in zip(clients, cars, strict=True):
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += 1.0 / laps_per_s
            if stop.is_set():
                break
            infos.append(client.publish(*_lap_message(car[0], run_id, seq, car[3]), qos=1))
        seq += 1
    unacked = _unacked(infos)
    _disconnect(clients)
    out.put((len(infos), unacked))


def _crash_car_process(
    port: int,
    cars: list[tuple[str, str, str, str]],
    laps_per_car: int,
    stream_s: float,
    killed: Any,
    out: Any,
) -> None:
    """Cars publishing their laps spread over `stream_s` until the server is `killed`; puts (run_id,
    [(car_id, seq) the broker acknowledged]) on `out`. Nothing is re-sent after the kill: what a car's outbox
    would replay later is not counted, so every counted lap is one the car has already forgotten."""
    run_id = uuid.uuid4().hex
    clients = _connect_cars(port, cars)
    acks: list[dict[int, bool]] = [{} for _ in clients]
    for client, record in zip(clients, acks, strict=True):
        client.on_publish = lambda _c, _u, mid, rc, _p, r=record: r.__setitem__(mid, not rc.is_failure)
    sent: list[dict[int, int]] = [{} for _ in clients]  # per car: mid -> seq
    interval_s = stream_s / laps_per_car
    next_at = time.perf_counter()
    for seq in range(laps_per_car):
        if killed.wait(max(0.0, next_at - time.perf_counter())):
            break
        next_at += interval_s
        for i, (client, car) in enumerate(zip(clients, cars, strict=True)):
            sent[i][client.publish(*_lap_message(car[0], run_id, seq, car[3]), qos=1).mid] = seq
    killed.wait(120)
    for client in clients:
        client.loop_stop()
    acked = [
        (car[0], seq)
        for car, s_, a in zip(cars, sent, acks, strict=True)
        for mid, seq in s_.items()
        if a.get(mid)
    ]
    out.put((run_id, acked))


@dataclass(frozen=True)
class _CrashRun:
    acked: int
    unstored_at_kill: int
    lost: int
    duplicated: int
    session_kept: bool
    orphans: int
    recovery_s: float


def _takeover_attempt(port: int, car: tuple[str, str, str, str], server: Any, hold_s: float) -> bool:
    """A car's login, then a stranger without one, connect with the server's client id; True if the server's
    ingest stayed subscribed all along."""
    import paho.mqtt.client as mqtt

    from league_server.ingest.service import CLIENT_ID

    kept = True
    for username, password in ((car[1], car[2]), (None, None)):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=CLIENT_ID, protocol=mqtt.MQTTv5)
        if username:
            client.username_pw_set(username, password)
        client.connect("127.0.0.1", port, keepalive=5)
        client.loop_start()
        deadline = time.monotonic() + hold_s
        while time.monotonic() < deadline:
            kept = kept and bool((server.health() or {}).get("ingest_connected"))
            time.sleep(0.1)
        client.disconnect()
        client.loop_stop()
    return kept


def _crash_run(
    db_url: str,
    creds: list[tuple[str, str, str, str]],
    laps_per_car: int,
    stream_s: float,
    workdir: Path,
    stack: _Stack,
    say: Callable[[str], None],
) -> _CrashRun:
    """The README's server, a takeover attempt, kill -9 mid-stream, restart: see the module doc."""
    from league_server.core.db import make_engine
    from league_server.models import Lap
    from league_server.serve_process import ServeProcess

    token = secrets.token_urlsafe(16)
    serve = ServeProcess(db_url, workdir / "serve-data", workdir / "serve.log", token).start()
    stack.serve = serve
    engine = make_engine(db_url)
    ctx = mp.get_context("spawn")
    killed, out = ctx.Event(), ctx.Queue()
    chunks = [creds[i::PUBLISHER_PROCESSES] for i in range(PUBLISHER_PROCESSES)]
    procs = [
        ctx.Process(
            target=_crash_car_process,
            args=(serve.mqtt_port, c, laps_per_car, stream_s, killed, out),
            daemon=True,
        )
        for c in chunks
        if c
    ]
    try:
        before = _count(engine, Lap)
        for p in procs:
            p.start()
        say("crash run: a car's login and a stranger try to take the server's MQTT session")
        kept = _takeover_attempt(serve.mqtt_port, creds[0], serve, hold_s=stream_s * 0.15)
        total = len(creds) * laps_per_car
        _wait_for_laps(engine, before + total // 2, time.time() + 60)
        say("crash run: kill -9 of the server mid-stream")
        children = serve.kill9()
        stored_at_kill = _count(engine, Lap) - before
        killed.set()
        reports = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(10)
        orphans = _still_running(children, within_s=5.0)
        acked = {(car, run_id, seq) for run_id, pairs in reports for car, seq in pairs}
        say(f"crash run: restart on the same data directory; {len(acked)} laps were acknowledged")
        restarted = time.monotonic()
        serve.start()
        lost, duplicated = _wait_for_acked(engine, Lap, acked, {r[0] for r in reports}, time.time() + 60)
        unstored = max(0, len(acked) - stored_at_kill)
        return _CrashRun(len(acked), unstored, lost, duplicated, kept, orphans, time.monotonic() - restarted)
    finally:
        engine.dispose()


def _still_running(pids: set[int], within_s: float) -> int:
    """How many of `pids` still run after `within_s` (returns as soon as none does)."""
    from league_server.serve_process import alive

    deadline = time.monotonic() + within_s
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sum(alive(pid) for pid in pids)


def _wait_for_acked(
    engine: Any, lap_model: Any, acked: set[tuple[str, str, int]], run_ids: set[str], deadline: float
) -> tuple[int, int]:
    """(acknowledged laps not stored, duplicate rows) once all are stored or at `deadline`."""
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(lap_model.car_id, lap_model.run_id, lap_model.seq).where(lap_model.run_id.in_(run_ids))
            ).all()
        stored = {tuple(row) for row in rows}
        missing = len(acked - stored)
        if missing == 0 or time.time() > deadline:
            return missing, len(rows) - len(stored)
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------- the run


@dataclass
class _Stack:
    """What one benchmark run started (stopped in reverse order)."""

    broker: Any = None
    server: subprocess.Popen[bytes] | None = None
    serve: Any = None  # serve_process.ServeProcess of the crash run
    drop_database: Callable[[], None] | None = None

    def stop(self) -> None:
        if self.serve is not None:
            self.serve.stop()
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(5)
        if self.broker is not None:
            self.broker.stop()
        if self.drop_database is not None:
            self.drop_database()


def _database_url(database: str, workdir: Path, postgres_dsn: str, stack: _Stack) -> str:
    if database == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    try:
        import psycopg
    except ImportError:
        raise IngestBenchError("PostgreSQL bench needs psycopg: pip install 'pitlane[server]'") from None
    name = f"pitlane_bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise IngestBenchError(f"PostgreSQL is not reachable with {postgres_dsn!r}: {exc}") from None

    def drop() -> None:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack.drop_database = drop
    info = psycopg.conninfo.conninfo_to_dict(postgres_dsn)
    user = info.get("user", "postgres")
    return f"postgresql+psycopg://{user}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{name}"


def _provision(db_url: str, n_cars: int) -> tuple[int, list[tuple[str, str, str, str]]]:
    from league_server.core.db import make_engine, make_sessionmaker, upgrade
    from league_server.crud import cars, leagues, races

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            league = leagues.create_league(session, LEAGUE, "Benchmark league")
            team = leagues.create_team(session, league.id, "Bench team")
            event = leagues.create_event(session, league.id, "Benchmark")
            race = races.create_race(session, event.id, "Bench time trial", min_lap_time_s=5.0)
            creds = []
            for i in range(n_cars):
                racer = leagues.create_racer(session, league.id, f"Racer {i:03d}", team_id=team.id)
                _, cred = cars.provision_car(
                    session, league.id, f"car-{i:03d}", racer_id=racer.id, race_id=race.id
                )
                creds.append((cred.car_id, cred.mqtt_username, cred.mqtt_password, cred.hmac_secret))
            session.commit()
            return race.id, creds
    finally:
        engine.dispose()


def _start_server(
    db_url: str, broker_port: int, generated: Any, workdir: Path, stack: _Stack, admin_token: str
) -> str:
    from league_server.broker.embedded import free_port, wait_for_port

    port = free_port()
    env = dict(
        os.environ,
        PITLANE_DATABASE_URL=db_url,
        PITLANE_BROKER_URL=f"mqtt://127.0.0.1:{broker_port}",
        PITLANE_MQTT_USERNAME=generated.server_username,
        PITLANE_MQTT_PASSWORD=generated.server_password,
        PITLANE_INGEST_ENABLED="true",
        PITLANE_PUBLIC_RATE_LIMIT_PER_MINUTE="0",
        PITLANE_ADMIN_TOKEN=admin_token,
    )
    log_file = (workdir / "server.log").open("wb")
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "league_server.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    stack.server = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        wait_for_port("127.0.0.1", port, READY_TIMEOUT_S, stack.server)  # type: ignore[arg-type]
    except LeagueError as exc:
        tail = (workdir / "server.log").read_text(errors="replace")[-800:]
        raise IngestBenchError(f"league server did not start: {exc}; log: {tail}") from None
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        health = httpx.get(f"{base}/api/health", timeout=2).json()
        if health.get("ingest_connected"):
            return base
        time.sleep(0.1)
    raise IngestBenchError(f"ingest did not connect to the broker: {health}")


def _ingest_stats(base: str, admin_token: str) -> dict[str, Any]:
    """The server's ingest counters (GET /api/admin/ingest); {} if that route is unavailable."""
    import httpx

    response = httpx.get(
        f"{base}/api/admin/ingest", headers={"Authorization": f"Bearer {admin_token}"}, timeout=5
    )
    return response.json() if response.status_code == 200 else {}


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` (inclusive method)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[max(0, min(998, round(q * 1000) - 1))]


@dataclass(frozen=True)
class _IngestRun:
    stored: int
    rows: int
    elapsed_s: float
    publish_s: float


def _publish_and_wait(
    db_url: str, broker_port: int, creds: list[tuple[str, str, str, str]], laps_per_car: int, seconds: float
) -> _IngestRun:
    """Every car publishes `laps_per_car` laps at once; waits until all are stored (or `seconds` passed)."""
    from league_server.core.db import make_engine
    from league_server.models import Lap

    expected = len(creds) * laps_per_car
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0 + len(creds) * 0.02
    chunks = [creds[i::PUBLISHER_PROCESSES] for i in range(PUBLISHER_PROCESSES)]
    procs = [
        ctx.Process(target=_car_process, args=(broker_port, c, laps_per_car, start_at, out), daemon=True)
        for c in chunks
        if c
    ]
    for p in procs:
        p.start()
    engine = make_engine(db_url)
    try:
        _stored, last_change = _wait_for_laps(engine, expected, start_at + seconds)
        reports = [out.get(timeout=max(1.0, start_at + seconds - time.time() + 60)) for _ in procs]
        for p in procs:
            p.join(10)
        rows, distinct = _lap_counts(engine, Lap)
    finally:
        engine.dispose()
    first = min(r[0] for r in reports)
    return _IngestRun(distinct, rows, max(1e-6, last_change - first), max(r[1] for r in reports) - first)


def _wait_for_laps(engine: Any, expected: int, deadline: float) -> tuple[int, float]:
    """(laps stored, wall time of the last change) once `expected` are stored or at `deadline`."""
    from league_server.models import Lap

    stored, last_change = 0, time.time()
    while time.time() < deadline:
        now_stored = _count(engine, Lap)
        if now_stored != stored:
            stored, last_change = now_stored, time.time()
        if stored >= expected:
            break
        time.sleep(0.02)
    return stored, last_change


def _lap_counts(engine: Any, lap_model: Any) -> tuple[int, int]:
    """(rows, distinct (car_id, run_id, seq)) in the laps table."""
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(lap_model)).scalar_one()
        distinct = conn.execute(
            select(func.count()).select_from(
                select(lap_model.car_id, lap_model.run_id, lap_model.seq).distinct().subquery()
            )
        ).scalar_one()
    return int(rows), int(distinct)


@dataclass(frozen=True)
class _LeaderboardRun:
    closed: Any  # loadgen.LoadResult
    polled: Any
    live_laps: int
    catch_up_s: float


def _read_leaderboard_during_live_laps(
    url: str,
    db_url: str,
    broker_port: int,
    creds: list[tuple[str, str, str, str]],
    *,
    clients: int,
    requests_per_client: int,
    poll_interval_s: float,
    poll_rounds: int,
    live_laps_per_s: float,
) -> _LeaderboardRun:
    """Leaderboard GET latency (closed loop, then polling) while the cars keep lapping at
    `live_laps_per_s`; then how long after the last lap's commit the leaderboard counted it."""
    from bench import ingest_loadgen as loadgen
    from league_server.core.db import make_engine
    from league_server.models import Lap

    ctx = mp.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    live = ctx.Process(
        target=_live_car_process, args=(broker_port, creds, live_laps_per_s, ready, stop, out), daemon=True
    )
    live.start()
    engine = make_engine(db_url)
    try:
        ready.wait(READY_TIMEOUT_S)
        before = _count(engine, Lap)
        closed = loadgen.run_in_process(url, clients, requests_per_client)
        polled = loadgen.run_in_process(url, clients, poll_rounds, poll_interval_s)
        stop.set()
        published, _unacked_live = out.get(timeout=90)
        live.join(10)
        stored, committed_at = _wait_for_laps(engine, before + published, time.time() + 30)
    finally:
        engine.dispose()
    return _LeaderboardRun(closed, polled, stored - before, _catch_up_s(url, stored, committed_at))


def _catch_up_s(url: str, stored: int, committed_at: float, timeout_s: float = 10.0) -> float:
    """Seconds from `committed_at` until the leaderboard at `url` counts `stored` laps (inf: never)."""
    import httpx

    deadline = time.time() + timeout_s
    with httpx.Client(timeout=5) as client:
        while time.time() < deadline:
            board = client.get(url).json()
            if sum(e["laps"] for e in board["entries"]) >= stored:
                return max(0.0, time.time() - committed_at)
            time.sleep(0.02)
    return float("inf")


def run_ingest_bench(
    database: str,
    *,
    cars: int = 100,
    laps_per_car: int = 100,
    seconds: float = 120.0,
    clients: int = 100,
    requests_per_client: int = 200,
    poll_interval_s: float = 1.0,
    poll_rounds: int = 5,
    live_laps_per_s: float = 20.0,
    crash_stream_s: float = CRASH_STREAM_S,
    postgres_dsn: str = "host=127.0.0.1 port=5432 user=postgres dbname=test",
    on_progress: Callable[[str], None] | None = None,
) -> IngestBenchResult:
    """One benchmark run on `database` ("sqlite" or "postgresql"); `seconds` bounds the wait for ingest;
    `crash_stream_s`: how long the crash run's cars spread their laps over."""
    from league_server.broker.embedded import MosquittoProcess, free_port, mosquitto_binary
    from league_server.broker.mosquitto import generate_from_db

    if database not in ("sqlite", "postgresql"):
        raise IngestBenchError(f"database: expected sqlite or postgresql, got {database!r}")
    if mosquitto_binary() is None:
        raise IngestBenchError("mosquitto is not installed (apt-get install mosquitto)")
    say = on_progress or (lambda _msg: None)
    stack = _Stack()
    with tempfile.TemporaryDirectory(prefix="pitlane-bench-") as tmp:
        workdir = Path(tmp)
        try:
            db_url = _database_url(database, workdir, postgres_dsn, stack)
            say(f"{database}: provisioning {cars} cars")
            race_id, creds = _provision(db_url, cars)
            broker_port = free_port()
            generated = generate_from_db(db_url, workdir / "mosquitto", port=broker_port, bind="127.0.0.1")
            stack.broker = MosquittoProcess(generated.files.conf, "127.0.0.1", broker_port)
            stack.broker.start()
            say(f"{database}: starting the league server (uvicorn + ingest)")
            admin_token = secrets.token_urlsafe(16)
            base = _start_server(db_url, broker_port, generated, workdir, stack, admin_token)
            say(f"{database}: {cars} cars publish {cars * laps_per_car} signed laps")
            ingest = _publish_and_wait(db_url, broker_port, creds, laps_per_car, seconds)
            stats = _ingest_stats(base, admin_token)
            say(f"{database}: leaderboard GET, {clients} clients, cars lapping at {live_laps_per_s:g} laps/s")
            board = _read_leaderboard_during_live_laps(
                f"{base}/api/races/{race_id}/leaderboard",
                db_url,
                broker_port,
                creds,
                clients=clients,
                requests_per_client=requests_per_client,
                poll_interval_s=poll_interval_s,
                poll_rounds=poll_rounds,
                live_laps_per_s=live_laps_per_s,
            )
            stack.server.terminate()  # the event setup's server and broker make way for the README's
            stack.broker.stop()
            crash = _crash_run(
                db_url, creds, laps_per_car, crash_stream_s, workdir, stack, lambda m: say(f"{database}: {m}")
            )
            return _result(database, cars, cars * laps_per_car, ingest, board, stats, crash)
        finally:
            stack.stop()


def _result(
    database: str,
    cars: int,
    expected: int,
    ingest: _IngestRun,
    board: _LeaderboardRun,
    stats: dict[str, Any],
    crash: _CrashRun,
) -> IngestBenchResult:
    closed, polled = board.closed.latencies_ms, board.polled.latencies_ms
    return IngestBenchResult(
        database=database,
        cars=cars,
        laps=expected,
        stored=ingest.stored,
        laps_per_s=round(ingest.stored / ingest.elapsed_s, 1),
        lost=expected - ingest.stored,
        duplicated=ingest.rows - ingest.stored,
        leaderboard_p50_ms=round(percentile(closed, 0.50), 2),
        leaderboard_p99_ms=round(percentile(closed, 0.99), 2),
        leaderboard_req_per_s=round(board.closed.requests_per_s, 1),
        leaderboard_poll_p50_ms=round(percentile(polled, 0.50), 2),
        leaderboard_poll_p99_ms=round(percentile(polled, 0.99), 2),
        leaderboard_requests=len(closed) + len(polled),
        leaderboard_live_laps=board.live_laps,
        leaderboard_catch_up_s=round(board.catch_up_s, 3),
        ingest_seconds=round(ingest.elapsed_s, 3),
        ingest_duplicates=stats.get("duplicates"),
        dead_letters=stats.get("dead_letters_total"),
        ingest_batches=stats.get("batches"),
        publish_seconds=round(ingest.publish_s, 3),
        crash_acked=crash.acked,
        crash_unstored_at_kill=crash.unstored_at_kill,
        crash_lost=crash.lost,
        crash_duplicated=crash.duplicated,
        takeover_session_kept=crash.session_kept,
        crash_orphans=crash.orphans,
        crash_recovery_s=round(crash.recovery_s, 2),
    )


def _count(engine: Any, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())
