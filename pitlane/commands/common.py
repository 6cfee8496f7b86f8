"""What every `pitlane` sub-command shares: how errors are shown, and one-command sub-apps."""

from __future__ import annotations

from typing import NoReturn

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


def require(extra: str, *modules: str) -> None:
    """Fail with the install line when a command's packages are missing (e.g. the trainer on a car that has
    only `pitlane[device]`), instead of a traceback."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        fail(f"this command needs {', '.join(missing)}: pip install 'pitlane[{extra}]' (or -e '.[{extra}]')")


class SingleCommandGroup(TyperGroup):
    """A sub-app that is one command (`typer.Typer(invoke_without_command=True, cls=SingleCommandGroup)` with
    a callback): usage reads `pitlane NAME [OPTIONS] ARGS`, not `... COMMAND [ARGS]`, and options may follow
    the arguments (`pitlane train run.toml --out runs/x`; a click group otherwise stops at the first word)."""

    allow_interspersed_args = True

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        return _PLAIN_COMMAND.collect_usage_pieces(self, ctx)


# click's plain Command (a group's usage adds "COMMAND [ARGS]..."). Found through the MRO rather than
# `import click`: typer 0.29 vendors click as `typer._click` and no longer installs it.
_PLAIN_COMMAND = next(cls for cls in TyperGroup.__mro__[1:] if cls.__name__ == "Command")


def port_in_use(host: str, port: int) -> bool:
    """True when a TCP port on `host` cannot be bound (a server is listening there)."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False
