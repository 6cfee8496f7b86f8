"""DeepRacer simtrace CSV files: the 19 columns of `SIM_TRACE_LOG` lines, and reading them.

Training and evaluation write these (`training-simtrace/<N>-iteration.csv`); the viewer replays them;
deepracer-utils and log-analysis notebooks read them. This module is the one definition of the format.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import SimTraceError

#: DeepRacer's simtrace columns (`training-simtrace/*.csv`, `SIM_TRACE_LOG:` lines), in order.
SIMTRACE_COLUMNS = (
    "episode", "steps", "X", "Y", "yaw", "steer", "throttle", "action", "reward", "done",
    "all_wheels_on_track", "progress", "closest_waypoint", "track_len", "tstamp", "episode_status",
    "pause_duration", "obstacle_crash_counter", "wall_clock",
)  # fmt: skip
_REQUIRED = ("X", "Y", "yaw")
_NUMERIC = (
    "episode", "steps", "X", "Y", "yaw", "steer", "throttle", "reward", "progress", "track_len", "tstamp",
)  # fmt: skip
_LOG_PREFIX = "SIM_TRACE_LOG:"


@dataclass(frozen=True)
class SimTrace:
    """The rows of a simtrace file as arrays (n,); NaN (or "" for `status`) where a column is absent.

    x_m, y_m: DeepRacer's X, Y — the point 0.14 m ahead of the chassis centre. yaw_deg, steer_deg: degrees.
    throttle_mps: the commanded speed. tstamp_s: simulation time. line: each row's line in the file.
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
    status: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.x_m)


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
        status=tuple(row["episode_status"] for row in rows),
    )
