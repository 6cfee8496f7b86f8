"""`pitlane train [CONFIG.toml] --out runs/NAME`: train a policy on the simulator (stable-baselines3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from pitlane.commands.common import SingleCommandGroup, fail, require

if TYPE_CHECKING:
    from trainer.config import RunConfig
    from trainer.train import TrainResult

app = typer.Typer(
    help="Train a policy on the simulator (stable-baselines3): a run config .toml and/or flags.",
    invoke_without_command=True,
    cls=SingleCommandGroup,
)


@app.callback()
def train_command(
    config: Annotated[
        Path | None,
        typer.Argument(help="A run config .toml (track, reward, action space, hyperparameters, ...)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-O", help="Run directory to create, e.g. runs/NAME (absent or empty)."),
    ] = None,
    track: Annotated[str | None, typer.Option("--track", "-t", help="Track name or route .npy.")] = None,
    observation: Annotated[
        str | None, typer.Option("--observation", "-o", help="state, lidar, ... (joined with '+').")
    ] = None,
    reward: Annotated[
        str | None, typer.Option("--reward", help="A built-in reward name or a DeepRacer reward .py file.")
    ] = None,
    action_space: Annotated[
        Path | None, typer.Option("--action-space", help="A DeepRacer model_metadata.json.")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Total car-steps (all cars).")] = None,
    n_envs: Annotated[int | None, typer.Option("--n-envs", "-n", min=1, help="Parallel cars.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    until_clean_laps: Annotated[
        int | None,
        typer.Option("--until-clean-laps", min=1, help="Stop after K consecutive clean evaluation laps."),
    ] = None,
    network: Annotated[
        str | None,
        typer.Option("--network", help="mlp, cnn_shallow, cnn or cnn_deep (DeepRacer's camera topologies)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue this run directory from its latest checkpoint (to --steps)."),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option("--init-from", help="Start a new run from this run's best model (DeepRacer's clone)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Train with CONFIG.toml and/or flags (flags override the file); writes metrics, checkpoints and
    DeepRacer simtraces into --out."""
    out = _run_dir(
        out, resume, CONFIG=config, **{"--track": track, "--observation": observation, "--reward": reward,
        "--action-space": action_space, "--n-envs": n_envs, "--seed": seed, "--network": network,
        "--init-from": init_from},
    )  # fmt: skip
    from sim.errors import SimError

    require("train", "torch", "stable_baselines3")
    from trainer.config import RunConfig as _RunConfig
    from trainer.config import RunConfigError, load_run_config

    try:
        if resume is not None:
            from trainer.config import load_run_dir_config

            base = load_run_dir_config(resume)
        else:
            base = load_run_config(config) if config is not None else None
        run = _RunConfig.from_flags(
            base,
            track=track,
            observation=observation,
            reward=reward,
            action_space=action_space,
            steps=steps,
            n_envs=n_envs,
            seed=seed,
            until_clean_laps=until_clean_laps,
            network=network,
        )
    except (RunConfigError, SimError) as exc:
        fail(str(exc))

    from trainer.train import train

    err = Console(stderr=True)
    for note in run.notes(route=resume is None and init_from is None):
        err.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    try:
        result = train(
            run, out, progress=not quiet and not as_json, resume=resume is not None, init_from=init_from
        )
    except (RunConfigError, SimError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(_summary(result)))
    else:
        _print_done(run, result)


def _run_dir(out: Path | None, resume: Path | None, **run_flags: object) -> Path:
    """The run directory to write: --out, or the --resume directory (which keeps its own config: `run_flags`,
    flag -> value given, must all be None)."""
    if resume is not None:
        changed = [flag for flag, value in run_flags.items() if value is not None]
        if changed:
            fail(
                f"--resume continues {resume} with its own config; {', '.join(changed)} cannot change it "
                "(only --steps and --until-clean-laps can); start a new run with --init-from instead"
            )
        if out is not None and out.resolve() != resume.resolve():
            fail(f"--resume writes into {resume}; leave out --out (or give the same directory)")
        out = resume
    if out is None:
        fail("--out is required: the run directory to create, e.g. --out runs/NAME")
    return out


def _summary(result: TrainResult) -> dict[str, Any]:
    """The run as `--json` prints it: times in s, steps, the best laps (s), the route taken."""
    summary: dict[str, Any] = {
        "out_dir": str(result.out_dir),
        "steps": result.steps,
        "wall_s": round(result.wall_s, 2),
        "steps_per_s": round(result.steps_per_s),
        "stopped_by": result.stopped_by,
        "episodes": result.episodes,
        "best_lap_s": result.best_lap_s,
        "best_eval_lap_s": result.best_eval_lap_s,
        "first_eval_lap_step": result.first_eval_lap_step,
        "first_eval_lap_wall_s": result.first_eval_lap_wall_s,
        "route": result.route,
    }
    if result.teacher is not None:
        summary["teacher"] = {"out_dir": str(result.teacher.out_dir), "steps": result.teacher.steps,
                              "wall_s": round(result.teacher.wall_s, 2),
                              "best_eval_lap_s": result.teacher.best_eval_lap_s}  # fmt: skip
    return summary


def _print_done(run: RunConfig, result: TrainResult) -> None:
    console = Console()
    best = f"{result.best_eval_lap_s:.2f} s" if result.best_eval_lap_s is not None else "none yet"
    if result.teacher is not None:
        console.print(
            f"[green]done[/green] {run.observation} policy ({run.resolved_network()}) distilled from a state "
            f"teacher ({result.teacher.steps:,} steps, {result.teacher.out_dir}) in {result.wall_s:.1f} s; "
            f"best evaluation lap {best}; run in {result.out_dir}",
            highlight=False,
        )
        return
    console.print(
        f"[green]done[/green] {result.steps:,} steps in {result.wall_s:.1f} s ({result.steps_per_s:,.0f} steps/s), "
        f"stopped by {result.stopped_by}; best evaluation lap {best}; run in {result.out_dir}"
    )
