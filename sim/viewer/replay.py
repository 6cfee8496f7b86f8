"""Replay of a DeepRacer simtrace CSV in the viewer."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import SimTraceError
from sim.measure import MODEL_POINT_AHEAD_M
from sim.simtrace import SimTrace, TraceEpisode
from sim.viewer.draw import CarPose, CarShape
from sim.viewer.session import BaseSession

if TYPE_CHECKING:
    from sim.tracks.track import Track

log = logging.getLogger(__name__)


def _fmt(value: float, spec: str, unit: str = "") -> str:
    return "-" if math.isnan(value) else f"{value:{spec}}{unit}"


class ReplaySession(BaseSession):
    """Plays a `SimTrace` on `track`, one row per `advance()`, episode by episode (`SimTrace.episodes()`):
    each episode starts a fresh trail, and only a whole episode that ends `lap_complete` counts as a lap (a
    file that begins inside an episode shows that part marked "partial", never as a lap). The car is drawn
    with its chassis centre 0.14 m behind the row's X, Y (DeepRacer logs that point ahead of the centre); the
    trail is coloured by the commanded speed (throttle). `episode`: play only the episode with that number."""

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
        episode: int | None = None,
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
        episodes = trace.episodes()
        if episode is not None:
            chosen = [e for e in episodes if e.number == episode]
            if not chosen:
                numbers = sorted({e.number for e in episodes if e.number is not None})
                shown = f"{numbers[0]}-{numbers[-1]}" if numbers else "none (no episode column)"
                raise SimTraceError(f"{trace.source}: no episode {episode} (episodes in the file: {shown})")
            episodes = chosen
        self.episodes: list[TraceEpisode] = episodes
        self._rows = np.concatenate([np.arange(e.start, e.stop) for e in episodes])
        self._episode_of_row = np.concatenate([np.full(len(e), k) for k, e in enumerate(episodes)])
        self.position = -1  # rows played so far - 1
        self.index = -1  # the current row of the trace
        self.laps = 0
        self.best_lap_s: float | None = None
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
        """Rows this session plays."""
        return len(self._rows)

    @property
    def current(self) -> TraceEpisode | None:
        """The episode of the current row (None before the first `advance()`)."""
        return None if self.position < 0 else self.episodes[int(self._episode_of_row[self.position])]

    def advance(self) -> bool:
        """Move to the next row; False (and no change) after the last one."""
        if self.position + 1 >= len(self._rows):
            return False
        self.position += 1
        i, t = int(self._rows[self.position]), self.trace
        self.index = i
        episode = self.episodes[int(self._episode_of_row[self.position])]
        if i == episode.start:  # a new episode: its own trail
            self.trails[0].clear()
        x, y, _ = self._chassis(i)
        self.trails[0].add(x, y, 0.0 if math.isnan(t.throttle_mps[i]) else t.throttle_mps[i])
        if i == episode.stop - 1 and episode.lap_time_s is not None:
            self.laps += 1
            self.best_lap_s = min(self.best_lap_s or math.inf, episode.lap_time_s)
        return True

    def _chassis(self, i: int) -> tuple[float, float, float]:
        t = self.trace
        yaw = math.radians(t.yaw_deg[i])
        return (
            t.x_m[i] - MODEL_POINT_AHEAD_M * math.cos(yaw),
            t.y_m[i] - MODEL_POINT_AHEAD_M * math.sin(yaw),
            yaw,
        )

    def cars(self) -> list[CarPose]:
        if self.index < 0:
            return []
        x, y, yaw = self._chassis(self.index)
        steer = self.trace.steer_deg[self.index]
        return [CarPose(x, y, yaw, 0.0 if math.isnan(steer) else math.radians(steer))]

    def hud(self) -> list[tuple[str, str]]:
        i, t = max(self.index, 0), self.trace
        episode = self.current or self.episodes[0]
        if i == episode.stop - 1 and episode.lap_time_s is not None:
            time_text = f"{episode.lap_time_s:.2f} s"
        else:
            time_text = f"{self.trace.driven_s(episode, i):.2f} s"
        number = "-" if episode.number is None else str(episode.number)
        return [
            ("episode / step", f"{number} / {_fmt(t.steps[i], '.0f')}"),
            ("time" if episode.whole else "time (partial)", time_text),
            ("speed (throttle)", _fmt(t.throttle_mps[i], ".2f", " m/s")),
            ("progress", _fmt(t.progress[i], ".1f", " %")),
            ("reward", _fmt(t.reward[i], ".3f")),
            ("status", t.status[i] or "-"),
            ("best lap", "-" if self.best_lap_s is None else f"{self.best_lap_s:.2f} s"),
        ]
