"""Pictures of tracks: the road, its borders, centre line, start line, driving direction and waypoint indices,
optionally a race line coloured by speed, drawn into a PNG file with matplotlib (axes in metres)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.path import Path as MplPath

from sim.tracks.track import Track

_ROAD = "#5a5a5a"
_BORDER = "#ffffff"
_CENTRE = "#f5c400"
_START = "#e0262b"
_ARROW = "#1f77b4"


def _oriented(ring: np.ndarray, ccw: bool) -> np.ndarray:
    """A closed ring (k+1, 2) turned to run counter-clockwise (`ccw`) or clockwise."""
    x, y = ring[:, 0], ring[:, 1]
    area2 = float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
    return ring if (area2 > 0) == ccw else ring[::-1]


def _draw_road(ax: Axes, track: Track) -> None:
    """Road surface (outer border with the inner border as a hole), borders and dashed centre line."""
    rings = [_oriented(track.outer, ccw=True), _oriented(track.inner, ccw=False)]
    codes = []
    for ring in rings:
        codes += [MplPath.MOVETO] + [MplPath.LINETO] * (len(ring) - 2) + [MplPath.CLOSEPOLY]
    road = MplPath(np.vstack(rings), codes)
    ax.add_patch(PathPatch(road, facecolor=_ROAD, edgecolor="none", zorder=1))
    for ring in (track.inner, track.outer):
        ax.plot(ring[:, 0], ring[:, 1], color=_BORDER, lw=1.5, zorder=2)
    wp = track.waypoints
    ax.plot(wp[:, 0], wp[:, 1], color=_CENTRE, lw=1.0, ls=(0, (4, 3)), zorder=3, label="centre line")


def _draw_start_and_direction(ax: Axes, track: Track) -> None:
    """Start line across the road at waypoint 0 and an arrow along the centre line in the driving direction."""
    ax.plot(
        *zip(track.inner[0], track.outer[0], strict=True), color=_START, lw=3, zorder=4, label="start line"
    )
    step = max(0.3, 0.04 * track.length_m)
    tail = track.pose_at(0.25 * step)[:2]
    head = track.pose_at(1.25 * step)[:2]
    arrow = {"arrowstyle": "-|>", "color": _ARROW, "lw": 2.0, "mutation_scale": 18}
    ax.annotate("", xy=head, xytext=tail, arrowprops=arrow, zorder=5)
    ax.plot([], [], color=_ARROW, lw=2, marker=">", label="direction")


def _draw_waypoint_indices(ax: Axes, track: Track, every: int = 10) -> None:
    """Dots on the centre line at every `every`-th waypoint, labelled outside the outer border."""
    idx = np.arange(0, track.n_waypoints - 1, every)
    out = track.outer[idx] - track.waypoints[idx]
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    labels = track.outer[idx] + 0.22 * out
    ax.scatter(track.waypoints[idx, 0], track.waypoints[idx, 1], s=8, color="black", zorder=4)
    for i, (lx, ly) in zip(idx, labels, strict=True):
        ax.text(lx, ly, str(i), fontsize=7, ha="center", va="center", color="#222222", zorder=5)


def _draw_speed_line(fig: Figure, ax: Axes, line: np.ndarray, speed_mps: np.ndarray) -> None:
    """A line (K, 2) whose segments are coloured by the mean speed of their ends, with a m/s colour bar."""
    segments = np.stack([line[:-1], line[1:]], axis=1)
    colours = LineCollection(segments, cmap="plasma", linewidths=2.2, zorder=4)
    colours.set_array(0.5 * (speed_mps[:-1] + speed_mps[1:]))
    ax.add_collection(colours)
    ax.plot([], [], color=colours.cmap(0.6), lw=2.2, label="race line (colour: speed)")  # legend entry only
    fig.colorbar(colours, ax=ax, label="race-line speed (m/s)", shrink=0.8)


def plot_track(
    track: Track,
    path: Path,
    *,
    raceline: np.ndarray | None = None,
    raceline_speed_mps: np.ndarray | None = None,
    dpi: int = 150,
) -> Path:
    """Draw `track` into the PNG file `path` (axes in metres); `raceline` (K, 2), metres, is drawn on top,
    coloured by `raceline_speed_mps` (K,) with a colour bar in m/s when given.

    Uses matplotlib's Agg canvas directly (no pyplot, no window)."""
    corners = np.vstack([track.inner, track.outer])
    span = np.ptp(corners, axis=0) + 0.9
    width_in = 9.0
    height_in = float(np.clip(width_in * span[1] / span[0], 3.5, 12.0)) + 1.2
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_facecolor("#dde8d5")
    _draw_road(ax, track)
    _draw_start_and_direction(ax, track)
    _draw_waypoint_indices(ax, track)
    if raceline is not None and raceline_speed_mps is not None:
        _draw_speed_line(fig, ax, raceline, raceline_speed_mps)
    elif raceline is not None:
        ax.plot(raceline[:, 0], raceline[:, 1], color="#d62ad0", lw=1.3, zorder=4, label="race line")
    lo, hi = np.min(corners, axis=0) - 0.45, np.max(corners, axis=0) + 0.45  # room for the index labels
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.grid(True, color="white", lw=0.5, alpha=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    direction = ", reversed" if track.is_reversed else ""
    ax.set_title(
        f"{track.name}{direction}: {track.length_m:.2f} m long, {track.mean_width_m:.2f} m wide, "
        f"{track.n_waypoints} waypoints"
    )
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    fig.savefig(path, dpi=dpi)
    return path
