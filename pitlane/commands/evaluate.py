"""`pitlane evaluate RUN_OR_MODEL --track T --laps 3`: time-trial evaluation of a trained policy, and with
`--randomization P --seeds N --track T ...` its evaluation under shift (`trainer.shift_eval`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pitlane.commands.common import SingleCommandGroup, fail, require

app = typer.Typer(
    help="Evaluate a trained policy: laps back to back with DeepRacer's time-trial rules.",
    invoke_without_command=True,
    cls=SingleCommandGroup,
)


@app.callback()
def evaluate_command(
    run_or_model: Annotated[
        Path | None,
        typer.Argument(
            help="A run directory (its best.zip, else final.zip), a stable-baselines3 .zip inside one, or an "
            "exported .onnx model (its model.json beside it).",
            show_default=False,
        ),
    ] = None,
    track: Annotated[
        list[str] | None,
        typer.Option(
            "--track",
            "-t",
            help="Track name or route .npy; repeat for several (default: the run's).",
            show_default=False,
        ),
    ] = None,
    laps: Annotated[int, typer.Option("--laps", min=1, help="Laps to drive back to back.")] = 3,
    offtrack_penalty_s: Annotated[
        float, typer.Option("--offtrack-penalty-s", min=0.0, help="Seconds added to a lap per off-track.")
    ] = 2.0,
    car: Annotated[str | None, typer.Option("--car", help="Car model (default: the run's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    png: Annotated[
        Path | None, typer.Option("--png", help="Write the plot here (default: <run>/evaluation.png).")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed of sensor noise and perturbations, the first of --seeds (default: the run's).",
        ),
    ] = None,
    randomization: Annotated[
        str,
        typer.Option(
            "--randomization",
            help="Perturbation drawn per seed: none | light | strong | eval-shift (held out).",
        ),
    ] = "none",
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds", min=1, help="Evaluations per track, each with its own seed and perturbation."
        ),
    ] = 1,
) -> None:
    """Drive the run's deterministic policy for --laps laps from the start line; an off-track puts the car back
    on the track and adds the penalty. Reports lap times, off-tracks, resets and the physical limit; under
    --randomization or with several --seeds or tracks, completion per track with a 95 % interval."""
    if run_or_model is None:
        fail("give a run directory, a .zip or an .onnx model, e.g. `pitlane evaluate runs/NAME`")
    if run_or_model.suffix.lower() == ".onnx":
        require("device", "onnxruntime")  # an exported model needs ONNX Runtime, not torch
        require("sim", "gymnasium")
    else:
        require("train", "torch", "stable_baselines3")
    from sim.errors import SimError
    from trainer.errors import TrainerError
    from trainer.evaluate import evaluate_policy, evaluation_dir, load_policy, resolve_model

    _check_inputs(randomization, seeds, track or [])
    if randomization != "none" or seeds > 1 or len(track or []) > 1:
        _shift(run_or_model, randomization, seeds, track, laps, offtrack_penalty_s, car, seed, png, as_json)
        return
    try:
        _, run_dir = resolve_model(run_or_model)
        trace_dir = evaluation_dir(run_dir)  # as DeepRacer-for-Cloud: deepracer-utils finds it there
        policy, config = load_policy(run_or_model, car=car)
        result = evaluate_policy(
            policy,
            config,
            track=track[0] if track else None,
            car=car,
            laps=laps,
            offtrack_penalty_s=offtrack_penalty_s,
            seed=seed,
            out_dir=trace_dir,
        )
    except (TrainerError, SimError) as exc:
        fail(str(exc))
    png_path = result.plot(png if png is not None else run_dir / "evaluation.png")
    summary = {**result.to_dict(), "simtrace": str(trace_dir / "evaluation-simtrace" / "0-iteration.csv")}
    if as_json:
        typer.echo(json.dumps({**summary, "png": str(png_path)}))
        return
    _print_table(summary, result.track, png_path)


def _check_inputs(randomization: str, seeds: int, tracks: list[str]) -> None:
    """Fail naming the option whose value cannot be evaluated."""
    from trainer.errors import TrainerError
    from trainer.shift_eval import check_options, check_tracks

    try:
        check_options(randomization, seeds)
    except TrainerError as exc:
        fail(f"--{exc}")
    try:
        check_tracks(tracks)
    except TrainerError as exc:
        fail(f"--track: {exc}")


def _shift(
    run_or_model: Path,
    randomization: str,
    seeds: int,
    tracks: list[str] | None,
    laps: int,
    offtrack_penalty_s: float,
    car: str | None,
    seed: int | None,
    png: Path | None,
    as_json: bool,
) -> None:
    """The evaluation under shift: one library call, then the JSON or the tables and the PNG."""
    from sim.errors import SimError
    from trainer.errors import TrainerError
    from trainer.evaluate import resolve_model
    from trainer.shift_eval import evaluate_under_shift

    try:
        _, run_dir = resolve_model(run_or_model)
        result = evaluate_under_shift(
            run_or_model,
            randomization=randomization,
            seeds=seeds,
            tracks=tracks,
            laps=laps,
            offtrack_penalty_s=offtrack_penalty_s,
            car=car,
            seed=seed,
        )
    except (TrainerError, SimError) as exc:
        fail(str(exc))
    png_path = result.plot(png if png is not None else run_dir / "evaluation-shift.png")
    data = {**result.to_dict(), "png": str(png_path)}
    if as_json:
        typer.echo(json.dumps(data))
        return
    _print_shift(data)


def _print_shift(data: dict[str, Any]) -> None:
    from rich.table import Table

    console = Console()
    runs = Table(
        title=f"evaluation under {data['randomization']}: per seed ({data['laps_per_seed']} lap"
        f"{'' if data['laps_per_seed'] == 1 else 's'} each)"
    )
    for col in (
        "track",
        "seed",
        "clean laps",
        "completed laps",
        "lap times s",
        "off-track",
        "trim deg",
        "latency ms",
        "grip x",
    ):
        runs.add_column(col, justify="right")
    for row in data["runs"]:
        p = row["perturbation"]
        runs.add_row(
            row["track"],
            str(row["seed"]),
            f"{row['clean_laps']}/{row['attempted_laps']}",
            f"{row['completed_laps']}/{row['attempted_laps']}",
            ", ".join(_s(t) for t in row["lap_times_s"]) or "-",
            str(row["offtrack"]),
            _s(p.get("steering_trim_deg")),
            _s(p.get("latency_ms")),
            _s(p.get("grip_scale")),
        )
    console.print(runs)
    tracks = Table(title="per track")
    for col in (
        "track",
        "clean laps",
        "completion %",
        "95 % CI %",
        "with resets %",
        "best lap s",
        "best / limit",
        "mean lap s",
        "off-track",
    ):
        tracks.add_column(col, justify="right")
    for t in data["tracks"]:
        tracks.add_row(
            t["track"],
            f"{t['clean_laps']}/{t['attempted_laps']}",
            f"{100 * t['completion']:.0f}",
            f"{100 * t['ci_low']:.0f}-{100 * t['ci_high']:.0f}",
            f"{100 * t['completion_with_resets']:.0f}",
            _s(t["best_lap_s"]),
            _s(t["best_over_limit"]),
            _s(t["mean_lap_s"]),
            str(t["offtrack"]),
        )
    console.print(tracks)
    low, high = data["completion_ci95"]
    console.print(
        f"completion {100 * data['completion']:.0f} % ({data['clean_laps']}/{data['attempted_laps']} laps "
        f"without leaving the track, 95 % CI {100 * low:.0f}-{100 * high:.0f} %; "
        f"{100 * data['completion_with_resets']:.0f} % finished with DeepRacer's resets) over "
        f"{len(data['tracks'])} track(s) x {len(data['seeds'])} seed(s)",
        highlight=False,
    )
    console.print(f"plot: {data['png']}", highlight=False)


def _s(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.2f}"


def _print_table(summary: dict[str, Any], track: str, png_path: Path) -> None:
    from rich.table import Table

    table = Table(title=f"evaluation on {track}")
    for col in ("lap", "lap time s", "raw s", "off-track", "resets", "completed"):
        table.add_column(col, justify="right")
    for i, lap in enumerate(summary["laps"], 1):
        table.add_row(
            str(i),
            _s(lap["lap_time_s"]),
            _s(lap.get("raw_time_s")),
            str(lap["offtrack"]),
            str(lap["resets"]),
            "yes" if lap.get("completed") else f"no ({lap.get('progress', 0):.0f} %)",
        )
    console = Console()
    console.print(table)
    ratio = summary.get("best_over_limit")
    console.print(
        f"completed laps {summary['completed_laps']} · best {_s(summary['best_lap_s'])} s · "
        f"mean {_s(summary['mean_lap_s'])} s · completion {100 * summary['completion_rate']:.0f} % · "
        f"limit {_s(summary.get('limit_lap_s'))} s · best/limit {'-' if ratio is None else f'{ratio:.2f}'}x",
        highlight=False,
    )
    console.print(f"plot: {png_path}", highlight=False)
    console.print(f"simtrace (DeepRacer's format): {summary['simtrace']}", highlight=False, soft_wrap=True)
