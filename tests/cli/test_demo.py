"""`pitlane demo`: train -> export -> league server (embedded broker) -> simulated car -> leaderboard, for real."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from typer.testing import CliRunner

from pitlane.cli import app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _demo(folder: Path, *extra: str) -> object:
    args = ["demo", "--dir", str(folder), "--port", str(_free_port()), "--exit", "--json", "--steps", "60000",
            "--laps", "1", *extra]  # fmt: skip
    return CliRunner().invoke(app, args)


def test_demo_car_laps_reach_the_leaderboard_and_a_second_run_reuses_the_model(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = _demo(folder)
    assert result.exit_code == 0, result.output
    board = json.loads(result.stdout)
    [entry] = board["entries"]
    assert entry["car_id"] == "demo-car" and entry["position"] == 1
    assert (
        entry["laps"] == 1 and entry["best_lap_s"] > 0
    )  # the signed lap went car -> MQTT -> ingest -> ranking
    for name in ("train", "export", "migrate", "provision", "drive", "server"):
        assert (folder / "logs" / f"{name}.log").is_file(), name
    assert (folder / "model" / "model.int8.onnx").is_file() and (folder / "model" / "parity.json").is_file()
    assert oct((folder / "car-credentials.json").stat().st_mode & 0o777) == "0o600"

    trained_at = (folder / "run" / "best.zip").stat().st_mtime_ns
    again = _demo(folder)
    assert again.exit_code == 0, again.output
    assert "training a state policy" not in again.output  # the run and the model are reused, and it says so
    assert f"reusing the policy in {folder / 'run'} (60,000 car-steps; --retrain" in " ".join(
        again.output.split()
    )
    assert (folder / "run" / "best.zip").stat().st_mtime_ns == trained_at
    assert json.loads(again.stdout)["entries"][0]["laps"] == 1  # a new race each time


def test_demo_refuses_a_busy_port_before_training(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            app, ["demo", "--dir", str(tmp_path / "d"), "--port", str(port), "--exit"]
        )
    assert result.exit_code == 2
    assert f"--port {port} is in use" in " ".join(result.output.split())
    assert not (tmp_path / "d" / "run").exists()
