"""`pitlane bench robust`: does the default recipe drive tracks and a car it never saw? Today's recipe beside it.

Two recipes get the same budget of car-steps in one run: **today's** (`trainer.config.ONE_TRACK`: reinvent_base
alone, one direction, no randomisation: DeepRacer's kind of training) and the **default**
(`trainer.config.RunConfig`: reinvent_base + `ROBUST_TRACK_POOL` both ways, `strong` randomisation). Each is
exported as a car gets it (int8), and its robustness card is measured with the benchmark's settings: every
track of `trainer.robustness.HELD_OUT_TRACKS` (in neither recipe's training), `seeds` seeds each drawing its own
`eval-shift` perturbation, `laps` laps a seed, clean laps counted. Beside it, one unperturbed evaluation per
held-out track gives best lap / the car's physical limit (`sim.raceline`) without the shift. With `camera`,
each state model is distilled into the camera student (`pitlane distill`'s defaults) and measured the same way.

Goals: state >= 95 % clean-lap completion, camera >= 90 %, best lap <= 1.25x each track's limit; training
within 10 min (state) and 15 min more (camera).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.errors import RobustBenchError

log = logging.getLogger(__name__)

STATE_GOAL = 0.95
CAMERA_GOAL = 0.90
LAP_GOAL = 1.25  # best lap / the car's physical limit
STATE_BUDGET_S = 600.0
CAMERA_BUDGET_S = 900.0
RECIPES = ("today", "default")


@dataclass
class RobustRow:
    """One model: `recipe` (today | default) x `observation` (state | camera). Times in s; completion 0-1
    (clean laps under eval-shift on the held-out tracks) with its 95 % interval; `worst_best_over_limit`: the
    largest best-lap / limit ratio over the held-out tracks (under the shift, and unperturbed); `tracks`: the
    card's per-track rows."""

    recipe: str
    observation: str
    train_wall_s: float
    steps: int
    completion: float
    completion_ci95: tuple[float, float]
    completion_with_resets: float
    worst_best_over_limit_shift: float | None
    worst_best_over_limit_plain: float | None
    tracks: list[dict[str, Any]]
    plain: list[dict[str, Any]]

    @property
    def goal(self) -> float:
        return CAMERA_GOAL if self.observation == "camera" else STATE_GOAL

    @property
    def budget_s(self) -> float:
        return CAMERA_BUDGET_S if self.observation == "camera" else STATE_BUDGET_S

    def to_dict(self) -> dict[str, Any]:
        lap = self.worst_best_over_limit_plain
        return {**asdict(self), "completion_goal": self.goal, "meets_completion": self.completion >= self.goal,
                "lap_goal": LAP_GOAL, "meets_lap_plain": lap is not None and lap <= LAP_GOAL,
                "budget_s": self.budget_s, "within_budget": self.train_wall_s <= self.budget_s}  # fmt: skip


def recipe_config(recipe: str, steps: int, seed: int = 0) -> Any:
    """The RunConfig of `recipe` (today | default) with `steps` car-steps."""
    from trainer.config import ONE_TRACK, RunConfig

    extra = ONE_TRACK if recipe == "today" else {}
    return RunConfig(total_steps=steps, seed=seed, **extra)


def measure(run: Path, out: Path, *, seeds: int, laps: int, stage: Callable[[str], None]) -> dict[str, Any]:
    """Export `run` (int8) into `out` with the benchmark's robustness settings; then each held-out track once
    unperturbed. The card's robustness and the unperturbed rows."""
    from device.policy import OnnxPolicy
    from sim.drivers import onnx_driver
    from trainer.evaluate import config_from_card
    from trainer.export.pipeline import ExportSettings, export_run
    from trainer.robustness import HELD_OUT_TRACKS, RobustnessSettings
    from trainer.shift_eval import shift_evaluation

    settings = RobustnessSettings(seeds=seeds, laps=laps, tracks=HELD_OUT_TRACKS)
    result = export_run(run, out, ExportSettings(int8=True, robustness=settings), on_stage=stage)
    card = result.card.robustness
    if card is None:
        raise RobustBenchError(f"{out / 'model.json'}: the export wrote no robustness card")
    policy = OnnxPolicy(result.files["int8"])
    config = config_from_card(policy.card, result.files["int8"])
    stage("unperturbed laps on the held-out tracks")
    plain = shift_evaluation(onnx_driver(policy, config.resolved_action_space()), config, randomization="none",
                             seeds=1, tracks=HELD_OUT_TRACKS, laps=laps, max_lap_s=settings.max_lap_s)  # fmt: skip
    return {"card": card, "plain": [asdict(t) for t in plain.tracks]}


def _worst(ratios: list[float | None]) -> float | None:
    """The largest ratio, or None when a track had no completed lap (no ratio: the goal is not met)."""
    return None if not ratios or any(r is None for r in ratios) else max(r for r in ratios if r is not None)


def _row(recipe: str, observation: str, wall_s: float, steps: int, measured: dict[str, Any]) -> RobustRow:
    card = measured["card"]
    return RobustRow(
        recipe=recipe,
        observation=observation,
        train_wall_s=round(wall_s, 1),
        steps=steps,
        completion=card.completion,
        completion_ci95=card.completion_ci95,
        completion_with_resets=card.completion_with_resets,
        worst_best_over_limit_shift=_worst([t.best_over_limit for t in card.tracks]),
        worst_best_over_limit_plain=_worst([t["best_over_limit"] for t in measured["plain"]]),
        tracks=[t.model_dump() for t in card.tracks],
        plain=measured["plain"],
    )


def bench_robust(
    *,
    steps: int = 2_000_000,
    seeds: int = 20,
    laps: int = 2,
    camera: bool = True,
    recipes: tuple[str, ...] = RECIPES,
    on_row: Callable[[RobustRow], None] | None = None,
    stage: Callable[[str], None] | None = None,
    keep: Path | None = None,
) -> list[RobustRow]:
    """Train each of `recipes` for `steps` car-steps, measure it (state), then distil and measure its camera
    student (`camera`). Runs in a temporary folder unless `keep` names one."""
    from trainer.distill import distill
    from trainer.train import train

    say = stage or (lambda _text: None)
    rows: list[RobustRow] = []
    with tempfile.TemporaryDirectory(prefix="pitlane-bench-robust-") as tmp:
        root = Path(keep) if keep is not None else Path(tmp)
        for recipe in recipes:
            say(f"{recipe} recipe: training {steps:,} car-steps")
            t0 = time.monotonic()
            run = root / f"{recipe}-state"
            train(recipe_config(recipe, steps), run, progress=False)
            wall = time.monotonic() - t0
            rows.append(_row(recipe, "state", wall, steps, measure(run, root / f"{recipe}-state-model",
                                                                      seeds=seeds, laps=laps, stage=say)))  # fmt: skip
            if on_row:
                on_row(rows[-1])
            if not camera:
                continue
            say(f"{recipe} recipe: distilling the camera student")
            t0 = time.monotonic()
            student = root / f"{recipe}-camera"
            distill(run, student)
            wall = time.monotonic() - t0
            rows.append(_row(recipe, "camera", wall, steps, measure(student, root / f"{recipe}-camera-model",
                                                                       seeds=seeds, laps=laps, stage=say)))  # fmt: skip
            if on_row:
                on_row(rows[-1])
    return rows
