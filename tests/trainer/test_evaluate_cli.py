"""`pitlane evaluate` on a tiny run, its errors, and a smoke run of `pitlane bench train` (no timing asserted)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.simtrace import read_simtrace

# One xdist worker runs these tests (--dist loadgroup): this module's training runs are built once.
pytestmark = pytest.mark.xdist_group("evaluate-runs")

SUMMARY_KEYS = {"laps", "completed_laps", "best_lap_s", "mean_lap_s", "completion_rate", "limit_lap_s"}
LAP_KEYS = {"lap_time_s", "offtrack", "resets"}


def _evaluate(*args: str) -> object:
    from pitlane.commands.evaluate import app

    return CliRunner().invoke(app, list(args))


def test_evaluate_json_has_the_keys(tiny_run: Path, tmp_path: Path) -> None:
    png = tmp_path / "ev.png"
    result = _evaluate(str(tiny_run), "--laps", "1", "--json", "--png", str(png))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= SUMMARY_KEYS
    assert data["laps"] and all(set(lap) >= LAP_KEYS for lap in data["laps"])
    assert data["limit_lap_s"] > 0 and 0.0 <= data["completion_rate"] <= 1.0
    assert data["track"] == "oval"  # the run's track by default
    assert png.is_file() and png.stat().st_size > 0
    # DeepRacer-for-Cloud's layout: <run>/evaluation-<UTC YYYYMMDDHHMMSS>/evaluation-simtrace/0-iteration.csv
    simtrace = Path(data["simtrace"])
    assert re.fullmatch(r"evaluation-\d{14}", simtrace.parents[1].name) and simtrace.parents[2] == tiny_run
    trace = read_simtrace(simtrace)
    assert len(trace.x_m) > 10 and trace.status[0] == "prepare"


def test_evaluate_a_checkpoint_zip_on_another_track_with_the_table(tiny_run: Path, tmp_path: Path) -> None:
    checkpoint = next((tiny_run / "checkpoints").glob("step_*.zip"))
    png = tmp_path / "table.png"
    result = _evaluate(str(checkpoint), "--track", "tiny_loop", "--laps", "1", "--png", str(png))
    assert result.exit_code == 0, result.output
    assert "evaluation on tiny_loop" in result.output and "best/limit" in result.output
    assert png.is_file()


def test_an_onnx_model_without_its_card_is_refused_naming_both(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not really onnx")
    result = _evaluate(str(model))
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert str(model) in text and "model.json" in text and "pitlane export" in text


def test_a_missing_path_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_run"
    result = _evaluate(str(missing), "--json")
    assert result.exit_code == 2
    assert "no_such_run" in " ".join(result.output.split())


def test_a_directory_without_a_model_exits_2(tmp_path: Path) -> None:
    result = _evaluate(str(tmp_path))
    assert result.exit_code == 2 and "best.zip" in result.output


def test_bench_train_smoke() -> None:
    from pitlane.commands.bench import app

    result = CliRunner().invoke(app, ["train", "--minutes", "0.2", "--json"])
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("{")][-1]
    data = json.loads(line)
    for key in ("seconds_to_first_clean_eval", "steps", "steps_per_s", "best_lap_s", "limit_lap_s"):
        assert key in data
    assert data["steps"] > 0 and data["limit_lap_s"] > 0
