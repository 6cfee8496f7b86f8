"""The parity report (`parity.json`): does the exported model do what the trained policy did?

- `torch_vs_onnx`: the same frames through the torch actor and the fp32 graph: max |difference| of the head's
  output (logits or mean, from a twin export that also outputs it) and of steering_deg / speed_mps of the
  shipped model.onnx;
- `checkpoint_vs_fp32`: SB3's own `predict(deterministic=True)` decoded by the action space, against the fp32
  graph's commands (the actions the policy took in training, against the car's);
- `int8_vs_fp32`: action agreement over >= 5,000 frames of closed-loop driving (discrete: the same action;
  continuous: |d steering| <= 1 deg and |d speed| <= 0.05 m/s); for discrete policies also the fp32 gap
  between the two best logits at the frames where they disagree, beside that gap's median over all frames
  (a disagreement at a gap of 0.003 where the median is 1.1 is a near-tie: the policy was indifferent);
- `closed_loop`: the checkpoint, fp32 and int8 driving the same track by the same rules (`sim.evaluation`):
  laps, best lap, and the int8 / fp32 best-lap ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: targets of issue 5
AGREEMENT_TARGET = 0.999
STEER_TOL_DEG = 1.0
SPEED_TOL_MPS = 0.05
LAP_TIME_TOL = 0.02


def commands(act: Callable[[np.ndarray], tuple[float, float]], frames: np.ndarray) -> np.ndarray:
    """(n, 2) float64 (steering_deg, speed_mps) of `act` on each frame."""
    return np.array([act(frame) for frame in frames], dtype=np.float64).reshape(len(frames), 2)


def agreement(reference: np.ndarray, other: np.ndarray, *, discrete: bool) -> dict[str, Any]:
    """How often `other`'s commands (n, 2) match `reference`'s: the same action (discrete; the action table's
    values compared exactly) or within STEER_TOL_DEG / SPEED_TOL_MPS (continuous)."""
    d = np.abs(other - reference)
    if discrete:
        same = (d[:, 0] == 0) & (d[:, 1] == 0)
    else:
        same = (d[:, 0] <= STEER_TOL_DEG) & (d[:, 1] <= SPEED_TOL_MPS)
    rate = float(same.mean()) if len(same) else float("nan")
    distinct = len({tuple(row) for row in np.round(reference, 6).tolist()})
    note = (
        {"note": "the reference took one action on every frame: agreement says little"}
        if distinct < 2
        else {}
    )
    return {
        "distinct_reference_actions": distinct,
        **note,
        "frames": len(same),
        "criterion": "same action"
        if discrete
        else f"|d steering| <= {STEER_TOL_DEG} deg, |d speed| <= {SPEED_TOL_MPS} m/s",
        "agreement": rate,
        "disagreeing_frames": int((~same).sum()),
        "max_abs_diff_steering_deg": float(d[:, 0].max()) if len(d) else None,
        "max_abs_diff_speed_mps": float(d[:, 1].max()) if len(d) else None,
        "target": AGREEMENT_TARGET,
        "meets_target": bool(rate >= AGREEMENT_TARGET),
    }


def near_ties(logits: np.ndarray, disagree: np.ndarray) -> dict[str, Any]:
    """The fp32 top-2 logit gap (n frames, n actions logits) at the disagreeing frames (bool (n,)) and over
    all frames: are int8's other choices where the policy nearly tied?"""
    top2 = np.sort(np.asarray(logits, np.float64), axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    at = gap[np.asarray(disagree, bool)]
    return {
        "fp32_logit_gap_median": float(np.median(gap)),
        "fp32_logit_gap_max_where_disagreeing": float(at.max()) if len(at) else None,
        "frames_with_fp32_logit_gap_below_0.01": int((gap < 0.01).sum()),
    }


def disagreeing(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """bool (n,): frames where two discrete policies' commands differ."""
    return np.any(np.asarray(other) != np.asarray(reference), axis=1)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def evaluation_summary(result: Any) -> dict[str, Any]:
    """The closed-loop numbers the report keeps of an EvaluationResult (times in s)."""
    d = result.to_dict()
    return {
        "completed_laps": d["completed_laps"],
        "laps_planned": len(d["laps"]) if d.get("laps") is not None else None,
        "best_lap_s": d["best_lap_s"],
        "mean_lap_s": d["mean_lap_s"],
        "lap_times_s": [lap["lap_time_s"] for lap in d["laps"]],
        "offtrack": d["offtrack"],
        "resets": sum(lap["resets"] for lap in d["laps"]),
        "mean_progress": d["mean_progress"],
        "ended": d["ended"],
        "track": d["track"],
    }


def lap_ratio(numerator: dict[str, Any], denominator: dict[str, Any]) -> dict[str, Any]:
    """Best-lap ratio of two closed-loop summaries, with the 2 % target (None when either has no lap)."""
    a, b = numerator["best_lap_s"], denominator["best_lap_s"]
    if a is None or b is None:
        return {"best_lap_ratio": None, "within_2_percent": None, "note": "no completed lap to compare"}
    ratio = a / b
    return {"best_lap_ratio": ratio, "within_2_percent": bool(abs(ratio - 1.0) <= LAP_TIME_TOL)}
