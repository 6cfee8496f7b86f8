"""The local MQTT broker `pitlane league serve` starts when no broker is configured (``broker_url`` None).

Two real brokers, best first (``backend="auto"``):

1. ``mosquitto``: the installed ``mosquitto`` binary, started as a child process with a generated config in
   ``data_dir``. With `logins` (what `pitlane league serve` uses) it is configured as for an event
   (mosquitto.py): no anonymous logins, a password file and ACL of every car and timer in the database (kept
   current by sync.py), client ids bound to logins, a packet size limit. Without `logins` (tests and tools on
   loopback only) it allows anonymous clients. Either way it is the same broker as at an event, so every
   guarantee pitlane relies on holds: MQTT 3.1.1 and 5, QoS 1 with persistent sessions whose unacknowledged
   messages are re-sent on reconnect (at-least-once ingest with acknowledgement after the database commit),
   retained status messages and last wills.

   Crash safety: the persistence (sessions and queued laps) lives in ``data_dir``, so it survives a restart;
   the broker gets SIGTERM when the process that started it dies, even by ``kill -9`` (Linux's parent-death
   signal), and saves its queue as it stops; a broker left running by an earlier server (its pid file in
   ``data_dir``) is stopped the same way before a new one starts on that folder.
2. ``amqtt`` (0.12.x, pure Python, in-process on its own asyncio thread) when Mosquitto is not installed.
   Checked against paho-mqtt 2 (tests/league/test_broker_embedded.py). What works: MQTT 3.1.1 QoS 1 publish
   and subscribe, persistent sessions (QoS 1 messages queued while the server is disconnected are delivered
   on reconnect), retained messages, last will. Its limits, which is why it is only the fallback:

   - MQTT 3.1.1 only: an MQTT 5 CONNECT is refused (protocol level 4 only), so clients must use MQTTv311.
   - A QoS 1 message delivered but not acknowledged is *dropped* by the broker after 5 s or when the
     subscriber disconnects (``handler.mqtt_publish`` pops it from ``inflight_out`` in a ``finally``); it is
     not re-sent on reconnect (MQTT-4.4.0-1). With amqtt, a server crash between delivery and database
     commit can lose those in-flight laps, and a database stall longer than 5 s loses them too.
   - With ``allow-anonymous`` on, amqtt marks every session anonymous and discards its queued messages on
     disconnect; so this broker runs with anonymous off, where amqtt accepts *any* username without
     checking a password (no authentication: bind it to localhost only).
   - No persistence across a broker restart (sessions and retained messages live in memory), messages
     queued for offline sessions are delivered with the retain flag set, and a retained message can be
     delivered twice to a new subscriber.

For an event, run Mosquitto with `pitlane league broker-config` (per-car passwords and ACLs) instead.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

from league_server.broker.mosquitto import (
    CONF_NAME,
    MAX_INFLIGHT_MESSAGES,
    MAX_QUEUED_MESSAGES,
    BrokerFiles,
    BrokerUser,
    broker_account,
    hand_over,
    write_config,
    write_logins,
)
from league_server.errors import LeagueError

log = logging.getLogger(__name__)

Backend = Literal["auto", "mosquitto", "amqtt"]
START_TIMEOUT_S = 10.0


class BrokerError(LeagueError, RuntimeError):
    """The local broker could not be started (the message says why: port in use, binary missing, ...)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Return once host:port accepts TCP connections; BrokerError after `timeout_s` or if `process` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(
                f"broker exited with status {process.returncode} before listening on {host}:{port}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"broker did not listen on {host}:{port} within {timeout_s:.0f} s")


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def mosquitto_binary() -> str | None:
    """Path of the mosquitto binary (PATH, then /usr/sbin), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Resolved in the parent: the child between fork and exec should only make the system call.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies (any way, kill -9 included).

    Why: a broker outliving a killed server keeps the port, so the restart is refused, and its queue is not on
    disk until it stops. The signal goes when the *thread* that started the child ends, so brokers are started
    from the server's main thread (the app's lifespan). Linux forgets the request when a process changes its
    user, so a broker that should not run as root is started as its account (Popen's `user`) rather than left
    to drop root itself. Elsewhere than Linux this is skipped; the pid file (`stop_leftover`) still catches a
    broker left behind.
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _pid_alive_as(pid: int, conf: Path) -> bool:
    """True if process `pid` runs and its command line names `conf` (so it is our broker, not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(conf).encode() in cmdline


def stop_leftover(conf: Path, pid_file: Path, timeout_s: float = START_TIMEOUT_S) -> bool:
    """Stop a broker an earlier server started with `conf` and could not stop (it was killed): SIGTERM, so it
    saves its queue first. False if there was none (no pid file, or its process is gone or not ours)."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return False
    conf = conf.resolve()
    if not _pid_alive_as(pid, conf):
        return False
    log.warning("stopping mosquitto (pid %d) left running by an earlier server on %s", pid, conf)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive_as(pid, conf):
        if time.monotonic() > deadline:
            raise BrokerError(f"mosquitto (pid {pid}) from an earlier server did not stop; stop it by hand")
        time.sleep(0.05)
    return True


def _as_account(account: str | None) -> dict[str, object]:
    """Popen arguments that start the child as `account` (root starting an unprivileged broker), else {}."""
    if account is None or account == "root" or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(account)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class MosquittoProcess:
    """A ``mosquitto -c CONF`` child process; `start` waits until it listens, `stop` ends it.

    pid_file: the config's ``pid_file`` (if any): a broker still running from a killed server is stopped
    (SIGTERM, so it saves its queue) before this one starts. run_as: the account to start it as when this
    process is root (the config's ``user``); None: as this process's user.
    """

    def __init__(
        self,
        conf: Path,
        host: str,
        port: int,
        log_path: Path | None = None,
        pid_file: Path | None = None,
        run_as: str | None = None,
    ) -> None:
        self.conf = conf
        self.host = host
        self.port = port
        self.log_path = log_path or conf.with_suffix(".log")
        self.pid_file = pid_file
        self.run_as = run_as
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        if self.pid_file is not None:
            stop_leftover(self.conf, self.pid_file)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [binary, "-c", str(self.conf.resolve())],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # one system call in the child: safe beside threads
                **_as_account(self.run_as),  # type: ignore[arg-type]
            )
        try:
            wait_for_port(self.host, self.port, timeout_s, self.process)
        except BrokerError as exc:
            self.stop()
            tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-600:]
            raise BrokerError(f"{exc}; mosquitto log: {tail.strip()}") from None
        log.info("mosquitto (pid %d) listening on %s:%d", self.process.pid, self.host, self.port)

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password file and ACL (connected clients stay connected)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


def local_mosquitto_conf(data_dir: Path, host: str, port: int, pid_file: Path | None = None) -> str:
    """Config of an anonymous local broker (tests and tools): one listener on `host`, persistence in `data_dir`."""
    lines = [
        "# pitlane: local anonymous broker (loopback tests and tools; `pitlane league serve` uses logins)",
        f"listener {port} {host}",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {data_dir.resolve()}/",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
    ]
    if pid_file is not None:
        lines.append(f"pid_file {pid_file.resolve()}")
    user = broker_account(data_dir)
    if user:
        lines.append(f"user {user}")
    return "\n".join(lines) + "\n"


PID_NAME = "mosquitto.pid"
LOCAL_CONF_NAME = "mosquitto-local.conf"


def stop_embedded_leftover(data_dir: Path) -> bool:
    """Stop the broker a killed server left running on `data_dir` (its queue is saved); False if none."""
    pid_file = data_dir / PID_NAME
    return any(stop_leftover(data_dir / name, pid_file) for name in (CONF_NAME, LOCAL_CONF_NAME))


class _AmqttThread:
    """amqtt's Broker on its own asyncio loop in a daemon thread (the league server's loop is uvicorn's)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: object | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        try:
            from amqtt.broker import Broker
            from amqtt.errors import AMQTTError
            from amqtt.errors import BrokerError as AmqttBrokerError
        except ImportError:
            raise BrokerError(
                "no local broker: install mosquitto (apt-get install mosquitto) or amqtt (pip install amqtt)"
            ) from None
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # allow_anonymous False: amqtt keeps persistent sessions only for non-anonymous logins (see above).
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
        }
        self._loop = asyncio.new_event_loop()

        async def _start() -> None:
            broker = Broker(config, loop=self._loop)
            await broker.start()
            self._broker = broker

        def _run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(_start())
            # Reported to start() below: the thread must not die silently.
            except (AMQTTError, AmqttBrokerError, OSError) as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=_run, name="amqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            raise BrokerError(f"amqtt did not start on {self.host}:{self.port}: {self._error}")

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._broker is not None:
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)  # type: ignore[attr-defined]
            try:
                future.result(timeout=10)
            except (TimeoutError, RuntimeError, OSError) as exc:  # must not stop the server's own shutdown
                log.warning("amqtt shutdown: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = None
        self._thread = None


class EmbeddedBroker:
    """A local MQTT broker on host:port for `pitlane league serve` without ``--broker``.

    backend: "auto" (mosquitto if installed, else amqtt), "mosquitto" or "amqtt".
    data_dir: where mosquitto keeps its config, logins, pid file and persistence (default: a new temporary
        directory, gone after `stop`; `serve` passes a folder of its data directory so the queue survives).
    server: the league server's own login (password hash in `.password_hash`); with it the broker takes only
        logins (mosquitto.py's event config, every client id bound to its login), starting with the server's
        alone: `set_logins` adds the cars' and timers' (sync.py). None: anonymous, loopback only.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        backend: Backend = "auto",
        data_dir: Path | None = None,
        server: BrokerUser | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.requested_backend = backend
        self.backend: str | None = None
        self.server = server
        self._data_dir = data_dir
        self._files: BrokerFiles | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._impl: MosquittoProcess | _AmqttThread | None = None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` of the running broker."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def mqtt_protocols(self) -> tuple[str, ...]:
        """MQTT versions clients may use with this backend."""
        return ("3.1.1",) if self.backend == "amqtt" else ("3.1.1", "5")

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it accepts connections; BrokerError if it cannot."""
        if self._impl is not None:
            return self
        backend = self.requested_backend
        if backend == "auto":
            backend = "mosquitto" if mosquitto_binary() else "amqtt"
        if backend == "mosquitto":
            impl: MosquittoProcess | _AmqttThread = self._mosquitto()
        elif backend == "amqtt":
            self._check_free()
            if self.server is not None and not self.host.startswith("127."):
                raise BrokerError(
                    "mosquitto is not installed and the amqtt fallback checks no passwords: it listens on "
                    "loopback only (install mosquitto to let cars log in over the network)"
                )
            log.warning(
                "mosquitto not found: using the amqtt fallback broker (MQTT 3.1.1 only; no passwords, so any "
                "local client may take a session; unacknowledged in-flight laps are not re-sent after a "
                "server crash). Install mosquitto for events."
            )
            impl = _AmqttThread(self.host, self.port)
        else:
            raise BrokerError(f"backend: expected auto, mosquitto or amqtt, got {backend!r}")
        impl.start()
        self._impl = impl
        self.backend = backend
        return self

    def _check_free(self) -> None:
        if _listening(self.host, self.port):
            raise BrokerError(
                f"{self.host}:{self.port} is already in use (a broker already running there? then pass "
                f"--broker mqtt://{self.host}:{self.port}, or choose another embedded broker port)"
            )

    def _mosquitto(self) -> MosquittoProcess:
        if self._data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pitlane-broker-")
            self._data_dir = Path(self._tmp.name)
        data_dir = self._data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        account = broker_account(data_dir)
        stop_embedded_leftover(data_dir)  # before the port check: a leftover broker of ours holds the port
        pid_file = data_dir / PID_NAME
        if self.server is None:
            conf = data_dir / LOCAL_CONF_NAME
            conf.write_text(local_mosquitto_conf(data_dir, self.host, self.port, pid_file), encoding="utf-8")
            hand_over(data_dir, (conf,), account)
        else:
            self._files = write_config(
                data_dir,
                cars=[],
                server=self.server,
                port=self.port,
                bind=self.host,
                run_as_user=account,
                pid_file=pid_file,
            )
            conf = self._files.conf
        self._check_free()
        return MosquittoProcess(conf, self.host, self.port, pid_file=pid_file, run_as=account)

    def set_logins(self, cars: list[BrokerUser], timers: list[BrokerUser]) -> None:
        """Let exactly these cars and timers (and the server) log in, from now on (SIGHUP; no reconnects)."""
        if self.server is None or self._files is None or not isinstance(self._impl, MosquittoProcess):
            return
        write_logins(self._files, cars=cars, server=self.server, timers=timers)
        self._impl.reload()

    def stop(self) -> None:
        """Stop the broker (idempotent; it saves its queue in data_dir) and remove a temporary data_dir."""
        if self._impl is not None:
            self._impl.stop()
            self._impl = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self._data_dir = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
