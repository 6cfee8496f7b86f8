"""`trainer.export`: tiny trained policies of each observation kind exported to ONNX, checked as files, as
graphs (onnx checker, a second runtime), against the torch policy and SB3's own predict, and their parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from contracts.model_card import load_card, sha256_file
from device.policy import OnnxPolicy, load_session
from firmware_configs import load_car

# One xdist worker runs these tests (--dist loadgroup), so that
# the session's trained and exported models (tests/export_fixtures.py) are built once.
pytestmark = pytest.mark.xdist_group("exported-models")

KINDS = {
    "state": ("state", [1, 11], onnx.TensorProto.FLOAT),
    "camera": ("camera", [1, 1, 120, 160], onnx.TensorProto.UINT8),
    "lidar": ("lidar", [1, 64], onnx.TensorProto.FLOAT),
}


@pytest.fixture(params=sorted(KINDS))
def exported(request: pytest.FixtureRequest) -> tuple[str, Path]:
    return request.param, request.getfixturevalue(f"exported_{request.param}")


def _dims(value_info: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_graph_input_is_the_sensor_and_outputs_are_commands(exported: tuple[str, Path]) -> None:
    kind, folder = exported
    name, shape, elem = KINDS[kind]
    for file in ("model.onnx", "model.int8.onnx"):
        model = onnx.load(str(folder / file))
        onnx.checker.check_model(model, full_check=True)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
        (graph_in,) = model.graph.input
        assert graph_in.name == name and _dims(graph_in) == shape
        assert graph_in.type.tensor_type.elem_type == elem
        assert [o.name for o in model.graph.output] == ["steering_deg", "speed_mps"]
        props = {p.key: p.value for p in model.metadata_props}
        assert props["pitlane.observation.kind"] == kind
        assert json.loads(props["pitlane.observation.shape"]) == shape
        assert props["pitlane.car"] == "deepracer"
        assert props["pitlane.precision"] == ("int8" if "int8" in file else "fp32")
        assert json.loads(props["pitlane.action_space"])["type"] == "discrete"


def test_card_describes_the_files(exported: tuple[str, Path]) -> None:
    kind, folder = exported
    card = load_card(folder / "model.json")
    assert card.observation.kind == kind and list(card.observation.shape) == KINDS[kind][1]
    assert {f.file: f.precision for f in card.files} == {"model.onnx": "fp32", "model.int8.onnx": "int8"}
    for entry in card.files:
        assert entry.sha256 == sha256_file(folder / entry.file)
    assert card.tracks == ("reinvent_base",) and card.car == "deepracer"
    assert card.training.steps > 0 and card.training.algorithm == "ppo"
    assert card.evaluation is not None and "best_lap_s" in card.evaluation
    if kind == "camera":
        assert card.observation.camera is not None
        assert card.observation.camera.z_m == load_car("deepracer").camera.z_m
        assert card.training.network == "cnn_shallow"
    if kind == "lidar":
        assert card.observation.lidar is not None and card.observation.lidar.n_beams == 64
        assert card.observation.lidar.max_range_m == pytest.approx(1.0)


def test_the_card_says_how_the_car_file_copes_on_tracks_it_never_saw(exported: tuple[str, Path]) -> None:
    """The robustness card: the int8 file (what a car runs) driven under eval-shift on a held-out DeepRacer
    track (the fixture's settings: 2 seeds x 1 lap; a camera builds its tables per track), clean laps counted;
    parity.json keeps every seed."""
    _kind, folder = exported
    card = load_card(folder / "model.json")
    robust = card.robustness
    assert (
        robust is not None and robust.randomization == "eval-shift" and robust.model_file == "model.int8.onnx"
    )
    assert [t.track for t in robust.tracks] == ["reInvent2019_track"] and robust.held_out
    assert (robust.seeds, robust.laps_per_seed) == (2, 1)
    assert all(t.attempted_laps == 2 and 0 <= t.clean_laps <= 2 for t in robust.tracks)
    assert robust.completion == pytest.approx(robust.tracks[0].clean_laps / 2)
    assert robust.completion <= robust.completion_with_resets
    assert robust.verdict in ("ready", "fragile", "not ready")
    rows = json.loads((folder / "parity.json").read_text(encoding="utf-8"))["robustness"]["runs"]
    assert len(rows) == 2 and {r["track"] for r in rows} == {"reInvent2019_track"}
    assert len({r["perturbation"]["steering_trim_deg"] for r in rows}) == 2  # one draw per seed


def test_parity_report_meets_the_thresholds(exported: tuple[str, Path]) -> None:
    _kind, folder = exported
    parity = json.loads((folder / "parity.json").read_text(encoding="utf-8"))
    torch_onnx = parity["torch_vs_onnx_fp32"]
    assert torch_onnx["max_abs_diff_head_output"] < 1e-4
    assert torch_onnx["max_abs_diff_steering_deg"] == 0.0 and torch_onnx["max_abs_diff_speed_mps"] == 0.0
    assert parity["checkpoint_vs_fp32"]["agreement"] == 1.0  # what SB3's predict did, the graph does
    int8 = parity["int8_vs_fp32"]
    # A few seconds of training leave near-tied logits that int8 rounding may flip on a frame or two: the
    # 99.9 % target is for trained policies (see the report's numbers); a broken quantisation (a wrong scale,
    # a dropped layer) agrees on far fewer frames than this.
    assert int8["frames"] == 300 and int8["agreement"] >= 0.98, int8
    # discrete: the target is on the frames that are not near-ties (fp32 top-2 gap >= 1 % of the median)
    assert int8["meets_target"] == (int8.get("agreement_non_tied", int8["agreement"]) >= 0.999)
    if parity["checkpoint_vs_fp32"]["criterion"] == "same action":  # discrete: the near-tie diagnosis
        assert int8["fp32_logit_gap_median"] > 0
        assert (int8["fp32_logit_gap_max_where_disagreeing"] is None) == (int8["disagreeing_frames"] == 0)
    closed = parity["closed_loop"]
    assert set(closed) >= {"checkpoint", "fp32", "int8", "fp32_vs_checkpoint", "int8_vs_fp32"}
    # the checkpoint and the fp32 graph take the same actions, so they drive the same laps
    assert closed["fp32"]["lap_times_s"] == closed["checkpoint"]["lap_times_s"]


def test_agreement_criteria() -> None:
    from trainer.export.parity import agreement, lap_ratio

    ref = np.array([[15.0, 2.0]] * 1000)
    other = ref.copy()
    other[0] = [-15.0, 2.0]
    discrete = agreement(ref, other, discrete=True)
    assert discrete["agreement"] == 0.999 and discrete["meets_target"] and discrete["disagreeing_frames"] == 1
    assert discrete["distinct_reference_actions"] == 1 and "says little" in discrete["note"]
    other[1] = [15.0, 1.0]
    assert not agreement(ref, other, discrete=True)["meets_target"]
    close = ref + np.array([0.9, 0.04])
    assert agreement(ref, close, discrete=False)["agreement"] == 1.0
    assert agreement(ref, ref + np.array([1.1, 0.0]), discrete=False)["agreement"] == 0.0
    assert lap_ratio({"best_lap_s": 10.1}, {"best_lap_s": 10.0})["within_2_percent"]
    assert not lap_ratio({"best_lap_s": 10.3}, {"best_lap_s": 10.0})["within_2_percent"]
    assert lap_ratio({"best_lap_s": None}, {"best_lap_s": 10.0})["within_2_percent"] is None


def test_camera_pixels_feed_the_first_int8_conv(exported_camera: Path) -> None:
    """The rewired int8 graph (trainer/export/quantize.py feed_pixels): the first conv's DequantizeLinear
    reads the uint8 input, rearranged space-to-depth (trainer/export/graph.py: cnn_shallow's 8x8/4 conv as
    a 2x2/1 conv on 16 channels) by shape-only ops; no float pixel path is left."""
    model = onnx.load(str(exported_camera / "model.int8.onnx"))
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    first = next(n for n in model.graph.node if n.op_type == "Conv")
    dq = producers[first.input[0]]
    assert dq.op_type == "DequantizeLinear" and inits[dq.input[2]].data_type == onnx.TensorProto.UINT8
    path, tensor = [], dq.input[0]
    while tensor != "camera":
        path.append(producers[tensor].op_type)
        tensor = producers[tensor].input[0]
    assert set(path) <= {"Reshape", "Transpose"}, path
    assert not {"Cast", "Div"} & {n.op_type for n in model.graph.node}
    weight = inits[producers[first.input[1]].input[0]]
    assert list(weight.dims) == [32, 16, 2, 2]
    assert next(a.ints for a in first.attribute if a.name == "strides") == [1, 1]
    # exactness of the identity it rests on: quantise(p / 255) == p for every pixel value
    from trainer.export.quantize import PIXEL_SCALE

    pixels = np.arange(256, dtype=np.float32)
    assert np.array_equal(np.round((pixels / np.float32(255.0)) / np.float32(PIXEL_SCALE)), pixels)


def test_int8_is_static_qdq_with_per_channel_weights(exported_camera: Path) -> None:
    model = onnx.load(str(exported_camera / "model.int8.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert "DynamicQuantizeLinear" not in ops and "ConvInteger" not in ops and "MatMulInteger" not in ops
    inits = {i.name: i for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 3  # cnn_shallow's three convs, all fed by dequantised int8 weights
    producers = {o: n for n in model.graph.node for o in n.output}
    for conv in convs:
        weight_dq = producers[conv.input[1]]
        assert weight_dq.op_type == "DequantizeLinear"
        weight = inits[weight_dq.input[0]]
        assert weight.data_type == onnx.TensorProto.INT8
        scale = inits[weight_dq.input[1]]
        assert scale.dims == [weight.dims[0]]  # one scale per output channel
    # the action head and the ReLU feeding it stay float: the head reads float, not a dequantised uint8
    head = [n for n in model.graph.node if n.op_type == "Gemm"][-1]
    assert head.input[1] in inits and inits[head.input[1]].data_type == onnx.TensorProto.FLOAT
    feeder = producers[head.input[0]]
    assert feeder.op_type == "Relu" and producers[feeder.input[0]].op_type == "DequantizeLinear"


def test_int8_activation_type_follows_the_input_and_the_card_says_it(exported: tuple[str, Path]) -> None:
    """Camera CNNs: uint8 activations (int8 arithmetic is the point); feature-vector MLPs: uint16 (8-bit
    rounding of tanh outputs flipped near-tied actions; trainer/export/quantize.py). The card's entry says
    which, and the opset it records is the file's own (16-bit QuantizeLinear needs opset 21)."""
    kind, folder = exported
    model = onnx.load(str(folder / "model.int8.onnx"))
    inits = {i.name: i for i in model.graph.initializer}
    zero_point_types = {
        inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear"
    }
    expected = "uint8" if kind == "camera" else "uint16"
    onnx_type = {"uint8": onnx.TensorProto.UINT8, "uint16": onnx.TensorProto.UINT16}[expected]
    assert zero_point_types == {onnx_type}
    entry = {f.file: f for f in load_card(folder / "model.json").files}["model.int8.onnx"]
    assert entry.activations == expected
    file_opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert entry.opset == file_opset and file_opset >= (21 if expected == "uint16" else 17)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["pitlane.activations"] == expected


def _frames(folder: Path, n: int) -> list[np.ndarray]:
    """Observations the exported policy sees while driving (recorded by the export's own driving code)."""
    from sim.drivers import onnx_driver
    from trainer.config import load_run_dir_config
    from trainer.export.frames import record_frames

    config = load_run_dir_config(folder / "run", portable=True)
    policy = OnnxPolicy(folder / "model.onnx")
    return list(
        record_frames(onnx_driver(policy, config.resolved_action_space()), config, n_frames=n, seed=5)
    )


def test_reference_evaluator_agrees_with_onnxruntime(exported: tuple[str, Path]) -> None:
    kind, folder = exported
    path = folder / "model.onnx"
    reference = ReferenceEvaluator(str(path))
    session = load_session(path)
    policy = OnnxPolicy(path)
    frames = _frames(folder, 40)[:: 10 if kind == "camera" else 4]
    for frame in frames:
        x = policy.prepare(frame)
        ref = reference.run(None, {policy.input_name: x})
        ort = session.run(None, {policy.input_name: x})
        for a, b in zip(ref, ort, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_sb3_predict_and_the_graph_take_the_same_actions(exported_lidar: Path) -> None:
    from trainer.export.pipeline import load_run

    model, config, _, _ = load_run(exported_lidar / "run")
    policy = OnnxPolicy(exported_lidar / "model.onnx")
    space = config.resolved_action_space()
    frames = _frames(exported_lidar, 60)
    actions = np.array([model.predict(f, deterministic=True)[0] for f in frames])
    steer, speed = space.decode(actions)
    got = np.array([policy.act(f) for f in frames])
    np.testing.assert_array_equal(got[:, 0], steer.astype(np.float32))
    np.testing.assert_array_equal(got[:, 1], speed.astype(np.float32))
    assert len(set(actions.tolist())) >= 1


def test_continuous_actions_are_clipped_and_scaled_in_the_graph(exported_continuous: Path) -> None:
    from trainer.export.pipeline import load_run

    model, config, _, _ = load_run(exported_continuous / "run")
    policy = OnnxPolicy(exported_continuous / "model.onnx")
    space = config.resolved_action_space()
    assert space.kind == "continuous"
    rng = np.random.default_rng(0)
    # beyond the features' usual values too: the mean action leaves [-1, 1] and must be clipped
    frames = list(_frames(exported_continuous, 30)) + [
        rng.normal(0, 5, 11).astype(np.float32) for _ in range(30)
    ]
    for frame in frames:
        steer, speed = space.decode(model.predict(frame, deterministic=True)[0])
        got = policy.act(frame)
        assert got[0] == pytest.approx(steer[0], abs=1e-4) and got[1] == pytest.approx(speed[0], abs=1e-5)
        assert -25.0 <= got[0] <= 25.0 and 1.0 <= got[1] <= 3.0
    parity = json.loads((exported_continuous / "parity.json").read_text(encoding="utf-8"))
    assert parity["int8_vs_fp32"]["criterion"].startswith("|d steering| <= 1")


def test_combined_observations_are_refused() -> None:
    from trainer.export.errors import ExportError
    from trainer.export.observation import single_kind

    with pytest.raises(ExportError, match="one sensor per model"):
        single_kind("camera+lidar")


def test_near_ties_reports_the_logit_gap_where_int8_disagrees() -> None:
    import numpy as np

    from trainer.export import parity

    logits = np.array([[0.0, 2.0, 1.0], [0.0, 1.002, 1.0], [3.0, 0.0, 0.5]])
    fp32 = np.array([[0.0, 1.0], [5.0, 1.0], [-5.0, 1.0]])
    int8 = np.array([[0.0, 1.0], [0.0, 1.0], [-5.0, 1.0]])  # flips the second frame only
    disagree = parity.disagreeing(fp32, int8)
    assert disagree.tolist() == [False, True, False]
    ties = parity.near_ties(logits, disagree)
    assert ties["fp32_logit_gap_max_where_disagreeing"] == pytest.approx(0.002)
    assert ties["fp32_logit_gap_median"] == pytest.approx(1.0)
    assert ties["frames_with_fp32_logit_gap_below_0.01"] == 1


@pytest.mark.parametrize("network", ["cnn_shallow", "cnn", "cnn_deep"])
def test_space_to_depth_stem_is_the_same_function(network: str) -> None:
    """`with_space_to_depth`: the first strided conv on s x s pixel blocks gives the plain actor's logits
    (float rounding only) on simulator frames, for each DeepRacer CNN (strides 4, 2, 4)."""
    import torch

    from bench.inference import random_actor, sim_frames
    from trainer.export.graph import SpaceToDepthCamera, with_space_to_depth

    plain, *_ = random_actor(network, space_to_depth=False)
    fast = with_space_to_depth(plain)
    assert isinstance(fast.features, SpaceToDepthCamera) and not isinstance(
        plain.features, SpaceToDepthCamera
    )
    frames = torch.as_tensor(sim_frames("camera", 40)).reshape(40, 1, 1, 120, 160)
    plain.raw = fast.raw = True
    with torch.no_grad():
        plain_logits = [plain(x)[2] for x in frames]
        gap = max(float((p - fast(x)[2]).abs().max()) for p, x in zip(plain_logits, frames, strict=True))
        scale = max(float(p.abs().max()) for p in plain_logits)
    assert gap <= 1e-5 * max(1.0, scale), (gap, scale)
    assert with_space_to_depth(fast) is fast  # applied once


def test_space_to_depth_leaves_other_inputs_alone() -> None:
    from bench.inference import random_actor
    from trainer.export.graph import with_space_to_depth

    mlp, *_ = random_actor("mlp")
    assert with_space_to_depth(mlp) is mlp


def test_only_the_expected_opset_notice_is_kept_from_the_user(caplog: pytest.LogCaptureFixture) -> None:
    """onnxruntime warns on every A16W8 export that it raised the opset (chosen on purpose, recorded in the card);
    any other warning during quantisation still reaches the user."""
    import logging

    from trainer.export.quantize import _expected_opset_upgrade_unlogged

    notice = (
        "The original model opset version is 17, which does not support 16-bit integer quantization natively."
    )
    with caplog.at_level(logging.WARNING), _expected_opset_upgrade_unlogged():
        logging.warning(notice)
        logging.warning("calibration data has NaN")
    assert [r.getMessage() for r in caplog.records] == ["calibration data has NaN"]
    logging.warning(notice)  # outside an export it is not hidden
    assert caplog.records[-1].getMessage() == notice
