"""DeepRacer's log-analysis library reads a pitlane run as it reads a DeepRacer-for-Cloud model folder.

A real (short) PPO run and two evaluations of it, read by deepracer-utils' `DeepRacerLog` and
`AnalysisUtils.simulation_agg` exactly as the community's analysis notebooks call them; their episode count,
complete-lap count, per-episode progress and lap times are compared with pitlane's own record of the traced
car's episodes (`training-simtrace.json`, from the same infos metrics.csv counts) and with the evaluation's
laps. The regressions: 0 complete laps where the run had 29; episodes split across iteration files; no
model_metadata.json or hyperparameters.json; no `prepare` row, so each episode's time was off by a step.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import skip_or_fail
from trainer.config import ONE_TRACK, RunConfig
from trainer.evaluate import evaluate_policy, evaluation_dir, load_policy
from trainer.train import train

#: car 0's episodes per iteration file: small, so the short run spans several files
EPISODES_PER_FILE = 10


@pytest.fixture(scope="module")
def deepracer_logs() -> Any:
    try:
        from deepracer import logs
    except ImportError:
        skip_or_fail("deepracer-utils is not installed (it is in the dev extra: pip install -e '.[dev]')")
    return logs


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150,000 car-steps of the default recipe on reinvent_base: it laps within them (about 10 s of training)."""
    out = tmp_path_factory.mktemp("drfc") / "run"
    config = RunConfig(
        **ONE_TRACK,
        track="reinvent_base",
        total_steps=150_000,
        eval_every_steps=150_000,
        simtrace_episodes=EPISODES_PER_FILE,
    )
    train(config, out, progress=False)
    return out


def _no_missing_file_warnings(caplog: pytest.LogCaptureFixture) -> None:
    notes = [r.getMessage() for r in caplog.records if r.name.startswith("deepracer")]
    assert not [n for n in notes if "not found" in n], notes


def test_deepracer_utils_counts_the_training_run_as_pitlane_does(
    run: Path, deepracer_logs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    log = deepracer_logs.DeepRacerLog(str(run))
    log.load_training_trace()
    _no_missing_file_warnings(caplog)
    agg = deepracer_logs.AnalysisUtils.simulation_agg(log.dataframe()).sort_values("episode")
    record = json.loads((run / "training-simtrace.json").read_text(encoding="utf-8"))["episodes"]
    laps = [e for e in record if e["lap_time_s"] is not None]
    assert laps, "the run completed no lap with car 0: the comparison below would prove little"

    assert len(agg) == len(record)
    assert int((agg["progress"] == 100).sum()) == len(laps)
    assert agg["episode"].tolist() == [e["episode"] for e in record]
    # each episode opens with DeepRacer's prepare row (step 1), which DeepRacer's step counts include
    df = log.dataframe()
    firsts = df.groupby("unique_episode").first()
    assert set(firsts["episode_status"]) == {"prepare"} and set(firsts["steps"]) == {1}
    assert agg["steps"].tolist() == [e["steps"] + 1 for e in record]
    # whole episodes per file: iteration N holds episodes N*K to N*K+K-1, as DeepRacer's iterations do
    assert agg["iteration"].tolist() == [e["episode"] // EPISODES_PER_FILE for e in record]
    # deepracer-utils reports an episode's furthest progress, pitlane its last row's: equal unless the car
    # rolled back before it left the track
    ours = np.array([e["progress"] for e in record])
    assert np.all(agg["progress"].to_numpy() >= ours - 1e-3)
    assert np.mean(np.abs(agg["progress"].to_numpy() - ours) < 1e-3) > 0.9
    # the lap times the notebooks compute (from the prepare row's time stamp) are pitlane's
    np.testing.assert_allclose(
        agg.loc[agg["progress"] == 100, "time"].to_numpy(), [e["lap_time_s"] for e in laps], atol=1e-3
    )
    # the run's metadata, and the notebooks' stability view
    assert len(log.action_space()) == 5 and log.hyperparameters()["num_episodes_between_training"] == 10
    assert log.agent_and_network()["network"] == "MLP"
    assert len(log.stability.analyze()) > 0


def _strays_at_first(policy: Any, straight: int, steps: range) -> Any:
    """`policy`, except that it holds `straight` (full speed ahead) on control steps `steps` of its drive: the
    car leaves the track at the first corner, is put back and goes on."""
    calls = iter(range(10**9))

    def drive(obs: Any) -> Any:
        return straight if next(calls) in steps else policy(obs)

    return drive


def test_deepracer_utils_reads_evaluations_as_pitlane_scores_them(
    run: Path, deepracer_logs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    policy, config = load_policy(run)
    straight = next(
        i for i, a in enumerate(config.resolved_action_space().to_json()) if a["steering_angle"] == 0
    )
    results = []
    for driver in (policy, _strays_at_first(policy, straight, range(20, 60))):
        folder = evaluation_dir(run)
        results.append(evaluate_policy(driver, config, laps=3, offtrack_penalty_s=5.0, out_dir=folder))
    assert sum(lap.offtrack for lap in results[1].laps) > 0, "the straying drive never left the track"

    caplog.set_level(logging.WARNING)
    log = deepracer_logs.DeepRacerLog(str(run))
    log.load_evaluation_trace()
    _no_missing_file_warnings(caplog)
    agg = deepracer_logs.AnalysisUtils.simulation_agg(log.dataframe(), "stream", is_eval=True)
    streams = sorted(agg["stream"].unique())
    assert len(streams) == 2
    for stream, result in zip(streams, results, strict=True):
        laps = agg[agg["stream"] == stream].sort_values("episode")
        assert len(laps) == len(result.laps)
        assert laps["progress"].tolist() == pytest.approx([lap.progress for lap in result.laps], abs=1e-3)
        assert laps["off_track"].tolist() == [lap.offtrack for lap in result.laps]
        # with penalties: DeepRacer's clock runs on while the car is held, so the notebooks see them
        assert laps["time"].tolist() == pytest.approx([lap.lap_time_s for lap in result.laps], abs=1e-3)
