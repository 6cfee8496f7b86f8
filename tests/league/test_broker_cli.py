"""`pitlane league broker-config` over a database provisioned by `pitlane league provision-demo`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pitlane.cli import app
from tests.conftest import skip_or_fail


def test_broker_config_writes_the_files(tmp_path: Path) -> None:
    db, info = _provisioned_db(tmp_path)
    out = tmp_path / "mosquitto"
    result = CliRunner().invoke(
        app, ["league", "broker-config", "--db", db, "--out", str(out), "--port", "1999", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["cars"] == 1
    assert "listener 1999" in (out / "mosquitto.conf").read_text()
    acl = (out / "acl").read_text()
    assert f"topic write pitlane/{info['league']}/cars/{info['car_id']}/laps" in acl
    assert (out / "passwords").read_text().count(f"{info['mqtt_username']}:$7$") == 1
    assert info["mqtt_password"] not in (out / "passwords").read_text()


def test_broker_config_of_an_empty_database_has_the_server_only(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'league.db'}"
    assert CliRunner().invoke(app, ["league", "migrate", "--db", db]).exit_code == 0
    result = CliRunner().invoke(app, ["league", "broker-config", "--db", db, "--out", str(tmp_path / "o")])
    assert result.exit_code == 0 and "0 cars and 0 timers" in result.output
    assert (tmp_path / "o" / "passwords").read_text().startswith("pitlane.server:$7$")


# ------------------------------------------------------------------ the printed command, as root and not


def _as_nobody() -> list[str]:
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every account can enter (pytest's own tmp folders are closed to all but root)."""
    path = Path(tempfile.mkdtemp(prefix="pitlane-broker-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _provisioned_db(folder: Path) -> tuple[str, dict[str, Any]]:
    db = f"sqlite:///{folder / 'league.db'}"
    demo = CliRunner().invoke(app, ["league", "provision-demo", "--db", db, "--json"])
    assert demo.exit_code == 0, demo.output
    return db, json.loads(demo.stdout)


def _run_printed_broker(conf: Path, port: int, prefix: list[str], env_file: Path, car: dict[str, Any]) -> str:
    """Start `mosquitto -c CONF` as broker-config printed it; log in as the server and as the car."""
    from league_server.broker.embedded import wait_for_port
    from tests.league.ingest_support import Publisher

    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    broker = subprocess.Popen(
        [*prefix, "mosquitto", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port("127.0.0.1", port, 10, broker)
        server = Publisher(port, username=env["PITLANE_MQTT_USERNAME"], password=env["PITLANE_MQTT_PASSWORD"])
        the_car = Publisher(port, username=car["mqtt_username"], password=car["mqtt_password"])
        assert server.accepted and the_car.accepted
        server.close()
        the_car.close()
    finally:
        broker.terminate()
        output = broker.communicate(timeout=10)[0].decode(errors="replace")
    assert "Unable to open" not in output and "Error" not in output, output
    return output


@pytest.mark.parametrize("where", ["open", "closed"])
def test_the_printed_broker_command_works_as_root(where: str, open_dir: Path, tmp_path: Path) -> None:
    if shutil.which("mosquitto") is None or os.geteuid() != 0:
        skip_or_fail("needs mosquitto and root (the usual case on a Raspberry Pi, in Docker, under systemd)")
    from league_server.broker.embedded import free_port

    folder = open_dir if where == "open" else tmp_path  # tmp_path: inside a folder closed to `mosquitto`
    db, car = _provisioned_db(folder)
    out, port = folder / "mosquitto", free_port()
    result = CliRunner().invoke(
        app,
        [
            "league",
            "broker-config",
            "--db",
            db,
            "--out",
            str(out),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"mosquitto -c {out / 'mosquitto.conf'}" in result.output
    expected = "mosquitto" if where == "open" else "root"
    assert f"user {expected}" in (out / "mosquitto.conf").read_text()
    assert ("runs as root" in result.output) == (where == "closed")
    _run_printed_broker(out / "mosquitto.conf", port, [], out / "server.env", car)


def test_the_printed_broker_command_works_as_a_normal_user(open_dir: Path) -> None:
    if shutil.which("mosquitto") is None or shutil.which("setpriv") is None or os.geteuid() != 0:
        skip_or_fail("needs mosquitto, setpriv and root (to become the unprivileged account `nobody`)")
    from league_server.broker.embedded import free_port

    home = open_dir / "nobody"
    home.mkdir()
    os.chown(home, 65534, 65534)
    db, car = _provisioned_db(home)
    os.chown(home / "league.db", 65534, 65534)
    out, port = home / "mosquitto", free_port()
    env = {**os.environ, "HOME": str(home), "PITLANE_HOME": str(home / ".pitlane")}
    cmd = [*_as_nobody(), sys.executable, "-m", "pitlane", "league", "broker-config", "--db", db, "--out", str(out),
           "--port", str(port), "--bind", "127.0.0.1"]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "user " not in (out / "mosquitto.conf").read_text()  # a normal user's broker stays that user
    assert (out / "passwords").stat().st_uid == 65534
    _run_printed_broker(out / "mosquitto.conf", port, _as_nobody(), out / "server.env", car)
