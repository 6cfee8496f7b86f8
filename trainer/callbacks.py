"""Training callbacks, one concern each; `trainer.train` composes them with `RunCallbackList`.

    EpisodeLog               finished episodes of all cars: count, best training lap, recent returns
    SimtraceFiles            car 0's training-simtrace/<N>-iteration.csv, a new file after each rollout
    MetricsCsv               metrics.csv, one row per rollout (and one at the end of training)
    StopOnMaxEpisodes        stop after `max_episodes` episodes of all cars
    StopOnMeanEpisodeReward  stop when the last 100 training episodes' mean return reaches a threshold
    StopOnWallClock          stop after `minutes` of training, wall clock (DeepRacer's stop condition)
    StopOnFile               stop gracefully once a file (a training job's `STOP`) appears
    StepCheckpoints          checkpoints/step_<N>.zip every `checkpoint_every_steps` car-steps
    RaceEvaluation           the race rules' evaluation laps; best.zip and best.json
    StopOnCleanLaps          (RaceEvaluation's child) stop after K consecutive clean evaluation laps
    ProgressBar              a rich progress bar on stderr with the latest metrics
    ProgressLines            a `TrainingProgress` every few seconds (a training job's out/progress.jsonl)

Why not stable-baselines3's own callbacks: its CheckpointCallback counts VecEnv steps (`n_calls % save_freq`,
one call per step of all cars), restarts the count after a resume and names files `<prefix>_<N>_steps.zip`,
while a run checkpoints at multiples of the total car-steps into `step_<N>.zip` (what `--resume` reads). Its
EvalCallback scores mean reward on a separate env; a run is scored under DeepRacer's race rules
(`sim.evaluation`). Its StopTrainingOnMaxEpisodes stops at `max_episodes` x n_envs and forgets the count on
resume; `stop.max_episodes` counts all cars' episodes together, across resumes. Its StopTrainingOnRewardThreshold reads the evaluation's reward, `stop.mean_episode_reward` the
training returns. Its ProgressBarCallback shows steps only.

A resumed run carries its counters on from the run directory (`RunHistory.read`).
"""

from __future__ import annotations

import collections
import csv
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, EventCallback

from contracts.recipe import TrainingProgress
from sim.simtrace import SimTraceWriter
from trainer.vec_env import BatchedVecEnv

logger = logging.getLogger(__name__)

METRICS_COLUMNS = (
    "steps", "wall_s", "steps_per_s", "episodes", "mean_episode_reward", "mean_progress",
    "lap_completion_rate", "best_lap_s", "eval_clean_streak",
)  # fmt: skip

RECENT_EPISODES = 100  # the window of `stop.mean_episode_reward`


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class RunHistory:
    """What a resumed run carries on from its directory; the defaults are a new run's."""

    episodes: int = 0
    best_lap_s: float = math.inf  # best training lap
    eval_clean_streak: int = 0
    wall_s: float = 0.0  # wall_s of metrics.csv's last row: wall_s keeps increasing
    best_score: tuple[float, float] | None = None  # best.json's (see `EvalOutcome.score`)

    @classmethod
    def read(cls, out: Path) -> RunHistory:
        """From metrics.csv's last row, best.json and the simtrace files of the run directory `out`."""
        rows: list[dict[str, str]] = []
        path = out / "metrics.csv"
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        fields: dict[str, Any] = {}
        if rows:
            last = rows[-1]
            fields = {
                "episodes": int(float(last["episodes"] or 0)),
                "best_lap_s": float(last["best_lap_s"] or math.inf),
                "eval_clean_streak": int(float(last["eval_clean_streak"] or 0)),
                "wall_s": float(last["wall_s"] or 0.0),
            }
        best = out / "best.json"
        if best.is_file():
            score = json.loads(best.read_text(encoding="utf-8"))["score"]
            fields["best_score"] = (float(score[0]), float(score[1]))
        return cls(**fields)


class RunCallbackList(CallbackList):
    """SB3's CallbackList, except that once a callback stops training the step's later callbacks are skipped
    (SB3 runs them all): a run stopped by a stop condition saves no checkpoint and starts no evaluation in
    its last step. Callbacks are listed in the order their work happens."""

    def _on_step(self) -> bool:
        return all(callback.on_step() for callback in self.callbacks)


# ---------------------------------------------------------------------- episodes, metrics


class EpisodeLog(BaseCallback):
    """Finished episodes of all cars, from the VecEnv's infos (`trainer.vec_env`): their count, the best
    training lap (s), the last `RECENT_EPISODES` returns and the (return, progress %, lap completed) of each
    episode since the last metrics row."""

    def __init__(self, history: RunHistory) -> None:
        super().__init__()
        self.episodes = history.episodes
        self.best_lap_s = history.best_lap_s
        self.recent_returns: collections.deque[float] = collections.deque(maxlen=RECENT_EPISODES)
        self._window: list[tuple[float, float, bool]] = []

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
        return True

    def take_window(self) -> list[tuple[float, float, bool]]:
        """The episodes since the last call: (return, progress %, lap completed) each."""
        window, self._window = self._window, []
        return window


def _fmt(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.6g}"


class MetricsCsv(BaseCallback):
    """metrics.csv (`METRICS_COLUMNS`): a row after each rollout and one at the end of training, for the
    car-steps since the previous row; `on_metrics` gets each row. `last_row` is the latest (empty before)."""

    def __init__(
        self,
        path: Path,
        episodes: EpisodeLog,
        evaluation: RaceEvaluation,
        *,
        t0: float,
        history: RunHistory,
        append: bool,
        on_metrics: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        super().__init__()
        self._episodes = episodes
        self._evaluation = evaluation
        self._t0 = t0
        self._wall_offset = history.wall_s
        self._on_metrics = on_metrics
        self._previous = (0, t0)  # (steps, monotonic time) of the previous row
        self.last_row: dict[str, float] = {}
        self._file = path.open("a" if append else "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if not append:
            self._writer.writerow(METRICS_COLUMNS)

    def _on_training_start(self) -> None:
        self._previous = (self.num_timesteps, self._previous[1])

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self._write()

    def _on_training_end(self) -> None:
        self._write()
        self.close()

    def _write(self) -> None:
        steps = self.model.num_timesteps
        if steps == self._previous[0]:
            return
        now = time.monotonic()
        window = self._episodes.take_window()
        n = len(window)
        row = {
            "steps": steps,
            "wall_s": self._wall_offset + now - self._t0,
            "steps_per_s": (steps - self._previous[0]) / max(now - self._previous[1], 1e-9),
            "episodes": self._episodes.episodes,
            "mean_episode_reward": float(np.mean([w[0] for w in window])) if n else math.nan,
            "mean_progress": float(np.mean([w[1] for w in window])) if n else math.nan,
            "lap_completion_rate": sum(w[2] for w in window) / n if n else math.nan,
            "best_lap_s": self._episodes.best_lap_s,
            "eval_clean_streak": self._evaluation.streak,
        }
        self._writer.writerow([_fmt(float(row[c])) for c in METRICS_COLUMNS])
        self._file.flush()
        self._previous = (steps, now)
        self.last_row = row
        if self._on_metrics is not None:
            self._on_metrics(row)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


# ---------------------------------------------------------------------- stop conditions


class StopCondition(BaseCallback):
    """A callback that stops training; `reason` names it in `TrainResult.stopped_by`, `stopped` says it did."""

    reason = ""

    def __init__(self) -> None:
        super().__init__()
        self.stopped = False

    def _on_step(self) -> bool:
        self.stopped = self._met()
        return not self.stopped

    def _met(self) -> bool:
        raise NotImplementedError


class StopOnMaxEpisodes(StopCondition):
    """Stops once all cars together have finished `max_episodes` episodes (counted across resumes)."""

    reason = "max_episodes"

    def __init__(self, episodes: EpisodeLog, max_episodes: int) -> None:
        super().__init__()
        self._episodes = episodes
        self.max_episodes = max_episodes

    def _met(self) -> bool:
        return self._episodes.episodes >= self.max_episodes


class StopOnMeanEpisodeReward(StopCondition):
    """Stops once the mean return of the last `RECENT_EPISODES` training episodes reaches `threshold`."""

    reason = "mean_episode_reward"

    def __init__(self, episodes: EpisodeLog, threshold: float) -> None:
        super().__init__()
        self._episodes = episodes
        self.threshold = threshold

    def _met(self) -> bool:
        recent = self._episodes.recent_returns
        return len(recent) == recent.maxlen and float(np.mean(recent)) >= self.threshold


class StopOnWallClock(StopCondition):
    """Stops once `minutes` of wall-clock time have passed since `t0` (time.monotonic(), training's start):
    evaluations and rollouts count, as a racer's budget does."""

    reason = "minutes"

    def __init__(self, minutes: float, *, t0: float) -> None:
        super().__init__()
        self.minutes = minutes
        self._end = t0 + minutes * 60.0

    def _met(self) -> bool:
        return time.monotonic() >= self._end


class StopOnFile(StopCondition):
    """Stops once `path` exists (the console's stop button leaves a `STOP` file in the job folder); looks at
    most once every `check_every_s` seconds: a stat per VecEnv step would cost more than it tells."""

    reason = "stop_file"

    def __init__(self, path: Path, *, check_every_s: float = 1.0) -> None:
        super().__init__()
        self.path = path
        self.check_every_s = check_every_s
        self._next_check = 0.0

    def _met(self) -> bool:
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self.check_every_s
        return self.path.exists()


class StopOnCleanLaps(StopCondition):
    """A `RaceEvaluation`'s child, asked after each evaluation: stops once its streak of consecutive clean
    evaluation laps reaches `laps`."""

    reason = "until_clean_laps"

    def __init__(self, laps: int) -> None:
        super().__init__()
        self.laps = laps

    def _met(self) -> bool:
        assert isinstance(self.parent, RaceEvaluation), "StopOnCleanLaps is the callback of a RaceEvaluation"
        return self.parent.streak >= self.laps


# ---------------------------------------------------------------------- checkpoints, evaluation


def _next_multiple(steps: int, every: int) -> int:
    """The first multiple of `every` after `steps` (a resumed run keeps the new run's schedule)."""
    return (steps // every + 1) * every


class StepCheckpoints(BaseCallback):
    """`directory/step_<N>.zip` each time the car-steps N pass a multiple of `every_steps`."""

    def __init__(self, directory: Path, every_steps: int) -> None:
        super().__init__()
        self.directory = directory
        self.every_steps = every_steps
        self._next = every_steps

    def _on_training_start(self) -> None:
        self._next = _next_multiple(self.num_timesteps, self.every_steps)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.every_steps
            self.model.save(self.directory / f"step_{self.num_timesteps}.zip")
        return True


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


class RaceEvaluation(EventCallback):
    """Each time the car-steps pass a multiple of `every_steps`, `evaluate(model)` drives the evaluation laps
    (`trainer.train.evaluate_laps`: DeepRacer's race rules); a better score saves `out/best.zip` and
    `out/best.json` ({"score", "steps"}). Clean evaluations extend `streak` (laps), any failure resets it.
    After each evaluation `callback` (e.g. `StopOnCleanLaps`) is asked whether to go on. A run that ends
    before it has a best model is evaluated once more at its end, so best.zip exists."""

    def __init__(
        self,
        evaluate: Callable[[Any], EvalOutcome],
        out: Path,
        every_steps: int,
        *,
        t0: float,
        history: RunHistory,
        callback: BaseCallback | None = None,
    ) -> None:
        super().__init__(callback)
        self._evaluate = evaluate
        self.out = out
        self.every_steps = every_steps
        self._t0 = t0
        self._next = every_steps
        self.streak = history.eval_clean_streak
        self.best_score = history.best_score
        self.best_eval_lap_s = math.inf
        self.last_clean: int | None = None  # clean laps of the latest evaluation
        self.first_eval_lap_step: int | None = None  # the first evaluation with a completed lap
        self.first_eval_lap_wall_s: float | None = None

    def _on_training_start(self) -> None:
        super()._on_training_start()
        self._next = _next_multiple(self.num_timesteps, self.every_steps)

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next:
            return True
        self._next += self.every_steps
        self.evaluate_now()
        return self._on_event()

    def _on_training_end(self) -> None:
        if self.best_score is None:  # shorter than one evaluation period
            self.evaluate_now()

    def evaluate_now(self) -> EvalOutcome:
        """Evaluate the current policy; keep it as best.zip when it beats the best so far."""
        steps = int(self.model.num_timesteps)
        result = self._evaluate(self.model)
        wall = time.monotonic() - self._t0
        self.streak = self.streak + result.clean if result.clean == len(result.statuses) else 0
        self.last_clean = result.clean
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
        return result


# ---------------------------------------------------------------------- simtrace, progress bar


#: pitlane's own record of the traced car's episodes, beside the simtrace files it describes
SIMTRACE_EPISODES_FILE = "training-simtrace.json"


class SimtraceFiles(BaseCallback):
    """Car 0's training log in DeepRacer's layout: `directory/<N>-iteration.csv` holds `episodes_per_file`
    whole episodes of car 0 (DeepRacer's iteration, `num_episodes_between_training`), numbered on across files
    (iteration N holds episodes N*K to N*K+K-1), as deepracer-utils counts them. Each episode begins with its
    `prepare` row (`vec` writes the rows, `car0_trace`). When training ends, the rows of car 0's unfinished
    episode are dropped: DeepRacer's iterations hold finished episodes only.

    Beside them, `training-simtrace.json` is pitlane's own record of those episodes (from the VecEnv's infos,
    as metrics.csv counts episodes): number, iteration, steps, status, progress %, lap time s. A resumed run
    carries on the numbering, filling the last file first."""

    def __init__(self, vec: BatchedVecEnv, directory: Path, episodes_per_file: int) -> None:
        super().__init__()
        self.vec = vec
        self.directory = directory
        self.per_file = episodes_per_file
        self._record_path = directory.parent / SIMTRACE_EPISODES_FILE
        self._record: list[dict[str, Any]] = []
        if self._record_path.is_file():  # a resumed run
            self._record = json.loads(self._record_path.read_text(encoding="utf-8"))["episodes"]
        self._iteration = self._record[-1]["iteration"] if self._record else 0
        self._in_file = sum(1 for e in self._record if e["iteration"] == self._iteration)
        if self._in_file >= self.per_file:
            self._iteration, self._in_file = self._iteration + 1, 0
        self._finished_at = 0  # bytes of the open file up to its last finished episode

    def _on_training_start(self) -> None:
        next_episode = self._record[-1]["episode"] + 1 if self._record else 0
        self.vec.car0_episode = max(next_episode, self._iteration * self.per_file)
        self._open(append=self._in_file > 0)

    def _on_step(self) -> bool:
        if self.locals["dones"][0]:  # car 0's episode ended with this step's row
            self._note(self.locals["infos"][0])
            if self._in_file == self.per_file:
                self._close_file()
                self._iteration, self._in_file = self._iteration + 1, 0
                self._open(append=False)
        return True

    def _note(self, info: dict[str, Any]) -> None:
        self._record.append(
            {
                "episode": self.vec.car0_episode - 1,  # the VecEnv counted it on with this step's row
                "iteration": self._iteration,
                "steps": int(info["episode"]["l"]),
                "status": info["episode_status"],
                "progress": round(float(info["progress"]), 4),
                "lap_time_s": info.get("lap_time_s"),
            }
        )
        self._in_file += 1
        trace = self.vec.car0_trace
        if trace is not None:
            self._finished_at = trace.tell()

    def _open(self, *, append: bool) -> None:
        path = self.directory / f"{self._iteration}-iteration.csv"
        self.vec.car0_trace = SimTraceWriter(path, append=append and path.is_file())
        self._finished_at = self.vec.car0_trace.tell()

    def _close_file(self) -> None:
        """Close the open file without the rows of an unfinished episode (a file left with none is removed)."""
        trace, self.vec.car0_trace = self.vec.car0_trace, None
        if trace is None:
            return
        trace.truncate(self._finished_at)
        trace.close()
        if self._in_file == 0:
            trace.path.unlink()
        write_json(
            self._record_path,
            {"car": 0, "episodes_per_iteration": self.per_file, "episodes": self._record},
        )

    def _on_training_end(self) -> None:
        self._close_file()

    def close(self) -> None:
        """Close the open file, also when training failed (a reward file raised)."""
        self._close_file()


class ProgressBar(BaseCallback):
    """A rich progress bar on stderr: car-steps of `total_steps`, and from `metrics.last_row` steps/s, mean
    episode reward, lap completion and best lap; redrawn at most every 0.25 s."""

    def __init__(self, total_steps: int, metrics: MetricsCsv) -> None:
        super().__init__()
        self.total_steps = total_steps
        self._metrics = metrics
        self._bar: Any = None
        self._task: Any = None
        self._last_draw = 0.0

    def _on_training_start(self) -> None:
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
        self._task = self._bar.add_task("train", total=self.total_steps, stats="")
        self._bar.start()

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now - self._last_draw > 0.25:
            self._last_draw = now
            self._draw()
        return True

    def _on_training_end(self) -> None:
        self.close()

    def _draw(self) -> None:
        m = self._metrics.last_row
        stats = ""
        if m:
            best = m["best_lap_s"]
            stats = (
                f"{m['steps_per_s']:,.0f} steps/s · reward {m['mean_episode_reward']:.1f} · "
                f"laps {100 * m['lap_completion_rate']:.0f}% · best "
                + (f"{best:.2f} s" if math.isfinite(best) else "-")
            )
        self._bar.update(self._task, completed=self.model.num_timesteps, stats=stats)

    def close(self) -> None:
        """Draw the last state and stop the bar, also when training failed."""
        if self._bar is not None:
            self._draw()
            self._bar.stop()
            self._bar = None


class ProgressLines(BaseCallback):
    """Every `every_s` seconds of wall clock (and when training starts and ends), one `TrainingProgress` of
    phase "training" handed to `write`, from what the other callbacks already hold: car-steps, episodes and
    the best training lap (`EpisodeLog`), steps/s, mean return and lap completion of the latest rollout's
    episodes (`MetricsCsv.last_row`), and the latest evaluation (`RaceEvaluation`). `t0`: the
    time.monotonic() the lines' `t_s` counts from (a training job's start)."""

    def __init__(
        self,
        write: Callable[[TrainingProgress], None],
        episodes: EpisodeLog,
        metrics: MetricsCsv,
        evaluation: RaceEvaluation,
        *,
        every_s: float,
        t0: float,
    ) -> None:
        super().__init__()
        self._write = write
        self._episodes = episodes
        self._metrics = metrics
        self._evaluation = evaluation
        self.every_s = every_s
        self._t0 = t0
        self._next = 0.0

    def _on_training_start(self) -> None:
        self._emit()

    def _on_step(self) -> bool:
        if time.monotonic() >= self._next:
            self._emit()
        return True

    def _on_training_end(self) -> None:
        self._emit()

    def _emit(self) -> None:
        now = time.monotonic()
        self._next = now + self.every_s
        self._write(self.progress(now - self._t0))

    def progress(self, t_s: float) -> TrainingProgress:
        """The line for now, `t_s` seconds after `t0`."""
        row = self._metrics.last_row
        completion = _finite(row.get("lap_completion_rate"))
        evaluation = self._evaluation
        return TrainingProgress(
            phase="training",
            t_s=round(max(t_s, 0.0), 3),
            steps=int(self.model.num_timesteps),
            steps_per_s=round(_finite(row.get("steps_per_s")) or 0.0, 1),
            episodes=self._episodes.episodes,
            mean_reward=_finite(row.get("mean_episode_reward")),
            lap_completion_pct=None if completion is None else round(100.0 * completion, 2),
            best_lap_s=_finite(self._episodes.best_lap_s),
            eval_clean_laps=evaluation.last_clean,
            best_eval_lap_s=_finite(evaluation.best_eval_lap_s),
        )


def _finite(x: float | None) -> float | None:
    """x, or None for a missing, NaN or infinite value (JSON has no NaN; "no lap yet" is inf here)."""
    return None if x is None or not math.isfinite(x) else float(x)
