"""`pitlane league broker-config` over a database provisioned by `pitlane league provision-demo`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pitlane.cli import app


def test_broker_config_writes_the_files(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'league.db'}"
    demo = CliRunner().invoke(app, ["league", "provision-demo", "--db", db, "--json"])
    assert demo.exit_code == 0, demo.output
    info = json.loads(demo.stdout)
    out = tmp_path / "mosquitto"
    result = CliRunner().invoke(
        app,
        [
            "league",
            "broker-config",
            "--db",
            db,
            "--out",
            str(out),
            "--league",
            info["league"],
            "--port",
            "1999",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["cars"] == 1
    assert "listener 1999" in (out / "mosquitto.conf").read_text()
    acl = (out / "acl").read_text()
    assert f"topic write pitlane/{info['league']}/cars/{info['car_id']}/laps" in acl
    assert (out / "passwords").read_text().count(f"{info['mqtt_username']}:$7$") == 1
    assert info["mqtt_password"] not in (out / "passwords").read_text()


def test_broker_config_names_an_unknown_league(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'league.db'}"
    assert CliRunner().invoke(app, ["league", "migrate", "--db", db]).exit_code == 0
    result = CliRunner().invoke(
        app, ["league", "broker-config", "--db", db, "--out", str(tmp_path / "o"), "--league", "x"]
    )
    assert result.exit_code == 2 and "'x' is not in the database" in result.output
