"""`pitlane bench sim` prints the documented JSON rows (speed targets are read from its output, not tested)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pitlane.cli import app


def test_bench_sim_json_rows() -> None:
    result = CliRunner().invoke(
        app, ["bench", "sim", "--json", "-o", "state", "--n-envs", "1", "--n-envs", "16", "--seconds", "0.2"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    rows = payload["results"]
    assert [(r["api"], r["reward"], r["n_envs"]) for r in rows] == [
        ("gymnasium.make", "batched", 1),  # what a user's own RL loop steps
        ("vector env", "batched", 1),
        ("vector env", "batched", 16),
        ("vector env", "python", 1),
        ("vector env", "python", 16),
    ]
    for row in rows:
        assert row["observation"] == "state"
        assert row["steps_per_s"] > 0 and row["steps"] >= row["n_envs"]
    assert payload["machine"]["cores"] >= 1 and payload["machine"]["cpu"]


def test_bench_sim_rejects_unknown_reward_kind() -> None:
    result = CliRunner().invoke(app, ["bench", "sim", "--reward", "magic", "--seconds", "0.1"])
    assert result.exit_code != 0
    assert "magic" in result.output
