"""Evaluation jobs run on local worker processes and on a Ray cluster (a local `ray start --head`), each in
its own sandboxed process: a broken or runaway job fails alone with its reason, the others finish, and a job
gives the same laps wherever it runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.virtual_race import VirtualRaceSpec
from league_server.jobs.engine import JobRun, LocalWorkers, RayWorkers, make_engine
from league_server.jobs.sandbox import Limits
from league_server.jobs.uploads import write_job
from tests.conftest import skip_or_fail
from tests.export_fixtures import exported_state

__all__ = ["exported_state"]

SPEC = VirtualRaceSpec(track="reinvent_base", rules={"laps": 2}, seed=3)
LIMITS = Limits(cpu_s=120, memory_mb=2048, wall_s=300)


def job_folder(root: Path, name: str, exported: Path, *, model_bytes: bytes | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    model = (exported / "model.int8.onnx").read_bytes() if model_bytes is None else model_bytes
    return write_job(folder, model, json.loads((exported / "model.json").read_text(encoding="utf-8")), SPEC)


def laps(run: JobRun) -> list[float]:
    assert run.failure is None, run.failure
    return [lap["lap_time_s"] for lap in run.outcome["laps"]]


def test_local_workers_run_jobs_side_by_side_and_a_bad_one_fails_alone(
    exported_state: Path, tmp_path: Path
) -> None:
    engine = LocalWorkers(2)
    try:
        good = [engine.submit(job_folder(tmp_path, f"good{i}", exported_state), LIMITS) for i in range(2)]
        garbage = engine.submit(
            job_folder(tmp_path, "garbage", exported_state, model_bytes=b"\x00junk" * 99), LIMITS
        )
        starved = engine.submit(job_folder(tmp_path, "starved", exported_state), Limits(1, 2048, 300))
        first, second = (f.result(timeout=300) for f in good)
        assert laps(first) == laps(second) and len(laps(first)) == 2  # the same file, the same race
        assert "not an ONNX model" in garbage.result(timeout=300).failure
        assert "CPU" in starved.result(timeout=300).failure
    finally:
        engine.close()


def test_the_engine_is_chosen_from_a_count_or_an_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert make_engine(None).count >= 1 and make_engine("3").count == 3
    with pytest.raises(ValueError, match="at least 1"):
        LocalWorkers(0)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A local Ray head on 127.0.0.1 (as `ray start --head` starts one; `pitlane bench races` uses the same)."""
    if not (Path(sys.executable).parent / "ray").exists():
        skip_or_fail("Ray is not installed: pip install 'pitlane[scale]'")
    from bench.races import local_ray_head

    with local_ray_head() as address:
        yield address


@pytest.mark.xdist_group("ray")
def test_ray_workers_give_the_laps_local_workers_give(
    ray_head: str, exported_state: Path, tmp_path: Path
) -> None:
    local = LocalWorkers(1)
    try:
        expected = laps(
            local.submit(job_folder(tmp_path, "local", exported_state), LIMITS).result(timeout=300)
        )
    finally:
        local.close()
    engine = RayWorkers(ray_head)
    try:
        on_ray = engine.submit(job_folder(tmp_path, "ray", exported_state), LIMITS).result(timeout=300)
        assert laps(on_ray) == expected
        assert (tmp_path / "ray" / "out" / "evaluation-simtrace" / "0-iteration.csv").is_file()
        broken = engine.submit(job_folder(tmp_path, "broken", exported_state, model_bytes=b"nope"), LIMITS)
        assert "not an ONNX model" in broken.result(timeout=300).failure
    finally:
        engine.close()


@pytest.mark.xdist_group("ray")
def test_a_training_job_on_ray_streams_its_progress_back_and_returns_its_model(
    ray_head: str, tmp_path: Path
) -> None:
    """A console training job (`python -m trainer.job`) as a Ray task: its progress lines reach the server while
    it trains (a streaming task), land in the server's own copy of progress.jsonl, and the exported files
    come back."""
    from contracts.recipe import Recipe, StopCondition, TrainingJob
    from league_server.jobs.engine import TRAINING

    folder = tmp_path / "training"
    folder.mkdir()
    TrainingJob(recipe=Recipe(stop=StopCondition(minutes=0.5)), n_envs=32).write(folder / "job.json")
    seen: list[dict] = []
    engine = RayWorkers(ray_head)
    try:
        future = engine.submit(
            folder, Limits(cpu_s=300, memory_mb=8192, wall_s=300), module=TRAINING, on_progress=seen.append
        )
        run = future.result(timeout=300)
    finally:
        engine.close()
    assert run.failure is None, run.failure
    assert run.outcome["status"] == "finished" and (folder / "out" / "model.onnx").is_file()
    phases = [line["phase"] for line in seen]
    assert "training" in phases and phases[-1] == "done"
    steps = [line["steps"] for line in seen if line["phase"] == "training"]
    assert steps == sorted(steps) and steps[-1] > 0
    copy = (folder / "out" / "progress.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in copy] == seen
