"""Durability: a car process killed with SIGKILL (while the broker is unreachable, and while it publishes)
loses no lap: its outbox replays every unacknowledged lap after a restart; the subscriber dedupes by
(car_id, run_id, seq), as the league server does."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from contracts.wire import verify
from tests.conftest import REPO_ROOT
from tests.device.conftest import SECRET

# One xdist worker runs these tests (--dist loadgroup), so that
# the session's exported car models (tests/device/conftest.py) are built once.
pytestmark = pytest.mark.xdist_group("device-models")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _outbox_rows(path: Path) -> list[tuple[str, int, bool]]:
    if not path.exists():
        return []
    try:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT run_id, seq, acked_s IS NOT NULL FROM laps ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # the car is still creating it
        return []
    return [(r, int(s), bool(a)) for r, s, a in rows]


class AckDroppingProxy:
    """A TCP proxy in front of the broker that can stop passing the broker's bytes back to the car: the car's
    PUBLISH still reaches the broker (subscribers get the lap) but its PUBACK never comes back — a network
    that fails right after a send."""

    def __init__(self, broker: tuple[str, int]) -> None:
        self.broker = broker
        self.drop_downstream = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                car, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.broker)
            self._sockets += [car, upstream]
            threading.Thread(target=self._pump, args=(car, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, car, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if not (downstream and self.drop_downstream.is_set()):
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection (the network fails); new connections are still accepted."""
        self.drop_downstream.clear()
        for sock in self._sockets[1:]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._sockets = self._sockets[:1]

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _drive(
    car: Path, model: Path, ids, creds: Path, outbox: Path, broker: str, laps: int
) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "pitlane",
        "drive",
        "--car",
        str(car),
        "--model",
        str(model),
        "--hal",
        "sim",
        "--fast",
        "--laps",
        str(laps),
        "--league",
        broker,
        "--league-id",
        ids[0],
        "--car-id",
        ids[1],
        "--credentials",
        str(creds),
        "--outbox",
        str(outbox),
        "--json",
    ]
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _kill_when(proc: subprocess.Popen, ready, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not ready():
            assert proc.poll() is None, f"the car exited early: {proc.communicate()}"
            time.sleep(0.02)
        assert ready(), "the condition to kill the car never came"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def test_kill_9_then_restart_loses_no_lap(
    write_car, state_model: Path, ids, credentials_file: Path, lap_subscriber, tmp_path: Path, mosquitto
) -> None:
    car = write_car("")
    outbox = tmp_path / "outbox.sqlite"
    broker = f"mqtt://{mosquitto[0]}:{mosquitto[1]}"
    args = (car, state_model, ids, credentials_file, outbox)

    # 1. the network is down (nothing listens on that port): laps pile up in the outbox; SIGKILL
    down = _drive(*args, f"mqtt://127.0.0.1:{_free_port()}", laps=1000)
    _kill_when(down, lambda: len(_outbox_rows(outbox)) >= 3)
    offline_run = _outbox_rows(outbox)
    assert not any(acked for *_, acked in offline_run) and lap_subscriber.unique() == {}

    # 2. SIGKILL while it publishes: run 1's laps are replayed, new laps flow; then the network fails after
    #    a send (the broker has the lap, its PUBACK is lost) and the car is killed with that lap unacked
    proxy = AckDroppingProxy(mosquitto)
    live = _drive(*args, f"mqtt://127.0.0.1:{proxy.port}", laps=1000)
    offline_keys = {(ids[1], run, seq) for run, seq, _ in offline_run}

    def delivered_but_unacked() -> bool:
        got = lap_subscriber.unique()
        if not offline_keys <= set(got) or len(got) == len(offline_keys):
            return False  # wait for run 1's replay and a first lap of run 2
        proxy.drop_downstream.set()
        return any(not acked and (ids[1], run, seq) in got for run, seq, acked in _outbox_rows(outbox))

    try:
        _kill_when(live, delivered_but_unacked)
    finally:
        proxy.close()
    killed = _outbox_rows(outbox)
    assert len({run for run, *_ in killed}) == 2

    # 3. a clean restart drives one more lap and replays whatever the kill left unacknowledged
    final = _drive(*args, broker, laps=1)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    rows = _outbox_rows(outbox)
    assert len({run for run, *_ in rows}) == 3 and all(acked for *_, acked in rows), rows
    expected = {(ids[1], run, seq) for run, seq, _ in rows}
    received = lap_subscriber.wait_for(len(expected), timeout_s=15)
    assert set(received) == expected  # every lap ever recorded arrived, none invented
    for run in {run for run, *_ in rows}:  # each run's laps are seq 0..n-1 without holes
        seqs = sorted(seq for _, r, seq in received if r == run)
        assert seqs == list(range(len(seqs)))
    for raw in received.values():
        verify(raw, SECRET)
    # the killed processes' last will: the broker published `offline` for them
    assert any(s == {"schema": 1, "state": "offline"} for s in lap_subscriber.status)


def test_reconnect_replays_unacknowledged_laps_without_a_restart(
    write_car, ids, credentials_file: Path, lap_subscriber, tmp_path: Path, mosquitto
) -> None:
    """PUBACKs lost, then the connection drops: after paho reconnects, the laps are sent again and acked."""
    from contracts.hal import LapEvent
    from device.config import load_runtime_config
    from device.drive import league_setup
    from device.estop import SafetyLatch
    from device.laps import LapBook
    from device.outbox import Outbox
    from device.telemetry import LeagueLink

    proxy = AckDroppingProxy(mosquitto)
    config = load_runtime_config(write_car(""))
    setup = league_setup(
        config,
        broker_url=f"mqtt://127.0.0.1:{proxy.port}",
        league_id=ids[0],
        car_id=ids[1],
        credentials_file=credentials_file,
    )
    outbox = Outbox(tmp_path / "o.sqlite")
    book = LapBook(car_id=ids[1], model_sha256=None)
    link = LeagueLink(
        config, setup.league, setup.credentials, outbox, SafetyLatch(), run_id=book.run_id, model_sha256=None
    )
    try:
        link.start()
        assert link.wait_connected(5)
        proxy.drop_downstream.set()  # the broker gets the laps, the car never hears back
        for t_s in (9.5, 9.25, 9.75):
            link.add_lap(book.record(LapEvent(t_s, "manual")))
        assert len(lap_subscriber.wait_for(3, timeout_s=5)) == 3
        time.sleep(0.2)
        assert outbox.counts() == (3, 3)  # all three unacknowledged
        proxy.cut()  # the connection drops; paho reconnects through the proxy
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and outbox.counts()[1]:
            time.sleep(0.05)
        assert outbox.counts() == (3, 0)
        assert sorted(k[2] for k in lap_subscriber.unique()) == [0, 1, 2]  # duplicates deduped
        assert len(lap_subscriber.raw) >= 4  # at least one lap really was sent twice
    finally:
        link.close(flush_s=0.5)
        outbox.close()
        proxy.close()
