"""`pitlane submissions --server URL`: your submissions to a league's virtual races, with their evaluations'
status, laps and, for a failed one, why (the same list as `pitlane submit --list URL`)."""

from __future__ import annotations

from typing import Annotated

import typer

from pitlane.commands.common import SingleCommandGroup, fail, require
from pitlane.commands.submit import TokenOption, print_submissions

app = typer.Typer(
    help="Your submissions to virtual races: queued, running, finished (laps) or failed (why).",
    invoke_without_command=True,
    cls=SingleCommandGroup,
)


@app.callback()
def submissions_command(
    token: TokenOption,
    server: Annotated[str, typer.Option("--server", help="The league server, http://HOST:8000.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """List your submissions, newest first."""
    require("server", "httpx")
    from league_server.client import SubmitError, my_submissions

    try:
        subs = my_submissions(server, token)
    except SubmitError as exc:
        fail(str(exc))
    print_submissions(subs, as_json)
