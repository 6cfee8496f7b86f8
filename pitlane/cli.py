"""`pitlane` — the command line. Sub-commands import their packages lazily so `pitlane --help` stays fast
and a car with only `pitlane[device]` installed can still run the parts it has.

The sub-command modules themselves are imported only when their command runs: building typer's command tree
for every sub-command costs ~0.1 s, which every command (and `pitlane --help`) would otherwise pay.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from pitlane import __version__

#: Sub-command name -> the one-line help `pitlane --help` lists (each module's `app` has the same help;
#: tests/cli/test_cli_startup.py checks they agree). The module is `pitlane.commands.<name>`.
SUBCOMMANDS: dict[str, str] = {
    "demo": "Train -> export -> league server -> simulated car racing -> live leaderboard, on this machine.",
    "tracks": "List, inspect and import race tracks (built-in, DeepRacer route files, your own .npy files).",
    "reward": "DeepRacer reward functions: check a file, print the params of a pose.",
    "bench": "Benchmarks: simulator, training, inference and league ingest, measured on this machine.",
    "view": "Watch the simulator: a scripted driver, your keyboard, a trained policy, or a replayed simtrace.",
    "train": "Train a policy on the simulator (stable-baselines3): a run config .toml and/or flags.",
    "distill": "Distil a trained policy into one that sees the camera (or lidar): DAgger, minutes on a laptop "
    "CPU.",
    "evaluate": "Evaluate a trained policy: laps back to back with DeepRacer's time-trial rules.",
    "drive": "Drive a real or simulated car from an exported ONNX model; report laps to a league over MQTT.",
    "calibrate": "Calibrate a car: steering and throttle pulse widths (µs) and measured speed per throttle "
    "pulse.",
    "export": "Export a trained run to ONNX for a car: model.onnx (+ model.int8.onnx), model.json, parity.json.",
    "league": "League server: live leaderboards fed by MQTT lap reports (SQLite by default, PostgreSQL at "
    "scale).",
    "submit": "Submit an exported model to a virtual race on a league server; list your submissions.",
    "submissions": "Your submissions to virtual races: queued, running, finished (laps) or failed (why).",
    "recipe": "Recipes (TOML): export a run as one, show one, publish one to a league's gallery.",
}


def load_subcommand(name: str) -> Any:
    """The click command of sub-command `name`, built from `pitlane.commands.<name>.app` exactly as
    `add_typer(app, name=name)` on the root would."""
    module = importlib.import_module(f"pitlane.commands.{name}")
    holder = typer.Typer(rich_markup_mode="rich")
    holder.callback()(lambda: None)  # a callback keeps typer from collapsing the holder into its child
    holder.add_typer(module.app, name=name)
    return typer.main.get_group(holder).commands[name]


class _LazyGroup(TyperGroup):
    """The root group: lists `SUBCOMMANDS` from their help lines and imports a sub-command's module only when
    it is looked up to run (or to show its own help)."""

    _listing = False

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # names only (looked up by get_command below): typer suggests close names from these keys on a typo
        self.commands = dict.fromkeys(SUBCOMMANDS)

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        if cmd_name not in SUBCOMMANDS:
            return None
        if self._listing:  # the root's help only needs the name and the help line
            return TyperCommand(cmd_name, help=SUBCOMMANDS[cmd_name])
        return load_subcommand(cmd_name)

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="pitlane",
    cls=_LazyGroup,
    help=(
        "pitlane: learn autonomous racing with model cars.\n\n"
        "Train reinforcement-learning policies in a fast DeepRacer-compatible simulator on a laptop CPU, "
        "export them to ONNX for Raspberry Pi / Jetson cars, and race them in leagues."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


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
