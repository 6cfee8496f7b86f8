"""`train(config, out_dir)`: one training run with stable-baselines3 on the batched simulator.

The run directory describes itself:
    config.resolved.json   the validated RunConfig (action space spelled out) and notes on what differs
    versions.json          pitlane, python, numpy, torch, stable-baselines3, gymnasium
    metrics.csv            one row per rollout: steps, wall_s, steps_per_s, episodes, mean_episode_reward,
                           mean_progress, lap_completion_rate, best_lap_s, eval_clean_streak
    sb3/                   stable-baselines3's own logs (progress.csv; progress.resumed-<N>.csv after --resume)
    tb/                    TensorBoard event files (when `tensorboard` is installed; it is in the `train` extra)
    checkpoints/step_<N>.zip, best.zip (best by evaluation; best.json its score), final.zip
    training-simtrace/<N>-iteration.csv   DeepRacer simtrace rows of car 0: a new file after each rollout, opened
                           at car 0's next episode end, so every file begins at an episode start

Evaluation (every `eval_every_steps`): the deterministic policy drives `eval_laps` laps back to back from the
start line under the race rules (`sim.evaluation`), stopping at the first off-track; clean laps extend a
streak that any failure resets (the `until_clean_laps` stop condition).

`resume=True` continues a run directory from its latest checkpoint (`checkpoints/step_<N>.zip`) up to
`config.total_steps`: the step count continues, metrics.csv and the simtrace numbering carry on. `init_from=RUN`
starts a new run whose policy weights are RUN's `best.zip` (DeepRacer's clone); the observation space, action
space, algorithm and network must be RUN's. Networks for camera observations: `trainer/networks.py`.
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
from trainer.config import RunConfig, load_run_dir_config
from trainer.errors import RunConfigError
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
    route: str = "direct"  # RunConfig.training_route(): "distill" = a state teacher, then DAgger
    teacher: TrainResult | None = None  # the distilled run's teacher (in out_dir/teacher)


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


def evaluate_laps(model: Any, config: RunConfig, laps: int) -> EvalOutcome:
    """The deterministic policy drives `laps` laps back to back from the start line under the race rules
    (`sim.evaluation`, the one implementation), ending at the first off-track (no resets allowed)."""
    from trainer.evaluate import evaluate_policy, predict_fn

    result = evaluate_policy(predict_fn(model), config, laps=laps, max_resets=0, seed=config.seed)
    clean = [lap for lap in result.laps if lap.completed and lap.offtrack == 0 and lap.resets == 0]
    statuses = ["lap_complete"] * len(clean) + ["off_track"] * (len(result.laps) - len(clean))
    return EvalOutcome(statuses, [lap.lap_time_s for lap in clean], result.mean_progress)


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
    resume: bool = False,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Train `config` into `out_dir` (created; must be absent or empty), or with `resume=True` continue the
    run in `out_dir` (its config: `load_run_dir_config`). `init_from`: a run whose best.zip gives the initial
    policy weights. A new run whose `config.training_route()` is `distill` (a camera alone, by default) trains
    its `state` teacher into `out_dir/teacher` and distils it into `out_dir`
    (`trainer.distill.train_by_distillation`). Raises RunConfigError for a config or run directory that cannot
    be used."""
    import torch

    from sim.envs.vector import TimeTrialVectorEnv

    out = Path(out_dir)
    if resume and init_from is not None:
        raise RunConfigError("give --resume or --init-from, not both")
    if resume and (out / "distill.csv").is_file():
        raise RunConfigError(
            f"{out}: a distilled run has no PPO checkpoints to resume; distil again from its teacher "
            f"(`pitlane distill {out / 'teacher'} --out NEW --rounds N`) or fine-tune it with PPO "
            f"(`pitlane train --init-from {out} --out NEW`)"
        )
    if init_from is not None and config.training == "distill":
        raise RunConfigError("--init-from fine-tunes a policy directly; it needs training 'direct' or 'auto'")
    if not resume and init_from is None and config.training_route() == "distill":
        from trainer.distill import train_by_distillation

        return train_by_distillation(config, out, progress=progress, on_metrics=on_metrics)
    checkpoint = latest_checkpoint(out) if resume else None
    if not resume and out.exists() and any(out.iterdir()):
        raise RunConfigError(f"{out}: the run directory exists and is not empty; choose another --out")
    # Environments first: a bad track or reward file fails before the run directory is created.
    vec = BatchedVecEnv(TimeTrialVectorEnv(num_envs=config.n_envs, **config.env_kwargs()), trace_car0=True)
    torch.set_num_threads(1)  # 2-core laptops: one thread for torch, the simulator is single-threaded too
    if checkpoint is not None:
        model = _algorithm(config).load(checkpoint, env=vec, device="cpu")
        model.set_random_seed(config.seed)
        if model.num_timesteps >= config.total_steps:
            raise RunConfigError(
                f"{out}: the run already has {model.num_timesteps:,} steps (total_steps "
                f"{config.total_steps:,}); pass a larger --steps (the run's new total) to train further"
            )
    else:
        model = build_model(config, vec)
        if init_from is not None:
            _init_weights(model, config, Path(init_from))  # refuses before the run directory exists
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "training-simtrace").mkdir(exist_ok=True)

    notes = config.notes(route=False)
    if not tensorboard_available():
        notes.append(
            "TensorBoard logs not written: `pip install tensorboard` to get them (sb3/progress.csv is)"
        )
    if init_from is not None:
        notes.append(f"initial policy weights: {Path(init_from) / 'best.zip'} (--init-from)")
    if checkpoint is None:
        write_json(out / "config.resolved.json", {**config.to_json_dict(), "notes": notes})
        write_json(out / "versions.json", versions())
    for note in notes:
        logger.info("%s", note)

    start = int(model.num_timesteps)
    model.set_logger(_sb3_logger(out, start))
    callback = _RunCallback(
        config, out, vec, progress=progress, on_metrics=on_metrics, resumed=checkpoint is not None
    )
    try:
        model.learn(
            total_timesteps=config.total_steps - start,
            callback=callback,
            progress_bar=False,
            reset_num_timesteps=checkpoint is None,
        )
    finally:
        callback.close()
        vec.close()
    model.save(out / "checkpoints" / f"step_{model.num_timesteps}.zip")
    model.save(out / "final.zip")
    wall = time.monotonic() - callback.t0
    model.logger.close()
    return TrainResult(
        out_dir=out,
        steps=int(model.num_timesteps),
        wall_s=wall,
        steps_per_s=(model.num_timesteps - start) / wall if wall > 0 else 0.0,
        stopped_by=callback.stopped_by,
        episodes=callback.episodes,
        best_lap_s=None if math.isinf(callback.best_lap_s) else callback.best_lap_s,
        best_eval_lap_s=None if math.isinf(callback.best_eval_lap_s) else callback.best_eval_lap_s,
        first_eval_lap_step=callback.first_eval_lap_step,
        first_eval_lap_wall_s=callback.first_eval_lap_wall_s,
        notes=notes,
    )


def _algorithm(config: RunConfig) -> Any:
    from stable_baselines3 import PPO, SAC

    return SAC if config.algorithm == "sac" else PPO


def build_model(config: RunConfig, vec: Any) -> Any:
    """The stable-baselines3 model (PPO or SAC, MLP or DeepRacer CNN policy) for `config` on the VecEnv `vec`,
    logging nowhere until a caller sets its logger (`train` does)."""
    model = _sb3_model(config, vec)
    # Without a logger of its own, every `learn()` makes an empty /tmp/SB3-<time> folder (SB3's default
    # logger folder): hundreds of them after `pitlane bench train`.
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def _sb3_model(config: RunConfig, vec: Any) -> Any:
    from gymnasium import spaces
    from stable_baselines3 import PPO, SAC

    from trainer.networks import policy_kwargs

    h = config.hyperparameters
    network = config.resolved_network()
    policy = "MultiInputPolicy" if isinstance(vec.observation_space, spaces.Dict) else "MlpPolicy"
    net_arch = config.resolved_net_arch()
    common: dict[str, Any] = {
        "learning_rate": h.learning_rate,
        "batch_size": h.batch_size,
        "gamma": h.gamma,
        "policy_kwargs": {"net_arch": net_arch, **policy_kwargs(network, vec.observation_space)},
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


# ---------------------------------------------------------------------- resume / init-from


def latest_checkpoint(run: Path) -> Path:
    """The run's `checkpoints/step_<N>.zip` with the largest N; RunConfigError when there is none."""
    found = sorted(
        ((int(p.stem.removeprefix("step_")), p) for p in (run / "checkpoints").glob("step_*.zip")
         if p.stem.removeprefix("step_").isdigit()),
    )  # fmt: skip
    if not found:
        raise RunConfigError(f"{run}: no checkpoints/step_<N>.zip to resume from (is it a run directory?)")
    return found[-1][1]


def _init_weights(model: Any, config: RunConfig, run: Path) -> None:
    """Copy RUN's best policy into `model` (DeepRacer's clone); RunConfigError when they do not fit."""
    source_config = load_run_dir_config(run)
    best = run / "best.zip"
    if not best.is_file():
        raise RunConfigError(f"--init-from {run}: no best.zip in the run directory")
    what = f"--init-from {run}"
    if source_config.algorithm != config.algorithm:
        raise RunConfigError(
            f"{what}: it was trained with {source_config.algorithm!r}, this run uses {config.algorithm!r}"
        )
    source = _algorithm(source_config).load(best, device="cpu")  # SB3-side spaces, as model's
    if source.observation_space != model.observation_space:
        raise RunConfigError(
            f"{what}: its observation space ({source_config.observation!r}: {_space_text(source.observation_space)}) "
            f"differs from this run's ({config.observation!r}: {_space_text(model.observation_space)}); a cloned "
            "model keeps its observation"
        )
    src_actions = source_config.resolved_action_space().to_json()
    if source.action_space != model.action_space or src_actions != config.resolved_action_space().to_json():
        raise RunConfigError(
            f"{what}: its action space ({json.dumps(src_actions)}) differs from this run's "
            f"({json.dumps(config.resolved_action_space().to_json())}); a cloned model keeps its action space"
        )
    try:
        model.policy.load_state_dict(source.policy.state_dict())
    except RuntimeError:
        raise RunConfigError(
            f"{what}: its policy network ({source_config.resolved_network()}, net_arch "
            f"{source_config.resolved_net_arch()}) differs from this run's "
            f"({config.resolved_network()}, net_arch {config.resolved_net_arch()})"
        ) from None


def _space_text(space: Any) -> str:
    """A short description: shapes and dtypes, not every bound."""
    from gymnasium import spaces

    if isinstance(space, spaces.Dict):
        return "{" + ", ".join(f"{k}: {_space_text(v)}" for k, v in space.spaces.items()) + "}"
    if isinstance(space, spaces.Box):
        return f"{space.dtype}{tuple(space.shape)}"
    return str(space)


def _sb3_logger(out: Path, start: int) -> Any:
    """SB3's logger: CSV in sb3/ (a new file after a resume), TensorBoard events in tb/ when installed."""
    from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat

    (out / "sb3").mkdir(exist_ok=True)
    name = "progress.csv" if start == 0 else f"progress.resumed-{start}.csv"
    formats: list[Any] = [CSVOutputFormat(str(out / "sb3" / name))]
    if tensorboard_available():
        formats.append(TensorBoardOutputFormat(str(out / "tb")))
    return Logger(folder=str(out), output_formats=formats)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def _fmt(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.6g}"


class _RunCallback(BaseCallback):
    """Metrics, checkpoints, evaluation, stop conditions, simtraces and the progress bar of one run."""

    def __init__(
        self,
        config: RunConfig,
        out: Path,
        vec: BatchedVecEnv,
        *,
        progress: bool,
        on_metrics: Callable[[dict[str, float]], None] | None,
        resumed: bool = False,
    ) -> None:
        super().__init__()
        self.cfg = config
        self.out = out
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
        self._simtrace_due = False  # a rollout ended: the next file opens at car 0's next episode end
        self._last_row = (0, self.t0)
        self._last_draw = 0.0
        self._wall_offset = 0.0  # wall_s of the resumed run's last row: wall_s keeps increasing
        if resumed:
            self._restore()
        self._metrics_file = (out / "metrics.csv").open("a" if resumed else "w", newline="", encoding="utf-8")
        self._metrics = csv.writer(self._metrics_file)
        if not resumed:
            self._metrics.writerow(METRICS_COLUMNS)
        self._progress = _ProgressBar(config.total_steps) if progress else None
        self._last_metrics: dict[str, float] = {}

    def _restore(self) -> None:
        """Carry a resumed run's counters on: from metrics.csv's last row, best.json and the simtrace files."""
        rows: list[dict[str, str]] = []
        path = self.out / "metrics.csv"
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        if rows:
            last = rows[-1]
            self.episodes = int(float(last["episodes"] or 0))
            self.best_lap_s = float(last["best_lap_s"] or math.inf)
            self.streak = int(float(last["eval_clean_streak"] or 0))
            self._wall_offset = float(last["wall_s"] or 0.0)
        best = self.out / "best.json"
        if best.is_file():
            data = json.loads(best.read_text(encoding="utf-8"))
            self.best_score = (float(data["score"][0]), float(data["score"][1]))
        self._iteration = len(list((self.out / "training-simtrace").glob("*-iteration.csv")))

    def _on_training_start(self) -> None:
        steps = self.num_timesteps  # > 0 after a resume: the next evaluation / checkpoint follows it
        self._next_eval = (steps // self.cfg.eval_every_steps + 1) * self.cfg.eval_every_steps
        self._next_ckpt = (steps // self.cfg.checkpoint_every_steps + 1) * self.cfg.checkpoint_every_steps
        self._last_row = (steps, self._last_row[1])
        self._next_simtrace()

    # ------------------------------------------------------------------ SB3 hooks

    def _on_step(self) -> bool:
        dones = self.locals["dones"]
        if self._simtrace_due and dones[0]:  # car 0's episode ended with this step's row: cut the file here
            self._next_simtrace()
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
        self._simtrace_due = True

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
        result = evaluate_laps(self.model, self.cfg, self.cfg.eval_laps)
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
            write_json(self.out / "best.json", {"score": list(score), "steps": steps})
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
            "wall_s": self._wall_offset + now - self.t0,
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

    def _next_simtrace(self, *, last: bool = False) -> None:
        """Close this iteration's car-0 simtrace file and (unless `last`) open the next one. Called between
        two of car 0's episodes (or at the start and end of training), so no file begins inside an episode:
        a file that did would begin with an episode's tail, whose time a replay would take for a lap."""
        self._simtrace_due = False
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
