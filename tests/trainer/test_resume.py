"""`--resume RUN` (continue a run directory) and `--init-from RUN` (DeepRacer's clone). About 15 s."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO
from typer.testing import CliRunner

from sim.simtrace import read_simtrace
from trainer.config import ONE_TRACK, RunConfig, RunConfigError, load_run_dir_config
from trainer.train import train

# One xdist worker runs these tests (--dist loadgroup): this module's training runs are built once.
pytestmark = pytest.mark.xdist_group("resume-runs")

FIRST_STEPS = 8 * 64 * 2  # two rollouts of 8 cars


def steps_column(path: Path) -> list[int]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [int(float(row["steps"])) for row in csv.DictReader(handle)]


def base_config(**kwargs: object) -> RunConfig:
    data: dict[str, object] = {
        **ONE_TRACK,
        "track": "oval",
        "n_envs": 8,
        "total_steps": FIRST_STEPS,
        "eval_every_steps": 512,
        "checkpoint_every_steps": 512,
        "eval_laps": 1,
        "time_limit_s": 5.0,
        "seed": 3,
        "simtrace_episodes": 2,
    }
    return RunConfig.model_validate({**data, **kwargs})


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "first"
    train(base_config(), out, progress=False)
    return out


def test_resume_continues_the_step_count(first_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(first_run, run)
    before = steps_column(run / "metrics.csv")
    assert before[-1] == FIRST_STEPS
    config = RunConfig.from_flags(load_run_dir_config(run), steps=2 * FIRST_STEPS)
    result = train(config, run, progress=False, resume=True)
    assert result.steps == 2 * FIRST_STEPS
    after = steps_column(run / "metrics.csv")  # one header, the first run's rows, then the new ones
    assert after[: len(before)] == before and after[-1] == 2 * FIRST_STEPS
    assert all(b > a for a, b in itertools.pairwise(after)), after
    assert (run / "checkpoints" / f"step_{2 * FIRST_STEPS}.zip").is_file()
    assert (run / "sb3" / f"progress.resumed-{FIRST_STEPS}.csv").is_file()
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 2  # TensorBoard: one file per session
    # car 0's episodes carried on: numbered on without a gap or repeat, the last file filled before a new one
    record = json.loads((run / "training-simtrace.json").read_text(encoding="utf-8"))["episodes"]
    assert [e["episode"] for e in record] == list(range(len(record))) and len(record) >= 3
    per_file = config.simtrace_episodes
    files = sorted(
        (run / "training-simtrace").glob("*-iteration.csv"), key=lambda p: int(p.name.split("-")[0])
    )
    assert len(files) == (len(record) + per_file - 1) // per_file
    logged = [int(e.number) for path in files for e in read_simtrace(path).episodes()]
    assert logged == [e["episode"] for e in record]
    # a run that already reached its total says how to go on
    with pytest.raises(RunConfigError, match="pass a larger --steps"):
        train(config, run, progress=False, resume=True)
    with pytest.raises(RunConfigError, match="no checkpoints"):
        train(config, tmp_path / "nothing", progress=False, resume=True)


def test_init_from_starts_from_the_other_runs_best_weights(first_run: Path, tmp_path: Path) -> None:
    best = PPO.load(first_run / "best.zip", device="cpu").policy.state_dict()
    # learning rate ~0: a new run's final weights are the weights it started from
    config = base_config(total_steps=512, seed=9, hyperparameters={"learning_rate": 1e-12})
    train(config, tmp_path / "fresh", progress=False)
    fresh = PPO.load(tmp_path / "fresh" / "final.zip", device="cpu").policy.state_dict()
    result = train(config, tmp_path / "clone", progress=False, init_from=first_run)
    assert result.steps == 512 and steps_column(tmp_path / "clone" / "metrics.csv")[0] == 512  # a new run
    cloned = PPO.load(tmp_path / "clone" / "final.zip", device="cpu").policy.state_dict()
    assert cloned.keys() == best.keys()
    for key in best:
        torch.testing.assert_close(cloned[key], best[key], atol=1e-6, rtol=0)
    assert not all(torch.allclose(best[k], fresh[k], atol=1e-3) for k in best)  # without it: other weights
    notes = json.loads((tmp_path / "clone" / "config.resolved.json").read_text(encoding="utf-8"))["notes"]
    assert any("--init-from" in note for note in notes)


def test_init_from_refuses_other_spaces(first_run: Path, tmp_path: Path) -> None:
    with pytest.raises(RunConfigError, match=r"observation space .* differs from this run's \('lidar'"):
        train(base_config(observation="lidar"), tmp_path / "a", progress=False, init_from=first_run)
    other_actions = [{"steering_angle": a, "speed": 1.0} for a in (-20, -5, 0, 5, 20)]  # also 5 actions
    with pytest.raises(RunConfigError, match=r"action space .* differs from this run's"):
        train(base_config(action_space=other_actions), tmp_path / "b", progress=False, init_from=first_run)
    with pytest.raises(RunConfigError, match="policy network"):
        config = base_config(hyperparameters={"net_arch": [32]})
        train(config, tmp_path / "c", progress=False, init_from=first_run)
    assert not any((tmp_path / d).exists() for d in "abc")  # refused before a run directory was made


def test_cli_resume_and_init_from(first_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from pitlane.commands.train import app

    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    run = tmp_path / "run"
    shutil.copytree(first_run, run)
    result = runner.invoke(app, ["--resume", str(run), "--track", "hairpin"])
    assert result.exit_code == 2 and "--track cannot change it" in result.output
    result = runner.invoke(app, ["--resume", str(run), "--steps", str(FIRST_STEPS + 512), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == FIRST_STEPS + 512
    result = runner.invoke(
        app,
        [
            "--init-from",
            str(first_run),
            "--track",
            "oval",
            "--observation",
            "lidar",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 2 and "observation space" in result.output
