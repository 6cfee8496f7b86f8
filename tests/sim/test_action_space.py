"""Action spaces and model_metadata.json: DeepRacer's files load, decoding is exact, errors name keys."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sim.action_space import (
    DEFAULT_ACTION_SPACE,
    ContinuousActionSpace,
    DiscreteActionSpace,
    load_model_metadata,
    parse_action_space,
)
from sim.errors import ActionSpaceError
from tests.deepracer_files import CONTINUOUS_METADATA, DISCRETE_METADATA

DISCRETE = [
    {"steering_angle": -30, "speed": 0.8},
    {"steering_angle": 0, "speed": 2.0},
    {"steering_angle": 30, "speed": 0.8},
]
CONTINUOUS = {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 2.5}}


def write_metadata(tmp_path: Path, **fields: Any) -> Path:
    data: dict[str, Any] = {
        "action_space": DISCRETE,
        "sensor": ["FRONT_FACING_CAMERA"],
        "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo",
        "action_space_type": "discrete",
        "version": "5",
    }
    data.update(fields)
    path = tmp_path / "model_metadata.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def metadata_error(path: Path) -> str:
    with pytest.raises(ActionSpaceError) as info:
        load_model_metadata(path)
    return str(info.value)


# ------------------------------------------------------------------------------------ DeepRacer's files


def test_deepracer_discrete_file_loads() -> None:
    meta = load_model_metadata(DISCRETE_METADATA)
    space = meta.action_space
    assert isinstance(space, DiscreteActionSpace)
    assert meta.action_space_type == "discrete"
    assert meta.training_algorithm == "clipped_ppo"
    assert meta.neural_network == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    assert meta.sensor == ("FRONT_FACING_CAMERA",)
    assert meta.version == "5"
    assert space.actions == (
        (-30, 1.0), (-15, 1.5), (-5, 2.8), (0, 3.5), (5, 2.8), (15, 1.5), (30, 1.0)
    )  # fmt: skip
    assert space.max_speed_mps == 3.5
    assert space.gym_space() == spaces.Discrete(7)


def test_deepracer_continuous_file_loads() -> None:
    meta = load_model_metadata(CONTINUOUS_METADATA)
    space = meta.action_space
    assert isinstance(space, ContinuousActionSpace)
    assert meta.action_space_type == "continuous"
    assert meta.training_algorithm == "sac"
    assert (space.steering_deg_low, space.steering_deg_high) == (-25, 25)
    assert (space.speed_mps_low, space.speed_mps_high) == (0.8, 3.2)
    assert space.max_speed_mps == 3.2
    box = space.gym_space()
    assert isinstance(box, spaces.Box) and box.shape == (2,) and box.dtype == np.float32
    assert box.low.tolist() == [-1, -1] and box.high.tolist() == [1, 1]


def test_metadata_round_trips_through_json() -> None:
    for path in (DISCRETE_METADATA, CONTINUOUS_METADATA):
        meta = load_model_metadata(path)
        original = json.loads(path.read_text())
        again = json.loads(json.dumps(meta.to_json()))
        assert again == original
        assert parse_action_space(again["action_space"]) == meta.action_space


# ------------------------------------------------------------------------------------ decoding


def test_discrete_decode_and_encode_round_trip() -> None:
    space = parse_action_space(DISCRETE)
    idx = np.array([2, 0, 1, 1])
    steer, speed = space.decode(idx)
    assert steer.dtype == np.float64 and speed.dtype == np.float64
    assert steer.tolist() == [30, -30, 0, 0]
    assert speed.tolist() == [0.8, 0.8, 2.0, 2.0]
    assert space.encode_nearest(steer, speed).tolist() == idx.tolist()
    # Nearest, not exact: a slightly-off command maps to its neighbour.
    assert space.encode_nearest(np.array([27.0]), np.array([1.0])).tolist() == [2]


def test_discrete_decode_accepts_whole_floats_and_rejects_the_rest() -> None:
    space = DEFAULT_ACTION_SPACE
    assert space.decode(np.array([1.0, 9.0]))[0].tolist() == [-30, 30]
    assert space.decode(np.int64(4))[0].tolist() == [0]
    with pytest.raises(ActionSpaceError):
        space.decode(np.array([0.5]))
    with pytest.raises(ActionSpaceError, match="out of range"):
        space.decode(np.array([10]))
    with pytest.raises(ActionSpaceError, match="out of range"):
        space.decode(np.array([-1]))


def test_continuous_decode_maps_linearly_and_clips() -> None:
    space = parse_action_space(CONTINUOUS)
    steer, speed = space.decode(np.array([[-1, -1], [1, 1], [0, 0], [0.5, -0.5], [7, -9]], dtype=np.float32))
    assert steer.dtype == np.float64
    np.testing.assert_allclose(steer, [-30, 30, 0, 15, 30])
    np.testing.assert_allclose(speed, [0.5, 2.5, 1.5, 1.0, 0.5])
    single_steer, _ = space.decode(np.array([0.0, 0.0]))
    assert single_steer.shape == (1,)
    with pytest.raises(ActionSpaceError, match="NaN"):
        space.decode(np.array([[np.nan, 0.0]]))
    with pytest.raises(ActionSpaceError, match="shape"):
        space.decode(np.zeros((3, 3)))


def test_continuous_encode_decode_round_trip() -> None:
    space = parse_action_space(CONTINUOUS)
    steer = np.array([-30.0, -12.5, 0.0, 29.0])
    speed = np.array([0.5, 1.1, 2.5, 1.75])
    u = space.encode_nearest(steer, speed)
    assert u.dtype == np.float32 and u.shape == (4, 2)
    back_steer, back_speed = space.decode(u)
    np.testing.assert_allclose(back_steer, steer, atol=1e-5)
    np.testing.assert_allclose(back_speed, speed, atol=1e-6)


finite_bounds = st.tuples(
    st.floats(-60, 60), st.floats(-60, 60), st.floats(0.01, 20), st.floats(0.01, 20)
).filter(lambda b: b[0] < b[1] and b[2] < b[3])


@given(
    bounds=finite_bounds,
    actions=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8).map(lambda s: (s[0], 2)),
        elements=st.floats(allow_nan=False, allow_infinity=True),
    ),
)
def test_continuous_decode_stays_within_bounds(bounds: tuple[float, ...], actions: np.ndarray) -> None:
    space = ContinuousActionSpace(*bounds)
    steer, speed = space.decode(actions)
    assert steer.shape == speed.shape == (len(actions),)
    assert np.all((space.steering_deg_low <= steer) & (steer <= space.steering_deg_high))
    assert np.all((space.speed_mps_low <= speed) & (speed <= space.speed_mps_high))


@given(st.lists(st.integers(0, len(DEFAULT_ACTION_SPACE) - 1), min_size=1, max_size=20))
def test_discrete_encode_inverts_decode(indices: list[int]) -> None:
    steer, speed = DEFAULT_ACTION_SPACE.decode(np.array(indices))
    assert DEFAULT_ACTION_SPACE.encode_nearest(steer, speed).tolist() == indices


def test_default_action_space() -> None:
    assert len(DEFAULT_ACTION_SPACE) == 10
    assert DEFAULT_ACTION_SPACE.max_speed_mps == 2.0
    assert DEFAULT_ACTION_SPACE.describe() == "discrete, 10 actions: steering -30 to 30 deg, speed 1 to 2 m/s"
    assert parse_action_space(DEFAULT_ACTION_SPACE.to_json()) == DEFAULT_ACTION_SPACE


def test_describe_continuous() -> None:
    assert (
        parse_action_space(CONTINUOUS).describe()
        == "continuous: steering -30 to 30 deg, speed 0.5 to 2.5 m/s"
    )


def test_index_key_tolerated_in_discrete_actions() -> None:
    items = [{**a, "index": i} for i, a in enumerate(DISCRETE)]
    assert parse_action_space(items) == parse_action_space(DISCRETE)


# ------------------------------------------------------------------------------------ metadata files


def test_unknown_top_level_keys_are_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_metadata(tmp_path, preprocess_type="GREY_SCALE", regional_parameters=[1, 2])
    with caplog.at_level(logging.WARNING, logger="sim.action_space"):
        meta = load_model_metadata(path)
    assert len(meta.action_space) == 3
    assert "preprocess_type" in caplog.text and "regional_parameters" in caplog.text


def test_defaults_when_keys_are_absent(tmp_path: Path) -> None:
    path = tmp_path / "model_metadata.json"
    path.write_text(json.dumps({"action_space": DISCRETE}), encoding="utf-8")
    meta = load_model_metadata(path)
    assert meta.action_space_type == "discrete"
    assert meta.training_algorithm == "clipped_ppo"
    assert meta.neural_network == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    assert meta.sensor == ("FRONT_FACING_CAMERA",)


def test_object_form_without_type_is_continuous(tmp_path: Path) -> None:
    path = tmp_path / "model_metadata.json"
    path.write_text(json.dumps({"action_space": CONTINUOUS, "training_algorithm": "sac"}), encoding="utf-8")
    assert load_model_metadata(path).action_space_type == "continuous"


def test_sac_with_continuous_loads(tmp_path: Path) -> None:
    meta = load_model_metadata(
        write_metadata(
            tmp_path, action_space=CONTINUOUS, action_space_type="continuous", training_algorithm="sac"
        )
    )
    assert meta.training_algorithm == "sac"


def test_sac_with_discrete_is_an_error(tmp_path: Path) -> None:
    path = write_metadata(tmp_path, training_algorithm="sac")
    msg = metadata_error(path)
    assert str(path) in msg and "`training_algorithm`" in msg and "continuous" in msg


@pytest.mark.parametrize(
    ("space", "key"),
    [
        (
            {"steering_angle": {"low": 30, "high": -30}, "speed": {"low": 0.5, "high": 2}},
            "action_space.steering_angle",
        ),
        ({"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 2, "high": 2}}, "action_space.speed"),
    ],
)
def test_low_not_below_high(tmp_path: Path, space: dict[str, Any], key: str) -> None:
    path = write_metadata(tmp_path, action_space=space, action_space_type="continuous")
    msg = metadata_error(path)
    assert str(path) in msg and f"`{key}.low` must be below `{key}.high`" in msg


def test_empty_action_list(tmp_path: Path) -> None:
    path = write_metadata(tmp_path, action_space=[])
    msg = metadata_error(path)
    assert str(path) in msg and "`action_space`" in msg and "at least 2" in msg


def test_nan_speed(tmp_path: Path) -> None:
    bad = [dict(a) for a in DISCRETE]
    bad[1]["speed"] = float("nan")  # json.dumps writes NaN, which Python's json reads back
    path = write_metadata(tmp_path, action_space=bad)
    msg = metadata_error(path)
    assert str(path) in msg and "`action_space[1].speed`" in msg and "finite" in msg


@pytest.mark.parametrize(
    ("sensor", "expect"),
    [
        (["LIDAR"], "exactly one camera"),
        ([], "exactly one camera"),
        (["FRONT_FACING_CAMERA", "STEREO_CAMERAS"], "exactly one camera"),
        (["STEREO_CAMERAS", "LIDAR", "SECTOR_LIDAR"], "at most one of"),
        (["FRONT_FACING_CAMERA", "FRONT_FACING_CAMERA"], "twice"),
        (["FRONT_FACING_CAMRA"], "did you mean FRONT_FACING_CAMERA?"),
        ("FRONT_FACING_CAMERA", "valid tuple"),
    ],
)
def test_bad_sensor_combinations(tmp_path: Path, sensor: Any, expect: str) -> None:
    path = write_metadata(tmp_path, sensor=sensor)
    msg = metadata_error(path)
    assert str(path) in msg and "`sensor`" in msg and expect in msg


@pytest.mark.parametrize(
    "sensor", [["STEREO_CAMERAS", "LIDAR"], ["FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR"]]
)
def test_good_sensor_combinations(tmp_path: Path, sensor: list[str]) -> None:
    assert load_model_metadata(write_metadata(tmp_path, sensor=sensor)).sensor == tuple(sensor)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"action_space_type": "continuous"}, "action_space_type"),
        ({"action_space_type": "cont"}, "action_space_type"),
        ({"training_algorithm": "ppo"}, "training_algorithm"),
        ({"neural_network": "RESNET"}, "neural_network"),
        ({"version": True}, "version"),
        ({"lidar_config": [1]}, "lidar_config"),
        (
            {"action_space": [{"steering_angle": 0, "speed": 1}, {"steering_angle": 0, "speed": 1}]},
            "action_space[1]",
        ),
        (
            {"action_space": [{"steering_angle": 61, "speed": 1}, {"steering_angle": 0, "speed": 1}]},
            "action_space[0]",
        ),
        (
            {"action_space": [{"steering_angle": 0, "speed": 0}, {"steering_angle": 5, "speed": 1}]},
            "action_space[0]",
        ),
        (
            {"action_space": [{"steering_angle": 0, "speed": True}, {"steering_angle": 5, "speed": 1}]},
            "action_space",
        ),
        (
            {"action_space": [{"steering_angle": 0}, {"steering_angle": 5, "speed": 1}]},
            "action_space[0].speed",
        ),
        ({"action_space": "fast"}, "action_space"),
    ],
)
def test_wrong_values_name_file_and_key(tmp_path: Path, fields: dict[str, Any], key: str) -> None:
    path = write_metadata(tmp_path, **fields)
    msg = metadata_error(path)
    assert str(path) in msg and f"`{key}" in msg


def test_continuous_unknown_key_suggests(tmp_path: Path) -> None:
    space = {"steering": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 2}}
    msg = metadata_error(write_metadata(tmp_path, action_space=space, action_space_type="continuous"))
    assert "unknown key `action_space.steering` (did you mean `steering_angle`?)" in msg


def test_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "model_metadata.json"
    path.write_text('{\n  "action_space": [\n  oops\n]}\n', encoding="utf-8")
    msg = metadata_error(path)
    assert str(path) in msg and "line 3" in msg


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in metadata_error(tmp_path / "absent.json")


def test_parse_action_space_kind_and_source() -> None:
    with pytest.raises(ActionSpaceError, match=r"^run.toml: `action_space_type` is 'continuous'"):
        parse_action_space(DISCRETE, kind="continuous", source="run.toml")
    with pytest.raises(ActionSpaceError, match=r"^action space: `action_space`: expected a list"):
        parse_action_space(42)
