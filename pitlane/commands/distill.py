"""`pitlane distill TEACHER --out runs/NAME`: a camera policy taught by a trained state policy (DAgger)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pitlane.commands.common import SingleCommandGroup, fail, require

app = typer.Typer(
    help="Distil a trained policy into one that sees the camera (or lidar): DAgger, minutes on a laptop CPU.",
    invoke_without_command=True,
    cls=SingleCommandGroup,
)


@app.callback()
def distill_command(
    teacher: Annotated[
        Path | None,
        typer.Argument(
            help="The teacher: a trained run directory (its best.zip) or a .zip model in one.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-O", help="Run directory to create for the student (absent or empty)."),
    ] = None,
    observation: Annotated[
        str, typer.Option("--observation", "-o", help="What the student sees: camera, lidar, ...")
    ] = "camera",
    network: Annotated[
        str | None,
        typer.Option("--network", help="cnn_shallow (default for a camera), cnn, cnn_deep or mlp."),
    ] = None,
    rounds: Annotated[
        int | None, typer.Option("--rounds", min=1, help="DAgger rounds.", show_default="4")
    ] = None,
    frames_per_round: Annotated[
        int | None,
        typer.Option(
            "--frames-per-round", min=100, help="Car-steps of driving per round.", show_default="4000"
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", min=1, help="Passes over a round's worth of frames.", show_default="2"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rounds as one JSON object.")] = False,
) -> None:
    """Train a student policy on TEACHER's actions: the teacher drives first, then the student drives while
    the teacher labels the frames it meets (DAgger). Writes a run directory that `pitlane evaluate`,
    `pitlane export` and `pitlane train --init-from` take; distill.csv has one row per round."""
    if teacher is None:
        fail("give the teacher run, e.g. `pitlane distill runs/state --out runs/camera`")
    if out is None:
        fail("--out is required: the run directory to create for the student, e.g. --out runs/camera")
    require("train", "torch", "stable_baselines3")
    from sim.errors import SimError
    from trainer.config import DistillSettings
    from trainer.distill import RichDistillProgress, distill
    from trainer.errors import TrainerError

    given = {"rounds": rounds, "frames_per_round": frames_per_round, "epochs": epochs}
    settings = DistillSettings(**{k: v for k, v in given.items() if v is not None})
    try:
        result = distill(teacher, out, observation=observation, network=network, settings=settings,
                         progress=None if as_json else RichDistillProgress(settings.rounds))  # fmt: skip
    except (TrainerError, SimError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"out_dir": str(result.out_dir), "best_round": result.best_round,
                               "best_eval_lap_s": result.best_eval_lap_s,
                               "rounds": [asdict(r) for r in result.rounds]}))  # fmt: skip
        return
    _print_summary(result)


def _print_summary(result: Any) -> None:
    table = Table(title="DAgger rounds (evaluation: the race rules, no resets)")
    for column in ("round", "frames", "teacher share", "loss (nats)", "clean laps", "mean lap s", "wall s"):
        table.add_column(column, justify="right")
    for r in result.rounds:
        lap = f"{r.eval_mean_lap_s:.2f}" if r.eval_mean_lap_s is not None else "-"
        table.add_row(str(r.round + 1), f"{r.frames:,}", f"{r.teacher_share:.0%}", f"{r.loss:.3f}",
                      str(r.eval_clean_laps), lap, f"{r.wall_s:.0f}")  # fmt: skip
    console = Console()
    console.print(table)
    best = f"{result.best_eval_lap_s:.2f} s" if result.best_eval_lap_s is not None else "no clean lap"
    round_text = result.best_round + 1 if result.best_round is not None else "-"
    console.print(f"[green]done[/green] best.zip is round {round_text} (best lap {best}); run in "
                  f"{result.out_dir}; next: pitlane export {result.out_dir} --out models/NAME --int8")  # fmt: skip
