"""`train(config, out_dir)`: one training run with stable-baselines3 on the batched simulator.

The run directory describes itself:
    config.resolved.json   the validated RunConfig (action space spelled out) and notes on what differs
    versions.json          pitlane, python, numpy, torch, stable-baselines3, gymnasium
    metrics.csv            one row per rollout: steps, wall_s, steps_per_s, episodes, mean_episode_reward,
                           mean_progress, lap_completion_rate, best_lap_s, eval_clean_streak
    sb3/                   stable-baselines3's own logs (progress.csv; TensorBoard events when installed)
    checkpoints/step_<N>.zip, best.zip (best by evaluation), final.zip
    training-simtrace/<N>-iteration.csv   DeepRacer simtrace rows of car 0, one file per rollout

Evaluation (every `eval_every_steps`): the deterministic policy drives a single `TimeTrialEnv` from the start
line for up to `eval_laps` episodes; `lap_complete` episodes extend a streak of clean laps that any failure
resets (TODO(lead): switch to `sim.evaluation` once it exists).
"""

from __future__ import annotations

import collections
import csv
import importlib.metadata
import json
import logging
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sim.simtrace import SimTraceWriter
from trainer.config import RunConfig, RunConfigError
from trainer.vec_env import BatchedVecEnv

logger = logging.getLogger(__name__)

METRICS_COLUMNS = (
    "steps", "wall_s", "steps_per_s", "episodes", "mean_episode_reward", "mean_progress",
    "lap_completion_rate", "best_lap_s", "eval_clean_streak",
)  # fmt: skip


@dataclass
class TrainResult:
    """What a run did. Times in wall-clock seconds since training began; steps are car-steps (all cars)."""

    out_dir: Path
    steps: int
    wall_s: float
    steps_per_s: float
    stopped_by: str  # "total_steps" | "until_clean_laps" | "max_episodes" | "mean_episode_reward"
    episodes: int
    best_lap_s: float | None  # best training lap
    best_eval_lap_s: float | None
    first_eval_lap_step: int | None  # first evaluation in which the deterministic policy completed a lap
    first_eval_lap_wall_s: float | None
    notes: list[str] = field(default_factory=list)


@dataclass
class EvalOutcome:
    """One evaluation: `laps` episodes driven (stops at the first failure), lap times of the completed ones."""

    statuses: list[str]
    lap_times_s: list[float]
    mean_progress: float

    @property
    def clean(self) -> int:
        return len(self.lap_times_s)

    def score(self) -> tuple[float, float]:
        """Higher is better: (laps completed + mean progress fraction, -mean lap time)."""
        mean_lap = float(np.mean(self.lap_times_s)) if self.lap_times_s else math.inf
        return (self.clean + self.mean_progress / 100.0, -mean_lap)


def evaluate_laps(model: Any, env: Any, laps: int) -> EvalOutcome:
    """Drive the deterministic policy on a single start-line env for up to `laps` episodes."""
    statuses: list[str] = []
    times: list[float] = []
    progress: list[float] = []
    for _ in range(laps):
        obs, info = env.reset()
        while True:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        statuses.append(info["episode_status"])
        progress.append(float(info["progress"]))
        if info["episode_status"] == "lap_complete":
            times.append(float(info["lap_time_s"]))
        else:
            break  # a streak of clean laps ends here; further laps would only repeat the failure
    return EvalOutcome(statuses, times, float(np.mean(progress)))


def versions() -> dict[str, str]:
    """Versions of what shaped this run's numbers."""
    out = {"python": platform.python_version()}
    for dist in ("pitlane", "numpy", "torch", "stable-baselines3", "gymnasium"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------- the run


def train(
    config: RunConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    on_metrics: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train `config` into `out_dir` (created; must be absent or empty). Raises RunConfigError for a config
    the trainer cannot run yet (camera observations)."""
    import torch
    from stable_baselines3.common.logger import configure

    from sim.envs.time_trial import TimeTrialEnv
    from sim.envs.vector import TimeTrialVectorEnv
    from sim.observations import parse_observation

    kinds = parse_observation(config.observation)
    if any("camera" in kind for kind in kinds):
        raise RunConfigError(
            f"observation {config.observation!r}: camera observations need DeepRacer's CNN networks, which "
            "the trainer does not have yet; train with state or lidar observations"
        )
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise RunConfigError(f"{out}: the run directory exists and is not empty; choose another --out")
    # Environments first: a bad track or reward file fails before the run directory is created.
    vec = BatchedVecEnv(TimeTrialVectorEnv(num_envs=config.n_envs, **config.env_kwargs()), trace_car0=True)
    eval_env = TimeTrialEnv(**{**config.env_kwargs(), "start": "start_line"})
    eval_env.reset(seed=config.seed)  # evaluations repeat with the run's seed (noise, randomisation)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "training-simtrace").mkdir(exist_ok=True)

    torch.set_num_threads(1)  # 2-core laptops: one thread for torch, the simulator is single-threaded too
    notes = config.notes()
    formats = ["csv"]
    if tensorboard_available():
        formats.append("tensorboard")
    else:
        notes.append(
            "TensorBoard logs not written: `pip install tensorboard` to get them (sb3/progress.csv is)"
        )
    _write_json(out / "config.resolved.json", {**config.to_json_dict(), "notes": notes})
    _write_json(out / "versions.json", versions())
    for note in notes:
        logger.info("%s", note)

    model = _build_model(config, vec)
    model.set_logger(configure(str(out / "sb3"), formats))
    callback = _RunCallback(config, out, eval_env, vec, progress=progress, on_metrics=on_metrics)
    try:
        model.learn(total_timesteps=config.total_steps, callback=callback, progress_bar=False)
    finally:
        callback.close()
        vec.close()
    model.save(out / "checkpoints" / f"step_{model.num_timesteps}.zip")
    model.save(out / "final.zip")
    wall = time.monotonic() - callback.t0
    return TrainResult(
        out_dir=out,
        steps=int(model.num_timesteps),
        wall_s=wall,
        steps_per_s=model.num_timesteps / wall if wall > 0 else 0.0,
        stopped_by=callback.stopped_by,
        episodes=callback.episodes,
        best_lap_s=None if math.isinf(callback.best_lap_s) else callback.best_lap_s,
        best_eval_lap_s=None if math.isinf(callback.best_eval_lap_s) else callback.best_eval_lap_s,
        first_eval_lap_step=callback.first_eval_lap_step,
        first_eval_lap_wall_s=callback.first_eval_lap_wall_s,
        notes=notes,
    )


def _build_model(config: RunConfig, vec: Any) -> Any:
    from gymnasium import spaces
    from stable_baselines3 import PPO, SAC

    h = config.hyperparameters
    policy = "MultiInputPolicy" if isinstance(vec.observation_space, spaces.Dict) else "MlpPolicy"
    common: dict[str, Any] = {
        "learning_rate": h.learning_rate,
        "batch_size": h.batch_size,
        "gamma": h.gamma,
        "policy_kwargs": {"net_arch": list(h.net_arch)},
        "seed": config.seed,
        "device": "cpu",
        "verbose": 0,
    }
    if config.algorithm == "sac":
        return SAC(
            policy,
            vec,
            buffer_size=h.buffer_size,
            learning_starts=h.learning_starts,
            tau=h.tau,
            gradient_steps=h.gradient_steps,
            ent_coef="auto" if h.ent_coef == 0 else h.ent_coef,
            **common,
        )
    return PPO(
        policy,
        vec,
        n_steps=h.n_steps,
        n_epochs=h.n_epochs,
        gae_lambda=h.gae_lambda,
        clip_range=h.clip_range,
        ent_coef=h.ent_coef,
        vf_coef=h.vf_coef,
        max_grad_norm=h.max_grad_norm,
        **common,
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def _fmt(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.6g}"


class _RunCallback(BaseCallback):
    """Metrics, checkpoints, evaluation, stop conditions, simtraces and the progress bar of one run."""

    def __init__(
        self,
        config: RunConfig,
        out: Path,
        eval_env: Any,
        vec: BatchedVecEnv,
        *,
        progress: bool,
        on_metrics: Callable[[dict[str, float]], None] | None,
    ) -> None:
        super().__init__()
        self.cfg = config
        self.out = out
        self.eval_env = eval_env
        self.vec = vec
        self.on_metrics = on_metrics
        self.t0 = time.monotonic()
        self.episodes = 0
        self.best_lap_s = math.inf
        self.best_eval_lap_s = math.inf
        self.best_score: tuple[float, float] | None = None
        self.streak = 0
        self.first_eval_lap_step: int | None = None
        self.first_eval_lap_wall_s: float | None = None
        self.stopped_by = "total_steps"
        self.recent_returns: collections.deque[float] = collections.deque(maxlen=100)
        self._window: list[tuple[float, float, bool]] = []  # (return, progress, lap complete) since last row
        self._next_eval = config.eval_every_steps
        self._next_ckpt = config.checkpoint_every_steps
        self._iteration = 0
        self._last_row = (0, self.t0)
        self._last_draw = 0.0
        self._metrics_file = (out / "metrics.csv").open("w", newline="", encoding="utf-8")
        self._metrics = csv.writer(self._metrics_file)
        self._metrics.writerow(METRICS_COLUMNS)
        self._progress = _ProgressBar(config.total_steps) if progress else None
        self._last_metrics: dict[str, float] = {}

    # ------------------------------------------------------------------ SB3 hooks

    def _on_step(self) -> bool:
        dones = self.locals["dones"]
        if dones.any():
            infos = self.locals["infos"]
            for i in np.flatnonzero(dones).tolist():
                info = infos[i]
                lap = info.get("lap_time_s")
                if lap is not None and lap < self.best_lap_s:
                    self.best_lap_s = lap
                ret = info["episode"]["r"]
                self.recent_returns.append(ret)
                self._window.append((ret, info["progress"], lap is not None))
                self.episodes += 1
        stop = self.cfg.stop
        if stop.max_episodes is not None and self.episodes >= stop.max_episodes:
            self.stopped_by = "max_episodes"
            return False
        if (
            stop.mean_episode_reward is not None
            and len(self.recent_returns) == self.recent_returns.maxlen
            and float(np.mean(self.recent_returns)) >= stop.mean_episode_reward
        ):
            self.stopped_by = "mean_episode_reward"
            return False
        steps = self.num_timesteps
        if steps >= self._next_ckpt:
            self._next_ckpt += self.cfg.checkpoint_every_steps
            self.model.save(self.out / "checkpoints" / f"step_{steps}.zip")
        if steps >= self._next_eval:
            self._next_eval += self.cfg.eval_every_steps
            if not self._evaluate(steps):
                self.stopped_by = "until_clean_laps"
                return False
        if self._progress is not None:
            now = time.monotonic()
            if now - self._last_draw > 0.25:
                self._last_draw = now
                self._progress.update(steps, self._last_metrics)
        return True

    def _on_rollout_end(self) -> None:
        self._write_metrics()
        self._next_simtrace()

    def _on_training_end(self) -> None:
        self._write_metrics()
        self._next_simtrace(last=True)
        self._metrics_file.close()
        if self.best_score is None:  # shorter than one evaluation period: evaluate once, so best.zip exists
            self._evaluate(self.num_timesteps)

    # ------------------------------------------------------------------ pieces

    def _evaluate(self, steps: int) -> bool:
        """Run an evaluation; save best.zip when it beats the best so far. False when the stop condition
        (K consecutive clean evaluation laps) is met."""
        result = evaluate_laps(self.model, self.eval_env, self.cfg.eval_laps)
        wall = time.monotonic() - self.t0
        self.streak = self.streak + result.clean if result.clean == len(result.statuses) else 0
        if result.clean and self.first_eval_lap_step is None:
            self.first_eval_lap_step, self.first_eval_lap_wall_s = steps, wall
            logger.info("first evaluation lap at %d steps, %.1f s", steps, wall)
        if result.lap_times_s:
            self.best_eval_lap_s = min(self.best_eval_lap_s, min(result.lap_times_s))
        score = result.score()
        if self.best_score is None or score > self.best_score:
            self.best_score = score
            self.model.save(self.out / "best.zip")
        logger.debug("evaluation at %d steps: %s (streak %d)", steps, result.statuses, self.streak)
        target = self.cfg.stop.until_clean_laps
        return target is None or self.streak < target

    def _write_metrics(self) -> None:
        steps = self.num_timesteps
        if steps == self._last_row[0]:
            return
        now = time.monotonic()
        window = self._window
        n = len(window)
        row = {
            "steps": steps,
            "wall_s": now - self.t0,
            "steps_per_s": (steps - self._last_row[0]) / max(now - self._last_row[1], 1e-9),
            "episodes": self.episodes,
            "mean_episode_reward": float(np.mean([w[0] for w in window])) if n else math.nan,
            "mean_progress": float(np.mean([w[1] for w in window])) if n else math.nan,
            "lap_completion_rate": sum(w[2] for w in window) / n if n else math.nan,
            "best_lap_s": self.best_lap_s,
            "eval_clean_streak": self.streak,
        }
        self._metrics.writerow([_fmt(float(row[c])) for c in METRICS_COLUMNS])
        self._metrics_file.flush()
        self._window = []
        self._last_row = (steps, now)
        self._last_metrics = row
        if self.on_metrics is not None:
            self.on_metrics(row)

    def _on_training_start(self) -> None:
        self._next_simtrace()

    def _next_simtrace(self, *, last: bool = False) -> None:
        """Close this iteration's car-0 simtrace file and (unless `last`) open the next one."""
        vec = self.vec
        if vec.car0_trace is not None:
            vec.car0_trace.close()
            path = vec.car0_trace.path
            vec.car0_trace = None
            if last and len(path.read_bytes().splitlines()) <= 1:
                path.unlink()  # training ended right after a rollout: no rows, no file
            else:
                self._iteration += 1
        if not last:
            path = self.out / "training-simtrace" / f"{self._iteration}-iteration.csv"
            vec.car0_trace = SimTraceWriter(path)

    def close(self) -> None:
        """Stop the progress bar and close the files, also when training failed (a reward file raised)."""
        if self._progress is not None:
            self._progress.update(self.num_timesteps, self._last_metrics)
            self._progress.stop()
            self._progress = None
        if self.vec.car0_trace is not None:
            self._next_simtrace(last=True)
        if not self._metrics_file.closed:
            self._metrics_file.close()


class _ProgressBar:
    """A rich progress bar on stderr: steps, steps/s, mean episode reward, lap completion, best lap."""

    def __init__(self, total_steps: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            console=Console(stderr=True),
        )
        self._task = self._bar.add_task("train", total=total_steps, stats="")
        self._bar.start()

    def update(self, steps: int, m: dict[str, float]) -> None:
        stats = ""
        if m:
            best = m["best_lap_s"]
            stats = (
                f"{m['steps_per_s']:,.0f} steps/s · reward {m['mean_episode_reward']:.1f} · "
                f"laps {100 * m['lap_completion_rate']:.0f}% · best "
                + (f"{best:.2f} s" if math.isfinite(best) else "-")
            )
        self._bar.update(self._task, completed=steps, stats=stats)

    def stop(self) -> None:
        self._bar.stop()
