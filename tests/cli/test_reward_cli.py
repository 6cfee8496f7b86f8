"""`pitlane reward params | check`, run in-process with typer's CliRunner on the top-level app.

The example reward functions are the DeepRacer-style files of tests/fixtures/deepracer/reward_functions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitlane.cli import app
from tests.deepracer_files import PARAM_KEYS, REWARD_DIR, example_reward_files

runner = CliRunner()

BROKEN = "broken_returns_none.py"


@pytest.fixture(autouse=True)
def wide_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich: no wrapped paths or messages
    monkeypatch.setenv("PITLANE_HOME", str(tmp_path / "pitlane-home"))  # never the user's own tracks


# --------------------------------------------------------------------------- reward params


@pytest.mark.parametrize(
    ("x", "y", "heading"), [(3.0, 0.7, 20.0), (0.3078780025, 2.8306075, -135.5), (6.1, 3.9, 179.0)]
)
def test_params_json_round_trips_the_pose(x: float, y: float, heading: float) -> None:
    args = ["reward", "params", "--track", "reinvent_base", "--x", str(x), "--y", str(y)]
    result = runner.invoke(app, [*args, "--heading", str(heading), "--json"])
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)
    assert set(params) == PARAM_KEYS and len(params) == 27
    assert params["x"] == pytest.approx(x, abs=1e-9)
    assert params["y"] == pytest.approx(y, abs=1e-9)
    assert params["heading"] == pytest.approx(heading, abs=1e-9)
    assert params["steps"] == 2 and params["speed"] == 0 and params["steering_angle"] == 0
    assert params["is_reversed"] is False
    assert len(params["waypoints"]) == 119
    assert params["track_length"] == pytest.approx(17.71, abs=5e-3)


def test_params_json_reversed() -> None:
    args = ["reward", "params", "--track", "reinvent_base", "--x", "3.0", "--y", "0.7", "--heading", "180"]
    result = runner.invoke(app, [*args, "--reverse", "--json"])
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)
    assert params["is_reversed"] is True
    assert set(params) == PARAM_KEYS


def test_params_table() -> None:
    result = runner.invoke(app, ["reward", "params", "--x", "3.0", "--y", "0.7"])
    assert result.exit_code == 0, result.output
    for key in ("distance_from_center", "closest_waypoints", "track_width"):
        assert key in result.output
    assert "<list of 119 (x, y) points>" in result.output


# --------------------------------------------------------------------------- reward check


def test_check_examples_pass() -> None:
    paths = example_reward_files()
    assert len(paths) >= 3, paths
    for path in paths:
        result = runner.invoke(app, ["reward", "check", str(path), "--json"])
        assert result.exit_code == 0, f"{path.name}: {result.output}"
        summary = json.loads(result.stdout)
        assert summary["calls"] >= 200, (path.name, summary)
        assert summary["track"] == "reinvent_base"
        assert Path(summary["file"]).name == path.name
        assert summary["reward_min"] <= summary["reward_mean"] <= summary["reward_max"]


def test_check_plain_output() -> None:
    path = example_reward_files()[0]
    result = runner.invoke(app, ["reward", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and path.name in result.output and "calls" in result.output


def test_check_broken_file_names_file_none_and_line() -> None:
    path = REWARD_DIR / BROKEN
    result = runner.invoke(app, ["reward", "check", str(path)])
    assert result.exit_code == 1, result.output
    assert BROKEN in result.output
    assert "None" in result.output
    assert "line 3" in result.output


def test_check_misspelled_key_names_the_line_and_the_right_key() -> None:
    path = REWARD_DIR / "broken_misspelled_key.py"
    result = runner.invoke(app, ["reward", "check", str(path)])
    assert result.exit_code == 1, result.output
    assert path.name in result.output and "line 4" in result.output
    assert "KeyError" in result.output
    assert "did you mean 'distance_from_center'?" in result.output


def test_check_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_reward.py"
    result = runner.invoke(app, ["reward", "check", str(missing)])
    assert result.exit_code != 0
    assert str(missing) in result.output


# --------------------------------------------------------------------------- unknown tracks


def test_params_unknown_track_exits_2() -> None:
    result = runner.invoke(app, ["reward", "params", "--track", "no_such_track", "--x", "0", "--y", "0"])
    assert result.exit_code == 2, result.output
    assert "unknown track 'no_such_track'" in result.output
    assert "reinvent_base" in result.output  # the message lists what is available
    assert "Traceback" not in result.output


def test_check_unknown_track_exits_2() -> None:
    """An unknown --track is a usage error (2), not a failing reward file (1)."""
    path = example_reward_files()[0]
    result = runner.invoke(app, ["reward", "check", str(path), "--track", "no_such_track"])
    assert "unknown track 'no_such_track'" in result.output
    assert "reinvent_base" in result.output
    assert result.exit_code == 2, result.output
