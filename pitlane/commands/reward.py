"""`pitlane reward ...`: check a DeepRacer reward function file, and see the params it receives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pitlane.commands.common import fail

app = typer.Typer(
    help="DeepRacer reward functions: check a file, print the params of a pose.", no_args_is_help=True
)

_TRACK_HELP = "Track: a built-in or imported name, or a path to a DeepRacer route .npy file."
_CAR_HELP = "Car model: a firmware_configs name or a path to a car .toml file."


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="A .py file defining reward_function(params) -> float.")],
    track: Annotated[str, typer.Option("--track", "-t", help=_TRACK_HELP)] = "reinvent_base",
    car: Annotated[str, typer.Option("--car", help=_CAR_HELP)] = "deepracer",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Run FILE over a few hundred realistic params (scripted cars driving TRACK) and report the rewards."""
    from sim.errors import RewardFunctionError, SimError
    from sim.reward.check import check_reward_file

    try:
        report = check_reward_file(file, track, car)
    except RewardFunctionError as exc:  # the file is at fault: exit 1
        Console(stderr=True).print(f"[red]reward check failed[/red]\n{exc}", highlight=False)
        raise typer.Exit(code=1) from None
    except (SimError, ValueError) as exc:  # a bad --track or --car: a usage error, exit 2
        fail(str(exc))
    summary = report.summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    console = Console()
    console.print(
        f"[green]ok[/green] {summary['file']} on {summary['track']}: {summary['calls']} calls "
        f"({summary['offtrack_calls']} off track), {summary['us_per_call']} µs per call"
    )
    console.print(
        f"reward min {summary['reward_min']:.4g}, mean {summary['reward_mean']:.4g}, max {summary['reward_max']:.4g}, "
        f"{summary['distinct_values']} distinct values"
    )
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")


@app.command("params")
def params(
    x: Annotated[
        float,
        typer.Option(
            "--x", help="params x, m (DeepRacer reports a point 0.14 m ahead of the chassis centre)."
        ),
    ],
    y: Annotated[float, typer.Option("--y", help="params y, m.")],
    track: Annotated[str, typer.Option("--track", "-t", help=_TRACK_HELP)] = "reinvent_base",
    heading: Annotated[
        float, typer.Option("--heading", help="Heading, degrees counter-clockwise from +x.")
    ] = 0.0,
    reverse: Annotated[bool, typer.Option("--reverse", help="Drive the track in reverse.")] = False,
    car: Annotated[str, typer.Option("--car", help=_CAR_HELP)] = "deepracer",
    as_json: Annotated[bool, typer.Option("--json", help="Print the params dict as JSON.")] = False,
) -> None:
    """Print the params dict a reward function receives for a car at that pose: standing still, steering 0,
    steps 2, driving forward from an episode started at the track's first waypoint."""
    from sim.errors import SimError
    from sim.reward.check import params_at_pose

    try:
        values = params_at_pose(track, x, y, heading, car=car, reverse=reverse)
    except (SimError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(values))
        return
    _print_params(values)


def _print_params(values: dict[str, Any]) -> None:
    table = Table(title="DeepRacer reward params")
    table.add_column("key")
    table.add_column("value")
    for key, value in values.items():
        if key == "waypoints":
            shown = f"<list of {len(value)} (x, y) points>"
        elif isinstance(value, float):
            shown = f"{value:.4f}"
        else:
            shown = str(value)
        table.add_row(key, shown)
    Console().print(table)
