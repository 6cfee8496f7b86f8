"""`pitlane export`, `pitlane evaluate MODEL.onnx` and a smoke run of `pitlane bench inference` (no timing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitlane.cli import app

# One xdist worker runs these tests (--dist loadgroup), so that
# the session's trained and exported models (tests/export_fixtures.py) are built once.
pytestmark = pytest.mark.xdist_group("exported-models")


def _run(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_evaluate_onnx_drives_like_the_checkpoint(exported_state: Path, tmp_path: Path) -> None:
    results = {}
    for name, target in (
        ("checkpoint", exported_state / "run"),
        ("fp32", exported_state / "model.onnx"),
        ("int8", exported_state / "model.int8.onnx"),
    ):
        result = _run(
            "evaluate", str(target), "--laps", "2", "--json", "--png", str(tmp_path / f"{name}.png")
        )
        assert result.exit_code == 0, result.output
        results[name] = json.loads(result.stdout)
        assert (tmp_path / f"{name}.png").is_file()
    assert results["fp32"]["track"] == "reinvent_base"
    lap_times = {name: [lap["lap_time_s"] for lap in r["laps"]] for name, r in results.items()}
    assert lap_times["fp32"] == lap_times["checkpoint"]  # same actions, same rules, same laps
    assert len(lap_times["int8"]) == len(lap_times["fp32"])


def test_evaluate_onnx_with_another_car_refuses(exported_camera: Path) -> None:
    result = _run("evaluate", str(exported_camera / "model.onnx"), "--car", "donkey-pi", "--laps", "1")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "does not fit car `donkey-pi`" in text and "z_m" in text


def test_evaluate_onnx_without_a_card_exits_2(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not really onnx")
    result = _run("evaluate", str(model))
    assert result.exit_code == 2
    assert "no model card" in " ".join(result.output.split())


def test_export_command_writes_the_files(exported_state: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    result = _run(
        "export", str(exported_state / "run"), "--out", str(out), "--int8", "--calibration-frames", "50",
        "--agreement-frames", "100", "--laps", "1", "--json", "--lap-tolerance", "1.0",
    )  # fmt: skip
    # a 20k-step policy leaves the road and is reset on its lap: one different action changes the lap time
    assert result.exit_code == 0, result.output
    parity = json.loads(result.stdout)
    assert parity["int8_vs_fp32"]["frames"] == 100
    assert {p.name for p in out.iterdir()} == {"model.onnx", "model.int8.onnx", "model.json", "parity.json"}
    assert json.loads((out / "parity.json").read_text(encoding="utf-8")) == parity


def test_export_errors_exit_2(tmp_path: Path) -> None:
    result = _run("export", str(tmp_path / "no_such_run"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "no_such_run" in " ".join(result.output.split())
    result = _run("export", str(tmp_path))
    assert result.exit_code == 2 and "--out" in result.output


def test_bench_inference_json_rows() -> None:
    result = _run("bench", "inference", "--network", "mlp", "--seconds", "0.1", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert [(r["network"], r["precision"]) for r in rows] == [("mlp", "fp32"), ("mlp", "int8")]
    assert all(r["p99_ms"] >= r["p50_ms"] > 0 for r in rows)


def test_export_exit_status_follows_int8_targets_and_names_the_fp32_file(
    exported_state: Path, tmp_path: Path
) -> None:
    """The int8 export used to report a lap ratio outside its own 2 % bound and exit 0 with no advice. This
    20k-step policy is reset off the road on its lap, where int8 and fp32 may part ways (on the machines
    here they do: its int8 lap is ~1.18x fp32's; a CPU with other int8 kernels may keep them together). The
    files and parity.json are always written; when parity.json says int8 misses a target the command fails
    saying which file to use and why, and otherwise succeeds."""
    out = tmp_path / "exp"
    result = _run(
        "export", str(exported_state / "run"), "--out", str(out), "--int8", "--calibration-frames", "50",
        "--agreement-frames", "100", "--laps", "1",
    )  # fmt: skip
    assert set(p.name for p in out.iterdir()) == {
        "model.onnx",
        "model.int8.onnx",
        "model.json",
        "parity.json",
    }
    parity = json.loads((out / "parity.json").read_text(encoding="utf-8"))
    if parity["int8_meets_targets"]:
        assert result.exit_code == 0, result.output
        assert not parity["int8_problems"]
        return
    assert result.exit_code == 1, result.output
    assert parity["int8_problems"]
    text = " ".join(result.output.split())
    assert "int8 misses its targets" in text
    assert f"Put the fp32 model on the car: {out / 'model.onnx'}" in text
