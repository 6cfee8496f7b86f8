"""`pitlane submit MODEL --race URL`: send an exported model to a virtual race (the server checks it, queues
it and evaluates it in its simulator); `pitlane submit --list --server URL` shows your submissions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pitlane.commands.common import SingleCommandGroup, fail, require

app = typer.Typer(
    help="Submit an exported model to a virtual race on a league server; list your submissions.",
    invoke_without_command=True,
    cls=SingleCommandGroup,
)

TokenOption = Annotated[
    str,
    typer.Option("--token", envvar="PITLANE_RACER_TOKEN", help="Your racer token (or $PITLANE_RACER_TOKEN)."),
]


@app.callback()
def submit_command(
    token: TokenOption,
    model: Annotated[
        Path | None, typer.Argument(help="An export folder (from `pitlane export`) or its .onnx.")
    ] = None,
    race: Annotated[
        str | None, typer.Option("--race", help="The race page's address, http://HOST:8000/races/ID.")
    ] = None,
    fp32: Annotated[bool, typer.Option("--fp32", help="Submit model.onnx, not model.int8.onnx.")] = False,
    list_server: Annotated[
        str | None, typer.Option("--list", help="List your submissions on this server (http://HOST:8000).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Submit MODEL to --race, or --list your submissions with their status and laps."""
    require("server", "httpx")
    from league_server.client import SubmitError, my_submissions, submit_model

    try:
        if list_server is not None:
            subs = my_submissions(list_server, token)
            print_submissions(subs, as_json)
            return
        if model is None or race is None:
            fail("give the model and the race: pitlane submit models/NAME --race http://HOST:8000/races/ID")
        sub = submit_model(race, token, model, fp32=fp32)
    except SubmitError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(sub))
        return
    Console().print(
        f"submission {sub['id']}: {sub['status']} (sha256 {sub['sha256'][:12]}…, {sub['size_bytes']:,} bytes)"
    )


def print_submissions(subs: list[dict[str, Any]], as_json: bool) -> None:
    """The racer's submissions: a table (status, laps, best lap s, why a failed one failed), or JSON."""
    if as_json:
        typer.echo(json.dumps(subs))
        return
    table = Table(title="your submissions")
    for col in ("id", "race", "status", "laps", "best lap s", "reason"):
        table.add_column(col, justify="left" if col in ("status", "reason") else "right")
    for s in subs:
        best = min((lap["lap_time_s"] for lap in s["laps"] if lap["completed"]), default=None)
        table.add_row(str(s["id"]), str(s["race_id"]), s["status"], str(len(s["laps"])),
                      "-" if best is None else f"{best:.2f}", s["reason"] or "")  # fmt: skip
    Console().print(table)
