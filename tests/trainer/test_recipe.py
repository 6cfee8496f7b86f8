"""`trainer.recipe`: a recipe as a run config (DeepRacer's hyperparameter names mapped as a
`hyperparameters.json` is), a run folder back as the same recipe (after real training), and a recipe trained
into a run that keeps it. About 10 s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.errors import RecipeError
from contracts.recipe import ContinuousActions, Range, Recipe, reward_templates
from trainer.config import RunConfig, RunConfigError
from trainer.recipe import (
    RECIPE_FILE,
    REWARD_FILE,
    STEPS_PER_S_CEILING,
    recipe_of_run,
    remixed,
    run_config,
    train_recipe,
)
from trainer.train import train

# One xdist worker trains this module's runs once.
pytestmark = pytest.mark.xdist_group("recipe-runs")

STEPS = 8 * 64 * 2  # two rollouts of 8 cars

RECIPE = Recipe(
    name="round trip",
    track="oval",
    reverse=True,
    seed=7,
    action_space=[
        {"steering_angle": -20, "speed": 1.5},
        {"steering_angle": 0, "speed": 2.5},
        {"steering_angle": 20, "speed": 1.5},
    ],
    hyperparameters={
        "batch_size": 128,
        "lr": 0.0005,
        "discount_factor": 0.99,
        "beta_entropy": 0.02,
        "num_epochs": 3,
        "num_episodes_between_training": 5,
    },
    reward_function=reward_templates()["progress_and_speed"],
    stop={"minutes": 2.5, "until_clean_laps": 2},
)


def write_reward(recipe: Recipe, folder: Path) -> Path:
    path = folder / "reward.py"
    path.write_text(recipe.reward_function, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RECIPE trained for two rollouts with `run_config` (no recipe kept: the config is all there is)."""
    folder = tmp_path_factory.mktemp("recipe-run")
    config = RunConfig.from_flags(run_config(RECIPE, write_reward(RECIPE, folder), n_envs=8), steps=STEPS)
    train(config, folder / "run", progress=False)
    return folder / "run"


def test_run_config_maps_every_part_of_the_recipe(tmp_path: Path) -> None:
    config = run_config(RECIPE, write_reward(RECIPE, tmp_path))
    assert (config.track, config.reverse, config.car, config.seed) == ("oval", True, "deepracer", 7)
    assert config.resolved_action_space().to_json() == RECIPE.action_space_json()
    assert config.algorithm == "ppo" and config.n_envs == 64
    assert config.reward == str(tmp_path / "reward.py")
    h = config.hyperparameters
    assert (h.batch_size, h.learning_rate, h.gamma, h.ent_coef, h.n_epochs) == (128, 0.0005, 0.99, 0.02, 3)
    assert config.simtrace_episodes == 5
    assert config.stop.until_clean_laps == 2 and config.stop.minutes == 2.5
    # the wall-clock budget ends training: no machine reaches total_steps in 2.5 minutes
    assert config.total_steps >= 2.5 * 60 * STEPS_PER_S_CEILING


def test_hyperparameters_map_as_a_deepracer_hyperparameters_file_does(tmp_path: Path) -> None:
    dr_file = tmp_path / "hyperparameters.json"
    dr_file.write_text(json.dumps(RECIPE.hyperparameters.to_deepracer_json()), encoding="utf-8")
    from_file = RunConfig(deepracer_hyperparameters=dr_file)
    from_recipe = run_config(RECIPE, write_reward(RECIPE, tmp_path))
    assert from_recipe.hyperparameters == from_file.hyperparameters
    assert from_recipe.simtrace_episodes == from_file.simtrace_episodes


def test_a_sac_recipe_trains_sac_on_its_continuous_space(tmp_path: Path) -> None:
    space = ContinuousActions(steering_angle=Range(low=-25, high=25), speed=Range(low=0.5, high=3))
    recipe = Recipe(action_space_type="continuous", action_space=space, training_algorithm="sac")
    config = run_config(recipe, write_reward(recipe, tmp_path), n_envs=4)
    assert config.algorithm == "sac" and config.n_envs == 4
    assert config.resolved_action_space().to_json() == space.model_dump()


def test_a_recipe_with_one_action_is_refused_naming_the_key() -> None:
    # the simulator's discrete spaces have at least two actions: the recipe says so before any training
    with pytest.raises(RecipeError, match="expected 2 to 50 discrete actions, got 1"):
        Recipe.from_dict({"name": "one way", "action_space": [{"steering_angle": 0, "speed": 1}]})


def test_a_trained_run_gives_back_its_recipe(trained_run: Path) -> None:
    back = recipe_of_run(trained_run, name="round trip")
    assert back == RECIPE  # track, direction, actions, reward source, hyperparameters, budget, seed
    assert recipe_of_run(trained_run).name == "run"


def test_a_run_whose_reward_file_moved_finds_it_in_the_run_folder(trained_run: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    config = json.loads((trained_run / "config.resolved.json").read_text(encoding="utf-8"))
    config["reward"] = str(tmp_path / "gone" / "reward.py")
    moved.mkdir()
    (moved / "config.resolved.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(RunConfigError, match=r"reward\.py is gone"):
        recipe_of_run(moved)
    (moved / "reward.py").write_text(RECIPE.reward_function, encoding="utf-8")
    assert recipe_of_run(moved).reward_function == RECIPE.reward_function


def built_in_run(folder: Path, reward: str) -> Path:
    """A run folder's config of a run trained with a built-in reward (what `train` writes, minus training)."""
    folder.mkdir()
    data = {**RunConfig(reward=reward).to_json_dict(), "notes": []}
    (folder / "config.resolved.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


def test_a_built_in_reward_becomes_its_template_or_is_refused(tmp_path: Path) -> None:
    centreline = recipe_of_run(built_in_run(tmp_path / "a", "centerline"))
    assert centreline.reward_function == reward_templates()["follow_centerline"]
    # DeepRacer's default batch of 64 and our default of 512 differ: the run's value comes back
    assert centreline.hyperparameters.batch_size == 512 and centreline.stop.minutes == 10.0
    with pytest.raises(RunConfigError, match=r"built-in reward 'progress_rate'.*--reward FILE\.py"):
        recipe_of_run(built_in_run(tmp_path / "b", "progress_rate"))
    with pytest.raises(RunConfigError, match="not a run directory"):
        recipe_of_run(tmp_path / "nothing")


def test_hyperparameters_a_recipe_cannot_hold_are_refused_naming_them(tmp_path: Path) -> None:
    run = built_in_run(tmp_path / "big", "centerline")
    config = json.loads((run / "config.resolved.json").read_text(encoding="utf-8"))
    config["hyperparameters"]["batch_size"] = 1024
    (run / "config.resolved.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(RunConfigError, match=r"hyperparameters\.batch_size"):
        recipe_of_run(run)


def test_train_recipe_keeps_the_recipe_and_its_reward_in_the_run(tmp_path: Path) -> None:
    recipe = remixed(RECIPE, "https://league.example/api/recipes/4.toml", track="tiny_loop", seed=1)
    train_recipe(recipe, tmp_path / "run", steps=STEPS // 2, n_envs=8, progress=False)
    run = tmp_path / "run"
    config = json.loads((run / "config.resolved.json").read_text(encoding="utf-8"))
    assert config["reward"] == str(run / REWARD_FILE) and config["track"] == "tiny_loop"
    assert (run / REWARD_FILE).read_text(encoding="utf-8") == RECIPE.reward_function
    kept = Recipe.read(run / RECIPE_FILE)
    assert kept == recipe and kept.remixed_from is not None
    assert (kept.remixed_from.name, kept.remixed_from.url) == (
        "round trip",
        "https://league.example/api/recipes/4.toml",
    )
    assert recipe_of_run(run) == recipe
    assert recipe_of_run(run, name="mine").name == "mine"


def test_train_recipe_leaves_a_refused_run_folder_alone(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(RunConfigError, match="not empty"):
        train_recipe(RECIPE, taken, steps=STEPS, n_envs=8, progress=False)
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]
