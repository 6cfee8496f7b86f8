"""An evaluation's drive as the league's pages show it: a `contracts.virtual_race.Replay` to animate in a
browser, and one PNG of the path on the track.

    result = evaluate(policy, track="reinvent_base", rules=RaceRules(laps=3))
    replay = replay_of(result, max_speed_mps=4.0)           # -> replay.json
    drive_png(result, Path("out/evaluation.png"), 4.0)       # the path coloured by speed

Both a virtual race's evaluation (`virtual_circuit.evaluate`) and a console training job (`trainer.job`) write
these, so the replay and ghost-race pages read one format.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from contracts.virtual_race import Replay

if TYPE_CHECKING:
    from sim.evaluation import EvaluationResult

#: track border points kept in a replay (a browser draws them every frame)
BORDER_POINTS = 300


def replay_of(result: EvaluationResult, max_speed_mps: float) -> Replay:
    """The drive as the replay pages animate it, one frame per control step; coordinates rounded to
    millimetres (enough on a screen); `max_speed_mps` tops the speed colour scale (the car's top speed)."""
    tr = result.trajectory

    def border(points: np.ndarray) -> tuple[tuple[float, float], ...]:
        step = max(1, len(points) // BORDER_POINTS)
        return tuple((round(float(x), 3), round(float(y), 3)) for x, y in points[::step])

    rounded = {key: tuple(round(float(v), 3) for v in tr[key]) for key in ("x", "y", "speed")}
    dt_s = float(tr["time"][0]) if len(tr["time"]) else 1.0 / 15.0
    return Replay(
        track=result.track, inner=border(result.track_xy["inner"]), outer=border(result.track_xy["outer"]),
        dt_s=dt_s, x_m=rounded["x"], y_m=rounded["y"], speed_mps=rounded["speed"],
        lap=tuple(int(v) for v in tr["lap"]), off_track=tuple(int(i) for i in np.flatnonzero(tr["status"] == "off_track")),
        laps_s=tuple(lap.lap_time_s if lap.completed else None for lap in result.laps), max_speed_mps=max_speed_mps,
    )  # fmt: skip


def drive_png(result: EvaluationResult, path: Path, max_speed_mps: float) -> Path:
    """The drive on the track as a PNG, coloured by speed up to `max_speed_mps` (m/s), titled with the track,
    the completed laps and the best lap (Pillow: `sim.viewer.trajectory`)."""
    from sim.viewer.trajectory import write_trajectory_png

    laps = result.summary["completed_laps"]
    best = result.summary["best_lap_s"]
    title = f"{result.track}: {laps} lap(s), best {'-' if best is None else f'{best:.2f} s'}"
    return write_trajectory_png(
        path, result.track_xy, result.trajectory, title=title, max_speed_mps=max_speed_mps
    )
