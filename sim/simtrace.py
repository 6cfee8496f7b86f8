"""DeepRacer simtrace CSV files: the 19 columns of `SIM_TRACE_LOG` lines, and reading them.

Training and evaluation write these (`training-simtrace/<N>-iteration.csv`); the viewer replays them;
deepracer-utils and log-analysis notebooks read them. This module is the one definition of the format, and of
what a lap in it is (`SimTrace.episodes()`: only a whole episode, from its first step, that ends
`lap_complete`).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import SimTraceError

if TYPE_CHECKING:
    from sim.measure import Measurements

#: DeepRacer's simtrace columns (`training-simtrace/*.csv`, `SIM_TRACE_LOG:` lines), in order.
SIMTRACE_COLUMNS = (
    "episode", "steps", "X", "Y", "yaw", "steer", "throttle", "action", "reward", "done",
    "all_wheels_on_track", "progress", "closest_waypoint", "track_len", "tstamp", "episode_status",
    "pause_duration", "obstacle_crash_counter", "wall_clock",
)  # fmt: skip
_REQUIRED = ("X", "Y", "yaw")
_NUMERIC = (
    "episode", "steps", "X", "Y", "yaw", "steer", "throttle", "reward", "progress", "track_len", "tstamp",
    "pause_duration",
)  # fmt: skip
_LOG_PREFIX = "SIM_TRACE_LOG:"
#: DeepRacer's `episode_status` of an episode's first row: the car held at its start while the first action
#: is chosen (step 1; the reward function first sees step 2)
PREPARE = "prepare"
#: the `steps` of an episode's first row: DeepRacer's step 1 is a prepare step, so files start at 1 or 2
_FIRST_STEP_MAX = 2.0
#: without a `steps` column, an episode is taken as whole when its first row is this close to its start point
_START_PROGRESS_MAX = 5.0
#: progress (%) at which a row completed its lap
_LAP_PROGRESS = 100.0 - 1e-6
#: the control period assumed when the time stamps cannot say (DeepRacer's 15 Hz)
_DEFAULT_STEP_S = 1.0 / 15.0


@dataclass(frozen=True)
class SimTrace:
    """The rows of a simtrace file as arrays (n,); NaN (or "" for `status`) where a column is absent.

    x_m, y_m: DeepRacer's X, Y — the point 0.14 m ahead of the chassis centre. yaw_deg, steer_deg: degrees.
    throttle_mps: the commanded speed. tstamp_s: simulation time, which runs on while the car is held.
    pause_s: `pause_duration`, seconds the car is held from that row (an evaluation's off-track penalty). line: each row's line in the file.
    `episodes()` splits the rows into episodes; only whole episodes that end `lap_complete` have a lap time.
    """

    source: str
    line: np.ndarray
    episode: np.ndarray
    steps: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    yaw_deg: np.ndarray
    steer_deg: np.ndarray
    throttle_mps: np.ndarray
    reward: np.ndarray
    progress: np.ndarray
    track_len_m: np.ndarray
    tstamp_s: np.ndarray
    pause_s: np.ndarray
    status: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.x_m)

    def step_s(self) -> float:
        """The control period, seconds: the median positive step of the time stamps (1/15 s without them)."""
        steps = np.diff(self.tstamp_s)
        steps = steps[np.isfinite(steps) & (steps > 0)]
        return float(np.median(steps)) if len(steps) else _DEFAULT_STEP_S

    def episodes(self) -> list[TraceEpisode]:
        """The rows split into episodes, in file order.

        A new episode begins where the `episode` column changes, or (when a file has no episode numbers) where
        `steps` falls. An episode is `whole` when the file holds it from its start: its first row is step 1 or
        2 (without steps, progress below 5 %), or it follows a row that completed a lap (DeepRacer's
        evaluation drives its laps as one run: the episode number changes at each lap, the steps and the clock
        run on). A file may begin with the tail of an episode logged before it, whose time is not a lap.
        `lap_time_s` is set only for a whole episode whose last row completed the lap (`lap_complete`, or
        progress 100 % where an evaluation's lap ended and the next began).
        """
        n = len(self)
        if n == 0:
            return []
        new = np.zeros(n, dtype=bool)
        new[0] = True
        ep, steps = self.episode, self.steps
        changed = ep[1:] != ep[:-1]
        changed &= ~(np.isnan(ep[1:]) & np.isnan(ep[:-1]))  # NaN != NaN: no column is no change
        fell = steps[1:] < steps[:-1]  # False where either is NaN
        new[1:] = changed | fell
        starts = np.flatnonzero(new)
        stops = np.append(starts[1:], n)
        step_s = self.step_s()
        return [self._episode(int(a), int(b), step_s) for a, b in zip(starts, stops, strict=True)]

    def _completed_lap(self, row: int) -> bool:
        return self.status[row] == "lap_complete" or float(self.progress[row]) >= _LAP_PROGRESS

    def _continues(self, start: int) -> bool:
        """Episode starting at row `start` begins where the previous row completed a lap, steps running on."""
        return start > 0 and self._completed_lap(start - 1) and not (self.steps[start] <= _FIRST_STEP_MAX)

    def _episode(self, start: int, stop: int, step_s: float) -> TraceEpisode:
        first_step = float(self.steps[start])
        if self._continues(start):
            whole = True
        elif math.isfinite(first_step):
            whole = first_step <= _FIRST_STEP_MAX
        else:
            first_progress = float(self.progress[start])
            whole = math.isfinite(first_progress) and first_progress < _START_PROGRESS_MAX
        last = stop - 1
        elapsed_s = self._driven_s(start, last, step_s)
        lap = whole and self._completed_lap(last)
        episode = float(self.episode[start])
        return TraceEpisode(
            number=int(episode) if math.isfinite(episode) else None,
            start=start,
            stop=stop,
            whole=whole,
            elapsed_s=elapsed_s,
            lap_time_s=round(elapsed_s, 6) if lap else None,
            status=self.status[last],
        )

    def driven_s(self, episode: TraceEpisode, i: int) -> float:
        """Seconds from `episode`'s start to row i, held time (off-track penalties) included as the clock
        counts it; for an episode that is not whole, the start is inferred from its first row's `steps`."""
        return self._driven_s(episode.start, i, self.step_s())

    def _driven_s(self, start: int, i: int, step_s: float) -> float:
        if self._continues(start):  # the lap began when the previous row finished the one before
            t0, t1 = float(self.tstamp_s[start - 1]), float(self.tstamp_s[i])
            if math.isfinite(t0) and math.isfinite(t1):
                return t1 - t0
            return (i - start + 1) * step_s
        first_step = float(self.steps[start])
        # the first row is logged (first_step - 1) control steps after the car was placed at its start
        lead_s = (first_step - 1.0) * step_s if math.isfinite(first_step) else step_s
        t0, t1 = float(self.tstamp_s[start]), float(self.tstamp_s[i])
        if math.isfinite(t0) and math.isfinite(t1):
            return t1 - t0 + lead_s
        return (i - start) * step_s + lead_s


@dataclass(frozen=True)
class TraceEpisode:
    """One episode's rows of a `SimTrace`: rows `start` to `stop` (exclusive).

    number: the `episode` column (None without one). whole: the file holds the episode from its start.
    elapsed_s: time from the episode's start (or, when not whole, from its first row in the file) to its last
    row, by the `tstamp` clock, which runs on while the car is held (off-track penalties). lap_time_s: elapsed_s when the episode is whole and
    ends `lap_complete`, else None. status: the last row's `episode_status`.
    """

    number: int | None
    start: int
    stop: int
    whole: bool
    elapsed_s: float
    lap_time_s: float | None
    status: str

    def __len__(self) -> int:
        return self.stop - self.start


def best_lap_s(episodes: Sequence[TraceEpisode]) -> float | None:
    """The shortest lap of `episodes` (seconds), None when none of them is a completed lap."""
    laps = [e.lap_time_s for e in episodes if e.lap_time_s is not None]
    return min(laps) if laps else None


def _merge_brackets(fields: list[str]) -> list[str]:
    """Rejoin a continuous action written unquoted as `[steer, speed]`, which the comma split in two."""
    out: list[str] = []
    for field in fields:
        if out and out[-1].startswith("[") and not out[-1].endswith("]"):
            out[-1] = f"{out[-1]},{field}"
        else:
            out.append(field)
    return out


def _header_columns(header: Sequence[str], where: str) -> dict[str, int]:
    index = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [name for name in _REQUIRED if name.lower() not in index]
    if missing:
        raise SimTraceError(
            f"{where}: the header has no column {', '.join(missing)} "
            f"(expected DeepRacer's simtrace columns: {','.join(SIMTRACE_COLUMNS)})"
        )
    return {name: index[name.lower()] for name in (*_NUMERIC, "episode_status") if name.lower() in index}


def _parse_row(fields: list[str], columns: dict[str, int], where: str) -> dict[str, Any]:
    needed = max(columns[name] for name in _REQUIRED) + 1
    if len(fields) < needed:
        raise SimTraceError(f"{where}: expected at least {needed} comma-separated fields, got {len(fields)}")
    row: dict[str, Any] = {}
    for name in _NUMERIC:
        i = columns.get(name)
        text = fields[i] if i is not None and i < len(fields) else ""
        if text == "" and name not in _REQUIRED:
            row[name] = math.nan
            continue
        try:
            value = float(text)
        except ValueError:
            raise SimTraceError(f"{where}: column {name}: expected a number, got {text!r}") from None
        if name in _REQUIRED and not math.isfinite(value):
            raise SimTraceError(f"{where}: column {name}: expected a finite number, got {text!r}")
        row[name] = value
    i = columns.get("episode_status")
    row["episode_status"] = fields[i] if i is not None and i < len(fields) else ""
    return row


def read_simtrace(path: str | Path) -> SimTrace:
    """Read a DeepRacer simtrace CSV (header row, one row per step) or a file of `SIM_TRACE_LOG:` lines
    (no header: DeepRacer's column order). Extra or missing trailing columns are accepted; X, Y and yaw
    are required. Raises SimTraceError naming the file and line."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    columns: dict[str, int] | None = None
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            for raw in reader:
                where = f"{path}:{reader.line_num}"
                fields = _merge_brackets([field.strip() for field in raw])
                if not any(fields):
                    continue
                if fields[0].startswith(_LOG_PREFIX):
                    fields[0] = fields[0][len(_LOG_PREFIX) :].strip()
                if columns is None:
                    if fields[0].lower() == "episode":
                        columns = _header_columns(fields, where)
                        continue
                    columns = _header_columns(SIMTRACE_COLUMNS, where)
                rows.append(_parse_row(fields, columns, where))
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise SimTraceError(f"{path}: no such simtrace file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SimTraceError(f"{path}: not a readable simtrace CSV ({exc})") from exc
    if not rows:
        raise SimTraceError(f"{path}: no simtrace rows (expected a header line, then one line per step)")

    def column(name: str) -> np.ndarray:
        return np.array([row[name] for row in rows], dtype=np.float64)

    return SimTrace(
        source=str(path),
        line=np.array(lines),
        episode=column("episode"),
        steps=column("steps"),
        x_m=column("X"),
        y_m=column("Y"),
        yaw_deg=column("yaw"),
        steer_deg=column("steer"),
        throttle_mps=column("throttle"),
        reward=column("reward"),
        progress=column("progress"),
        track_len_m=column("track_len"),
        tstamp_s=column("tstamp"),
        pause_s=column("pause_duration"),
        status=tuple(row["episode_status"] for row in rows),
    )


def _action_text(action: Any) -> str:
    """DeepRacer's action column: the index of a discrete action, `[steer, speed]` for a continuous one."""
    values = np.atleast_1d(np.asarray(action))
    if values.size == 1 and np.issubdtype(values.dtype, np.integer):
        return str(int(values[0]))
    if values.size == 1:
        return str(round(float(values[0])))
    # no comma inside, and quoted: both CSV readers and deepracer-utils' comma-split line parser keep it whole
    return f'"[{float(values[0]):.2f} {float(values[1]):.2f}]"'


def closest_waypoint(params: Measurements) -> np.ndarray:
    """(n,) int DeepRacer's `closest_waypoint` column: the next waypoint if it is nearer than the previous,
    else the previous (indices in the driving direction)."""
    pair = params.closest_waypoints
    out = pair[:, 0].copy()
    for i in range(params.n):
        waypoints = (params.backward if params.is_reversed[i] else params.forward).waypoints
        prev, nxt = waypoints[pair[i, 0]], waypoints[pair[i, 1]]
        if np.hypot(*(nxt - (params.x[i], params.y[i]))) < np.hypot(*(prev - (params.x[i], params.y[i]))):
            out[i] = pair[i, 1]
    return out


class SimTraceWriter:
    """Writes a DeepRacer simtrace CSV: the header, then one row per car per step, in DeepRacer's formats.

    Use as a context manager or call `close()`. Rows come from a `Measurements` batch (X, Y are its x, y:
    the point 0.14 m ahead of the chassis centre, as DeepRacer logs them).
    """

    def __init__(self, path: str | Path, *, append: bool = False) -> None:
        """append: add rows to an existing file (its header already written)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a" if append else "w", newline="", encoding="utf-8")
        if not append:
            # rows are joined by hand: no field holds a comma, and the continuous action keeps its own quotes
            self._handle.write(",".join(SIMTRACE_COLUMNS) + "\n")

    def write(
        self,
        params: Measurements,
        status: np.ndarray,
        actions: Any,
        rewards: np.ndarray,
        *,
        episode: int | np.ndarray,
        done: np.ndarray | None = None,
        pause_duration_s: float | np.ndarray = 0.0,
        obstacle_crash_counter: int | np.ndarray = 0,
        steps: int | np.ndarray | None = None,
        tstamp_s: float | np.ndarray | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        """One row per car of `params` (n cars).

        status: (n,) `sim.rules.EpisodeStatus` codes. actions: (n,) discrete indices or (n, 2) continuous
        actions as the policy gave them (written as the commanded steering/speed `[deg, m/s]` for a
        continuous space). rewards: (n,). episode: per car. done: (n,) bool, default: status is not
        in_progress. pause_duration_s: seconds the car is held this step (off-track penalty).
        steps, tstamp_s: the `steps` and `tstamp` columns when they are not the params' own (an evaluation's
        steps and clock run on across laps, the clock through the penalties). labels: (n,) `episode_status`
        strings instead of `status`'s (DeepRacer's `prepare`, which ends no episode).
        """
        from sim.rules import STATUS_LABELS  # sim.rules is light; imported here to keep the reader standalone

        n = params.n
        status = np.asarray(status)
        done = status != 0 if done is None else np.asarray(done)
        episode_arr = np.broadcast_to(np.asarray(episode), (n,))
        pause = np.broadcast_to(np.asarray(pause_duration_s, dtype=np.float64), (n,))
        crashes = np.broadcast_to(np.asarray(obstacle_crash_counter), (n,))
        steps_arr = np.broadcast_to(np.asarray(params.steps if steps is None else steps), (n,))
        clock = np.broadcast_to(np.asarray(params.sim_time if tstamp_s is None else tstamp_s), (n,))
        labels = labels if labels is not None else [STATUS_LABELS[int(code)] for code in status]
        acts = np.asarray(actions)
        continuous = acts.ndim == 2 and acts.shape[1] == 2
        waypoint = closest_waypoint(params)
        wall = time.time()
        for i in range(n):
            action = (
                _action_text([params.steering_angle[i], params.speed[i]])
                if continuous
                else _action_text(acts[i])
            )
            self._handle.write(
                ",".join(
                    str(field)
                    for field in (
                        int(episode_arr[i]),
                        int(steps_arr[i]),
                        f"{params.x[i]:.4f}",
                        f"{params.y[i]:.4f}",
                        f"{params.heading[i]:.4f}",
                        f"{params.steering_angle[i]:.2f}",
                        f"{params.speed[i]:.2f}",
                        action,
                        f"{float(rewards[i]):.4f}",
                        str(bool(done[i])),
                        str(bool(params.all_wheels_on_track[i])),
                        f"{params.progress[i]:.4f}",
                        int(waypoint[i]),
                        f"{params.track_length:.2f}",
                        f"{float(clock[i]):.4f}",
                        labels[i],
                        f"{pause[i]:.2f}",
                        int(crashes[i]),
                        f"{wall:.4f}",
                    )
                )
                + "\n"
            )

    def write_prepare(
        self,
        params: Measurements,
        actions: Any,
        *,
        episode: int,
        tstamp_s: float | None = None,
        steps: int = 1,
    ) -> None:
        """DeepRacer's first row of an episode: step 1, `prepare`, the car standing at its start (`params`,
        one car), reward 0. DeepRacer spends that step choosing the first action (`actions`, as for `write`)
        while the car is held, so the log analysis tools take an episode's time from this row's `tstamp`."""
        self.write(
            params,
            np.zeros(1, dtype=np.int8),
            actions,
            np.zeros(1),
            episode=episode,
            done=np.zeros(1, dtype=bool),
            steps=steps,
            tstamp_s=tstamp_s,
            labels=(PREPARE,),
        )

    def tell(self) -> int:
        """Bytes written so far (with `truncate`: drop rows of an episode that did not finish)."""
        self._handle.flush()
        return self._handle.tell()

    def truncate(self, size: int) -> None:
        """Cut the file back to `size` bytes (a `tell()` taken at a row boundary)."""
        self._handle.flush()
        self._handle.truncate(size)
        self._handle.seek(size)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> SimTraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
