"""A drive as one PNG: the track, the path coloured by speed (the viewer's colours), off-track marks, a title.

    write_trajectory_png("out/trajectory.png", result.track_xy, result.trajectory, title="racer07: 3 laps")

Drawn with Pillow, not matplotlib: a virtual race writes one per evaluation, and matplotlib's import and
layout cost about 2 s per process against some 30 ms here, which decided how many evaluations a class round
gets through. `EvaluationResult.plot` stays the analysis figure (with progress and reward curves).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sim.viewer.draw import FLOOR, ROAD, TAPE, WorldToScreen, speed_colours

_SIZE_PX = (800, 560)
_MARGIN_PX = 30
_TITLE_PX = 28
_OFF_TRACK = (220, 30, 30)
_TEXT = (30, 30, 30)
_RESETS = ("off_track", "reversed", "immobilized")


def write_trajectory_png(
    path: str | Path,
    track_xy: dict[str, np.ndarray],
    trajectory: dict[str, np.ndarray],
    *,
    title: str,
    max_speed_mps: float | None = None,
) -> Path:
    """Write the PNG. track_xy: "inner", "outer" borders (n, 2) m; trajectory: "x", "y" (m), "speed" (m/s)
    and "status" (DeepRacer's episode_status per step) arrays; the colour scale tops at `max_speed_mps`
    (default: the fastest step)."""
    from PIL import Image, ImageDraw

    width, height = _SIZE_PX
    image = Image.new("RGB", _SIZE_PX, FLOOR)
    draw = ImageDraw.Draw(image)
    inner, outer = np.asarray(track_xy["inner"]), np.asarray(track_xy["outer"])
    both = np.vstack([inner, outer])
    view = WorldToScreen.fit(
        both.min(axis=0), both.max(axis=0), (0, _TITLE_PX, width, height - _TITLE_PX), _MARGIN_PX
    )
    draw.polygon([tuple(p) for p in view(outer)], fill=ROAD)
    draw.polygon([tuple(p) for p in view(inner)], fill=FLOOR)
    for border in (inner, outer):
        draw.line([tuple(p) for p in view(border)] + [tuple(view(border[0]))], fill=TAPE, width=3)
    _draw_path(draw, view, trajectory, max_speed_mps)
    top = max_speed_mps or float(np.nanmax(trajectory["speed"], initial=0.0))
    draw.text((10, 8), f"{title}   (path colour: speed 0 to {top:.1f} m/s; x: off track)", fill=_TEXT)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _draw_path(
    draw: Any, view: WorldToScreen, trajectory: dict[str, np.ndarray], max_speed_mps: float | None
) -> None:
    xy = view(np.stack([trajectory["x"], trajectory["y"]], axis=-1))
    speed = np.asarray(trajectory["speed"], dtype=np.float64)
    colours = speed_colours(speed, max_speed_mps or float(np.nanmax(speed, initial=1.0)))
    status = np.asarray(trajectory["status"])
    for i in range(1, len(xy)):
        if status[i - 1] in _RESETS:  # the car was put back on the track: no line across the jump
            continue
        draw.line([tuple(xy[i - 1]), tuple(xy[i])], fill=tuple(int(c) for c in colours[i]), width=3)
    for i in np.flatnonzero(status == "off_track"):
        x, y = xy[i]
        draw.line([(x - 6, y - 6), (x + 6, y + 6)], fill=_OFF_TRACK, width=3)
        draw.line([(x - 6, y + 6), (x + 6, y - 6)], fill=_OFF_TRACK, width=3)
