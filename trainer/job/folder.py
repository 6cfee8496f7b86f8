"""A training job's folder: where each file is, reading `job.json`, and writing what the job reports.

    job.json            contracts.recipe.TrainingJob (the server wrote it); paths are relative to its folder
    STOP                appears when the racer stops the job: training ends and what it learned is exported
    run/                the training run (trainer.train's run directory: checkpoints, metrics, best.zip, ...)
    <out_dir>/          what the job hands back (`out` unless the job says otherwise):
        recipe.toml, reward.py                   the recipe, and its reward function as the file training runs
        progress.jsonl                           one TrainingProgress per line, appended as training goes
        model.onnx, model.int8.onnx, model.json, parity.json, evaluation.png, replay.json   (TRAINING_FILES)
        result.json                              TrainingOutcome
        check.json                               RecipeCheck (`--check` only)

Nothing here imports the simulator or torch: `--check` and the crash path use it too.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from contracts.errors import RecipeError, validation_problems
from contracts.recipe import ProblemAt, RecipeCheck, TrainingJob, TrainingOutcome, TrainingProgress

RESULT_FILE = "result.json"
CHECK_FILE = "check.json"
PROGRESS_FILE = "progress.jsonl"
RECIPE_FILE = "recipe.toml"
REWARD_FILE = "reward.py"
STOP_FILE = "STOP"
RUN_DIR = "run"


@dataclass(frozen=True)
class JobFolder:
    """The paths of one job (absolute). `out` comes from the job file's `out_dir` (default `out`)."""

    job_file: Path
    root: Path
    out: Path

    @classmethod
    def of(cls, job_file: Path, out_dir: str = "out") -> JobFolder:
        job_file = job_file.resolve()
        root = job_file.parent
        out = (root / out_dir).resolve()
        if not out.is_relative_to(root):  # the job may only write inside its folder (trainer.guard agrees)
            raise RecipeError(f"{job_file}: out_dir {out_dir!r} is outside the job folder")
        return cls(job_file, root, out)

    @property
    def run(self) -> Path:
        return self.root / RUN_DIR

    @property
    def stop_file(self) -> Path:
        return self.root / STOP_FILE

    @property
    def reward(self) -> Path:
        return self.out / REWARD_FILE

    @property
    def progress(self) -> Path:
        return self.out / PROGRESS_FILE

    def write_inputs(self, job: TrainingJob) -> None:
        """out/ with the recipe as TOML and its reward function as the .py file training loads."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / RECIPE_FILE).write_text(job.recipe.to_toml(), encoding="utf-8")
        self.reward.write_text(job.recipe.reward_function, encoding="utf-8")

    def clear_previous_attempt(self) -> None:
        """Remove what an earlier run of this job left (a retried job starts clean): the run directory and
        the result, so no stale result.json is read while this attempt runs."""
        shutil.rmtree(self.run, ignore_errors=True)
        (self.out / RESULT_FILE).unlink(missing_ok=True)

    def write_result(self, outcome: TrainingOutcome) -> Path:
        return _write_model(self.out / RESULT_FILE, outcome)

    def write_check(self, check: RecipeCheck) -> Path:
        return _write_model(self.out / CHECK_FILE, check)


def _write_model(path: Path, model: BaseModel) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def job_problems(job_file: Path) -> tuple[TrainingJob | None, list[ProblemAt]]:
    """(the job, []) or (None, one ProblemAt per invalid field, its `field` the recipe's dotted key):
    what `--check` reports for a job file that is not a valid job."""
    try:
        raw = job_file.read_bytes()
    except OSError as exc:
        return None, [ProblemAt(field="job", message=f"{job_file.name}: cannot read the job file ({exc})")]
    try:
        return TrainingJob.model_validate_json(raw), []
    except ValidationError as exc:
        return None, [_problem(err) for err in exc.errors()] or [
            ProblemAt(field="job", message=validation_problems(exc))
        ]


def _problem(err: Any) -> ProblemAt:
    loc = [str(p) for p in err["loc"]]
    if loc[:1] == ["recipe"]:
        loc = loc[1:]
    return ProblemAt(field=".".join(loc) or "recipe", message=err["msg"].removeprefix("Value error, "))


def out_dir_of(job_file: Path) -> str:
    """The job file's `out_dir` if it can be read at all, else the default: where to report a job that is not
    valid."""
    try:
        data = json.loads(job_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "out"
    value = data.get("out_dir") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else "out"


class ProgressFile:
    """out/progress.jsonl: `write` appends one TrainingProgress as a JSON line and flushes it, so the engine's
    tail (or a Ray task) sees each line as soon as it is written. `t0`: the job's start, time.monotonic()."""

    def __init__(self, path: Path, t0: float) -> None:
        self.path = path
        self.t0 = t0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8")  # a retried job starts a new file
        self.last: TrainingProgress | None = None

    def write(self, progress: TrainingProgress) -> None:
        self._file.write(progress.model_dump_json(exclude_none=True) + "\n")
        self._file.flush()
        self.last = progress

    def phase(self, phase: str, **fields: Any) -> None:
        """A line of `phase` now, carrying on the last training line's numbers (steps, laps, ...)."""
        carried = self.last.model_dump() if self.last is not None else {}
        carried.update(fields, phase=phase, t_s=round(self.elapsed_s(), 3))
        self.write(TrainingProgress.model_validate(carried))

    def elapsed_s(self) -> float:
        return time.monotonic() - self.t0

    def close(self) -> None:
        self._file.close()
