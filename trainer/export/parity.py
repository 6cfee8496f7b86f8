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

#: the int8 model's targets: the same action as fp32 on >= 99.9 % of the frames that are not near-ties, and
#: a closed-loop best lap within 2 % of fp32's
AGREEMENT_TARGET = 0.999
STEER_TOL_DEG = 1.0
SPEED_TOL_MPS = 0.05
#: Discrete commands are the action table's values, but a graph returns them in float32 and SB3's decode in
#: float64 (2.8 m/s is 2.7999999523 in float32): equal within this (deg or m/s) is the same action. Distinct
#: actions of a DeepRacer table differ by far more.
SAME_ACTION_TOL = 1e-4
LAP_TIME_TOL = 0.02
#: a frame is a near-tie when fp32's two best logits are closer than this fraction of their median gap over
#: all frames: the policy was indifferent there, and any rounding (int8, another CPU's float kernels) may
#: pick either action. Measured on distilled cnn_shallow policies: flips happened at gaps <= 0.3 % of the
#: median (docs/benchmarks.md); 1 % leaves a margin and excludes ~0.1-0.5 % of frames.
TIE_GAP_FRACTION = 0.01


def commands(act: Callable[[np.ndarray], tuple[float, float]], frames: np.ndarray) -> np.ndarray:
    """(n, 2) float64 (steering_deg, speed_mps) of `act` on each frame."""
    return np.array([act(frame) for frame in frames], dtype=np.float64).reshape(len(frames), 2)


def agreement(
    reference: np.ndarray, other: np.ndarray, *, discrete: bool, target: float = AGREEMENT_TARGET
) -> dict[str, Any]:
    """How often `other`'s commands (n, 2) match `reference`'s: the same action (discrete; the action table's
    values, equal to float32 precision: SAME_ACTION_TOL) or within STEER_TOL_DEG / SPEED_TOL_MPS (continuous)."""
    d = np.abs(other - reference)
    if discrete:
        same = (d[:, 0] <= SAME_ACTION_TOL) & (d[:, 1] <= SAME_ACTION_TOL)
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
        "target": target,
        "meets_target": bool(rate >= target),
    }


def near_ties(
    logits: np.ndarray,
    disagree: np.ndarray,
    *,
    tie_fraction: float = TIE_GAP_FRACTION,
    target: float = AGREEMENT_TARGET,
) -> dict[str, Any]:
    """The fp32 top-2 logit gap (n frames, n actions logits) at the disagreeing frames (bool (n,)) and over
    all frames, and the agreement on the frames that are not near-ties (gap >= `tie_fraction` x the median
    gap): the measure the `target` applies to for discrete policies."""
    top2 = np.sort(np.asarray(logits, np.float64), axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    disagree = np.asarray(disagree, bool)
    at = gap[disagree]
    median = float(np.median(gap))
    tied = gap < tie_fraction * median
    rate = float(1.0 - disagree[~tied].mean()) if (~tied).any() else float("nan")
    return {
        "fp32_logit_gap_median": median,
        "fp32_logit_gap_max_where_disagreeing": float(at.max()) if len(at) else None,
        "frames_with_fp32_logit_gap_below_0.01": int((gap < 0.01).sum()),
        "tie_gap": tie_fraction * median,
        "tied_frames": int(tied.sum()),
        "agreement_non_tied": rate,
        "disagreeing_non_tied_frames": int((disagree & ~tied).sum()),
        "meets_target": bool(rate >= target),
        "criterion": f"same action on frames whose fp32 top-2 logit gap is >= {tie_fraction:g} x the median gap",
    }


def int8_problems(report: dict[str, Any], *, lap_tolerance: float = LAP_TIME_TOL) -> list[str]:
    """Why the int8 model of a parity report misses its targets (empty when it meets them): action
    agreement (`int8_vs_fp32.meets_target`) and the closed-loop best lap within `lap_tolerance` of fp32's
    (also when int8 completes fewer laps than fp32)."""
    problems: list[str] = []
    a = report.get("int8_vs_fp32")
    if a is None:
        return problems
    if not a["meets_target"]:
        rate = a.get("agreement_non_tied", a["agreement"])
        problems.append(
            f"int8 takes fp32's action on {100 * rate:.2f} % of {a['frames']:,} frames ({a['criterion']}), "
            f"under the {100 * a['target']:.1f} % target"
        )
    closed = report["closed_loop"]
    int8, fp32 = closed["int8"], closed["fp32"]
    if (int8["completed_laps"] or 0) < (fp32["completed_laps"] or 0):
        problems.append(
            f"int8 completed {int8['completed_laps']} of {int8['laps_planned']} closed-loop laps, fp32 "
            f"{fp32['completed_laps']}"
        )
    ratio = closed["int8_vs_fp32"]["best_lap_ratio"]
    if ratio is not None and abs(ratio - 1.0) > lap_tolerance:
        # kept strict when fp32 itself leaves the road: one different action there changes the whole lap,
        # and the car would meet that difference too
        crashes = f"; fp32 itself went off track {fp32['offtrack']} times" if fp32.get("offtrack") else ""
        problems.append(
            f"int8's best closed-loop lap is {ratio:.4f} x fp32's ({int8['best_lap_s']:.3f} s against "
            f"{fp32['best_lap_s']:.3f} s), outside {100 * lap_tolerance:g} %{crashes}"
        )
    return problems


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


def lap_ratio(
    numerator: dict[str, Any], denominator: dict[str, Any], *, tolerance: float = LAP_TIME_TOL
) -> dict[str, Any]:
    """Best-lap ratio of two closed-loop summaries, with the target `tolerance` (a fraction; None when either
    has no lap)."""
    a, b = numerator["best_lap_s"], denominator["best_lap_s"]
    if a is None or b is None:
        return {"best_lap_ratio": None, "within_2_percent": None, "tolerance": tolerance,
                "within_tolerance": None, "note": "no completed lap to compare"}  # fmt: skip
    ratio = a / b
    return {
        "best_lap_ratio": ratio,
        "within_2_percent": bool(abs(ratio - 1.0) <= LAP_TIME_TOL),
        "tolerance": tolerance,
        "within_tolerance": bool(abs(ratio - 1.0) <= tolerance),
    }
