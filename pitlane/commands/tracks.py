"""`pitlane tracks`: list, inspect and import race tracks.

numpy, matplotlib and the simulator are imported inside the commands so that `pitlane --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pitlane.commands.common import fail

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sim.tracks import Track

app = typer.Typer(
    help="List, inspect and import race tracks (built-in, DeepRacer route files, your own .npy files).",
    no_args_is_help=True,
)


# --------------------------------------------------------------------------- list


@app.command("list")
def list_command() -> None:
    """List every available track: name, kind, centre-line length and mean width in metres, waypoints."""
    from rich.table import Table

    from sim.tracks import list_tracks

    table = Table(title="Tracks")
    table.add_column("name", style="bold")
    table.add_column("kind")
    table.add_column("length (m)", justify="right")
    table.add_column("width (m)", justify="right")
    table.add_column("waypoints", justify="right")
    for info in list_tracks():
        table.add_row(
            info.name, info.kind, f"{info.length_m:.2f}", f"{info.mean_width_m:.3f}", str(info.n_waypoints)
        )
    Console().print(table)


# --------------------------------------------------------------------------- show


def track_facts(track: Track, kind: str) -> dict[str, Any]:
    """Facts about a track for `show`, units in the key names (m, deg)."""
    import numpy as np

    x, y, yaw = track.pose_at(0.0)
    span = np.vstack([track.inner, track.outer])
    max_curvature = float(np.abs(track.curvature_per_m).max())
    return {
        "name": track.name,
        "kind": kind,
        "source": track.source,
        "reversed": track.is_reversed,
        "direction": "counter-clockwise" if track.is_ccw else "clockwise",
        "length_m": round(track.length_m, 4),
        "n_waypoints": track.n_waypoints,
        "mean_width_m": round(track.mean_width_m, 4),
        "min_width_m": round(track.min_width_m, 4),
        "max_width_m": round(float(track.waypoint_widths_m.max()), 4),
        "min_turn_radius_m": round(1.0 / max_curvature, 3) if max_curvature > 0 else None,
        "size_m": [round(float(v), 3) for v in np.ptp(span, axis=0)],
        "start": {"x_m": round(x, 4), "y_m": round(y, 4), "heading_deg": round(float(np.degrees(yaw)), 2)},
    }


def _print_facts(facts: dict[str, Any], png: Path | None) -> None:
    console = Console()
    start = facts["start"]
    radius = facts["min_turn_radius_m"]
    rows = [
        ("kind", facts["kind"]),
        ("source", facts["source"]),
        ("direction", facts["direction"] + (" (reversed)" if facts["reversed"] else "")),
        ("length", f"{facts['length_m']:.2f} m (centre line)"),
        ("waypoints", f"{facts['n_waypoints']} (closing point included)"),
        (
            "width",
            f"{facts['mean_width_m']:.3f} m mean, {facts['min_width_m']:.3f}-{facts['max_width_m']:.3f} m",
        ),
        ("tightest turn", "none" if radius is None else f"{radius:.2f} m radius (centre line)"),
        ("size", f"{facts['size_m'][0]:.2f} m x {facts['size_m'][1]:.2f} m"),
        ("start", f"x {start['x_m']:.2f} m, y {start['y_m']:.2f} m, heading {start['heading_deg']:.1f} deg"),
    ]
    if "raceline" in facts:
        line = facts["raceline"]
        rows.append(("race line", f"{line['length_m']:.2f} m (minimum curvature, {line['car']})"))
        rows.append(("limit lap", f"{line['limit_lap_s']:.2f} s (race line)"))
        rows.append(("centre lap", f"{line['centre_line_lap_s']:.2f} s (centre line, same limits)"))
    if png is not None:
        rows.append(("picture", str(png)))
    console.print(f"[bold]{escape(facts['name'])}[/bold]")
    for key, value in rows:
        console.print(f"  {key:<14} {escape(str(value))}", soft_wrap=True)


def _track_kind(spec: str) -> str:
    from sim.tracks import list_tracks

    kinds = {info.name: info.kind for info in list_tracks()}
    return kinds.get(spec, "file")


@app.command("show")
def show_command(
    name: Annotated[
        str, typer.Argument(help="Track name (see `pitlane tracks list`) or path to a .npy file.")
    ],
    png: Annotated[
        Path | None, typer.Option("--png", help="Draw the track into this PNG file.", dir_okay=False)
    ] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="Show the track driven the other way.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the facts as one JSON object.")] = False,
    raceline: Annotated[
        bool,
        typer.Option(
            "--raceline",
            help="Add the car's physical limit: the minimum-curvature racing line, its limit lap time and the "
            "centre line's (drawn coloured by speed with --png).",
        ),
    ] = False,
    car: Annotated[
        str, typer.Option("--car", help="Car model for --raceline (name or .toml path).")
    ] = "deepracer",
) -> None:
    """Show a track's facts (length, width, turns, start) and optionally draw it to a PNG."""
    from sim.car import CarConfigError
    from sim.errors import TrackError
    from sim.tracks import load_track

    line = None
    try:
        track = load_track(name, reverse=reverse)
        if raceline:
            from sim.raceline import centre_line_lap_time, race_line

            line = race_line(track, car)
            centre_lap_s = centre_line_lap_time(track, car)
        if png is not None:
            plot_track(
                track,
                png,
                raceline=None if line is None else line.points,
                raceline_speed_mps=None if line is None else line.speed_mps,
            )
    except (TrackError, CarConfigError) as exc:
        fail(exc)
    except OSError as exc:
        fail(OSError(f"{png}: cannot write the picture ({exc.strerror or exc})"))
    facts = track_facts(track, _track_kind(name))
    if line is not None:
        facts["raceline"] = {
            "car": car,
            "length_m": round(line.length_m, 3),
            "limit_lap_s": round(line.lap_time_s, 3),
            "centre_line_lap_s": round(centre_lap_s, 3),
        }
    if as_json:
        if png is not None:
            facts["png"] = str(png)
        typer.echo(json.dumps(facts))
    else:
        _print_facts(facts, png)


# --------------------------------------------------------------------------- drawing

_ROAD = "#5a5a5a"
_BORDER = "#ffffff"
_CENTRE = "#f5c400"
_START = "#e0262b"
_ARROW = "#1f77b4"


def _oriented(ring: np.ndarray, ccw: bool) -> np.ndarray:
    """A closed ring (k+1, 2) turned to run counter-clockwise (`ccw`) or clockwise."""
    import numpy as np

    x, y = ring[:, 0], ring[:, 1]
    area2 = float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
    return ring if (area2 > 0) == ccw else ring[::-1]


def _draw_road(ax: Axes, track: Track) -> None:
    """Road surface (outer border with the inner border as a hole), borders and dashed centre line."""
    import numpy as np
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

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
    import numpy as np

    idx = np.arange(0, track.n_waypoints - 1, every)
    out = track.outer[idx] - track.waypoints[idx]
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    labels = track.outer[idx] + 0.22 * out
    ax.scatter(track.waypoints[idx, 0], track.waypoints[idx, 1], s=8, color="black", zorder=4)
    for i, (lx, ly) in zip(idx, labels, strict=True):
        ax.text(lx, ly, str(i), fontsize=7, ha="center", va="center", color="#222222", zorder=5)


def _draw_speed_line(fig: Figure, ax: Axes, line: np.ndarray, speed_mps: np.ndarray) -> None:
    """A line (K, 2) whose segments are coloured by the mean speed of their ends, with a m/s colour bar."""
    import numpy as np
    from matplotlib.collections import LineCollection

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
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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


# --------------------------------------------------------------------------- import


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A DeepRacer route file (.npy, N x 6, metres).")],
    name: Annotated[str, typer.Option("--name", help="Name to load it by (letters, digits, _ . -).")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an imported track of that name.")
    ] = False,
) -> None:
    """Check a .npy route file and add it to your tracks (a copy in the user track folder)."""
    from sim.errors import TrackError
    from sim.tracks import import_track, load_track

    try:
        stored = import_track(file, name, overwrite=overwrite)
        track = load_track(name)
    except TrackError as exc:
        fail(exc)
    Console().print(
        f"imported [bold]{escape(name)}[/bold]: {track.length_m:.2f} m, {track.mean_width_m:.3f} m wide, "
        f"{track.n_waypoints} waypoints -> {escape(str(stored))}",
        soft_wrap=True,
    )


# --------------------------------------------------------------------------- geometry cache


@app.command("cache")
def cache_command(
    clear: Annotated[bool, typer.Option("--clear", help="Delete every cached track geometry file.")] = False,
) -> None:
    """Where built track geometry (rasters, tables) is cached, how much it holds; --clear empties it (always
    safe: it is rebuilt on first use, ~0.1-4 s per track)."""
    from sim.tracks import cache

    folder = cache.cache_dir()
    if clear:
        removed = cache.clear()
        Console().print(
            f"removed {removed} cached track geometry files from {escape(str(folder))}", soft_wrap=True
        )
        return
    files, size_bytes = cache.usage()
    Console().print(
        f"track geometry cache: {escape(str(folder))}\n  {files} files, {size_bytes / 1e6:.1f} MB "
        f"(set {cache.CACHE_DIR_ENV} to move it; `pitlane tracks cache --clear` empties it)",
        soft_wrap=True,
    )
