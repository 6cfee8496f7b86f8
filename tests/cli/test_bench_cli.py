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


def test_bench_robust_puts_todays_recipe_beside_the_default_on_held_out_tracks() -> None:
    """A tiny budget (the figures mean nothing here): the JSON's shape, both recipes in one run, their ratio,
    the held-out tracks outside both recipes' training, and the goals beside each figure."""
    from trainer.config import RunConfig
    from trainer.robustness import HELD_OUT_TRACKS, road_of

    result = CliRunner().invoke(
        app, ["bench", "robust", "--steps", "2048", "--seeds", "1", "--laps", "1", "--no-camera", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["held_out_tracks"] == list(HELD_OUT_TRACKS)
    trained = {road_of(t) for t in RunConfig().training_tracks}
    assert not trained & {road_of(t) for t in HELD_OUT_TRACKS}
    rows = payload["results"]
    assert [(r["recipe"], r["observation"]) for r in rows] == [("today", "state"), ("default", "state")]
    for row in rows:
        assert [t["track"] for t in row["tracks"]] == list(HELD_OUT_TRACKS)
        assert [t["track"] for t in row["plain"]] == list(HELD_OUT_TRACKS)
        assert all(t["attempted_laps"] == 1 for t in row["tracks"])
        assert 0.0 <= row["completion"] <= row["completion_with_resets"] <= 1.0
        assert row["completion_goal"] == 0.95 and row["lap_goal"] == 1.25 and row["budget_s"] == 600.0
        assert row["meets_completion"] == (row["completion"] >= 0.95)
    assert set(payload["ratios"]) <= {"state"} and payload["machine"]["cpu"]
