"""`device.policy.OnnxPolicy`: loads real exported models, checks them against the car, refuses clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from contracts.model_card import load_card, sha256_file
from device.errors import DeviceError, ModelError, ModelMismatchError
from device.policy import OnnxPolicy
from firmware_configs import load_car
from tests.export_fixtures import exported_camera, exported_state

# One xdist worker runs these tests (--dist loadgroup), so that
# the session's trained and exported models (tests/export_fixtures.py) are built once.
pytestmark = pytest.mark.xdist_group("exported-models")

__all__ = ["exported_camera", "exported_state"]


def _copy(folder: Path, dest: Path) -> Path:
    dest.mkdir()
    for name in ("model.onnx", "model.int8.onnx", "model.json"):
        shutil.copy(folder / name, dest / name)
    return dest


def _rewrite_card(folder: Path, **changes: object) -> None:
    card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = card
        for part in parents:
            node = node[part]
        node[key] = value
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")


def test_camera_model_drives_the_car_it_was_trained_for(exported_camera: Path) -> None:
    car = load_car("deepracer")
    for file in ("model.onnx", "model.int8.onnx"):
        policy = OnnxPolicy(exported_camera / file, car)
        assert policy.input_name == "camera" and policy.input_shape == (1, 1, 120, 160)
        assert policy.input_dtype == np.uint8
        assert policy.sha256 == sha256_file(exported_camera / file)
        assert policy.file.precision == ("int8" if "int8" in file else "fp32")
        frame = np.random.default_rng(0).integers(0, 256, (120, 160), dtype=np.uint8)
        steering_deg, speed_mps = policy.act(frame)
        trained = load_card(exported_camera / "model.json").action_space.deepracer
        assert {"steering_angle": steering_deg, "speed": speed_mps} in trained
        assert policy.act(frame[None, None]) == (steering_deg, speed_mps)  # NCHW as given works too


def test_session_runs_on_one_thread_without_spinning(exported_state: Path) -> None:
    policy = OnnxPolicy(exported_state / "model.onnx")
    options = policy._session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert policy._session.get_providers() == ["CPUExecutionProvider"]


def test_a_model_for_another_camera_refuses_to_load(exported_camera: Path) -> None:
    with pytest.raises(ModelMismatchError) as caught:
        OnnxPolicy(exported_camera / "model.onnx", load_car("donkey-pi"))
    message = str(caught.value)
    assert "model.onnx" in message and "deepracer" in message and "donkey-pi" in message
    assert "z_m: model 0.08" in message and "0.15" in message  # names what differs, with both values
    assert "pitch_deg" in message and "hfov_deg" in message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, DeviceError)


def test_a_camera_of_another_size_refuses_to_load(exported_camera: Path, tmp_path: Path) -> None:
    from contracts.car_file import car_config_from_dict

    car = load_car("deepracer").model_dump()
    car["camera"] = {**car["camera"], "width_px": 320, "height_px": 240}
    with pytest.raises(
        ModelMismatchError, match=r"input shape: model \[1, 1, 120, 160\].*\[1, 1, 240, 320\]"
    ):
        OnnxPolicy(exported_camera / "model.onnx", car_config_from_dict(car))


def test_camera_within_tolerance_loads(exported_camera: Path) -> None:
    from contracts.car_file import car_config_from_dict

    car = load_car("deepracer").model_dump()
    car["camera"] = {**car["camera"], "z_m": car["camera"]["z_m"] + 0.002, "pitch_deg": 15.3}
    car["car"] = {**car["car"], "name": "my-deepracer"}
    OnnxPolicy(exported_camera / "model.onnx", car_config_from_dict(car))  # re-measured mount: same camera


def test_missing_model_and_card(exported_state: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nope\.onnx: no such ONNX model file"):
        OnnxPolicy(tmp_path / "nope.onnx")
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(exported_state / "model.onnx", lone / "model.onnx")
    with pytest.raises(ModelError, match=r"model\.onnx: no model card .*model\.json"):
        OnnxPolicy(lone / "model.onnx")


def test_truncated_model_is_refused_naming_the_file(exported_state: Path, tmp_path: Path) -> None:
    folder = _copy(exported_state, tmp_path / "m")
    data = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"model\.onnx: its sha256 .* is not one .*model\.json lists"):
        OnnxPolicy(folder / "model.onnx")


def test_corrupt_model_whose_card_matches_is_refused_by_the_loader(
    exported_state: Path, tmp_path: Path
) -> None:
    folder = _copy(exported_state, tmp_path / "m")
    data = bytearray((folder / "model.onnx").read_bytes())
    data[: len(data) // 3] = b"\xff" * (len(data) // 3)
    (folder / "model.onnx").write_bytes(bytes(data))
    card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    card["files"][0]["sha256"] = sha256_file(folder / "model.onnx")  # the card vouches for the bad bytes
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match=r"model\.onnx: not a loadable ONNX model"):
        OnnxPolicy(folder / "model.onnx")


def test_a_newer_opset_than_onnxruntime_knows_is_refused_saying_so(
    exported_state: Path, tmp_path: Path
) -> None:
    """An old onnxruntime on a car and a newer model (the int8 MLPs are opset 21): the message names the
    runtime's version and the way out, not a corrupt file."""
    import onnxruntime

    folder = _copy(exported_state, tmp_path / "m")
    model = onnx.load(str(folder / "model.onnx"))
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = 99  # a future opset no onnxruntime knows yet
    onnx.save(model, str(folder / "model.onnx"))
    card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    card["files"][0]["sha256"] = sha256_file(folder / "model.onnx")
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError) as caught:
        OnnxPolicy(folder / "model.onnx")
    text = str(caught.value)
    assert f"onnxruntime ({onnxruntime.__version__}) does not support the model's ONNX opset" in text
    assert "model.onnx (fp32, opset 17)" in text and "corrupt" not in text


def test_invalid_card_names_the_field(exported_state: Path, tmp_path: Path) -> None:
    folder = _copy(exported_state, tmp_path / "m")
    _rewrite_card(folder, observation__dtype="float64")
    with pytest.raises(ModelError, match=r"model\.json: invalid model card: `observation\.dtype`"):
        OnnxPolicy(folder / "model.onnx")
    (folder / "model.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match=r"model\.json: not a readable model card"):
        OnnxPolicy(folder / "model.onnx")


def _graph_error(folder: Path, file: str = "model.onnx") -> str:
    with pytest.raises(ModelError) as caught:
        OnnxPolicy(folder / file)
    message = str(caught.value)
    assert str(folder / file) in message and str(folder / "model.json") in message  # both files named
    assert "the graph does not match its card" in message
    return message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"observation__shape": [1, 12]}, "input shape: card [1, 12], graph [1, 11]"),
        ({"observation__input_name": "obs"}, "input name: card 'obs', graph 'state'"),
        ({"observation__dtype": "uint8"}, "input dtype: card uint8, graph float32"),
        ({"outputs": ["steer", "speed_mps"]}, "outputs: card ['steer', 'speed_mps'], graph ['steering_deg', 'speed_mps']"),
        ({"observation__kind": "lidar"}, 'observation.kind: card "lidar", graph "state"'),
    ],
)  # fmt: skip
def test_card_that_does_not_match_the_graph_says_what_differs(
    exported_state: Path, tmp_path: Path, edit: dict[str, object], expected: str
) -> None:
    folder = _copy(exported_state, tmp_path / "m")
    _rewrite_card(folder, **edit)
    for file in ("model.onnx", "model.int8.onnx"):
        message = _graph_error(folder, file)
        assert expected in message, message


def test_an_edited_action_space_is_named_with_both_values(exported_state: Path, tmp_path: Path) -> None:
    """The graph carries its action table; a card whose actions were edited says which action and field."""
    folder = _copy(exported_state, tmp_path / "m")
    card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    actions = card["action_space"]["deepracer"]
    trained_speed = actions[2]["speed"]
    actions[2]["speed"] = trained_speed + 1.5
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    message = _graph_error(folder)
    assert f"action_space.deepracer[2].speed: card {trained_speed + 1.5}, graph {trained_speed}" in message
    del actions[0]
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    n = len(actions)
    assert f"action_space.deepracer (entries): card {n}, graph {n + 1}" in _graph_error(folder)
    card["action_space"] = {"type": "continuous", "deepracer": {"speed": {"low": 1.0, "high": 2.0}}}
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    assert 'action_space.type: card "continuous", graph "discrete"' in _graph_error(folder)


def test_an_edited_camera_geometry_is_named_with_both_values(exported_camera: Path, tmp_path: Path) -> None:
    folder = _copy(exported_camera, tmp_path / "m")
    trained = load_card(folder / "model.json").observation.camera
    _rewrite_card(folder, observation__camera__z_m=0.15, observation__camera__pitch_deg=trained.pitch_deg + 5)
    message = _graph_error(folder)
    assert f"observation.camera.z_m: card 0.15, graph {trained.z_m}" in message
    assert f"observation.camera.pitch_deg: card {trained.pitch_deg + 5}, graph {trained.pitch_deg}" in message


def test_a_graph_without_the_exports_metadata_is_checked_on_its_input_and_outputs(
    exported_state: Path, tmp_path: Path
) -> None:
    """A graph another tool wrote carries no pitlane metadata: its input and outputs are still compared."""
    folder = _copy(exported_state, tmp_path / "m")
    model = onnx.load(str(folder / "model.onnx"))
    del model.metadata_props[:]
    onnx.save(model, str(folder / "model.onnx"))
    card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    card["files"][0]["sha256"] = sha256_file(folder / "model.onnx")
    card["action_space"]["deepracer"][0]["speed"] = 9.0  # nothing in the graph says otherwise
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    OnnxPolicy(folder / "model.onnx")
    _rewrite_card(folder, observation__shape=[1, 12])
    assert "input shape: card [1, 12], graph [1, 11]" in _graph_error(folder)


def test_wrong_observations_are_refused(exported_state: Path, exported_camera: Path) -> None:
    state = OnnxPolicy(exported_state / "model.onnx")
    with pytest.raises(ModelError, match=r"observation of shape \[12\]; the model takes \[1, 11\]"):
        state.act(np.zeros(12, np.float32))
    steering_deg, speed_mps = state.act(np.zeros(11, np.float64))  # float64 features are cast
    trained = load_card(exported_state / "model.json").action_space.deepracer
    assert {"steering_angle": steering_deg, "speed": speed_mps} in trained
    camera = OnnxPolicy(exported_camera / "model.onnx")
    with pytest.raises(ModelError, match="the model takes uint8 pixels"):
        camera.act(np.zeros((120, 160), np.float32))
