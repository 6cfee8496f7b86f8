"""`pitlane bench races`' round without its training: noisy copies of an exported model are distinct
submissions that pass the upload check, and a round on local workers ranks every one the same way twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.races import _noisy_copy, run_round
from contracts.model_card import sha256_file
from contracts.virtual_race import EvaluationJob
from league_server.jobs.engine import LocalWorkers
from tests.export_fixtures import exported_state

__all__ = ["exported_state"]


def test_a_round_ranks_every_submission_the_same_way_on_one_and_two_workers(
    exported_state: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    subs = [_noisy_copy(exported_state, tmp_path / "subs" / f"racer{i}", 0.05 * i, rng) for i in range(3)]
    assert len({sha256_file(s / "model.onnx") for s in subs}) == 3  # distinct files, each listed by its card
    rounds = []
    for workers in (1, 2):
        engine = LocalWorkers(workers)
        try:
            rounds.append(run_round(subs, engine, tmp_path / f"round{workers}"))
        finally:
            engine.close()
    one, two = rounds
    assert one.ranked == two.ranked == 3 and one.failed == 0
    assert one.order == two.order and sorted(one.order) == ["racer0", "racer1", "racer2"]
    job = EvaluationJob.read(tmp_path / "round2" / "racer1" / "job.json")
    assert job.spec.race_rules().laps == 3
