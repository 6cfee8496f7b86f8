"""Recipes and runs: a `contracts.recipe.Recipe` as a `RunConfig`, and a run folder as a recipe.

    config = run_config(recipe, reward_path)      # the reward source written to reward_path by the caller
    result = train_recipe(recipe, Path("runs/remix"))  # `pitlane train --remix recipe.toml --out runs/remix`
    recipe = recipe_of_run(Path("runs/fast"))     # `pitlane recipe export runs/fast`

A run trained from a recipe keeps it: `<run>/reward_function.py` (the reward it trained with, named in
config.resolved.json) and `<run>/recipe.toml` (the recipe as trained, with `remixed_from`).

DeepRacer's hyperparameter names are mapped onto ours by `trainer.config.deepracer_mapping` (the same mapping
`deepracer_hyperparameters = "hyperparameters.json"` uses); `recipe_of_run` maps a run's values back through
the inverse of `DEEPRACER_DIRECT`. What a recipe cannot say (our PPO's rollout length, clip range, network
width, ...) takes `RunConfig`'s defaults one way and is left out the other way.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contracts.errors import RecipeError, validation_problems
from contracts.recipe import (
    MAX_TRAINING_MINUTES,
    MIN_TRAINING_MINUTES,
    DeepRacerHyperparameters,
    Recipe,
    reward_templates,
)
from contracts.recipe import StopCondition as RecipeStop
from trainer.config import DEEPRACER_DIRECT, RunConfig, deepracer_mapping, read_resolved_config
from trainer.errors import RunConfigError

if TYPE_CHECKING:
    from trainer.train import TrainResult


#: recipe `training_algorithm` (DeepRacer's name) -> `RunConfig.algorithm`
ALGORITHMS = {"clipped_ppo": "ppo", "sac": "sac"}
_DEEPRACER_ALGORITHMS = {ours: theirs for theirs, ours in ALGORITHMS.items()}
#: car-steps per second no machine reaches (measured ~30,000 with 64 cars on a 2-core laptop): total_steps is
#: set from it so that the wall-clock budget, not the step count, ends a recipe's training
STEPS_PER_S_CEILING = 1_000_000
#: built-in rewards -> the template that gives the same reward per car (`sim.reward.builtin` names the
#: DeepRacer example each built-in follows); built-ins without one have no Python source to put in a recipe
BUILTIN_TEMPLATES = {"centerline": "follow_centerline", "all_wheels": "stay_inside_borders"}
#: the minutes a recipe's budget is rounded up to when it comes from a run's training time
_MINUTES_STEP = 0.25
#: what a run trained from a recipe keeps of it, in the run folder
REWARD_FILE = "reward_function.py"
RECIPE_FILE = "recipe.toml"


# ------------------------------------------------------------------------------------------ recipe -> run


def run_config(recipe: Recipe, reward_path: Path, *, n_envs: int = 64) -> RunConfig:
    """The run that trains `recipe`: its track, car, observation, action space and algorithm, the reward file
    `reward_path` (the recipe's `reward_function` source, written there by the caller), its DeepRacer
    hyperparameters mapped onto ours, its stop condition and seed; `n_envs` cars at once.

    `total_steps` is set beyond what `recipe.stop.minutes` could reach, so the wall-clock stop (or the clean
    laps) ends training. Raises RunConfigError naming the recipe and the key."""
    hyper, stop, _ = deepracer_mapping(recipe.hyperparameters.to_deepracer_json())
    stop.update(minutes=recipe.stop.minutes, until_clean_laps=recipe.stop.until_clean_laps)
    data: dict[str, Any] = {
        "track": recipe.track,
        "reverse": recipe.reverse,
        "car": recipe.car,
        "observation": recipe.observation,
        "action_space": recipe.action_space_json(),
        "reward": str(reward_path),
        "algorithm": ALGORITHMS[recipe.training_algorithm],
        "hyperparameters": hyper,
        "stop": stop,
        "total_steps": math.ceil(recipe.stop.minutes * 60 * STEPS_PER_S_CEILING),
        "n_envs": n_envs,
        "seed": recipe.seed,
        # DeepRacer's episodes per training iteration: what `deepracer_hyperparameters` maps it to as well
        "simtrace_episodes": recipe.hyperparameters.num_episodes_between_training,
    }
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, quote=True).replace("Value error, ", "")
        raise RunConfigError(f"recipe {recipe.name!r}: {problems}") from None


def remixed(recipe: Recipe, source: str, *, track: str | None = None, seed: int | None = None) -> Recipe:
    """The recipe a remix of `recipe` (read from `source`, a URL or file) trains: remixed from it, with the
    command line's `track` and `seed` where given."""
    data = recipe.model_dump()
    data["remixed_from"] = {"name": recipe.name, "url": source}
    data.update({key: value for key, value in (("track", track), ("seed", seed)) if value is not None})
    return Recipe.from_dict(data, source=source)


def train_recipe(
    recipe: Recipe,
    out_dir: Path,
    *,
    steps: int | None = None,
    n_envs: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train `recipe` into the new run folder `out_dir` (absent or empty) with `run_config`; `steps` (car-steps)
    and `n_envs` (cars) override its budget and the default 64 cars. The run keeps the recipe: `REWARD_FILE`
    (which its config.resolved.json names) and `RECIPE_FILE`. Raises RunConfigError (and SimError for a
    track or car the simulator does not know)."""
    from trainer.train import train

    out_dir = Path(out_dir)
    staging = Path(tempfile.mkdtemp(prefix="pitlane-recipe-"))
    try:
        # `train` wants an empty run folder, so the reward file waits beside it until the run folder exists
        reward = staging / REWARD_FILE
        reward.write_text(recipe.reward_function, encoding="utf-8")
        config = RunConfig.from_flags(run_config(recipe, reward), steps=steps, n_envs=n_envs)
        try:
            return train(config, out_dir, progress=progress)
        finally:
            _keep_recipe(recipe, reward, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _keep_recipe(recipe: Recipe, staged_reward: Path, out_dir: Path) -> None:
    """Copy the staged reward file into the run folder `out_dir`, point the configs that name it there (the
    run's, and a distilled run's teacher's) and write the recipe beside it; only for a run this recipe started
    (a refused run folder is left as it was)."""
    kept = out_dir / REWARD_FILE
    configs = [out_dir / "config.resolved.json", out_dir / "teacher" / "config.resolved.json"]
    started = False
    for path in configs:
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # training stopped before this folder was made
        if config.get("reward") == str(staged_reward):
            started = True
            config["reward"] = str(kept)
            path.write_text(json.dumps(config, indent=2, default=str) + "\n", encoding="utf-8")
    if started:
        shutil.copyfile(staged_reward, kept)
        (out_dir / RECIPE_FILE).write_text(recipe.to_toml(), encoding="utf-8")


def recipe_notes(recipe: Recipe) -> list[str]:
    """What the recipe's DeepRacer hyperparameters mean here (those trained differently, or not at all)."""
    return deepracer_mapping(recipe.hyperparameters.to_deepracer_json())[2]


# ------------------------------------------------------------------------------------------ run -> recipe


def recipe_of_run(run_dir: Path, *, name: str | None = None) -> Recipe:
    """The recipe of a run folder (`config.resolved.json` and the reward file it names), called `name` (default:
    the folder's name). Hyperparameters come back under DeepRacer's names (the inverse of `DEEPRACER_DIRECT`;
    the rest at DeepRacer's defaults); the budget is the run's `stop.minutes`, else its training time from
    metrics.csv rounded up to a quarter minute, else the default.

    A run trained from a recipe (`train_recipe`) kept it as `RECIPE_FILE`: that recipe is returned (renamed
    when `name` is given), as it holds what a run config cannot (its description, DeepRacer-only keys, where
    it was remixed from).

    Raises RunConfigError naming the file: not a run folder, a reward with no Python source (a built-in
    without a template, a .py file that is gone), or a value a recipe cannot hold."""
    run_dir = Path(run_dir)
    kept = run_dir / RECIPE_FILE
    if kept.is_file() and (run_dir / "config.resolved.json").is_file():
        try:
            recipe = Recipe.read(kept)
        except RecipeError as exc:
            raise RunConfigError(str(exc)) from None
        return recipe if name is None else renamed(recipe, name)
    data = read_resolved_config(run_dir)
    actions = data.get("resolved_action_space") or data.get("action_space")
    fields = {
        "name": name or run_dir.resolve().name[:64],
        "track": data.get("track"),
        "reverse": data.get("reverse", False),
        "car": data.get("car"),
        "observation": data.get("observation"),
        "action_space_type": "discrete" if isinstance(actions, list) else "continuous",
        "action_space": actions,
        "training_algorithm": _DEEPRACER_ALGORITHMS.get(data.get("algorithm")),
        "hyperparameters": deepracer_hyperparameters_of(data),
        "reward_function": reward_source(data.get("reward"), run_dir),
        "stop": {
            "minutes": _budget_minutes(data, run_dir),
            "until_clean_laps": (data.get("stop") or {}).get("until_clean_laps"),
        },
        "seed": data.get("seed", 0),
    }
    try:
        return Recipe.from_dict(fields, source=str(run_dir / "config.resolved.json"))
    except RecipeError as exc:
        raise RunConfigError(f"cannot write this run as a recipe: {exc}") from None


def renamed(recipe: Recipe, name: str) -> Recipe:
    """`recipe` called `name` (RunConfigError for a name a recipe cannot have)."""
    try:
        return Recipe.from_dict({**recipe.model_dump(), "name": name}, source="--name")
    except RecipeError as exc:
        raise RunConfigError(str(exc)) from None


def deepracer_hyperparameters_of(config: dict[str, Any]) -> dict[str, Any]:
    """A run config's (`config.resolved.json`'s) hyperparameters under DeepRacer's names: the keys of
    `DEEPRACER_DIRECT`, and `num_episodes_between_training` from `simtrace_episodes` (as the DeepRacer
    mapping sets it); the others DeepRacer's defaults."""
    ours = config.get("hyperparameters") or {}
    out = DeepRacerHyperparameters().model_dump()
    out.update({theirs: ours[key] for theirs, key in DEEPRACER_DIRECT.items() if key in ours})
    if "simtrace_episodes" in config:
        out["num_episodes_between_training"] = config["simtrace_episodes"]
    return out


def reward_source(reward: Any, run_dir: Path) -> str:
    """The Python source of a run's reward: the .py file it names (or the file of that name in the run
    folder, should the path have moved), or the template of a built-in reward. RunConfigError otherwise."""
    if not isinstance(reward, str):
        raise RunConfigError(f"{run_dir / 'config.resolved.json'}: no `reward` in the run config")
    if reward.endswith(".py"):
        for candidate in (Path(reward), run_dir / Path(reward).name):
            if candidate.is_file():
                try:
                    return candidate.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise RunConfigError(f"{candidate}: cannot read the run's reward file ({exc})") from None
        raise RunConfigError(
            f"{run_dir}: the run's reward file {reward} is gone (not there, nor in the run folder); a "
            "recipe holds the reward's source, so put the file back"
        )
    template = BUILTIN_TEMPLATES.get(reward)
    if template is None:
        raise RunConfigError(
            f"{run_dir}: this run used the built-in reward {reward!r}, which has no Python source to put in a "
            f"recipe; train with a DeepRacer reward file (`pitlane train --reward FILE.py`) to export it"
        )
    return reward_templates()[template]


def _budget_minutes(config: dict[str, Any], run_dir: Path) -> float:
    """The run's wall-clock budget: `stop.minutes` if it had one, else its training time (the last wall_s of
    metrics.csv) rounded up to a quarter minute, else the recipe default; within the recipe's limits."""
    minutes = (config.get("stop") or {}).get("minutes")
    if minutes is None:
        wall_s = _training_wall_s(run_dir / "metrics.csv")
        if wall_s is None:
            return RecipeStop().minutes
        minutes = math.ceil(wall_s / 60 / _MINUTES_STEP) * _MINUTES_STEP
    return min(max(float(minutes), MIN_TRAINING_MINUTES), MAX_TRAINING_MINUTES)


def _training_wall_s(metrics: Path) -> float | None:
    """The last `wall_s` of a run's metrics.csv (seconds since training began), None without one."""
    try:
        with metrics.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    try:
        return float(rows[-1]["wall_s"]) if rows else None
    except (KeyError, ValueError):
        return None
