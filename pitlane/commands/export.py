"""`pitlane export RUN --out DIR [--int8]`: ONNX model(s), the model card and the parity report of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pitlane.commands.common import SingleCommandGroup, fail, require

app = typer.Typer(
    help="Export a trained run to ONNX for a car: model.onnx (+ model.int8.onnx), model.json, parity.json.",
    invoke_without_command=True,
    cls=SingleCommandGroup,
)


@app.callback()
def export_command(
    run: Annotated[
        Path | None,
        typer.Argument(
            help="A run directory (its best.zip, else final.zip) or a .zip model inside one.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-O", help="Directory to write the model files into.")
    ] = None,
    int8: Annotated[
        bool, typer.Option("--int8", help="Also write model.int8.onnx (static QDQ, calibrated in the sim).")
    ] = False,
    calibration_frames: Annotated[
        int,
        typer.Option("--calibration-frames", min=10, help="Frames of closed-loop driving to calibrate on."),
    ] = 2_000,
    agreement_frames: Annotated[
        int, typer.Option("--agreement-frames", min=10, help="Frames of closed-loop driving for parity.")
    ] = 5_000,
    laps: Annotated[int, typer.Option("--laps", min=1, help="Laps of each closed-loop evaluation.")] = 3,
    min_agreement: Annotated[
        float,
        typer.Option(
            "--min-agreement",
            min=0.0,
            max=1.0,
            help="int8's target: the fraction of frames (near-ties left out) where it takes fp32's action.",
        ),
    ] = 0.999,
    lap_tolerance: Annotated[
        float,
        typer.Option(
            "--lap-tolerance",
            min=0.0,
            help="int8's target: its closed-loop best lap within this fraction of fp32's.",
        ),
    ] = 0.02,
    tie_fraction: Annotated[
        float,
        typer.Option(
            "--tie-fraction",
            min=0.0,
            help="Frames whose fp32 top-2 logit gap is under this fraction of the median are near-ties, "
            "left out of the agreement.",
        ),
    ] = 0.01,
    robustness_seeds: Annotated[
        int,
        typer.Option(
            "--robustness-seeds",
            min=0,
            help="Seeds per held-out track of the robustness card (each its own eval-shift perturbation); "
            "0 skips the card.",
        ),
    ] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print parity.json on stdout.")] = False,
) -> None:
    """Export the run's deterministic policy: the graph's input is the car's sensor reading (uint8 camera
    frames, lidar ranges in metres), its outputs steering_deg and speed_mps. Writes parity.json: torch vs ONNX,
    int8 vs fp32 action agreement over closed-loop frames, and closed-loop laps of the checkpoint, fp32 and
    int8 models on the training track. The card's robustness: the file a car runs, driven under the held-out
    eval-shift perturbation on DeepRacer tracks it never trained on (clean laps: no off-track)."""
    if run is None:
        fail("give a run directory, e.g. `pitlane export runs/NAME --out models/NAME`")
    if out is None:
        fail("give --out DIR, the directory to write model.onnx and model.json into")
    require("train", "torch", "stable_baselines3", "onnx", "onnxruntime")
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from device.errors import DeviceError
    from sim.errors import SimError
    from trainer.errors import TrainerError
    from trainer.export.pipeline import ExportSettings, export_run
    from trainer.robustness import RobustnessSettings

    robustness = RobustnessSettings(seeds=robustness_seeds) if robustness_seeds else None
    settings = ExportSettings(int8=int8, calibration_frames=calibration_frames, agreement_frames=agreement_frames,
                              eval_laps=laps, min_agreement=min_agreement, lap_tolerance=lap_tolerance,
                              tie_fraction=tie_fraction, robustness=robustness)  # fmt: skip
    err = Console(stderr=True)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                      transient=True) as progress:  # fmt: skip
            task = progress.add_task("loading the run", total=None)
            result = export_run(
                run, out, settings, on_stage=lambda text: progress.update(task, description=text)
            )
    except (TrainerError, SimError, DeviceError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.parity))
    else:
        _print_summary(result)
    if result.int8_problems:
        fp32 = result.files["fp32"]
        err.print(
            f"[bold red]int8 misses its targets:[/bold red] {'; '.join(result.int8_problems)}. "
            f"Put the fp32 model on the car: {fp32} (the same policy, exact; "
            f"{result.parity['latency']['fp32']['p50_ms']:.2f} ms a frame here against "
            f"{result.parity['latency']['int8']['p50_ms']:.2f} ms in int8). {result.files['int8']} is kept for "
            f"inspection; details in {result.out_dir / 'parity.json'}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_TARGET_MISSED)


#: exit status when the export is written but its int8 model misses its own targets (2 is bad input)
EXIT_TARGET_MISSED = 1


def _fmt(x: Any, unit: str = "") -> str:
    if x is None:
        return "-"
    return f"{x:.3g}{unit}" if isinstance(x, float) else f"{x}{unit}"


def _print_summary(result: Any) -> None:
    from rich.table import Table

    console = Console()
    for precision, path in result.files.items():
        console.print(f"{precision}: {path} ({path.stat().st_size / 1e6:.2f} MB)", highlight=False)
    console.print(f"card: {result.out_dir / 'model.json'} · parity: {result.out_dir / 'parity.json'}")
    p = result.parity
    t = p["torch_vs_onnx_fp32"]
    console.print(
        f"torch vs ONNX fp32 over {t['frames']:,} frames: max |d {t['head_output']}| "
        f"{t['max_abs_diff_head_output']:.2e}, max |d steering| {t['max_abs_diff_steering_deg']:.2e} deg",
        highlight=False,
    )
    for key in ("checkpoint_vs_fp32", "int8_vs_fp32"):
        if key in p:
            a = p[key]
            mark = "[green]meets[/green]" if a["meets_target"] else "[red]misses[/red]"
            rate = a.get("agreement_non_tied", a["agreement"])
            ties = (
                f", {a['tied_frames']} near-tied frames left out (all frames: {100 * a['agreement']:.2f} %)"
                if "tied_frames" in a
                else ""
            )
            console.print(
                f"{key.replace('_', ' ')}: {100 * rate:.2f} % of {a['frames']:,} frames "
                f"({a['criterion']}{ties}); {mark} the {100 * a['target']:.1f} % target",
                highlight=False,
            )
            gap = a.get("fp32_logit_gap_max_where_disagreeing")
            if gap is not None:
                ties = ": near-ties" if gap < 0.05 * a["fp32_logit_gap_median"] else ""
                console.print(
                    f"  disagreements at fp32 top-2 logit gaps <= {gap:.4f}"
                    f" (median gap over all frames {a['fp32_logit_gap_median']:.3f}){ties}",
                    highlight=False,
                )
    table = Table(title="closed-loop evaluation (same track, same rules)")
    for col in ("model", "laps", "best lap s", "mean lap s", "off-track"):
        table.add_column(col, justify="right")
    closed = p["closed_loop"]
    for name in ("checkpoint", "fp32", "int8"):
        if name in closed:
            c = closed[name]
            table.add_row(name, f"{c['completed_laps']}/{c['laps_planned']}", _fmt(c["best_lap_s"]),
                          _fmt(c["mean_lap_s"]), str(c["offtrack"]))  # fmt: skip
    console.print(table)
    _print_robustness(console, result.card.robustness)
    if "int8_vs_fp32" in closed and closed["int8_vs_fp32"]["best_lap_ratio"] is not None:
        r = closed["int8_vs_fp32"]
        console.print(
            f"int8 / fp32 best lap: {r['best_lap_ratio']:.4f} "
            f"({'within' if r['within_tolerance'] else 'outside'} {100 * r['tolerance']:g} %)",
            highlight=False,
        )


def _print_robustness(console: Console, card: Any) -> None:
    """The robustness card: its verdict, one line, per-track figures and the advice before a real drive."""
    from contracts.robustness import robustness_warning

    if card is None:
        console.print("robustness: not measured (--robustness-seeds 0)")
        return
    colour = {"ready": "green", "fragile": "yellow", "not ready": "red"}[card.verdict]
    console.print(f"robustness: [{colour}]{card.verdict}[/{colour}]: {card.summary()}", highlight=False)
    for t in card.tracks:
        limit = f", {t.best_over_limit:.2f}x the car's limit" if t.best_over_limit else ""
        best = "no lap" if t.best_lap_s is None else f"{t.best_lap_s:.2f} s"
        console.print(
            f"  {t.track}: {t.clean_laps}/{t.attempted_laps} clean laps, best {best}{limit}",
            highlight=False,
        )
    if (advice := robustness_warning(card)) is not None:
        console.print(f"  before a real drive: {advice.split('; ')[-1]}", highlight=False)
