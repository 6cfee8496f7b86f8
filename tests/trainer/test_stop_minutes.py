"""Stopping a run: the wall-clock budget (`stop.minutes`, DeepRacer's stop condition) and a supervised run's stop
file (the console's stop button), with the progress lines a supervised run hands its caller. Real PPO runs on
the oval with 8 cars: about 15 s."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from contracts.recipe import TrainingProgress
from trainer.callbacks import StopOnFile
from trainer.config import ONE_TRACK, RunConfig, RunConfigError, StopCondition, load_run_config
from trainer.train import Supervision, train


def endless(**stop: object) -> RunConfig:
    """A run that only its stop condition ends: more steps than it could take, no evaluation or checkpoint on
    the way (the evaluation a run shorter than one period gets at its end still runs)."""
    return RunConfig.model_validate({
        **ONE_TRACK, "track": "oval", "n_envs": 8, "total_steps": 100_000_000, "eval_every_steps": 50_000_000,
        "checkpoint_every_steps": 50_000_000, "eval_laps": 1, "time_limit_s": 2.0, "seed": 3, "stop": stop,
    })  # fmt: skip


def test_minutes_is_a_stop_condition_of_a_run_config(tmp_path: Path) -> None:
    assert StopCondition().minutes is None  # no budget unless asked: `pitlane train` runs to total_steps
    path = tmp_path / "run.toml"
    path.write_text('track = "oval"\n[stop]\nminutes = 0.5\nuntil_clean_laps = 2\n', encoding="utf-8")
    assert load_run_config(path).stop == StopCondition(minutes=0.5, until_clean_laps=2)
    path.write_text("[stop]\nminutes = 0\n", encoding="utf-8")
    with pytest.raises(RunConfigError, match=r"`stop.minutes`: Input should be greater than 0"):
        load_run_config(path)


def test_a_run_stops_after_its_minutes_of_wall_clock(tmp_path: Path) -> None:
    budget_s = 3.0
    result = train(endless(minutes=budget_s / 60), tmp_path / "run", progress=False)
    assert result.stopped_by == "minutes"
    # the stop is asked after every step of the cars: it overshoots by at most one PPO update (8 x 64 steps)
    assert budget_s <= result.wall_s < budget_s + 2.0
    assert 0 < result.steps < 100_000_000
    assert (tmp_path / "run" / "best.zip").is_file()  # evaluated once at the end, so it can be exported


def test_a_supervised_run_reports_progress_and_stops_when_the_stop_file_appears(tmp_path: Path) -> None:
    stop_file = tmp_path / "STOP"
    lines: list[TrainingProgress] = []

    def on_progress(line: TrainingProgress) -> None:
        lines.append(line)
        if line.steps >= 3_000:  # the racer presses stop once training has shown some progress
            stop_file.touch()

    t0 = time.monotonic() - 5.0  # the job started 5 s before training: lines count from the job's start
    supervision = Supervision(on_progress=on_progress, every_s=0.2, t0=t0, stop_file=stop_file)
    result = train(endless(minutes=1.0), tmp_path / "run", progress=False, supervision=supervision)
    assert result.stopped_by == "stop_file"
    assert result.wall_s < 30  # not the minute's budget
    assert all(line.phase == "training" for line in lines)
    steps = [line.steps for line in lines]
    assert steps[0] == 0 and steps == sorted(steps) and steps[-1] == result.steps
    assert lines[0].t_s >= 5.0 and [line.t_s for line in lines] == sorted(line.t_s for line in lines)
    assert any(line.steps_per_s > 0 and line.episodes > 0 and line.mean_reward is not None for line in lines)
    assert lines[-1].eval_clean_laps is not None  # the end-of-run evaluation, in the last line


def test_the_stop_file_is_looked_for_at_most_once_a_second(tmp_path: Path) -> None:
    stop = StopOnFile(tmp_path / "STOP", check_every_s=1.0)
    assert not stop._met()  # looked: absent
    (tmp_path / "STOP").touch()
    assert not stop._met()  # within the second: not looked again
    time.sleep(1.05)
    assert stop._met()
