"""`distill(teacher, out_dir, ...)`: a camera (or lidar) policy learned from a trained policy's actions (DAgger).

Why: PPO on 160x120 camera frames trains at ~60 car-steps/s on a 2-core laptop (the CNN's gradient updates
dominate), so a camera policy that laps takes hours; a `state` policy learns to lap reinvent_base in under a
minute. The state policy sees what the car's camera cannot (its offset from the centre line, the curvature
ahead) and is a good teacher: DAgger (Ross, Gordon & Bagnell, 2011) trains the camera policy (the student)
to take the teacher's action on the frames the student itself meets, so it learns to recover from its own
mistakes, not only to copy the teacher's lap.

    round 0    the teacher drives `n_cars` cars of the training environment (round-robin starts, as in
               training); every frame is the student's observation labelled with the teacher's action
    train      the student, on the labelled frames of every round so far: `epochs` passes, each over a
               round's worth of frames drawn from all of them (so every round costs the same), loss
               -log pi_student(teacher's action | frame) (SB3's `evaluate_actions`: cross-entropy for
               discrete actions, the Gaussian negative log-likelihood for continuous ones)
    evaluate   the race rules' evaluation laps (`train.evaluate_laps`); the best round is best.zip
    round k    the student drives, except that each step takes the teacher's action with probability
               `teacher_mix ** k` (DAgger's mixture); the teacher labels what the student saw; train again

The run directory is a training run's (config.resolved.json with `distilled_from`, versions.json, best.zip,
final.zip, distill.csv one row per round), so `pitlane evaluate`, `pitlane export` and `pitlane train
--init-from` (PPO fine-tuning on the camera) take it. Frames are held in memory: a 160x120 frame is 19.2 kB,
so the default 5 rounds x 6,000 frames are 576 MB.

Written here rather than taken from `imitation` (the BC/DAgger library for stable-baselines3): imitation
1.0 pins gymnasium 0.29 and stable-baselines3 2.2, which pitlane (gymnasium 1.x, stable-baselines3 2.9)
cannot run.
"""

from __future__ import annotations

import csv
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.config import RunConfig, _validate, parse_observation
from trainer.errors import RunConfigError

log = logging.getLogger(__name__)

DISTILL_COLUMNS = ("round", "frames", "teacher_share", "loss", "wall_s", "eval_clean_laps", "eval_mean_lap_s",
                   "eval_progress")  # fmt: skip


@dataclass(frozen=True)
class DistillSettings:
    """How much DAgger does. Frames are control steps (15 Hz) of one car; `teacher_mix` in [0, 1]."""

    rounds: int = 5
    frames_per_round: int = 6_000
    n_cars: int = 8
    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 3e-4
    teacher_mix: float = 0.5
    eval_laps: int = 3


@dataclass
class RoundResult:
    """One DAgger round: the dataset size after it, the share of steps the teacher drove, the last epoch's
    mean loss, wall-clock s since the start, and its evaluation (clean laps, mean lap s, progress %)."""

    round: int
    frames: int
    teacher_share: float
    loss: float
    wall_s: float
    eval_clean_laps: int
    eval_mean_lap_s: float | None
    eval_progress: float


@dataclass
class DistillResult:
    out_dir: Path
    rounds: list[RoundResult] = field(default_factory=list)
    best_round: int | None = None
    best_eval_lap_s: float | None = None


def student_config(teacher: RunConfig, observation: str, network: str | None) -> RunConfig:
    """The teacher's run config with the student's observation and network (the same track, car, action
    space, seed). The student is a PPO policy whatever the teacher was (DeepRacer's algorithm; its
    categorical or Gaussian head gives the log-likelihood DAgger needs). The teacher's `net_arch` is its
    MLP's; a CNN student keeps DeepRacer's heads."""
    if len(parse_observation(observation)) != 1:
        raise RunConfigError(f"--observation {observation!r}: a distilled student sees one sensor")
    if observation == teacher.observation:
        raise RunConfigError(f"--observation {observation!r}: the teacher already sees it; nothing to distil")
    data = teacher.model_dump(exclude_unset=True)
    data.update(observation=observation, network=network, algorithm="ppo")
    hyper = dict(data.get("hyperparameters") or {})
    hyper.pop("net_arch", None)
    data["hyperparameters"] = hyper
    return _validate(data, "distillation student")


def distill(
    teacher_run: str | Path,
    out_dir: str | Path,
    *,
    observation: str = "camera",
    network: str | None = None,
    settings: DistillSettings | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> DistillResult:
    """Distil `teacher_run` (a run directory or .zip) into a new run in `out_dir` (absent or empty) whose
    policy sees `observation` through `network` (None: the observation's default network)."""
    import torch

    from trainer.evaluate import load_sb3_run
    from trainer.train import build_model, evaluate_laps, versions, write_json

    settings = settings or DistillSettings()
    stage = on_stage or (lambda _text: None)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise RunConfigError(f"{out}: the run directory exists and is not empty; choose another --out")
    teacher, teacher_cfg, teacher_path, _ = load_sb3_run(teacher_run)
    config = student_config(teacher_cfg, observation, network)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    with warnings.catch_warnings():  # PPO's rollout-size advice: distillation never runs PPO's rollouts
        warnings.filterwarnings("ignore", message=".*mini-batch size.*", category=UserWarning)
        student = build_model(config, _spaces_env(config))
    optimizer = torch.optim.Adam(student.policy.parameters(), lr=settings.learning_rate)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.resolved.json", {**config.to_json_dict(), "distilled_from": str(teacher_path),
                                              "distill": asdict(settings), "notes": []})  # fmt: skip
    write_json(out / "versions.json", versions())

    result = DistillResult(out_dir=out)
    frames: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    best_score: tuple[float, float] | None = None
    t0 = time.monotonic()
    for k in range(settings.rounds):
        share = settings.teacher_mix**k if k else 1.0
        stage(f"round {k + 1}/{settings.rounds}: driving {settings.frames_per_round:,} frames "
              f"(teacher {share:.0%} of steps)")  # fmt: skip
        obs, act = collect(teacher, student, config, teacher_cfg.observation, settings, share,
                           seed=config.seed + 1_000 * (k + 1), rng=rng)  # fmt: skip
        frames.append(obs)
        labels.append(act)
        stage(f"round {k + 1}/{settings.rounds}: training on {sum(len(f) for f in frames):,} frames")
        loss = fit(student, optimizer, np.concatenate(frames), np.concatenate(labels), settings, rng)
        outcome = evaluate_laps(student, config, settings.eval_laps)
        row = RoundResult(
            round=k, frames=sum(len(f) for f in frames), teacher_share=share, loss=loss,
            wall_s=time.monotonic() - t0, eval_clean_laps=outcome.clean,
            eval_mean_lap_s=float(np.mean(outcome.lap_times_s)) if outcome.lap_times_s else None,
            eval_progress=outcome.mean_progress,
        )  # fmt: skip
        result.rounds.append(row)
        _append_row(out / "distill.csv", row)
        if best_score is None or outcome.score() > best_score:
            best_score = outcome.score()
            student.save(out / "best.zip")
            result.best_round = k
            result.best_eval_lap_s = min(outcome.lap_times_s) if outcome.lap_times_s else None
        if on_round is not None:
            on_round(row)
    student.save(out / "final.zip")
    return result


def collect(
    teacher: Any,
    student: Any,
    config: RunConfig,
    teacher_observation: str,
    settings: DistillSettings,
    teacher_share: float,
    *,
    seed: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(frames (n, *student obs), teacher actions (n, ...)) of `settings.frames_per_round` car-steps: the
    cars of the training environment see both sensors; each step applies the teacher's action with
    probability `teacher_share`, else the student's (both deterministic)."""
    from sim.envs.vector import TimeTrialVectorEnv

    kinds = f"{config.observation}+{teacher_observation}"
    env = TimeTrialVectorEnv(num_envs=settings.n_cars, **{**config.env_kwargs(), "observation": kinds})
    frames: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    try:
        obs, _ = env.reset(seed=seed)
        for _ in range(-(-settings.frames_per_round // settings.n_cars)):
            seen = np.array(obs[config.observation])
            taught = np.asarray(teacher.predict(obs[teacher_observation], deterministic=True)[0])
            own = np.asarray(student.predict(seen, deterministic=True)[0])
            use_teacher = rng.random(settings.n_cars) < teacher_share
            mask = use_teacher.reshape((-1,) + (1,) * (taught.ndim - 1))
            frames.append(seen)
            labels.append(taught)
            obs, *_ = env.step(np.where(mask, taught, own))
    finally:
        env.close()
    n = settings.frames_per_round
    return np.concatenate(frames)[:n], np.concatenate(labels)[:n]


def fit(
    student: Any,
    optimizer: Any,
    frames: np.ndarray,
    labels: np.ndarray,
    settings: DistillSettings,
    rng: np.random.Generator,
) -> float:
    """`settings.epochs` passes of minibatch behaviour cloning, each over `settings.frames_per_round` frames
    drawn without replacement from `frames`; the last pass's mean loss (nats)."""
    import torch

    policy = student.policy
    policy.set_training_mode(True)
    mean_loss = float("nan")
    for _ in range(settings.epochs):
        # a round's worth of frames from all rounds so far: each round costs the same, however many came before
        order = rng.permutation(len(frames))[: settings.frames_per_round]
        losses: list[float] = []
        for start in range(0, len(order), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            obs_t, _ = policy.obs_to_tensor(frames[idx])
            act_t = torch.as_tensor(labels[idx], device=policy.device)
            _, log_prob, _ = policy.evaluate_actions(obs_t, act_t)
            loss = -log_prob.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        mean_loss = float(np.mean(losses))
    policy.set_training_mode(False)
    return mean_loss


def _spaces_env(config: RunConfig) -> Any:
    """A VecEnv of the student's spaces: SB3 builds a model from an env's spaces."""
    from sim.envs.vector import TimeTrialVectorEnv
    from trainer.vec_env import BatchedVecEnv

    # as many cars as the run's config says: PPO checks its batch size against n_steps x cars
    return BatchedVecEnv(TimeTrialVectorEnv(num_envs=config.n_envs, **config.env_kwargs()))


def _append_row(path: Path, row: RoundResult) -> None:
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=DISTILL_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
