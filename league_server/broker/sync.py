"""Keeps the embedded broker's logins equal to the database's cars and timers.

Cars and timers are provisioned (and their credentials rotated) by the admin API or by `pitlane league admin`
in another process, straight into the database; the broker `pitlane league serve` started reads its password
file and ACL only at start and on SIGHUP. A thread compares the registry's logins with the last ones written,
once per `interval_s`, and rewrites the files (then SIGHUP) when they differ: a new car can log in about a
second after it was provisioned; a rotated password stops working as soon.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from league_server.broker.mosquitto import BrokerUser, check_server_username, load_users
from league_server.errors import ConfigError

log = logging.getLogger(__name__)


class LoginSync:
    """`sync()` once, or `start()` a thread that syncs every `interval_s`; `stop()` ends it.

    broker: an EmbeddedBroker started with its server login (`set_logins`, `server`); sessions: a SQLAlchemy
    sessionmaker.
    """

    def __init__(self, broker: Any, sessions: Any, interval_s: float = 1.0) -> None:
        self.broker = broker
        self.sessions = sessions
        self.interval_s = interval_s
        self._written: tuple[tuple[BrokerUser, ...], tuple[BrokerUser, ...]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> bool:
        """Write the registry's logins if they changed since the last write; True if it wrote."""
        with self.sessions() as session:
            cars, timers = load_users(session)
        current = (tuple(cars), tuple(timers))
        if current == self._written:
            return False
        check_server_username(self.broker.server.username, (*cars, *timers))
        self.broker.set_logins(cars, timers)
        self._written = current
        log.info("broker logins: %d cars, %d timers", len(cars), len(timers))
        return True

    def start(self) -> LoginSync:
        self.sync()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pitlane-broker-logins", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sync()
            # The next round retries; a refused login set must not stop the server or this thread.
            except (SQLAlchemyError, ConfigError, OSError) as exc:
                log.error("cannot update the broker's logins: %s", exc)
