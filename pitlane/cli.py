"""`pitlane` — the command line. Sub-commands import their packages lazily so `pitlane --help` stays fast
and a car with only `pitlane[device]` installed can still run the parts it has."""

from __future__ import annotations

import logging

import typer

from pitlane import __version__
from pitlane.commands import (
    bench,
    calibrate,
    demo,
    distill,
    drive,
    evaluate,
    export,
    league,
    reward,
    tracks,
    train,
    view,
)

app = typer.Typer(
    name="pitlane",
    help=(
        "pitlane: learn autonomous racing with model cars.\n\n"
        "Train reinforcement-learning policies in a fast DeepRacer-compatible simulator on a laptop CPU, "
        "export them to ONNX for Raspberry Pi / Jetson cars, and race them in leagues."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(demo.app, name="demo")
app.add_typer(tracks.app, name="tracks")
app.add_typer(reward.app, name="reward")
app.add_typer(bench.app, name="bench")
app.add_typer(view.app, name="view")
app.add_typer(train.app, name="train")
app.add_typer(distill.app, name="distill")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(drive.app, name="drive")
app.add_typer(calibrate.app, name="calibrate")
app.add_typer(export.app, name="export")
app.add_typer(league.app, name="league")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pitlane {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def main() -> None:
    """Entry point of the `pitlane` console script."""
    app()
