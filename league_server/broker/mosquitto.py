"""Mosquitto configuration from the car and timer registries (every league in the database): for an event
(`pitlane league broker-config`) and for the broker `pitlane league serve` starts itself (embedded.py).

`pitlane league broker-config --db URL --out DIR` writes three files into DIR:

- ``mosquitto.conf``: one listener, persistence on (``persistence_location`` = DIR, so QoS 1 messages queued
  for the server's persistent session survive a broker restart), ``allow_anonymous false``, the password file
  and the ACL, queue limits sized for a league (Mosquitto's default ``max_queued_messages 1000`` would
  drop laps while the server is down for a minute at a large event), ``use_username_as_clientid`` (a
  connection's client id is its login, so no car, timer or stranger can take over the server's persistent
  session, or another car's, by connecting with its client id) and a packet size limit (a lap report is a few
  hundred bytes; a padded megabyte is a disconnect, not a stored message).
- ``passwords``: ``username:$7$...`` lines written straight from the database's car password hashes
  (`league_server.core.security.hash_mqtt_password` stores Mosquitto's own PBKDF2-SHA512 format), so no
  plain-text car password ever exists on the server side; the same for each timer; plus the league
  server's own login.
- ``acl``: each car may publish only to ``pitlane/<its league>/cars/<its car_id>/{laps,status,telemetry}``
  and read only its own ``.../command``; each timer may publish only
  ``pitlane/<its league>/timers/<its id>/crossings``; the server user reads ``pitlane/#`` and writes car
  commands.

Run as root, Mosquitto drops to the ``mosquitto`` account (``nobody`` where there is none) before it reads the
password file and writes its persistence: the files and DIR are then handed to that account (mode 0600/0700),
so the printed command works as root (Raspberry Pi, Docker, systemd) and as a normal user alike.

Hand-written (a few dozen lines of text) because Mosquitto's formats are plain text and no library writes
them; the formats are documented in mosquitto.conf(5).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.wire import MAX_PAYLOAD_BYTES, TOPIC_ROOT
from league_server.errors import ConfigError

CONF_NAME = "mosquitto.conf"
PASSWORDS_NAME = "passwords"
ACL_NAME = "acl"
SERVER_ENV_NAME = "server.env"
DEFAULT_PORT = 1883
# The league server's own login: a '.' no car or timer login has (theirs come from ids of letters, digits,
# '-' and '_'), so provisioning can never hand the server's name to a car.
DEFAULT_SERVER_USERNAME = "pitlane.server"
# Per client: QoS 1 messages queued while a persistent session is offline, and in flight (unacked) at once.
MAX_QUEUED_MESSAGES = 1_000_000
MAX_INFLIGHT_MESSAGES = 1000
# Largest MQTT packet a client may send (bytes): the protocol's largest payload, a topic and headers.
# Larger: the client is disconnected, and nothing is stored.
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 1024
# The account Mosquitto started as root switches to (mosquitto.conf(5), `user`).
MOSQUITTO_ACCOUNTS = ("mosquitto", "nobody")

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CAR_PUBLISH_CHANNELS = ("laps", "status", "telemetry")


@dataclass(frozen=True)
class BrokerUser:
    """One broker login: `password_hash` in Mosquitto's ``$7$`` format; `car_id` for a car, `timer_id` for a
    trackside timer, neither for the server; `league`: the car's or timer's league slug."""

    username: str
    password_hash: str
    car_id: str | None = None
    timer_id: str | None = None
    league: str | None = None


@dataclass(frozen=True)
class BrokerFiles:
    """Paths of the files `write_config` wrote."""

    conf: Path
    passwords: Path
    acl: Path


def _check_user(user: BrokerUser) -> None:
    if not _USERNAME.match(user.username):
        raise ConfigError(
            f"mqtt username {user.username!r}: expected 1-128 letters, digits, '_', '.', '@', '-'"
        )
    if not user.password_hash.startswith("$7$") or user.password_hash.count("$") != 4:
        raise ConfigError(
            f"mqtt user {user.username!r}: password hash is not Mosquitto's $7$ format "
            "(re-provision the car's credentials)"
        )
    if user.car_id is not None and not _ID.match(user.car_id):
        raise ConfigError(f"car_id {user.car_id!r}: expected 1-64 letters, digits, '-' or '_'")
    if user.timer_id is not None and not _ID.match(user.timer_id):
        raise ConfigError(f"timer_id {user.timer_id!r}: expected 1-64 letters, digits, '-' or '_'")
    if (user.car_id or user.timer_id) and not (user.league and _ID.match(user.league)):
        raise ConfigError(f"mqtt user {user.username!r}: league {user.league!r} is not a league slug")


def render_passwords(users: Iterable[BrokerUser]) -> str:
    """The password file: one ``username:hash`` line per user (duplicate usernames are an error)."""
    seen: set[str] = set()
    lines = []
    for user in users:
        _check_user(user)
        if user.username in seen:
            raise ConfigError(
                f"mqtt username {user.username!r} appears twice in the car and timer registries"
            )
        seen.add(user.username)
        lines.append(f"{user.username}:{user.password_hash}")
    return "\n".join(lines) + "\n"


def render_acl(cars: Iterable[BrokerUser], server_username: str, timers: Iterable[BrokerUser] = ()) -> str:
    """The ACL file (mosquitto.conf(5), acl_file): per-user topic rules, nothing for anyone else."""
    out = [
        "# Generated by pitlane from the car and timer registries; regenerate after provisioning (then SIGHUP).",
        f"user {server_username}",
        f"topic read {TOPIC_ROOT}/#",
        f"topic write {TOPIC_ROOT}/+/cars/+/command",
        "",
    ]
    for car in cars:
        _check_user(car)
        if car.car_id is None:
            raise ConfigError(f"mqtt user {car.username!r}: a car login needs its car_id")
        root = f"{TOPIC_ROOT}/{car.league}/cars/{car.car_id}"
        out.append(f"user {car.username}")
        out.extend(f"topic write {root}/{channel}" for channel in CAR_PUBLISH_CHANNELS)
        out.append(f"topic read {root}/command")
        out.append("")
    for timer in timers:
        _check_user(timer)
        if timer.timer_id is None:
            raise ConfigError(f"mqtt user {timer.username!r}: a timer login needs its timer_id")
        topic = f"{TOPIC_ROOT}/{timer.league}/timers/{timer.timer_id}/crossings"
        out.extend((f"user {timer.username}", f"topic write {topic}", ""))
    return "\n".join(out)


def render_conf(
    out_dir: Path,
    *,
    port: int,
    bind: str | None = None,
    run_as_user: str | None = None,
    autosave_interval_s: int = 10,
    pid_file: Path | None = None,
) -> str:
    """mosquitto.conf pointing at the password file and ACL in `out_dir` (absolute paths).

    bind: listener address (None = every interface, as cars on the event network need); run_as_user: the
    ``user`` option (None: Mosquitto's default, `broker_account()` when started as root); autosave_interval_s:
    how often the in-memory queue is written to `out_dir` (it is also written on a clean stop); pid_file: where
    Mosquitto writes its process id (the embedded broker finds a broker left over from a killed server by it).
    """
    if not 0 < port < 65536:
        raise ConfigError(f"port: expected 1-65535, got {port}")
    out_dir = out_dir.resolve()
    lines = [
        "# Generated by pitlane (mosquitto.conf(5)).",
        f"listener {port}" + (f" {bind}" if bind else ""),
        "allow_anonymous false",
        "use_username_as_clientid true",
        f"password_file {out_dir / PASSWORDS_NAME}",
        f"acl_file {out_dir / ACL_NAME}",
        f"max_packet_size {MAX_PACKET_BYTES}",
        "persistence true",
        f"persistence_location {out_dir}/",
        f"autosave_interval {autosave_interval_s}",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if pid_file is not None:
        lines.append(f"pid_file {pid_file.resolve()}")
    if run_as_user:
        lines.append(f"user {run_as_user}")
    return "\n".join(lines) + "\n"


def broker_account(out_dir: Path) -> str | None:
    """The ``user`` option for a Mosquitto that keeps its files in `out_dir`, started by the current user.

    Not root: None (Mosquitto keeps the user that started it). Root: Mosquitto drops to an unprivileged
    account before it reads the password file, so the first of ``mosquitto``, ``nobody`` that exists and can
    enter every folder above `out_dir`; ``root`` when none can (a folder such as ``/root`` is closed to them),
    so the command works as printed either way.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    for name in MOSQUITTO_ACCOUNTS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if _can_enter_parents(out_dir.resolve(), entry):
            return name
    return "root"


def _can_enter_parents(path: Path, account: pwd.struct_passwd) -> bool:
    groups = {account.pw_gid, *(g.gr_gid for g in grp.getgrall() if account.pw_name in g.gr_mem)}
    for parent in path.parents:
        mode = parent.stat()
        if mode.st_uid == account.pw_uid:
            bit = stat.S_IXUSR
        elif mode.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not mode.st_mode & bit:
            return False
    return True


def hand_over(out_dir: Path, files: Iterable[Path], account: str | None) -> None:
    """chown `out_dir` and `files` to `account` (None or root: leave them), the account Mosquitto runs as."""
    if account is None or account == "root":
        return
    entry = pwd.getpwnam(account)
    for path in (out_dir, *files):
        os.chown(path, entry.pw_uid, entry.pw_gid)


def write_config(
    out_dir: Path,
    *,
    cars: Iterable[BrokerUser],
    server: BrokerUser,
    port: int = DEFAULT_PORT,
    bind: str | None = None,
    run_as_user: str | None = None,
    timers: Iterable[BrokerUser] = (),
    autosave_interval_s: int = 10,
    pid_file: Path | None = None,
) -> BrokerFiles:
    """Write mosquitto.conf, passwords and acl into `out_dir` (created, 0700; the files 0600). run_as_user:
    the account Mosquitto runs as (default `broker_account`); the folder and files are handed to it."""
    cars, timers = list(cars), list(timers)
    run_as_user = run_as_user or broker_account(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir.chmod(0o700)
    files = BrokerFiles(out_dir / CONF_NAME, out_dir / PASSWORDS_NAME, out_dir / ACL_NAME)
    write_logins(files, cars=cars, server=server, timers=timers)
    files.conf.write_text(
        render_conf(
            out_dir,
            port=port,
            bind=bind,
            run_as_user=run_as_user,
            autosave_interval_s=autosave_interval_s,
            pid_file=pid_file,
        ),
        encoding="utf-8",
    )
    hand_over(out_dir, (files.conf, files.passwords, files.acl), run_as_user)
    return files


def write_logins(
    files: BrokerFiles, *, cars: Iterable[BrokerUser], server: BrokerUser, timers: Iterable[BrokerUser] = ()
) -> None:
    """Rewrite the password file and the ACL (Mosquitto re-reads both on SIGHUP)."""
    cars, timers = list(cars), list(timers)
    passwords = render_passwords([server, *cars, *timers])
    acl = render_acl(cars, server.username, timers)
    _write_private(files.passwords, passwords)
    _write_private(files.acl, acl)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def write_server_env(out_dir: Path, username: str, password: str, broker_url: str) -> Path:
    """``server.env`` (mode 0600): the PITLANE_ settings the league server needs to log in to this broker."""
    path = out_dir / SERVER_ENV_NAME
    _write_private(
        path,
        f"PITLANE_BROKER_URL={broker_url}\nPITLANE_MQTT_USERNAME={username}\nPITLANE_MQTT_PASSWORD={password}\n",
    )
    return path


@dataclass(frozen=True)
class GeneratedConfig:
    """What `generate_from_db` wrote: the files, the server's login, how many cars and timers it covers, and
    the account Mosquitto will run as (None: whoever starts it)."""

    files: BrokerFiles
    server_env: Path | None
    server_username: str
    server_password: str | None
    cars: int
    timers: int = 0
    run_as: str | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON view (`pitlane league broker-config --json`): paths as strings, never the password."""
        return {
            "cars": self.cars,
            "timers": self.timers,
            "conf": str(self.files.conf),
            "passwords": str(self.files.passwords),
            "acl": str(self.files.acl),
            "server_username": self.server_username,
            "server_env": None if self.server_env is None else str(self.server_env),
            "run_as": self.run_as,
        }


def load_users(session: Any) -> tuple[list[BrokerUser], list[BrokerUser]]:
    """(cars, timers) of every league as broker logins."""
    from sqlalchemy import select

    from league_server.models import Car, League, Timer

    cars = session.execute(
        select(Car.mqtt_username, Car.password_hash, Car.car_id, League.slug)
        .join(League, Car.league_id == League.id)
        .where(Car.simulated.is_(False))  # the simulator car reports no laps over MQTT: no login for it
        .order_by(Car.id)
    )
    timers = session.execute(
        select(Timer.mqtt_username, Timer.password_hash, Timer.timer_id, League.slug)
        .join(League, Timer.league_id == League.id)
        .order_by(Timer.id)
    )
    return (
        [BrokerUser(r[0], r[1], car_id=r[2], league=r[3]) for r in cars],
        [BrokerUser(r[0], r[1], timer_id=r[2], league=r[3]) for r in timers],
    )


def check_server_username(server_username: str, users: Iterable[BrokerUser]) -> None:
    """ConfigError if a car or timer has the server's broker login."""
    if any(u.username == server_username for u in users):
        raise ConfigError(
            f"server username {server_username!r} is also a car's or timer's mqtt username; pick another"
        )


def generate_from_db(
    db_url: str,
    out_dir: Path,
    *,
    port: int = DEFAULT_PORT,
    bind: str | None = None,
    server_username: str = DEFAULT_SERVER_USERNAME,
    server_password: str | None = None,
    run_as_user: str | None = None,
    broker_host_for_server: str = "127.0.0.1",
) -> GeneratedConfig:
    """Write the Mosquitto files for the cars and timers of every league in the database at `db_url`.

    server_password: the league server's broker password (PITLANE_MQTT_PASSWORD); None generates one and
    writes it with the broker URL to ``server.env`` (mode 0600) for `pitlane league serve` to load.
    """
    import secrets

    from league_server.core.db import make_engine, make_sessionmaker
    from league_server.core.security import hash_mqtt_password

    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            cars, timers = load_users(session)
    finally:
        engine.dispose()
    check_server_username(server_username, (*cars, *timers))
    generated = server_password is None
    password = secrets.token_urlsafe(24) if server_password is None else server_password
    server = BrokerUser(server_username, hash_mqtt_password(password))
    run_as = run_as_user or broker_account(out_dir)
    files = write_config(
        out_dir, cars=cars, server=server, port=port, bind=bind, run_as_user=run_as, timers=timers
    )
    env = None
    if generated:
        env = write_server_env(out_dir, server_username, password, f"mqtt://{broker_host_for_server}:{port}")
    return GeneratedConfig(
        files, env, server_username, password if generated else None, len(cars), len(timers), run_as
    )
