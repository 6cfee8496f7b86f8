"""`trainer.export.parity`: the int8 targets (agreement on frames that are not near-ties, laps within 2 %)."""

from __future__ import annotations

import numpy as np

from trainer.export import parity


def test_near_ties_are_left_out_of_the_agreement_and_counted() -> None:
    gaps = np.full(1_000, 4.0)
    gaps[:5] = 0.01  # five frames where fp32 barely preferred one action: 0.25 % of the median gap
    logits = np.stack([np.zeros(1_000), gaps, np.full(1_000, -3.0)], axis=1)
    disagree = np.zeros(1_000, bool)
    disagree[:5] = True
    tied = parity.near_ties(logits, disagree)
    assert tied["tied_frames"] == 5 and tied["agreement_non_tied"] == 1.0 and tied["meets_target"]
    disagree[500] = disagree[501] = True  # two flips where the policy was decided: 99.8 % < 99.9 %
    missed = parity.near_ties(logits, disagree)
    assert missed["disagreeing_non_tied_frames"] == 2 and not missed["meets_target"]
    strict = parity.near_ties(logits, disagree, tie_fraction=0.0)  # every frame counts
    assert strict["tied_frames"] == 0 and strict["agreement_non_tied"] == 1 - 7 / 1_000


def _report(agreement_ok: bool, int8_best_lap_s: float, int8_laps: int = 3) -> dict[str, object]:
    fp32 = {"completed_laps": 3, "laps_planned": 3, "best_lap_s": 7.0}
    int8 = {"completed_laps": int8_laps, "laps_planned": 3, "best_lap_s": int8_best_lap_s}
    return {
        "int8_vs_fp32": {
            "meets_target": agreement_ok,
            "agreement": 0.9914,
            "agreement_non_tied": 0.9950,
            "frames": 5_000,
            "criterion": "same action",
            "target": 0.999,
        },
        "closed_loop": {"fp32": fp32, "int8": int8, "int8_vs_fp32": parity.lap_ratio(int8, fp32)},
    }


def test_int8_problems_name_each_missed_target() -> None:
    assert parity.int8_problems(_report(True, 7.0)) == []
    (agreement,) = parity.int8_problems(_report(False, 7.0))
    assert "99.50 % of 5,000 frames" in agreement and "99.9 % target" in agreement
    (lap,) = parity.int8_problems(_report(True, 6.8))  # the hobbyist's 0.97
    assert "0.9714 x fp32's" in lap and "outside 2 %" in lap
    assert parity.int8_problems(_report(True, 6.8), lap_tolerance=0.05) == []
    fewer = parity.int8_problems(_report(True, 7.0, int8_laps=1))
    assert fewer == ["int8 completed 1 of 3 closed-loop laps, fp32 3"]


def test_a_discrete_action_in_float32_is_the_same_action_as_in_float64() -> None:
    """DeepRacer tables hold speeds like 2.8 m/s that float32 cannot hold exactly: SB3's decode (float64) and
    the graph's output (float32) of the same action used to count as different actions (58 % agreement of
    a checkpoint with its own exact graph). A neighbouring action still counts as different."""
    table = np.array([[-30.0, 1.0], [-5.0, 2.8], [0.0, 3.5], [5.0, 2.8], [30.0, 1.0]])
    picks = np.arange(1_000) % len(table)
    reference = table[picks]
    graph = reference.astype(np.float32).astype(np.float64)
    assert (graph != reference).any()  # 2.8 is not a float32
    assert parity.agreement(reference, graph, discrete=True)["agreement"] == 1.0
    neighbour = graph.copy()
    neighbour[:10] = table[(picks[:10] + 1) % len(table)]
    assert parity.agreement(reference, neighbour, discrete=True)["disagreeing_frames"] == 10
