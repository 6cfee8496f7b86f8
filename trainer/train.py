"""`train(config, out_dir)`: one training run with stable-baselines3 on the batched simulator.

The run directory describes itself:
    config.resolved.json   the validated RunConfig (action space spelled out) and notes on what differs
    versions.json          pitlane, python, numpy, torch, stable-baselines3, gymnasium
    metrics.csv            one row per rollout: steps, wall_s, steps_per_s, episodes, mean_episode_reward,
                           mean_progress, lap_completion_rate, best_lap_s, eval_clean_streak
    sb3/                   stable-baselines3's own logs (progress.csv; progress.resumed-<N>.csv after --resume)
    tb/                    TensorBoard event files (when `tensorboard` is installed; it is in the `train` extra)
    checkpoints/step_<N>.zip, best.zip (best by evaluation; best.json its score), final.zip
    training-simtrace/<N>-iteration.csv   DeepRacer simtrace rows of car 0: `simtrace_episodes` whole episodes per
                           file (DeepRacer's iteration), each beginning with its `prepare` row
    training-simtrace.json car 0's episodes as pitlane counted them (status, progress, lap time)
    model/model_metadata.json, ip/hyperparameters.json   the run in DeepRacer's files, where DeepRacer's
                           log-analysis tools (deepracer-utils) look for them

Evaluation (every `eval_every_steps`): the deterministic policy drives `eval_laps` laps back to back from the
start line under the race rules (`sim.evaluation`), stopping at the first off-track; clean laps extend a
streak that any failure resets (the `until_clean_laps` stop condition). Stop conditions (`config.stop`):
wall-clock minutes, clean laps, episodes, mean return; `total_steps` always.

A supervised run (`Supervision`: a console training job, `trainer.job`) also hands a `TrainingProgress` to
its caller every few seconds, stops gracefully when a stop file appears, and may wrap the training VecEnv
(the job puts a deadline around each step, where the reward functions run).

Each of these jobs is one stable-baselines3 callback of `trainer/callbacks.py`, composed here.

`resume=True` continues a run directory from its latest checkpoint (`checkpoints/step_<N>.zip`) up to
`config.total_steps`: the step count continues, metrics.csv and the simtrace numbering carry on. `init_from=RUN`
starts a new run whose policy weights are RUN's `best.zip` (DeepRacer's clone); the observation space, action
space, algorithm and network must be RUN's. Networks for camera observations: `trainer/networks.py`.
"""

from __future__ import annotations

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

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from contracts.recipe import TrainingProgress
from trainer.callbacks import (
    EpisodeLog,
    EvalOutcome,
    MetricsCsv,
    ProgressBar,
    ProgressLines,
    RaceEvaluation,
    RunCallbackList,
    RunHistory,
    SimtraceFiles,
    StepCheckpoints,
    StopCondition,
    StopOnCleanLaps,
    StopOnFile,
    StopOnMaxEpisodes,
    StopOnMeanEpisodeReward,
    StopOnWallClock,
    write_json,
)
from trainer.config import RunConfig, load_run_dir_config
from trainer.deepracer_files import write_deepracer_files
from trainer.errors import RunConfigError
from trainer.vec_env import BatchedVecEnv, PooledVecEnv

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Supervision:
    """What a supervised run adds to `train` (a console training job, `trainer.job`):

    on_progress   gets a `TrainingProgress` (phase "training") every `every_s` seconds, and when training
                  starts and ends; its `t_s` counts from `t0` (time.monotonic(); None: training's start)
    stop_file     training stops gracefully (stopped_by "stop_file") once this file exists
    wrap_env      wraps the training VecEnv the model steps (e.g. a deadline around each step)
    """

    on_progress: Callable[[TrainingProgress], None] | None = None
    every_s: float = 2.0
    t0: float | None = None
    stop_file: Path | None = None
    wrap_env: Callable[[VecEnv], VecEnv] | None = None


@dataclass
class TrainResult:
    """What a run did. Times in wall-clock seconds since training began; steps are car-steps (all cars)."""

    out_dir: Path
    steps: int
    wall_s: float
    steps_per_s: float
    stopped_by: str  # "total_steps" | "minutes" | "until_clean_laps" | "max_episodes" | "mean_episode_reward" | "stop_file"
    episodes: int
    best_lap_s: float | None  # best training lap
    best_eval_lap_s: float | None
    first_eval_lap_step: int | None  # first evaluation in which the deterministic policy completed a lap
    first_eval_lap_wall_s: float | None
    notes: list[str] = field(default_factory=list)
    route: str = "direct"  # RunConfig.training_route(): "distill" = a state teacher, then DAgger
    teacher: TrainResult | None = None  # the distilled run's teacher (in out_dir/teacher)


def evaluate_laps(model: Any, config: RunConfig, laps: int) -> EvalOutcome:
    """The deterministic policy drives `laps` laps back to back from the start line under the race rules
    (`sim.evaluation`, the one implementation), ending at the first off-track (no resets allowed).

    The evaluation's rewards are the built-in `centerline`'s, not the run's: an outcome keeps none of them,
    a built-in costs a fraction of a Python reward file's per-car calls, and a user's reward function then
    runs only where training steps it (where a training job's per-step deadline watches it)."""
    from trainer.evaluate import evaluate_policy, predict_fn

    scored = config.model_copy(update={"reward": "centerline"})
    result = evaluate_policy(predict_fn(model), scored, laps=laps, max_resets=0, seed=config.seed)
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
    supervision: Supervision | None = None,
    torch_threads: int = 1,
) -> TrainResult:
    """Train `config` into `out_dir` (created; must be absent or empty), or with `resume=True` continue the
    run in `out_dir` (its config: `load_run_dir_config`). `init_from`: a run whose best.zip gives the initial
    policy weights. A new run whose `config.training_route()` is `distill` (a camera alone, by default) trains
    its `state` teacher into `out_dir/teacher` and distils it into `out_dir`
    (`trainer.distill.train_by_distillation`; a supervised run trains its own teacher with `train` and
    distils it itself: `trainer.job`). `torch_threads`: CPU threads for the network (1 on a 2-core laptop: the
    simulator needs the other core). Raises RunConfigError for a config or run directory that cannot be
    used."""
    import torch

    from trainer.pool import training_vec_env

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
        if supervision is not None:
            raise RunConfigError("a supervised run trains its distillation teacher itself (trainer.job)")
        from trainer.distill import train_by_distillation

        return train_by_distillation(config, out, progress=progress, on_metrics=on_metrics)
    checkpoint = latest_checkpoint(out) if resume else None
    if not resume and out.exists() and any(out.iterdir()):
        raise RunConfigError(f"{out}: the run directory exists and is not empty; choose another --out")
    # Environments first: a bad track or reward file fails before the run directory is created.
    vec = training_vec_env(config, config.n_envs, trace_car0=True)
    wrap = supervision.wrap_env if supervision is not None else None
    stepped: VecEnv = vec if wrap is None else wrap(vec)  # what the model steps; callbacks keep `vec`
    torch.set_num_threads(torch_threads)
    if checkpoint is not None:
        model = _algorithm(config).load(checkpoint, env=stepped, device="cpu")
        model.set_random_seed(config.seed)
        if model.num_timesteps >= config.total_steps:
            raise RunConfigError(
                f"{out}: the run already has {model.num_timesteps:,} steps (total_steps "
                f"{config.total_steps:,}); pass a larger --steps (the run's new total) to train further"
            )
    else:
        model = build_model(config, stepped)
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
        write_deepracer_files(config, out)
    for note in notes:
        logger.info("%s", note)

    start = int(model.num_timesteps)
    model.set_logger(_sb3_logger(out, start))
    t0 = time.monotonic()
    run = _RunCallbacks.build(
        config, out, vec, t0=t0, resumed=checkpoint is not None, progress=progress, on_metrics=on_metrics,
        supervision=supervision,
    )  # fmt: skip
    try:
        model.learn(
            total_timesteps=config.total_steps - start,
            callback=RunCallbackList(run.in_order),
            progress_bar=False,
            reset_num_timesteps=checkpoint is None,
        )
    finally:
        run.close()
        vec.close()
    model.save(out / "checkpoints" / f"step_{model.num_timesteps}.zip")
    model.save(out / "final.zip")
    wall = time.monotonic() - t0
    model.logger.close()
    episodes, evaluation = run.episodes, run.evaluation
    return TrainResult(
        out_dir=out,
        steps=int(model.num_timesteps),
        wall_s=wall,
        steps_per_s=(model.num_timesteps - start) / wall if wall > 0 else 0.0,
        stopped_by=next((stop.reason for stop in run.stops if stop.stopped), "total_steps"),
        episodes=episodes.episodes,
        best_lap_s=None if math.isinf(episodes.best_lap_s) else episodes.best_lap_s,
        best_eval_lap_s=None if math.isinf(evaluation.best_eval_lap_s) else evaluation.best_eval_lap_s,
        first_eval_lap_step=evaluation.first_eval_lap_step,
        first_eval_lap_wall_s=evaluation.first_eval_lap_wall_s,
        notes=notes,
    )


@dataclass
class _RunCallbacks:
    """The callbacks of one run (`trainer.callbacks`) and where `train` reads its result from."""

    episodes: EpisodeLog
    evaluation: RaceEvaluation
    stops: list[StopCondition]
    closing: list[ProgressBar | SimtraceFiles | MetricsCsv]  # to close also when training failed
    in_order: list[BaseCallback]

    @classmethod
    def build(
        cls,
        config: RunConfig,
        out: Path,
        vec: BatchedVecEnv | PooledVecEnv,
        *,
        t0: float,
        resumed: bool,
        progress: bool,
        on_metrics: Callable[[dict[str, float]], None] | None,
        supervision: Supervision | None = None,
    ) -> _RunCallbacks:
        history = RunHistory.read(out) if resumed else RunHistory()
        stop = config.stop
        episodes = EpisodeLog(history)
        clean_laps = StopOnCleanLaps(stop.until_clean_laps) if stop.until_clean_laps is not None else None
        evaluation = RaceEvaluation(
            lambda model: evaluate_laps(model, config, config.eval_laps),
            out,
            config.eval_every_steps,
            t0=t0,
            history=history,
            callback=clean_laps,
        )
        simtrace = SimtraceFiles(vec, out / "training-simtrace", config.simtrace_episodes)
        metrics = MetricsCsv(
            out / "metrics.csv",
            episodes,
            evaluation,
            t0=t0,
            history=history,
            append=resumed,
            on_metrics=on_metrics,
        )
        stops: list[StopCondition] = []
        if stop.max_episodes is not None:
            stops.append(StopOnMaxEpisodes(episodes, stop.max_episodes))
        if stop.mean_episode_reward is not None:
            stops.append(StopOnMeanEpisodeReward(episodes, stop.mean_episode_reward))
        if stop.minutes is not None:
            stops.append(StopOnWallClock(stop.minutes, t0=t0))
        if supervision is not None and supervision.stop_file is not None:
            stops.append(StopOnFile(supervision.stop_file))
        bar = ProgressBar(config.total_steps, metrics) if progress else None
        # Order matters: RunCallbackList ends a step at the first stop (no checkpoint or evaluation after it),
        # and the last metrics row precedes the evaluation a run shorter than one period gets at its end.
        in_order: list[BaseCallback] = [
            episodes,
            simtrace,
            metrics,
            *stops,
            StepCheckpoints(out / "checkpoints", config.checkpoint_every_steps),
            evaluation,
        ]
        closing: list[ProgressBar | SimtraceFiles | MetricsCsv] = [simtrace, metrics]
        if bar is not None:
            in_order.append(bar)
            closing.insert(0, bar)
        if supervision is not None and supervision.on_progress is not None:
            in_order.append(ProgressLines(
                supervision.on_progress, episodes, metrics, evaluation,
                every_s=supervision.every_s, t0=t0 if supervision.t0 is None else supervision.t0,
            ))  # fmt: skip
        if clean_laps is not None:
            stops.append(clean_laps)
        return cls(episodes, evaluation, stops, closing, in_order)

    def close(self) -> None:
        """Stop the progress bar and close the files, also when training failed (a reward file raised)."""
        for callback in self.closing:
            callback.close()


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
