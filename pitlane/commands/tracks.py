"""`pitlane tracks`: list, inspect and import race tracks.

The simulator (numpy, matplotlib) is imported inside the commands so that `pitlane --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pitlane.commands.common import fail

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
    from contracts.errors import CarFileError
    from sim.errors import TrackError
    from sim.tracks.facts import describe_track

    try:
        facts = describe_track(name, reverse=reverse, raceline_car=car if raceline else None, png=png)
    except (TrackError, CarFileError) as exc:
        fail(exc)
    except OSError as exc:
        fail(OSError(f"{png}: cannot write the picture ({exc.strerror or exc})"))
    if as_json:
        if png is not None:
            facts["png"] = str(png)
        typer.echo(json.dumps(facts))
    else:
        _print_facts(facts, png)


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
