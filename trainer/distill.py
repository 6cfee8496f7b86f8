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
so the default 4 rounds x 4,000 frames are 307 MB.

`train()` of a camera run (`RunConfig.training_route()`, e.g. from a DeepRacer model_metadata.json naming
the front camera) comes here through `train_by_distillation`: its state teacher is trained into
`out/teacher` first.

Where the time goes (cProfile of the old defaults, 5 rounds x 6,000 frames x 3 epochs, on a busy 2-core
machine: 586 s): the CNN's gradient steps 416 s (backward 212 s, forward ~100 s, Adam's per-tensor loop
90 s), driving 124 s (the student's CNN on every step, also in round 1 where only the teacher drives),
evaluation 27 s; torch ran two threads beside the simulator and other processes. cnn_shallow's forward +
backward is ~66 M multiply-adds a frame, ~550 frames per CPU-second on one AVX2 core, whatever the memory
layout or batch size (measured 520-590), so the budget is the number of frames trained on: the defaults
train on 4 x 2 x 4,000 = 32,000 (90,000 before), with one torch thread and a fused Adam, and skip the
student's CNN while only the teacher drives.

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

from trainer.config import DistillSettings, RunConfig, _validate, parse_observation
from trainer.errors import RunConfigError

log = logging.getLogger(__name__)

DISTILL_COLUMNS = ("round", "frames", "teacher_share", "loss", "wall_s", "eval_clean_laps", "eval_mean_lap_s",
                   "eval_progress")  # fmt: skip


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


def student_config(
    teacher: RunConfig, observation: str, network: str | None, *, base: RunConfig | None = None
) -> RunConfig:
    """The student's run config: `base` (default: the teacher's config) with the student's observation and
    network and the teacher's action space. The student is a PPO policy whatever the teacher was
    (DeepRacer's algorithm; its categorical or Gaussian head gives the log-likelihood DAgger needs). The
    teacher's `net_arch` is its MLP's; a CNN student keeps DeepRacer's heads."""
    if len(parse_observation(observation)) != 1:
        raise RunConfigError(f"--observation {observation!r}: a distilled student sees one sensor")
    if observation == teacher.observation:
        raise RunConfigError(f"--observation {observation!r}: the teacher already sees it; nothing to distil")
    data = (base or teacher).model_dump(exclude_unset=True)
    data.update(observation=observation, network=network, algorithm="ppo")
    hyper = dict(data.get("hyperparameters") or {})
    hyper.pop("net_arch", None)
    data["hyperparameters"] = hyper
    return _validate(data, "distillation student")


class DistillProgress:
    """What `distill` reports while it works; every method does nothing here (subclass to show it)."""

    def stage(self, text: str) -> None:
        """A new phase begins (loading, driving, training, evaluating)."""

    def advance(self, done: int, total: int, info: str = "") -> None:
        """Work done in the current phase (frames driven, frames trained on, laps), with a short status."""

    def round_done(self, row: RoundResult, rounds: int) -> None:
        """A round ended: its result."""

    def close(self) -> None:
        """The run ended (or failed)."""


class RichDistillProgress(DistillProgress):
    """A rich progress display on stderr: the rounds (with the last loss and evaluation), the current phase
    with its own bar (frames driven, frames trained on), and one line per finished round."""

    def __init__(self, rounds: int, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=True,  # the round lines and the summary stay; the bars go
            auto_refresh=False,  # drawn on each update (at most 10 a second), so the last count always shows
        )
        self._rounds = self._bar.add_task("DAgger rounds", total=rounds, info="")
        self._phase = self._bar.add_task("loading the teacher", total=None, info="")
        self._bar.start()
        self._last_draw = 0.0
        if not self.console.is_terminal:  # no live display (a pipe, a log file): one line per phase instead
            self.console.print("distill: loading the teacher", highlight=False)

    def stage(self, text: str) -> None:
        self._bar.reset(self._phase, total=None, description=text, info="")
        self._bar.refresh()
        if not self.console.is_terminal:
            self.console.print(f"distill: {text}", highlight=False)

    def advance(self, done: int, total: int, info: str = "") -> None:
        now = time.monotonic()
        if done < total and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        self._bar.update(self._phase, completed=done, total=total, info=info)
        self._bar.refresh()

    def round_done(self, row: RoundResult, rounds: int) -> None:
        lap = f"{row.eval_mean_lap_s:.2f} s" if row.eval_mean_lap_s is not None else "-"
        summary = (
            f"loss {row.loss:.3f} nats, {row.eval_clean_laps} clean laps, progress {row.eval_progress:.0f} %"
        )
        self._bar.update(self._rounds, completed=row.round + 1, info=summary)
        self._bar.refresh()
        self.console.print(
            f"round {row.round + 1}/{rounds}: {row.frames:,} frames, teacher drove {row.teacher_share:.0%}, "
            f"loss {row.loss:.3f} nats; evaluation {row.eval_clean_laps} clean laps, mean lap {lap}, "
            f"progress {row.eval_progress:.0f} %; {row.wall_s:.0f} s",
            highlight=False,
        )

    def close(self) -> None:
        self._bar.stop()


def distill(
    teacher_run: str | Path,
    out_dir: str | Path,
    *,
    observation: str = "camera",
    network: str | None = None,
    settings: DistillSettings | None = None,
    progress: DistillProgress | None = None,
    student: RunConfig | None = None,
    notes: list[str] | None = None,
    empty_out: bool = True,
) -> DistillResult:
    """Distil `teacher_run` (a run directory or .zip) into a new run in `out_dir` (absent or empty, unless
    `empty_out` is False: a run that trained its own teacher inside it) whose policy sees `observation`
    through `network` (None: the observation's default network). `student`: the run config the student is
    made from (its observation and network win; default: the teacher's config); `notes` go into the run's
    config.resolved.json."""
    out = Path(out_dir)
    if empty_out and out.exists() and any(out.iterdir()):
        raise RunConfigError(f"{out}: the run directory exists and is not empty; choose another --out")
    import torch

    from trainer.deepracer_files import write_deepracer_files
    from trainer.evaluate import load_sb3_run
    from trainer.train import build_model, evaluate_laps, versions, write_json

    settings = settings or DistillSettings()
    report = progress or DistillProgress()
    # One torch thread, as in training: on 2 cores the other one steps the simulator, and a second torch
    # thread spinning beside another busy process made each gradient step several times slower.
    torch.set_num_threads(1)
    teacher, teacher_cfg, teacher_path, _ = load_sb3_run(teacher_run)
    if student is not None:
        observation, network = student.observation, student.network
    config = student_config(teacher_cfg, observation, network, base=student)
    if config.resolved_action_space().to_json() != teacher_cfg.resolved_action_space().to_json():
        raise RunConfigError(
            f"{teacher_path}: the teacher's action space differs from the student's; a student learns the "
            "teacher's actions"
        )
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    with warnings.catch_warnings():  # PPO's rollout-size advice: distillation never runs PPO's rollouts
        warnings.filterwarnings("ignore", message=".*mini-batch size.*", category=UserWarning)
        student_model = build_model(config, _spaces_env(config))
    # fused: one kernel over all 5.8 M parameters of cnn_shallow; the per-tensor loop cost ~20 % of a round
    optimizer = torch.optim.Adam(student_model.policy.parameters(), lr=settings.learning_rate, fused=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.resolved.json", {**config.to_json_dict(), "distilled_from": str(teacher_path),
                                              "distill": settings.model_dump(), "notes": notes or []})  # fmt: skip
    write_json(out / "versions.json", versions())
    write_deepracer_files(
        config, out
    )  # a DeepRacer "model upload" folder to deepracer-utils: evaluations read

    result = DistillResult(out_dir=out)
    frames: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    best_score: tuple[float, float] | None = None
    t0 = time.monotonic()
    try:
        for k in range(settings.rounds):
            share = settings.teacher_mix**k if k else 1.0
            report.stage(f"round {k + 1}/{settings.rounds}: driving (teacher {share:.0%} of steps)")
            obs, act = collect(teacher, student_model, config, teacher_cfg.observation, settings, share,
                               seed=config.seed + 1_000 * (k + 1), rng=rng, progress=report,
                               round_index=k)  # fmt: skip
            frames.append(obs)
            labels.append(act)
            n_frames = sum(len(f) for f in frames)
            report.stage(f"round {k + 1}/{settings.rounds}: training on {n_frames:,} frames")
            loss = fit(student_model, optimizer, frames, labels, settings, rng, progress=report)
            report.stage(f"round {k + 1}/{settings.rounds}: evaluating, {settings.eval_laps} laps")
            outcome = evaluate_laps(student_model, config, settings.eval_laps)
            row = RoundResult(
                round=k, frames=n_frames, teacher_share=share, loss=loss,
                wall_s=time.monotonic() - t0, eval_clean_laps=outcome.clean,
                eval_mean_lap_s=float(np.mean(outcome.lap_times_s)) if outcome.lap_times_s else None,
                eval_progress=outcome.mean_progress,
            )  # fmt: skip
            result.rounds.append(row)
            _append_row(out / "distill.csv", row)
            if best_score is None or outcome.score() > best_score:
                best_score = outcome.score()
                student_model.save(out / "best.zip")
                result.best_round = k
                result.best_eval_lap_s = min(outcome.lap_times_s) if outcome.lap_times_s else None
            report.round_done(row, settings.rounds)
    finally:
        report.close()
    student_model.save(out / "final.zip")
    return result


def train_by_distillation(
    config: RunConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    on_metrics: Callable[[dict[str, float]], None] | None = None,
) -> Any:
    """`train` for a run whose `training_route()` is `distill`: its `state` teacher (`teacher_config()`)
    trained into `out_dir/teacher`, then distilled into `out_dir` (`config.distill`). Returns a TrainResult
    whose `teacher` is the teacher's."""
    from trainer.train import TrainResult, train

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise RunConfigError(f"{out}: the run directory exists and is not empty; choose another --out")
    notes = config.notes()
    for note in notes:
        log.info("%s", note)
    t0 = time.monotonic()
    teacher = train(config.teacher_config(), out / "teacher", progress=progress, on_metrics=on_metrics)
    shown = RichDistillProgress(config.distill.rounds) if progress else None
    result = distill(out / "teacher", out, empty_out=False, student=config, settings=config.distill,
                     progress=shown, notes=notes)  # fmt: skip
    wall = time.monotonic() - t0
    return TrainResult(
        out_dir=out, steps=teacher.steps, wall_s=wall, steps_per_s=teacher.steps_per_s,
        stopped_by=teacher.stopped_by, episodes=teacher.episodes, best_lap_s=teacher.best_lap_s,
        best_eval_lap_s=result.best_eval_lap_s, first_eval_lap_step=None, first_eval_lap_wall_s=None,
        notes=notes, route="distill", teacher=teacher,
    )  # fmt: skip


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
    progress: DistillProgress | None = None,
    round_index: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(frames (n, *student obs), teacher actions (n, ...)) of `settings.frames_per_round` car-steps: the
    cars of the training environment see both sensors, on the pool member of round `round_index`
    (`trainer.pool.round_member`); each step applies the teacher's action with probability `teacher_share`,
    else the student's (both deterministic)."""
    from sim.envs.vector import TimeTrialVectorEnv
    from trainer.pool import round_member

    report = progress or DistillProgress()
    kinds = f"{config.observation}+{teacher_observation}"
    track, reverse = round_member(config, round_index)
    env = TimeTrialVectorEnv(num_envs=settings.n_cars, **{**config.env_kwargs(), "observation": kinds,
                                                           "track": track, "reverse": reverse})  # fmt: skip
    n = settings.frames_per_round
    frames: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    done = laps = episodes = 0
    try:
        obs, _ = env.reset(seed=seed)
        for _ in range(-(-n // settings.n_cars)):
            seen = np.array(obs[config.observation])
            taught = np.asarray(teacher.predict(obs[teacher_observation], deterministic=True)[0])
            use_teacher = rng.random(settings.n_cars) < teacher_share
            if use_teacher.all():  # the teacher drives every car (round 1): the student's CNN is not needed
                applied = taught
            else:
                own = np.asarray(student.predict(seen, deterministic=True)[0])
                mask = use_teacher.reshape((-1,) + (1,) * (taught.ndim - 1))
                applied = np.where(mask, taught, own)
            frames.append(seen)
            labels.append(taught)
            obs, _, terminated, truncated, info = env.step(applied)
            finished = np.asarray(terminated) | np.asarray(truncated)
            if finished.any():
                episodes += int(finished.sum())
                lap_s = np.asarray(info["final_info"]["lap_time_s"], dtype=np.float64)[finished]
                laps += int(np.isfinite(lap_s).sum())
            done = min(done + settings.n_cars, n)
            report.advance(done, n, f"{episodes} episodes ended, {laps} laps completed")
    finally:
        env.close()
    return np.concatenate(frames)[:n], np.concatenate(labels)[:n]


def fit(
    student: Any,
    optimizer: Any,
    frames: list[np.ndarray] | np.ndarray,
    labels: list[np.ndarray] | np.ndarray,
    settings: DistillSettings,
    rng: np.random.Generator,
    *,
    progress: DistillProgress | None = None,
) -> float:
    """`settings.epochs` passes of minibatch behaviour cloning, each over `settings.frames_per_round` frames
    drawn without replacement from all `frames` (one array per round, or one array); the last pass's mean
    loss (nats)."""
    import torch

    report = progress or DistillProgress()
    chunks = list(frames) if isinstance(frames, list) else [frames]
    label_chunks = list(labels) if isinstance(labels, list) else [labels]
    # rounds stay separate arrays (no copy of hundreds of MB per round): a global index picks round and row
    offsets = np.cumsum([0] + [len(c) for c in chunks])
    policy = student.policy
    policy.set_training_mode(True)
    mean_loss = float("nan")
    total = settings.epochs * min(settings.frames_per_round, int(offsets[-1]))
    seen = 0
    for _ in range(settings.epochs):
        # a round's worth of frames from all rounds so far: each round costs the same, however many came before
        order = rng.permutation(int(offsets[-1]))[: settings.frames_per_round]
        losses: list[float] = []
        for start in range(0, len(order), settings.batch_size):
            idx = np.sort(order[start : start + settings.batch_size])
            which = np.searchsorted(offsets, idx, side="right") - 1
            batch = np.concatenate([chunks[c][idx[which == c] - offsets[c]] for c in np.unique(which)])
            taught = np.concatenate([label_chunks[c][idx[which == c] - offsets[c]] for c in np.unique(which)])
            obs_t, _ = policy.obs_to_tensor(batch)
            act_t = torch.as_tensor(taught, device=policy.device)
            _, log_prob, _ = policy.evaluate_actions(obs_t, act_t)
            loss = -log_prob.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            seen += len(idx)
            report.advance(seen, total, f"loss {np.mean(losses):.3f} nats")
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
