"""The check of an uploaded model before it is queued for a virtual race: a real export passes, and each way an
upload cannot race is refused with a sentence naming the file and the thing that is wrong.

The valid model is the session's export (tests/export_fixtures.py), copied before any change; the broken ONNX
files are tiny graphs built here with onnx.helper."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from contracts.virtual_race import SubmissionLimits, VirtualRaceSpec
from tests.export_fixtures import exported_state
from virtual_circuit.check import check_submission, max_supported_opset, require_submission
from virtual_circuit.errors import SubmissionRejected, VirtualCircuitError

# the session's trained and exported model (tests/export_fixtures.py) is built once.
pytestmark = pytest.mark.xdist_group("exported-models")
__all__ = ["exported_state"]

SPEC = VirtualRaceSpec(track="reinvent_base")


def upload(exported: Path, folder: Path, file: str = "model.onnx") -> tuple[Path, Path]:
    """(model, card): the export's `file` and its model.json, copied into `folder` as an upload."""
    folder.mkdir(parents=True, exist_ok=True)
    model, card = folder / "model.onnx", folder / "model.json"
    shutil.copy(exported / file, model)
    shutil.copy(exported / "model.json", card)
    return model, card


def edit_card(card: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(card.read_text(encoding="utf-8"))
    change(data)
    card.write_text(json.dumps(data), encoding="utf-8")


def tiny_model(
    nodes: list[onnx.NodeProto] | None = None,
    *,
    opset: int = 17,
    initializers: list[onnx.TensorProto] | None = None,
    extra_imports: tuple[tuple[str, int], ...] = (),
) -> onnx.ModelProto:
    """y = f(x), x and y float32 (1, 11); default f: Identity."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 11])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 11])
    graph = helper.make_graph(
        nodes or [helper.make_node("Identity", ["x"], ["y"])],
        "tiny",
        [x],
        [y],
        initializer=initializers or [],
    )
    imports = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_imports)]
    return helper.make_model(graph, opset_imports=imports, ir_version=8)


def weights(name: str) -> onnx.TensorProto:
    """A (1, 11) float32 initializer stored as raw bytes (the form that can move to an external file)."""
    return numpy_helper.from_array(np.full((1, 11), 0.5, dtype=np.float32), name)


# ---------------------------------------------------------------------------------------------- accepted


@pytest.mark.parametrize("file", ["model.onnx", "model.int8.onnx"])
def test_the_exported_model_passes(exported_state: Path, tmp_path: Path, file: str) -> None:
    # the int8 file imports com.microsoft and other domains (onnxruntime's quantiser) without using them
    model, card = upload(exported_state, tmp_path / "up", file)
    assert check_submission(model, card, SPEC) == []
    require_submission(model, card, SPEC)  # raises nothing


def test_a_model_trained_for_another_car_is_refused_even_with_the_same_sensor(
    exported_state: Path, tmp_path: Path
) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    # trained on `deepracer`; donkey-pi has a sensor the state model fits and room for its actions, but every
    # submission of a race drives the race's car
    problems = check_submission(model, card, SPEC.model_copy(update={"car": "donkey-pi"}))
    assert problems == [
        f"{card}: trained for car `deepracer`; this race drives `donkey-pi`: train with `--car donkey-pi` and export again"
    ]


# ---------------------------------------------------------------------------------------------- the .onnx


def test_an_upload_over_the_race_limit_is_refused_with_both_sizes(
    exported_state: Path, tmp_path: Path
) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    spec = SPEC.model_copy(update={"limits": SubmissionLimits(max_upload_bytes=1_000)})
    problems = check_submission(model, card, spec)
    size_bytes = model.stat().st_size
    assert problems[0].startswith(f"{model}: ")
    assert f"{size_bytes / 1e6:.3g} MB ({size_bytes:,} bytes)" in problems[0]
    assert "limit of 0.001 MB (1,000 bytes)" in problems[0]
    assert not any("does not list this file" in p for p in problems)  # the oversized file is not read


def test_a_missing_model_file_is_named(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    model.unlink()
    assert check_submission(model, card, SPEC) == [
        f"{model}: no such file (expected the exported .onnx model)"
    ]


def test_random_bytes_are_not_an_onnx_model(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    model.write_bytes(random.Random(0).randbytes(4096))
    problems = check_submission(model, card, SPEC)
    assert any(p.startswith(f"{model}: not an ONNX model (") for p in problems), problems


def test_an_empty_file_is_not_an_onnx_model(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    model.write_bytes(b"")  # protobuf parses it as an empty ModelProto
    problems = check_submission(model, card, SPEC)
    assert any(p.startswith(f"{model}: not an ONNX model (no IR version or no graph)") for p in problems)


def test_weights_in_an_external_file_are_refused(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    add = helper.make_node("Add", ["x", "w"], ["y"])
    onnx.save_model(
        tiny_model([add], initializers=[weights("w")]),
        str(model),
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (model.parent / "weights.bin").is_file()
    problems = check_submission(model, card, SPEC)
    assert any(p.startswith(f"{model}: tensor `w`") and "`weights.bin`" in p for p in problems), problems


def test_external_data_inside_a_subgraph_is_refused(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    hidden = weights("branch_w")
    onnx.external_data_helper.set_external_data(hidden, location="../../secrets.bin")
    hidden.ClearField("raw_data")
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 11])
    branch = helper.make_graph([helper.make_node("Add", ["x", "branch_w"], ["y"])], "b", [], [out], [hidden])
    plain = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "p", [], [out])
    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
    nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=plain)]
    onnx.save_model(tiny_model(nodes, initializers=[cond]), str(model))
    problems = check_submission(model, card, SPEC)
    assert any("tensor `branch_w`" in p and "`../../secrets.bin`" in p for p in problems), problems


def test_a_custom_operator_domain_is_refused_naming_the_op(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    custom = helper.make_node("Speedy", ["x"], ["y"], domain="com.example")
    onnx.save_model(tiny_model([custom], extra_imports=(("com.example", 1),)), str(model))
    problems = check_submission(model, card, SPEC)
    assert any(p.startswith(f"{model}: custom operators com.example::Speedy;") for p in problems), problems


def test_an_opset_newer_than_onnxruntime_is_refused_naming_both(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    supported = max_supported_opset()
    assert supported >= 21  # the int8 exports (16-bit activations) are opset 21
    onnx.save_model(tiny_model(opset=supported + 1), str(model))
    problems = check_submission(model, card, SPEC)
    expected = f"{model}: ONNX opset {supported + 1} is newer than this race's onnxruntime loads (at most opset {supported})"
    assert any(p.startswith(expected) for p in problems), problems


# ---------------------------------------------------------------------------------------------- the card


def test_a_missing_card_is_refused(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    card.unlink()
    problems = check_submission(model, card, SPEC)
    assert problems == [f"{card}: no model card (every exported model has a model.json beside it)"]


def test_a_card_lying_about_the_input_shape_is_refused(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    edit_card(card, lambda c: c["observation"].update(shape=[1, 12]))
    problems = check_submission(model, card, SPEC)
    assert problems == [
        f"{model}: the graph does not match its card {card}: input shape: card [1, 12], graph [1, 11]"
    ]


def test_a_file_the_card_does_not_list_is_refused(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    edit_card(card, lambda c: [f.update(sha256="0" * 64) for f in c["files"]])
    problems = check_submission(model, card, SPEC)
    assert len(problems) == 1 and problems[0].startswith(
        f"{card}: the card does not list this file model.onnx"
    )


def test_an_observation_kind_the_race_does_not_allow_is_refused(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    spec = SPEC.model_copy(update={"observation_kinds": ("camera", "lidar")})
    problems = check_submission(model, card, spec)
    assert problems == [
        f"{card}: observation kind `state` is not allowed in this race (allowed: camera, lidar)"
    ]


def test_a_camera_model_whose_camera_the_race_car_lacks_is_refused(
    exported_state: Path, tmp_path: Path
) -> None:
    from contracts.model_card import CameraGeometry
    from firmware_configs import load_car

    model, card = upload(exported_state, tmp_path / "up")
    geometry = CameraGeometry.from_camera(load_car("deepracer").camera).model_dump()
    camera = {"kind": "camera", "shape": [1, 1, 120, 160], "dtype": "uint8", "camera": geometry}
    edit_card(card, lambda c: c["observation"].update(camera))
    problems = check_submission(model, card, SPEC.model_copy(update={"car": "donkey-pi"}))
    refusal = f"{card}: trained for car `deepracer` (camera [1, 1, 120, 160]), which does not fit this race's car `donkey-pi`: "
    assert any(p.startswith(refusal + "z_m: model 0.08") for p in problems), problems


# ---------------------------------------------------------------------------------------------- actions


def test_a_discrete_action_beyond_the_race_car_is_refused_naming_it(
    exported_state: Path, tmp_path: Path
) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    edit_card(card, lambda c: c["action_space"]["deepracer"][2].update(steering_angle=35.0, speed=6.0))
    problems = check_submission(model, card, SPEC)
    action = f"{card}: action_space: action 2 {{steering_angle: 35.0, speed: 6.0}}: "
    assert action + "steering_angle 35 deg is beyond race car `deepracer`'s ±30 deg" in problems
    assert action + "speed 6 m/s is outside race car `deepracer`'s range: above 0, at most 4 m/s" in problems
    assert not any("action 1 " in p or "action 3 " in p for p in problems)


def test_a_continuous_range_beyond_the_race_car_is_refused_naming_its_end(
    exported_state: Path, tmp_path: Path
) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    space = {"steering_angle": {"low": -40.0, "high": 20.0}, "speed": {"low": 0.0, "high": 3.0}}
    edit_card(card, lambda c: c.update(action_space={"type": "continuous", "deepracer": space}))
    problems = [p for p in check_submission(model, card, SPEC) if p.startswith(f"{card}: action_space: ")]
    assert [p.removeprefix(f"{card}: action_space: ").split(":")[0] for p in problems] == [
        "continuous steering_angle.low",
        "continuous speed.low",
    ]


def test_require_submission_raises_with_every_reason(exported_state: Path, tmp_path: Path) -> None:
    model, card = upload(exported_state, tmp_path / "up")
    spec = SPEC.model_copy(update={"observation_kinds": ("lidar",), "car": "f1tenth-jetson"})  # ±24 deg
    with pytest.raises(SubmissionRejected) as caught:
        require_submission(model, card, spec)
    assert isinstance(caught.value, VirtualCircuitError) and isinstance(caught.value, ValueError)
    assert caught.value.problems == check_submission(model, card, spec)
    assert len(caught.value.problems) == 4  # the kind, the car, and actions 0 and 4 (±25 deg)
