"""`pitlane bench train`: how fast the racing recipe learns to lap, measured on this machine.

Trains `bench_recipe()` (the default state-observation recipe with the `progress_rate` reward and the fast
`DEFAULT_TRAINING_ACTION_SPACE`) one PPO rollout at a time for a wall-clock budget, and evaluates the deterministic policy with `sim.evaluation.evaluate` (3 laps from the start line,
DeepRacer's time-trial rules) every few seconds. An evaluation is clean when all 3 laps are completed without
leaving the track; the race ends at the first reset (`max_resets=0`), so a failing policy costs little.

Why not `RunConfig()`'s own defaults (centerline_speed, 1-2 m/s): they lap cleanly as fast (~5 s) but stall
near 3.7x the physical limit, since no action is faster than 2 m/s. The racing recipe measured 2026-11-27 on
this 2-core machine (seed 0, 2 minutes): first clean evaluation at 2.4 s (41k car-steps), best lap 4.93 s =
1.08x the limit. It became `RunConfig`'s default; on the `oval` its stochastic training episodes progress less
within 40k steps (tests/trainer/test_training.py's learning test measures that).

All times are wall-clock seconds since training began and include the evaluations (what a user waits for).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainer.config import RunConfig

#: Seconds of training between evaluations, before and after the first clean evaluation.
EVAL_EVERY_S_SEARCHING = 2.0
EVAL_EVERY_S_IMPROVING = 10.0
EVAL_LAPS = 3
#: Simulated seconds per evaluation lap before it is cut (a crawling policy would otherwise take minutes).
EVAL_MAX_S_PER_LAP = 40.0


def bench_recipe(track: str = "reinvent_base") -> RunConfig:
    """The benchmark's recipe: RunConfig's defaults (64 cars, state observation, PPO, the `progress_rate`
    reward, `DEFAULT_TRAINING_ACTION_SPACE`)."""
    return RunConfig(track=track)


@dataclass
class BenchEval:
    """One evaluation during the benchmark."""

    wall_s: float
    steps: int
    completed_laps: int
    offtrack: int
    best_lap_s: float | None
    clean: bool


@dataclass
class BenchResult:
    track: str
    minutes: float
    seconds_to_first_clean_eval: float | None
    steps_to_first_clean_eval: int | None
    steps: int
    wall_s: float
    steps_per_s: float
    best_lap_s: float | None
    limit_lap_s: float | None
    best_over_limit: float | None
    evaluations: list[BenchEval] = field(default_factory=list)
    recipe: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds_to_first_clean_eval": _round(self.seconds_to_first_clean_eval, 1),
            "steps_to_first_clean_eval": self.steps_to_first_clean_eval,
            "steps": self.steps,
            "steps_per_s": _round(self.steps_per_s, 0),
            "best_lap_s": _round(self.best_lap_s, 3),
            "limit_lap_s": _round(self.limit_lap_s, 3),
            "best_over_limit": _round(self.best_over_limit, 3),
            "wall_s": _round(self.wall_s, 1),
            "minutes": self.minutes,
            "track": self.track,
            "evaluations": len(self.evaluations),
            "clean_evaluations": sum(e.clean for e in self.evaluations),
            "recipe": self.recipe,
        }


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


def bench_train(
    minutes: float = 10.0,
    *,
    track: str = "reinvent_base",
    config: RunConfig | None = None,
    on_eval: Callable[[BenchEval], None] | None = None,
) -> BenchResult:
    """Train `bench_recipe()` (or `config`) on `track` for `minutes` of wall time, evaluating as it goes."""
    import torch

    from sim.envs.vector import TimeTrialVectorEnv
    from trainer.evaluate import evaluate_policy, predict_fn
    from trainer.train import build_model
    from trainer.vec_env import BatchedVecEnv

    cfg = config if config is not None else bench_recipe(track)
    cfg = cfg.model_copy(update={"track": track})
    torch.set_num_threads(1)
    vec = BatchedVecEnv(TimeTrialVectorEnv(num_envs=cfg.n_envs, **cfg.env_kwargs()))
    model = build_model(cfg, vec)
    policy = predict_fn(model)
    rollout = cfg.n_envs * cfg.hyperparameters.n_steps if cfg.algorithm == "ppo" else cfg.n_envs * 64
    budget_s = 60.0 * minutes
    evaluations: list[BenchEval] = []
    first_clean: tuple[float, int] | None = None
    best_lap = math.inf
    limit: float | None = None
    t0 = time.monotonic()
    last_eval = t0
    try:
        while True:
            model.learn(total_timesteps=rollout, reset_num_timesteps=False, progress_bar=False)
            now = time.monotonic()
            over = now - t0 >= budget_s
            every = EVAL_EVERY_S_SEARCHING if first_clean is None else EVAL_EVERY_S_IMPROVING
            if now - last_eval < every and not over:
                continue
            result = evaluate_policy(
                policy, cfg, laps=EVAL_LAPS, max_resets=0, max_time_s=EVAL_MAX_S_PER_LAP * EVAL_LAPS
            )
            last_eval = time.monotonic()
            s = result.summary
            limit = s.get("limit_lap_s")
            clean = s["completed_laps"] == EVAL_LAPS and s["offtrack"] == 0 and s["resets"] == 0
            ev = BenchEval(
                wall_s=last_eval - t0,
                steps=int(model.num_timesteps),
                completed_laps=s["completed_laps"],
                offtrack=s["offtrack"],
                best_lap_s=s["best_lap_s"],
                clean=clean,
            )
            evaluations.append(ev)
            if on_eval is not None:
                on_eval(ev)
            if clean and first_clean is None:
                first_clean = (ev.wall_s, ev.steps)
            # laps of a clean evaluation only: a lap that left the track is not a lap time a race would keep
            if clean and s["best_lap_s"] is not None:
                best_lap = min(best_lap, float(s["best_lap_s"]))
            if over:
                break
    finally:
        vec.close()
    wall = time.monotonic() - t0
    steps = int(model.num_timesteps)
    best = None if math.isinf(best_lap) else best_lap
    return BenchResult(
        track=track,
        minutes=minutes,
        seconds_to_first_clean_eval=None if first_clean is None else first_clean[0],
        steps_to_first_clean_eval=None if first_clean is None else first_clean[1],
        steps=steps,
        wall_s=wall,
        steps_per_s=steps / wall if wall > 0 else 0.0,
        best_lap_s=best,
        limit_lap_s=limit,
        best_over_limit=None if best is None or not limit else best / limit,
        evaluations=evaluations,
        recipe=recipe_summary(cfg),
    )


def recipe_summary(cfg: RunConfig) -> dict[str, Any]:
    """The recipe's essentials, for the benchmark's JSON."""
    h = cfg.hyperparameters
    return {
        "reward": cfg.reward,
        "observation": cfg.observation,
        "algorithm": cfg.algorithm,
        "n_envs": cfg.n_envs,
        "n_steps": h.n_steps,
        "batch_size": h.batch_size,
        "n_epochs": h.n_epochs,
        "learning_rate": h.learning_rate,
        "gamma": h.gamma,
        "actions": cfg.resolved_action_space().to_json(),
    }
