"""A submitted model's evaluation job: checked, driven through the car's ONNX path under the race's fixed
conditions, deterministic for a (file, race), and refused with a reason rather than crashing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.virtual_race import EvaluationJob, EvaluationOutcome, VirtualRaceSpec
from tests.conftest import REPO_ROOT
from tests.export_fixtures import exported_state
from virtual_circuit.evaluate import RESULT_FILE, evaluate_submission

__all__ = ["exported_state"]  # the session fixture, imported for pytest

SPEC = VirtualRaceSpec(track="reinvent_base", rules={"laps": 2, "offtrack_penalty_s": 5.0}, seed=7)


def _job(folder: Path, exported: Path, spec: VirtualRaceSpec = SPEC, name: str = "job") -> Path:
    """A job folder as the server writes one: the upload's two files and job.json (relative paths)."""
    job_dir = folder / name
    job_dir.mkdir(parents=True)
    shutil.copy(exported / "model.int8.onnx", job_dir / "model.onnx")
    shutil.copy(exported / "model.json", job_dir / "model.json")
    return EvaluationJob(spec=spec, model="model.onnx", card="model.json", out_dir="out").write(
        job_dir / "job.json"
    )


def test_the_same_file_in_the_same_race_gives_the_same_laps(exported_state: Path, tmp_path: Path) -> None:
    first = evaluate_submission(_job(tmp_path, exported_state, name="a"))
    again = evaluate_submission(_job(tmp_path, exported_state, name="b"))
    assert first.status == "finished", first.reason
    assert len(first.laps) == 2 and first.laps == again.laps
    assert first.model_sha256 == again.model_sha256
    out = tmp_path / "a" / "out"
    assert EvaluationOutcome.model_validate_json((out / RESULT_FILE).read_bytes()) == first
    assert (out / "evaluation-simtrace" / "0-iteration.csv").is_file() and (out / "trajectory.png").is_file()


def test_a_race_with_other_conditions_gives_other_laps(exported_state: Path, tmp_path: Path) -> None:
    base = evaluate_submission(_job(tmp_path, exported_state, name="a"))
    shifted = SPEC.model_copy(update={"randomization": "eval-shift"})
    other = evaluate_submission(_job(tmp_path, exported_state, shifted, name="b"))
    assert other.status == "finished" and other.laps != base.laps


def test_a_refused_upload_is_a_failed_outcome_with_the_reason(exported_state: Path, tmp_path: Path) -> None:
    spec = SPEC.model_copy(update={"observation_kinds": ("camera",)})
    outcome = evaluate_submission(_job(tmp_path, exported_state, spec))
    assert outcome.status == "failed" and "state" in outcome.reason and "camera" in outcome.reason
    assert outcome.laps == ()


def test_the_job_command_runs_in_its_own_process(exported_state: Path, tmp_path: Path) -> None:
    job = _job(tmp_path, exported_state)
    done = subprocess.run(
        [sys.executable, "-m", "virtual_circuit.job", str(job)], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((job.parent / "out" / RESULT_FILE).read_text(encoding="utf-8"))
    assert result["status"] == "finished" and len(result["laps"]) == 2
    broken = tmp_path / "broken.json"
    broken.write_text('{"spec": {"track": 3}}', encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, "-m", "virtual_circuit.job", str(broken)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and str(broken) in bad.stderr.strip().splitlines()[-1]


def test_a_changed_route_file_is_refused(tmp_path: Path) -> None:
    import numpy as np

    from virtual_circuit.evaluate import RouteChangedError, _check_route

    route = tmp_path / "route.npy"
    np.save(route, np.zeros((4, 6)))
    with pytest.raises(RouteChangedError, match="changed since the race was made"):
        _check_route(VirtualRaceSpec(track=str(route), route_sha256="0" * 64))


def test_through_the_servers_sandbox_a_job_over_its_limits_fails_alone(
    exported_state: Path, tmp_path: Path
) -> None:
    from league_server.jobs.sandbox import Limits, run_limited

    job = _job(tmp_path, exported_state)
    argv = [sys.executable, "-m", "virtual_circuit.job", str(job)]
    limits = SPEC.limits
    done = run_limited(argv, Limits(limits.cpu_s, limits.memory_mb, limits.wall_s), cwd=REPO_ROOT)
    assert done.returncode == 0 and done.stopped_by is None, done.reason
    assert json.loads((job.parent / "out" / RESULT_FILE).read_text(encoding="utf-8"))["status"] == "finished"
    # a long race (60 laps: many CPU seconds) with one CPU second: the sandbox stops it and says so
    long_race = _job(tmp_path, exported_state, SPEC.model_copy(update={"rules": {"laps": 60}}), name="long")
    starved = run_limited(
        [sys.executable, "-m", "virtual_circuit.job", str(long_race)],
        Limits(cpu_s=1, memory_mb=limits.memory_mb, wall_s=limits.wall_s),
        cwd=REPO_ROOT,
    )
    assert starved.stopped_by == "cpu" and "CPU" in starved.reason
