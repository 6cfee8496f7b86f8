"""`pitlane recipe ...`: a run as a recipe (TOML) to share, a recipe file summarised, a recipe published to a
league's gallery. `pitlane train --remix FILE_OR_URL` trains one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from pitlane.commands.common import fail, require

if TYPE_CHECKING:
    from contracts.recipe import Recipe

app = typer.Typer(
    help="Recipes (TOML): export a run as one, show one, publish one to a league's gallery.",
    no_args_is_help=True,
)


@app.command("export")
def export(
    run: Annotated[Path, typer.Argument(help="A run folder (from `pitlane train`).")],
    name: Annotated[
        str | None, typer.Option("--name", help="The recipe's name (default: the folder's).")
    ] = None,
) -> None:
    """Print RUN's recipe as TOML (redirect it to a file: `> recipe.toml`)."""
    from trainer.errors import RunConfigError
    from trainer.recipe import recipe_of_run

    try:
        recipe = recipe_of_run(run, name=name)
    except RunConfigError as exc:
        fail(str(exc))
    typer.echo(recipe.to_toml(), nl=False)


@app.command("show")
def show(file: Annotated[Path, typer.Argument(help="A recipe .toml file.")]) -> None:
    """A readable summary of FILE: track, car, actions (degrees, m/s), algorithm, budget, reward function."""
    recipe = _read(file)
    console = Console()
    console.print(_summary(recipe, file))
    if isinstance(recipe.action_space, tuple):
        console.print(_actions(recipe))


@app.command("publish")
def publish(
    file: Annotated[Path, typer.Argument(help="A recipe .toml file.")],
    server: Annotated[str, typer.Option("--server", help="The league server, http://HOST:8000.")],
    token: Annotated[
        str,
        typer.Option(
            "--token", envvar="PITLANE_RACER_TOKEN", help="Your racer token (or $PITLANE_RACER_TOKEN)."
        ),
    ],
) -> None:
    """Share FILE in your league's recipe gallery; prints its address (to `pitlane train --remix`)."""
    recipe = _read(file)  # refused here, naming the file, rather than by the server
    require("server", "httpx")
    from league_server.client import RecipeServerError, publish_recipe

    try:
        shared = publish_recipe(server, token, file.read_text(encoding="utf-8"))
    except RecipeServerError as exc:
        fail(f"{file}: {exc}")
    Console(stderr=True).print(f"published {recipe.name!r} as recipe {shared.get('id')}", highlight=False)
    typer.echo(shared["url"])


def _read(file: Path) -> Recipe:
    from contracts.errors import RecipeError
    from contracts.recipe import Recipe

    try:
        return Recipe.read(file)
    except RecipeError as exc:
        fail(str(exc))


def _summary(recipe: Recipe, file: Path) -> Table:
    """Key -> value rows, each value with its unit."""
    hyper = recipe.hyperparameters
    lines = recipe.reward_function.strip().splitlines()
    clean = recipe.stop.until_clean_laps
    rows = {
        "recipe": f"{recipe.name} ({file})" + (f"\n{recipe.description}" if recipe.description else ""),
        "track": recipe.track + (" (reversed)" if recipe.reverse else ""),
        "car": recipe.car,
        "observation": recipe.observation,
        "action space": _action_space(recipe),
        "algorithm": recipe.training_algorithm,
        "hyperparameters": (
            f"batch {hyper.batch_size} samples, {hyper.num_epochs} epochs, learning rate {hyper.lr:g}, "
            f"discount {hyper.discount_factor:g}, entropy {hyper.beta_entropy:g}, loss {hyper.loss_type}, "
            f"{hyper.num_episodes_between_training} episodes between updates"
            + (f", SAC alpha {hyper.sac_alpha:g}" if recipe.training_algorithm == "sac" else "")
        ),
        "stop": f"after {recipe.stop.minutes:g} min of training"
        + (f", or {clean} clean evaluation laps in a row" if clean else ""),
        "seed": str(recipe.seed),
        "reward function": f"{len(lines)} lines" + (f": {lines[0]}" if lines else ""),
    }
    if recipe.remixed_from is not None:
        origin = recipe.remixed_from
        rows["remixed from"] = " ".join(
            part for part in (origin.name, origin.author and f"by {origin.author}", origin.url and f"({origin.url})")
            if part
        )  # fmt: skip
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows.items():
        table.add_row(key, value)
    return table


def _action_space(recipe: Recipe) -> str:
    space = recipe.action_space
    if isinstance(space, tuple):
        steer = [a.steering_angle for a in space]
        speed = [a.speed for a in space]
        return (f"discrete, {len(space)} actions: steering {min(steer):g} to {max(steer):g} deg, "
                f"speed {min(speed):g} to {max(speed):g} m/s")  # fmt: skip
    return (f"continuous: steering {space.steering_angle.low:g} to {space.steering_angle.high:g} deg, "
            f"speed {space.speed.low:g} to {space.speed.high:g} m/s")  # fmt: skip


def _actions(recipe: Recipe) -> Table:
    table = Table(title="actions (steering: positive = left)")
    for column in ("#", "steering deg", "speed m/s"):
        table.add_column(column, justify="right")
    for i, action in enumerate(recipe.action_space):
        table.add_row(str(i), f"{action.steering_angle:g}", f"{action.speed:g}")
    return table
