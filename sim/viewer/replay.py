"""Replay of a DeepRacer simtrace CSV in the viewer."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.reward.params import MODEL_POINT_AHEAD_M
from sim.simtrace import SimTrace
from sim.viewer.draw import CarPose, CarShape
from sim.viewer.session import BaseSession

if TYPE_CHECKING:
    from sim.tracks.track import Track

log = logging.getLogger(__name__)


def _fmt(value: float, spec: str, unit: str = "") -> str:
    return "-" if math.isnan(value) else f"{value:{spec}}{unit}"


class ReplaySession(BaseSession):
    """Plays a `SimTrace` on `track`, one row per `advance()`. The car is drawn with its chassis centre
    0.14 m behind the row's X, Y (DeepRacer logs that point ahead of the centre); the trail is coloured by
    the commanded speed (throttle)."""

    def __init__(
        self,
        trace: SimTrace,
        track: Track,
        car: CarShape | None = None,
        size: tuple[int, int] = (960, 720),
        mode: str = "rgb_array",
        *,
        fps: float = 15.0,
        trail_s: float = 30.0,
        speed_range_mps: float = 4.0,
    ) -> None:
        super().__init__(
            track,
            car or CarShape(),
            size=size,
            mode=mode,
            fps=fps,
            speed_range_mps=speed_range_mps,
            trail_points=round(trail_s * fps),
            title=f"pitlane replay: {Path(trace.source).name}",
        )
        self.trace = trace
        self.index = -1
        self.laps = 0
        self.best_lap_s: float | None = None
        self._episode_start = 0
        lengths = trace.track_len_m[np.isfinite(trace.track_len_m)]
        if len(lengths) and abs(float(np.median(lengths)) - track.length_m) > 0.05 * track.length_m:
            log.warning(
                "%s: its track_len %.2f m differs from track %s (%.2f m): is this the right --track?",
                trace.source,
                float(np.median(lengths)),
                track.name,
                track.length_m,
            )

    def __len__(self) -> int:
        return len(self.trace)

    def advance(self) -> bool:
        """Move to the next row; False (and no change) after the last one."""
        if self.index + 1 >= len(self.trace):
            return False
        self.index += 1
        i, t = self.index, self.trace
        if i > 0 and (t.episode[i] != t.episode[i - 1] or t.steps[i] < t.steps[i - 1]):
            self.trails[0].break_line()
            self._episode_start = i
        x, y, _ = self._chassis(i)
        self.trails[0].add(x, y, 0.0 if math.isnan(t.throttle_mps[i]) else t.throttle_mps[i])
        if t.status[i] == "lap_complete" and (i == 0 or t.status[i - 1] != "lap_complete"):
            self.laps += 1
            lap = self._episode_time(i)
            if not math.isnan(lap):
                self.best_lap_s = min(self.best_lap_s or math.inf, lap)
        return True

    def _chassis(self, i: int) -> tuple[float, float, float]:
        t = self.trace
        yaw = math.radians(t.yaw_deg[i])
        return (
            t.x_m[i] - MODEL_POINT_AHEAD_M * math.cos(yaw),
            t.y_m[i] - MODEL_POINT_AHEAD_M * math.sin(yaw),
            yaw,
        )

    def _episode_time(self, i: int) -> float:
        t = self.trace
        if not math.isnan(t.tstamp_s[i]) and not math.isnan(t.tstamp_s[self._episode_start]):
            return float(t.tstamp_s[i] - t.tstamp_s[self._episode_start])
        return (i - self._episode_start) / self.fps

    def cars(self) -> list[CarPose]:
        if self.index < 0:
            return []
        x, y, yaw = self._chassis(self.index)
        steer = self.trace.steer_deg[self.index]
        return [CarPose(x, y, yaw, 0.0 if math.isnan(steer) else math.radians(steer))]

    def hud(self) -> list[tuple[str, str]]:
        i, t = max(self.index, 0), self.trace
        return [
            ("episode / step", f"{_fmt(t.episode[i], '.0f')} / {_fmt(t.steps[i], '.0f')}"),
            ("time", f"{self._episode_time(i):.2f} s"),
            ("speed (throttle)", _fmt(t.throttle_mps[i], ".2f", " m/s")),
            ("progress", _fmt(t.progress[i], ".1f", " %")),
            ("reward", _fmt(t.reward[i], ".3f")),
            ("status", t.status[i] or "-"),
            ("best lap", "-" if self.best_lap_s is None else f"{self.best_lap_s:.2f} s"),
        ]
