"""`pitlane reward ...`: check a DeepRacer reward function file, and see the params it receives."""

from __future__ import annotations

import typer

app = typer.Typer(help="DeepRacer reward functions: check a file, print the params of a pose.", no_args_is_help=True)
