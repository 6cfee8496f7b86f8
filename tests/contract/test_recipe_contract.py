"""`contracts.recipe.Recipe` as a file: problems named once at their key, the reward function written as a
readable literal string, and every recipe read back equal to itself."""

from __future__ import annotations

import pytest

from contracts.errors import RecipeError
from contracts.recipe import Recipe, reward_templates

CONTINUOUS = {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 2}}


def problems(data: dict) -> str:
    with pytest.raises(RecipeError) as err:
        Recipe.from_dict(data, source="r.toml")
    return str(err.value)


def test_an_invalid_discrete_action_is_named_once_at_its_key() -> None:
    message = problems(
        {"action_space": [{"steering_angle": 10, "speed": 1}, {"steering_angle": 31, "speed": 1}]}
    )
    assert message == "r.toml: `action_space.1.steering_angle`: Input should be less than or equal to 30"


def test_an_invalid_continuous_range_is_named_at_its_key() -> None:
    space = {**CONTINUOUS, "speed": {"low": 2, "high": 1}}
    message = problems(
        {"action_space_type": "continuous", "training_algorithm": "sac", "action_space": space}
    )
    assert message.startswith("r.toml: `action_space.speed`:") and "expected low < high" in message
    assert "tuple" not in message and "DiscreteAction" not in message


@pytest.mark.parametrize(
    ("kind", "space", "form"),
    [
        ("continuous", [{"steering_angle": 0, "speed": 1}], "discrete"),
        ("discrete", CONTINUOUS, "continuous"),
    ],
)
def test_an_action_space_in_the_other_form_says_so(kind: str, space: object, form: str) -> None:
    message = problems({"action_space_type": kind, "action_space": space})
    assert f"action_space_type is {kind!r} but action_space is written in the {form} form" in message
    assert message.count("`action_space") == 1


def test_the_reward_function_is_a_literal_string_without_escapes() -> None:
    source = 'def reward_function(params):\n    """Say "hi" \\ there."""\n    return 1.0\n'
    text = Recipe(reward_function=source).to_toml()
    assert f"reward_function = '''\n{source}'''" in text  # as written, beginning on its own line
    assert Recipe.from_toml(text).reward_function == source


@pytest.mark.parametrize(
    "source",
    [
        "def reward_function(params):\n    '''three quotes'''\n    return 1.0\n",
        "def reward_function(params):\n\x0c    return 1.0\n",  # a form feed: no literal string may hold it
        "\n\ndef reward_function(params):\n    return 1.0",  # leading blank lines, no final newline
    ],
)
def test_sources_a_literal_string_cannot_hold_round_trip(source: str) -> None:
    recipe = Recipe(reward_function=source)
    assert Recipe.from_toml(recipe.to_toml()) == recipe
    assert recipe.reward_function.rstrip("\n") == source.rstrip("\n")


@pytest.mark.parametrize(
    "recipe",
    [
        Recipe(),
        Recipe(name="nonstop", stop={"minutes": 1, "until_clean_laps": None}, remixed_from={"name": "a"}),
        Recipe(
            action_space_type="continuous",
            action_space=CONTINUOUS,
            training_algorithm="sac",
            reward_function=reward_templates()["progress_and_speed"],
            reverse=True,
        ),
        Recipe(reward_function="def reward_function(params):\r\n    return 1.0\r\n"),
    ],
)
def test_a_recipe_reads_back_equal(recipe: Recipe) -> None:
    assert Recipe.from_toml(recipe.to_toml()) == recipe


@pytest.mark.parametrize("key", ["track", "car"])
@pytest.mark.parametrize(
    "value", ["/etc/passwd", "../training/8/private", "tracks/x.npy", "x.toml", ".hidden"]
)
def test_a_recipe_names_its_track_and_car_never_a_path(key: str, value: str) -> None:
    # a shared recipe is trained on the server: a path would name the server's files, read before the lock
    with pytest.raises(RecipeError, match=f"`{key}`"):
        Recipe.from_dict({key: value})
    assert getattr(Recipe.from_dict({key: "reInvent2019_track" if key == "track" else "deepracer"}), key)
