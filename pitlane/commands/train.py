"""`pitlane train [CONFIG.toml] --out runs/NAME`: train a policy on the simulator (stable-baselines3);
`pitlane train --remix RECIPE.toml|URL --out runs/NAME` trains a recipe (`pitlane recipe`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from pitlane.commands.common import SingleCommandGroup, fail, require

if TYPE_CHECKING:
    from contracts.recipe import Recipe
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
    pool_track: Annotated[
        list[str] | None,
        typer.Option(
            "--pool-track",
            help="Another training track (repeat the option): the cars are split evenly over --track and these.",
        ),
    ] = None,
    no_pool: Annotated[
        bool,
        typer.Option(
            "--no-pool", help="Train on --track alone (no pool of other tracks), as DeepRacer does."
        ),
    ] = False,
    both_directions: Annotated[
        bool | None,
        typer.Option("--both-directions/--one-direction", help="Drive every training track both ways."),
    ] = None,
    randomization: Annotated[
        str | None,
        typer.Option(
            "--randomization",
            help="Domain randomisation of training episodes: none | light | strong (trim, latency, grip, "
            "camera, light).",
        ),
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
    remix: Annotated[
        str | None,
        typer.Option(
            "--remix",
            help="Train a recipe: a .toml file or its league gallery address (http://HOST:8000/api/recipes/ID"
            ".toml); --track, --seed, --steps and --n-envs override it.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="PITLANE_RACER_TOKEN",
            help="Your racer token, for a --remix address (or $PITLANE_RACER_TOKEN).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Train with CONFIG.toml and/or flags (flags override the file), or a --remix recipe; writes metrics,
    checkpoints and DeepRacer simtraces into --out."""
    if remix is not None:
        out = _remix_dir(out, CONFIG=config, **{"--observation": observation, "--reward": reward,
                         "--action-space": action_space, "--until-clean-laps": until_clean_laps,
                         "--network": network, "--resume": resume, "--init-from": init_from,
                         "--pool-track": pool_track, "--no-pool": no_pool or None,
                         "--both-directions": both_directions, "--randomization": randomization})  # fmt: skip
        _train_remix(_read_recipe(remix, token), remix, out, track=track, steps=steps, n_envs=n_envs,
                     seed=seed, quiet=quiet, as_json=as_json)  # fmt: skip
        return
    if no_pool and pool_track:
        fail("give --no-pool (train on --track alone) or --pool-track, not both")
    out = _run_dir(
        out, resume, CONFIG=config, **{"--track": track, "--observation": observation, "--reward": reward,
        "--action-space": action_space, "--n-envs": n_envs, "--seed": seed, "--network": network,
        "--init-from": init_from, "--pool-track": pool_track, "--no-pool": no_pool or None,
        "--both-directions": both_directions, "--randomization": randomization},
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
            track_pool=[] if no_pool else (pool_track or None),
            both_directions=both_directions,
            randomization=randomization,
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


def _remix_dir(out: Path | None, **fixed_flags: object) -> Path:
    """The run directory of a --remix: --out; the recipe fixes what `fixed_flags` (flag -> value given) would
    set, so they must all be None."""
    given = [flag for flag, value in fixed_flags.items() if value is not None]
    if given:
        fail(f"--remix trains the recipe as written; {', '.join(given)} cannot change it (edit the recipe)")
    if out is None:
        fail("--out is required: the run directory to create, e.g. --out runs/NAME")
    return out


def _read_recipe(source: str, token: str | None) -> Recipe:
    """The recipe at `source`: an http(s) address (fetched with the racer's token) or a .toml file."""
    from contracts.errors import RecipeError
    from contracts.recipe import Recipe

    try:
        if not source.startswith(("http://", "https://")):
            return Recipe.read(source)
        require("server", "httpx")
        from league_server.client import RecipeServerError, fetch_recipe_text

        try:
            return Recipe.from_toml(fetch_recipe_text(source, token), source=source)
        except RecipeServerError as exc:
            fail(str(exc))
    except RecipeError as exc:
        fail(str(exc))


def _train_remix(recipe: Recipe, source: str, out: Path, *, track: str | None, steps: int | None,
                 n_envs: int | None, seed: int | None, quiet: bool, as_json: bool) -> None:  # fmt: skip
    """Train the remix of `recipe` (from `source`) into `out`, then print what happened."""
    from sim.errors import SimError

    require("train", "torch", "stable_baselines3")
    from contracts.errors import RecipeError
    from trainer.config import RunConfigError, load_run_dir_config
    from trainer.recipe import recipe_notes, remixed, train_recipe

    err = Console(stderr=True)
    try:
        recipe = remixed(recipe, source, track=track, seed=seed)
        for note in recipe_notes(recipe):
            err.print(f"[yellow]note:[/yellow] {note}", highlight=False)
        result = train_recipe(recipe, out, steps=steps, n_envs=n_envs, progress=not quiet and not as_json)
    except (RecipeError, RunConfigError, SimError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(_summary(result)))
    else:
        _print_done(load_run_dir_config(out), result)


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
