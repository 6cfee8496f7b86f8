"""`pitlane bench ...`: benchmarks measured on this machine (speed targets are checked here, not in tests)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    help="Benchmarks: simulator steps per second (more arrive with later issues).", no_args_is_help=True
)


@app.command("sim")
def sim_bench(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (progress goes to stderr).")
    ] = False,
    n_envs: Annotated[
        list[int] | None,
        typer.Option("--n-envs", "-n", help="Batch sizes to measure (repeatable; default 1, 64 and 1024)."),
    ] = None,
    reward: Annotated[
        list[str] | None,
        typer.Option(
            "--reward",
            help="'batched' (built-in centerline) and/or 'python' (a DeepRacer file); default both.",
        ),
    ] = None,
    seconds: Annotated[float, typer.Option("--seconds", min=0.1, help="Wall time per measurement, s.")] = 2.0,
) -> None:
    """Simulator throughput: car-steps per second for each batch size, with a batched and a Python reward."""
    from sim import bench

    n_envs = n_envs or list(bench.DEFAULT_N_ENVS)
    reward = reward or list(bench.REWARDS)
    bad = sorted(set(reward) - set(bench.REWARDS))
    if bad:
        raise typer.BadParameter(
            f"unknown reward kind(s) {bad}; expected {sorted(bench.REWARDS)}", param_hint="--reward"
        )
    rows = []
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as progress:
        for kind in reward:
            for n in n_envs:
                task = progress.add_task(f"state obs, {kind} reward, {n} cars", total=1.0)
                rows.append(
                    bench.measure(
                        n, kind, seconds=seconds, on_step=lambda f, t=task: progress.update(t, completed=f)
                    )
                )
    if as_json:
        typer.echo(json.dumps({"results": [bench.row_dict(r) for r in rows], "machine": bench.machine()}))
        return
    table = Table(title="pitlane bench sim (one process)")
    for col in ("observation", "reward", "cars", "steps/s", "track"):
        table.add_column(col, justify="right" if col in ("cars", "steps/s") else "left")
    for r in rows:
        table.add_row(r.observation, r.reward, str(r.n_envs), f"{r.steps_per_s:,.0f}", r.track)
    Console().print(table)
