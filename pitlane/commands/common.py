"""What every `pitlane` sub-command shares: how errors are shown, and one-command sub-apps."""

from __future__ import annotations

from typing import NoReturn

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

#: Exit status for unusable arguments, files or configs.
EXIT_ERROR = 2


def fail(message: object) -> NoReturn:
    """One red line on stderr (several lines of a message joined with '; '), then exit status 2."""
    text = "; ".join(" ".join(line.split()) for line in str(message).splitlines() if line.strip())
    text = text.replace(":; ", ": ")
    Console(stderr=True).print(f"[bold red]error:[/bold red] [red]{escape(text)}[/red]", soft_wrap=True)
    raise typer.Exit(EXIT_ERROR)


class SingleCommandGroup(TyperGroup):
    """A sub-app that is one command (`typer.Typer(invoke_without_command=True, cls=SingleCommandGroup)` with
    a callback): usage reads `pitlane NAME [OPTIONS] ARGS`, not `... COMMAND [ARGS]`, and options may follow
    the arguments (`pitlane train run.toml --out runs/x`; a click group otherwise stops at the first word)."""

    allow_interspersed_args = True

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return click.Command.collect_usage_pieces(self, ctx)
