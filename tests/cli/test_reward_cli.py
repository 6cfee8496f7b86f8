"""`pitlane reward params | check`, run in-process with typer's CliRunner on the top-level app.

The example reward functions are DeepRacer-style files in ../shared/deepracer/reward_functions (the
`shared_dir` fixture: skipped locally when absent, a failure in CI).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitlane.cli import app

runner = CliRunner()

#: The 27 keys of a DeepRacer reward function's params dict.
DEEPRACER_KEYS = {
    "all_wheels_on_track",
    "x",
    "y",
    "heading",
    "distance_from_center",
    "is_left_of_center",
    "progress",
    "steps",
    "speed",
    "steering_angle",
    "track_width",
    "track_length",
    "waypoints",
    "closest_waypoints",
    "is_reversed",
    "is_crashed",
    "is_offtrack",
    "closest_objects",
    "objects_location",
    "objects_left_of_center",
    "objects_distance",
    "objects_distance_from_center",
    "objects_heading",
    "objects_speed",
    "object_in_camera",
    "projection_distance",
    "sim_time",
}
BROKEN = "broken_returns_none.py"


@pytest.fixture(autouse=True)
def wide_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich: no wrapped paths or messages
    monkeypatch.setenv("PITLANE_HOME", str(tmp_path / "pitlane-home"))  # never the user's own tracks


@pytest.fixture
def reward_dir(shared_dir: Path) -> Path:
    return shared_dir / "deepracer" / "reward_functions"


def examples(reward_dir: Path) -> list[Path]:
    found = sorted(p for p in reward_dir.glob("*.py") if p.name != BROKEN)
    assert len(found) >= 3, f"expected the example reward functions in {reward_dir}"
    return found


# --------------------------------------------------------------------------- reward params


@pytest.mark.parametrize(
    ("x", "y", "heading"), [(3.0, 0.7, 20.0), (0.3078780025, 2.8306075, -135.5), (6.1, 3.9, 179.0)]
)
def test_params_json_round_trips_the_pose(x: float, y: float, heading: float) -> None:
    args = ["reward", "params", "--track", "reinvent_base", "--x", str(x), "--y", str(y)]
    result = runner.invoke(app, [*args, "--heading", str(heading), "--json"])
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)
    assert set(params) == DEEPRACER_KEYS and len(params) == 27
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
    assert set(params) == DEEPRACER_KEYS


def test_params_table() -> None:
    result = runner.invoke(app, ["reward", "params", "--x", "3.0", "--y", "0.7"])
    assert result.exit_code == 0, result.output
    for key in ("distance_from_center", "closest_waypoints", "track_width"):
        assert key in result.output
    assert "<list of 119 (x, y) points>" in result.output


# --------------------------------------------------------------------------- reward check


def test_check_examples_pass(reward_dir: Path) -> None:
    for path in examples(reward_dir):
        result = runner.invoke(app, ["reward", "check", str(path), "--json"])
        assert result.exit_code == 0, f"{path.name}: {result.output}"
        summary = json.loads(result.stdout)
        assert summary["calls"] >= 200, (path.name, summary)
        assert summary["track"] == "reinvent_base"
        assert Path(summary["file"]).name == path.name
        assert summary["reward_min"] <= summary["reward_mean"] <= summary["reward_max"]


def test_check_plain_output(reward_dir: Path) -> None:
    path = examples(reward_dir)[0]
    result = runner.invoke(app, ["reward", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and path.name in result.output and "calls" in result.output


def test_check_broken_file_names_file_none_and_line(reward_dir: Path) -> None:
    path = reward_dir / BROKEN
    result = runner.invoke(app, ["reward", "check", str(path)])
    assert result.exit_code == 1, result.output
    assert BROKEN in result.output
    assert "None" in result.output
    assert "line 3" in result.output


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


def test_check_unknown_track_exits_2(reward_dir: Path) -> None:
    """An unknown --track is a usage error (2), not a failing reward file (1)."""
    path = examples(reward_dir)[0]
    result = runner.invoke(app, ["reward", "check", str(path), "--track", "no_such_track"])
    assert "unknown track 'no_such_track'" in result.output
    assert "reinvent_base" in result.output
    assert result.exit_code == 2, result.output
