"""`OnnxPolicy`: an exported model (ONNX + its model card) driving one car, with ONNX Runtime only.

    policy = OnnxPolicy("out/model.int8.onnx", load_car("deepracer"))
    steering_deg, speed_mps = policy.act(frame)      # frame: uint8 (120, 160) as the camera gives it

Loading checks, in order, and raises `device.errors.ModelError` (or `ModelMismatchError`) naming the file:
the model file exists; its card (`model.json` beside it unless `card_path` is given) is valid; the file's
SHA-256 is one the card lists (the file was not changed or swapped since export); the card's observation fits
the car config (sensor kind, input shape, camera geometry within tolerance; `contracts.model_card.card_mismatches`);
ONNX Runtime can load the graph; the graph is the one the card describes (`graph_mismatches`: its input's name,
shape and dtype, its outputs, and the observation and action space the export stamped into the graph's
metadata). A mismatch names each property with the card's value and the graph's, and both files.

The session runs with one intra-op and one inter-op thread, sequential execution and no spinning: on a car's
small CPU the camera, the control loop and MQTT share the cores, and a spinning worker thread would steal
them between frames.

No torch, no gymnasium: this is the car's side.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from contracts.car_file import CarConfig
from contracts.errors import ModelCardError
from contracts.model_card import (
    CARD_FILE,
    OUTPUT_NAMES,
    ModelCard,
    ModelFile,
    card_mismatches,
    load_card,
    sha256_file,
)
from device.errors import ModelError, ModelMismatchError

log = logging.getLogger(__name__)

_ORT_TYPES = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32}
#: the card's essentials the export stamps into the graph's metadata_props (`ModelCard.essentials`), as
#: (metadata key, the card's field as a dotted path, stamped as JSON); each is compared when the graph has it
_STAMPED = (
    ("pitlane.observation.kind", "observation.kind", False),
    ("pitlane.observation.camera", "observation.camera", True),
    ("pitlane.observation.lidar", "observation.lidar", True),
    ("pitlane.action_space", "action_space", True),
)
#: differences listed per stamped property (a 20-action table edited throughout says enough in 5)
_MAX_DIFFS_SHOWN = 5


def session_options() -> Any:
    """ONNX Runtime options for a car: 1 intra-op and 1 inter-op thread, sequential, no spinning, all graph
    optimisations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _ort_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidProtobuf", "InvalidGraph", "InvalidArgument", "NoSuchFile", "NoModel",
             "NotImplemented", "RuntimeException")  # fmt: skip
    return (*(getattr(state, n) for n in names if hasattr(state, n)), RuntimeError, OSError)


def load_session(path: Path) -> Any:
    """An ONNX Runtime CPU session for `path` with `session_options()`; ModelError naming the file."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(
            f"{path}: onnxruntime is not installed: pip install 'pitlane[device]' (or onnxruntime)"
        ) from None
    try:
        return ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    except _ort_errors() as exc:
        detail = " ".join(str(exc).split())[:300]
        if "Opset" in detail:  # ORT's ValidateOpsetForDomain: a newer ONNX opset than this runtime knows
            raise ModelError(
                f"{path}: this onnxruntime ({ort.__version__}) does not support the model's ONNX opset: an int8 "
                "model with 16-bit activations (state, lidar) is opset 21 and needs onnxruntime >= 1.18; "
                f"upgrade onnxruntime, or drive model.onnx (fp32, opset 17) ({detail})"
            ) from None
        raise ModelError(f"{path}: not a loadable ONNX model (corrupt or truncated?): {detail}") from None


class OnnxPolicy:
    """One exported model for one car: `act(obs) -> (steering_deg, speed_mps)`.

    Attributes: `card` (ModelCard), `file` (its ModelFile entry: precision, sha256), `sha256` (hex of the
    .onnx), `input_name`, `input_shape` (e.g. (1, 1, 120, 160)), `input_dtype` (np.uint8 or np.float32).
    """

    def __init__(
        self, model_path: str | Path, car: CarConfig | None = None, *, card_path: str | Path | None = None
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"{path}: no such ONNX model file")
        self.path = path
        card_file = Path(card_path) if card_path is not None else path.with_name(CARD_FILE)
        if not card_file.is_file():
            raise ModelError(
                f"{path}: no model card {card_file} (`pitlane export` writes a model.json beside each ONNX model)"
            )
        self.card_path = card_file
        try:
            self.card: ModelCard = load_card(card_file)
        except ModelCardError as exc:
            # the car runtime reports every unusable model (ONNX file or its card) as one ModelError
            raise ModelError(str(exc)) from None
        self.sha256: str = sha256_file(path)
        self.file: ModelFile = self._check_hash(card_file)
        if car is not None:
            self._check_car(car)
        self._session = load_session(path)
        self._check_graph()
        self._outputs = list(OUTPUT_NAMES)
        self._feed: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ checks

    def _check_hash(self, card_file: Path) -> ModelFile:
        entry = self.card.file_with_sha256(self.sha256)
        if entry is None:
            listed = ", ".join(f"{f.file} {f.sha256[:12]}" for f in self.card.files) or "none"
            raise ModelError(
                f"{self.path}: its sha256 {self.sha256[:12]}... is not one {card_file} lists ({listed}): the "
                "file was changed, truncated or belongs to another export"
            )
        if entry.file != self.path.name:
            log.info("%s is %s of its card (renamed)", self.path, entry.file)
        return entry

    def _check_car(self, car: CarConfig) -> None:
        diffs = card_mismatches(self.card, car)
        if diffs:
            raise ModelMismatchError(
                f"{self.path}: trained for car `{self.card.car}` ({self.card.observation.kind} "
                f"{list(self.card.observation.shape)}), which does not fit car `{car.car.name}`: "
                + "; ".join(diffs)
            )
        if self.card.car != car.car.name:
            log.info(
                "%s: trained for car %s, driving %s (same sensor)", self.path, self.card.car, car.car.name
            )
        if self.card.observation.simulator_only:
            log.warning(
                "%s: observation `%s` exists only in the simulator; a real car cannot drive it",
                self.path,
                self.card.observation.kind,
            )

    def _check_graph(self) -> None:
        diffs = graph_mismatches(self.card, self._session)
        if diffs:
            raise ModelError(
                f"{self.path}: the graph does not match its card {self.card_path}: " + "; ".join(diffs)
            )
        graph_in = self._session.get_inputs()[0]
        self.input_name: str = graph_in.name
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in graph_in.shape)
        self.input_dtype: np.dtype[Any] = np.dtype(_ORT_TYPES[graph_in.type])

    # ------------------------------------------------------------------ driving

    def prepare(self, obs: np.ndarray) -> np.ndarray:
        """One observation as the sensor gives it -> the graph input (batch of one).

        Camera: uint8 (H, W), (H, W, C) (channels last, as the simulator's stereo frames) or already
        (1, C, H, W); lidar / state: float (N,) in metres / features. ModelError for another dtype or size.
        """
        x = np.asarray(obs)
        if self.input_dtype == np.uint8:
            if x.dtype != np.uint8:
                raise ModelError(
                    f"{self.path}: observation dtype {x.dtype}; the model takes uint8 pixels "
                    f"{list(self.input_shape)} (0..255, not normalised)"
                )
            channels = self.input_shape[1]
            if channels > 1 and x.ndim == 3 and x.shape[-1] == channels:
                x = np.ascontiguousarray(x.transpose(2, 0, 1))
        elif x.dtype != np.float32:
            x = x.astype(np.float32)
        if x.size != math.prod(self.input_shape):
            raise ModelError(
                f"{self.path}: observation of shape {list(x.shape)}; the model takes {list(self.input_shape)}"
            )
        return x.reshape(self.input_shape)

    def act(self, obs: np.ndarray) -> tuple[float, float]:
        """(steering_deg, speed_mps) for ONE observation (see `prepare`): the graph's final commands."""
        self._feed[self.input_name] = self.prepare(obs)
        steering, speed = self._session.run(self._outputs, self._feed)
        return float(steering.reshape(-1)[0]), float(speed.reshape(-1)[0])

    def __repr__(self) -> str:
        return f"OnnxPolicy({self.path}, {self.file.precision}, {self.card.observation.kind})"


def graph_mismatches(card: ModelCard, session: Any) -> list[str]:
    """What differs between `card` and the ONNX Runtime `session`'s graph, one "property: card X, graph Y"
    per difference (empty: the graph is the card's). Compared: the one input's name, shape and dtype; the
    outputs (which must also be the ones this runtime reads, OUTPUT_NAMES); and, when the graph carries the
    export's metadata, the observation kind, camera or lidar geometry and the action space."""
    obs = card.observation
    inputs = session.get_inputs()
    if len(inputs) != 1:
        return [f"inputs: card one ({obs.input_name}), graph {len(inputs)} ({[i.name for i in inputs]})"]
    graph_in = inputs[0]
    diffs = []
    if graph_in.name != obs.input_name:
        diffs.append(f"input name: card {obs.input_name!r}, graph {graph_in.name!r}")
    if list(graph_in.shape) != list(obs.shape):
        diffs.append(f"input shape: card {list(obs.shape)}, graph {list(graph_in.shape)}")
    graph_dtype = _ORT_TYPES.get(graph_in.type)
    if graph_dtype is None or np.dtype(graph_dtype) != np.dtype(obs.dtype):
        shown = np.dtype(graph_dtype).name if graph_dtype is not None else graph_in.type
        diffs.append(f"input dtype: card {obs.dtype}, graph {shown}")
    outputs = [o.name for o in session.get_outputs()]
    if outputs[: len(card.outputs)] != list(card.outputs):
        diffs.append(f"outputs: card {list(card.outputs)}, graph {outputs}")
    elif list(card.outputs[: len(OUTPUT_NAMES)]) != list(OUTPUT_NAMES):
        diffs.append(f"outputs: card {list(card.outputs)}, this runtime reads {list(OUTPUT_NAMES)}")
    stamped = session.get_modelmeta().custom_metadata_map
    card_data = card.model_dump(mode="json")
    for key, field, is_json in _STAMPED:
        if key in stamped:
            diffs.extend(_stamped_diffs(field, _dotted(card_data, field), stamped[key], is_json))
    return diffs


def _dotted(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


def _stamped_diffs(field: str, card_value: Any, stamped: str, is_json: bool) -> list[str]:
    """`field`'s differences between the card and the graph's metadata (a JSON document or plain text)."""
    try:
        graph_value = json.loads(stamped) if is_json else stamped
    except json.JSONDecodeError:
        return [f"{field}: the graph's metadata is not JSON ({stamped[:80]!r})"]
    diffs = [
        f"{path}: card {_shown(a)}, graph {_shown(b)}"
        for path, a, b in _leaf_diffs(field, card_value, graph_value)
    ]
    if len(diffs) > _MAX_DIFFS_SHOWN:
        diffs = [*diffs[:_MAX_DIFFS_SHOWN], f"{field}: {len(diffs) - _MAX_DIFFS_SHOWN} more differences"]
    return diffs


def _leaf_diffs(path: str, a: Any, b: Any) -> Iterator[tuple[str, Any, Any]]:
    """(dotted path, a's value, b's value) of each place two JSON values differ (numbers compared as
    numbers: 2 equals 2.0)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            yield from _leaf_diffs(f"{path}.{key}", a.get(key), b.get(key))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _leaf_diffs(f"{path}[{i}]", x, y)
    elif isinstance(a, list) and isinstance(b, list):
        yield f"{path} (entries)", len(a), len(b)
    elif a != b:
        yield path, a, b


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


__all__ = ["OnnxPolicy", "graph_mismatches", "load_session", "session_options"]
