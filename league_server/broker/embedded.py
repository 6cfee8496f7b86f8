"""The local MQTT broker `pitlane league serve` starts when no broker is configured (``broker_url`` None).

Two real brokers, best first (``backend="auto"``):

1. ``mosquitto``: the installed ``mosquitto`` binary, started as a child process on localhost with a generated
   config (persistence on in ``data_dir``, anonymous logins allowed on the local listener only). This is the
   same broker as at an event, so every guarantee pitlane relies on holds: MQTT 3.1.1 and 5, QoS 1 with
   persistent sessions whose unacknowledged messages are re-sent on reconnect (at-least-once ingest with
   acknowledgement after the database commit), retained status messages and last wills.
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
import getpass
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

from league_server.broker.mosquitto import MAX_INFLIGHT_MESSAGES, MAX_QUEUED_MESSAGES
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


def run_as_user_option() -> str | None:
    """The mosquitto.conf ``user`` value: the current user when root (else Mosquitto drops to ``mosquitto``,
    which cannot write a root-owned data dir); None otherwise."""
    return getpass.getuser() if hasattr(os, "geteuid") and os.geteuid() == 0 else None


class MosquittoProcess:
    """A ``mosquitto -c CONF`` child process; `start` waits until it listens, `stop` ends it."""

    def __init__(self, conf: Path, host: str, port: int, log_path: Path | None = None) -> None:
        self.conf = conf
        self.host = host
        self.port = port
        self.log_path = log_path or conf.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [binary, "-c", str(self.conf)], stdout=log_file, stderr=subprocess.STDOUT
            )
        try:
            wait_for_port(self.host, self.port, timeout_s, self.process)
        except BrokerError as exc:
            self.stop()
            tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-600:]
            raise BrokerError(f"{exc}; mosquitto log: {tail.strip()}") from None
        log.info("mosquitto (pid %d) listening on %s:%d", self.process.pid, self.host, self.port)

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


def local_mosquitto_conf(data_dir: Path, host: str, port: int) -> str:
    """Config of the local broker: one listener on `host`, anonymous (local only), persistence in `data_dir`."""
    lines = [
        "# pitlane league serve: local broker (anonymous on this listener only; use broker-config for events)",
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
    user = run_as_user_option()
    if user:
        lines.append(f"user {user}")
    return "\n".join(lines) + "\n"


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
    data_dir: where mosquitto keeps its config and persistence (default: a new temporary directory).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        backend: Backend = "auto",
        data_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.requested_backend = backend
        self.backend: str | None = None
        self._data_dir = data_dir
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
        if _listening(self.host, self.port):
            raise BrokerError(
                f"{self.host}:{self.port} is already in use (a broker already running there? then pass "
                f"--broker mqtt://{self.host}:{self.port}, or choose another embedded broker port)"
            )
        backend = self.requested_backend
        if backend == "auto":
            backend = "mosquitto" if mosquitto_binary() else "amqtt"
        if backend == "mosquitto":
            if self._data_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="pitlane-broker-")
                self._data_dir = Path(self._tmp.name)
            self._data_dir.mkdir(parents=True, exist_ok=True)
            conf = self._data_dir / "mosquitto-local.conf"
            conf.write_text(local_mosquitto_conf(self._data_dir, self.host, self.port), encoding="utf-8")
            impl: MosquittoProcess | _AmqttThread = MosquittoProcess(conf, self.host, self.port)
        elif backend == "amqtt":
            log.warning(
                "mosquitto not found: using the amqtt fallback broker (MQTT 3.1.1 only; unacknowledged "
                "in-flight laps are not re-sent after a server crash). Install mosquitto for events."
            )
            impl = _AmqttThread(self.host, self.port)
        else:
            raise BrokerError(f"backend: expected auto, mosquitto or amqtt, got {backend!r}")
        impl.start()
        self._impl = impl
        self.backend = backend
        return self

    def stop(self) -> None:
        """Stop the broker (idempotent) and remove its temporary directory."""
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
