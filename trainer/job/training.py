"""A job's training: `trainer.train.train` supervised (progress lines, the stop file, a deadline per step),
directly or, for a camera recipe, as a `state` teacher distilled into the camera student (as `pitlane train`
does for a camera: `RunConfig.training_route()`), with DAgger's rounds reported as progress lines too."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contracts.recipe import TrainingJob, TrainingProgress
from trainer.config import RunConfig
from trainer.distill import DistillProgress, RoundResult, distill
from trainer.errors import TrainerError
from trainer.job.deadline_env import DeadlineSteps
from trainer.job.folder import JobFolder, ProgressFile
from trainer.job.reasons import JobFailedError
from trainer.train import Supervision, train

log = logging.getLogger(__name__)

#: seconds between looks for the stop file while distilling (as `trainer.callbacks.StopOnFile` in training)
STOP_CHECK_S = 1.0


class StopRequestedError(TrainerError, RuntimeError):
    """The stop file appeared while the camera student was being distilled."""


@dataclass(frozen=True)
class Trained:
    """What training made: the run directory to export (its best.zip), car-steps (the teacher's, for a
    distilled run), wall-clock seconds of training (distillation included) and what stopped it."""

    run: Path
    steps: int
    training_s: float
    stopped_by: str


def train_job(config: RunConfig, job: TrainingJob, folder: JobFolder, progress: ProgressFile) -> Trained:
    """Train `config` into `folder.run`: directly, or a teacher in run/teacher distilled into run/."""
    supervision = Supervision(
        on_progress=progress.write, every_s=job.progress_every_s, t0=progress.t0,
        stop_file=folder.stop_file, wrap_env=DeadlineSteps,
    )  # fmt: skip
    if config.training_route() != "distill":
        result = train(config, folder.run, progress=False, supervision=supervision,
                       torch_threads=job.torch_threads)  # fmt: skip
        return Trained(result.out_dir, result.steps, result.wall_s, result.stopped_by)
    return _distilled(config, job, folder, progress, supervision)


def _distilled(
    config: RunConfig, job: TrainingJob, folder: JobFolder, progress: ProgressFile, supervision: Supervision
) -> Trained:
    t0 = time.monotonic()
    teacher = train(config.teacher_config(), folder.run / "teacher", progress=False, supervision=supervision,
                    torch_threads=job.torch_threads)  # fmt: skip
    if teacher.stopped_by == "stop_file":
        raise JobFailedError(
            "stopped while the `state` teacher was training: a camera model is distilled from the teacher "
            "after it (about 1.5 CPU-minutes); let training run to the recipe's stop condition"
        )
    lines = DistillLines(progress.write, progress.last, every_s=job.progress_every_s, t0=progress.t0,
                         stop_file=folder.stop_file)  # fmt: skip
    stopped_by = teacher.stopped_by
    try:
        distill(folder.run / "teacher", folder.run, empty_out=False, student=config, settings=config.distill,
                progress=lines, notes=config.notes())  # fmt: skip
    except StopRequestedError:
        if not (folder.run / "best.zip").is_file():
            raise JobFailedError(
                "stopped before the camera student finished its first round of distillation: no camera model "
                "to export yet"
            ) from None
        stopped_by = "stop_file"
    return Trained(folder.run, teacher.steps, time.monotonic() - t0, stopped_by)


class DistillLines(DistillProgress):
    """DAgger's progress as `TrainingProgress` lines of phase "training": the teacher's numbers (`base`, its
    last line) with the time, and the camera student's evaluations (none until its first round ends: the
    teacher's laps are not the student's); at most one line every `every_s` seconds besides one per round.
    Raises StopRequestedError from the distillation's own progress calls once `stop_file` exists (looked for
    at most every `STOP_CHECK_S`): the rounds finished so far are kept (best.zip)."""

    def __init__(
        self,
        write: Callable[[TrainingProgress], None],
        base: TrainingProgress | None,
        *,
        every_s: float,
        t0: float,
        stop_file: Path,
    ) -> None:
        self._write = write
        self._base = base.model_dump() if base is not None else {}
        self._base.update(eval_clean_laps=None, best_eval_lap_s=None)
        self.every_s = every_s
        self._t0 = t0
        self.stop_file = stop_file
        self._next_line = 0.0
        self._next_stop_check = 0.0

    def stage(self, text: str) -> None:
        log.info("distillation: %s", text)
        self._tick()

    def advance(self, done: int, total: int, info: str = "") -> None:
        self._tick()

    def round_done(self, row: RoundResult, rounds: int) -> None:
        self._base["eval_clean_laps"] = row.eval_clean_laps
        log.info("distillation round %d/%d: %d clean laps", row.round + 1, rounds, row.eval_clean_laps)
        self._line()

    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_stop_check:
            self._next_stop_check = now + STOP_CHECK_S
            if self.stop_file.exists():
                raise StopRequestedError(f"{self.stop_file} appeared")
        if now >= self._next_line:
            self._line()

    def _line(self) -> None:
        now = time.monotonic()
        self._next_line = now + self.every_s
        fields = {**self._base, "phase": "training", "t_s": round(now - self._t0, 3)}
        self._write(TrainingProgress.model_validate(fields))
