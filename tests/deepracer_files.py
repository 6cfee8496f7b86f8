"""DeepRacer-style files the tests read, kept in the repository under ``tests/fixtures/deepracer``.

They are written for these tests in the formats DeepRacer users bring: reward functions as the console and
DeepRacer-for-Cloud take them (``reward_function(params)``, module-level state, ``import math``), and
``model_metadata.json`` / ``hyperparameters.json`` as the console exports them. Files named ``broken_*`` are
broken on purpose, the way users' files break.
"""

from __future__ import annotations

from pathlib import Path

DEEPRACER_DIR = Path(__file__).resolve().parent / "fixtures" / "deepracer"
REWARD_DIR = DEEPRACER_DIR / "reward_functions"
DISCRETE_METADATA = DEEPRACER_DIR / "model_metadata_discrete.json"
CONTINUOUS_METADATA = DEEPRACER_DIR / "model_metadata_continuous.json"
HYPERPARAMETERS = DEEPRACER_DIR / "hyperparameters.json"

#: The 27 keys of the params dict DeepRacer passes to a reward function, spelled from DeepRacer's developer
#: guide; the simulator's own list (sim/reward/params.py) is checked against this one, so it is not imported.
PARAM_KEYS = frozenset(
    {
        "all_wheels_on_track",
        "x",
        "y",
        "heading",
        "distance_from_center",
        "is_left_of_center",
        "progress",
        "steps",
        "speed",
        "steering_angle",
        "track_width",
        "track_length",
        "waypoints",
        "closest_waypoints",
        "is_reversed",
        "is_crashed",
        "is_offtrack",
        "closest_objects",
        "objects_location",
        "objects_left_of_center",
        "objects_distance",
        "objects_distance_from_center",
        "objects_heading",
        "objects_speed",
        "object_in_camera",
        "projection_distance",
        "sim_time",
    }
)


def example_reward_files() -> list[Path]:
    """The working example reward functions (not the ``broken_*`` ones), sorted by name."""
    return sorted(p for p in REWARD_DIR.glob("*.py") if not p.name.startswith("broken_"))
