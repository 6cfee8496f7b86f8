"""int8: onnxruntime static quantisation (QDQ format, per-channel int8 weights) calibrated on recorded frames.

Static, never dynamic: dynamic quantisation re-measures activation ranges at every call and leaves Conv in
float; the car's CNNs need calibrated activation scales. Quantised: Conv, MatMul, Gemm and the ReLU /
Flatten between them — with ReLU and Flatten left out, ONNX Runtime dequantises every conv's output to apply
the ReLU in float and quantises it again (cnn_deep int8 measured 0.15-0.24 ms p50 that way, 0.13 ms with
them). Tanh (the state MLP), argmax and the action table stay in float. `quant_pre_process` (shape inference and ORT's graph optimisation) runs first, as onnxruntime's
quantisation guide advises.

Layers kept in float:
- the action head (the last Gemm: logits or the mean action), always: int8 rounding of the logits flips
  near-tied argmaxes, and the head is a few thousand multiply-adds;
- the ReLU between the last int8 layer and the head, so the head reads float (QGemm writes float output):
  measured on a distilled cnn_shallow camera policy, 5,000 closed-loop frames, uint8 rounding of the
  512 middleware outputs flipped 6 near-tied actions (99.88 %, under the 99.9 % target; fp32 top-2 gaps
  <= 0.015 where the median is 4.4), and MinMax, percentile or entropy calibration all gave the same;
  with that ReLU in float, 100 %;
- the first layer when the input is a feature vector (state, lidar): features of different scales (speed in
  m/s beside curvature in 1/m) would share one activation scale. A camera's first conv sees pixels of one
  scale and is a tenth of the CNN's work, so it is quantised.

Activations (`activation_for`): uint8 for camera CNNs, where int8 arithmetic is the point (U8S8 is what x86
VNNI and ARM's dot-product instructions multiply). uint16 for feature-vector MLPs (A16W8: int8 per-channel
weights, 16-bit activations; ONNX opset 21 QuantizeLinear): measured on a trained state policy
(reinvent_base, 300k steps, 5,000 closed-loop frames), 8-bit rounding of the hidden tanh outputs moved the
logits by up to 0.025 and flipped 9 of the 16 frames whose two best logits were within 0.01 (99.82 %
agreement, under the 99.9 % target); with 16-bit activations the logits moved by <= 0.007 and no action
changed (100 %). An MLP is not faster in int8 here (`pitlane bench inference`), so nothing is lost.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trainer.export.errors import ExportError

log = logging.getLogger(__name__)

QUANTISED_OPS = ("Conv", "MatMul", "Gemm", "Relu", "Flatten")
#: the layers (weights) among them
LAYER_OPS = ("Conv", "MatMul", "Gemm")
PIXEL_SCALE = float(np.float32(1.0 / 255.0))


def _reader_base() -> type:
    from onnxruntime.quantization import CalibrationDataReader

    return CalibrationDataReader


class FrameReader(_reader_base()):  # type: ignore[misc]
    """onnxruntime's CalibrationDataReader over recorded observations, one frame per call (batch of one)."""

    def __init__(self, input_name: str, frames: np.ndarray, input_shape: tuple[int, ...], dtype: str) -> None:
        self.input_name = input_name
        self.frames = frames
        self.input_shape = input_shape
        self.dtype = np.dtype(dtype)
        self._it: Iterator[np.ndarray] = iter(())
        self.rewind()

    def rewind(self) -> None:
        self._it = iter(self.frames)

    def get_next(self) -> dict[str, np.ndarray] | None:
        frame = next(self._it, None)
        if frame is None:
            return None
        return {self.input_name: _as_input(frame, self.input_shape, self.dtype)}

    def __len__(self) -> int:
        return len(self.frames)


def _as_input(frame: np.ndarray, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    x = np.asarray(frame)
    if len(shape) == 4 and shape[1] > 1 and x.ndim == 3 and x.shape[-1] == shape[1]:
        x = x.transpose(2, 0, 1)  # stereo (H, W, 2) -> (2, H, W)
    return np.ascontiguousarray(x, dtype=dtype).reshape(shape)


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    reader: FrameReader,
    *,
    activation: str | None = None,
    per_channel: bool = True,
    float_first_layer: bool | None = None,
) -> Path:
    """Write the int8 QDQ model of `fp32_path` to `out_path`, calibrated (MinMax) on `reader`'s frames.

    activation: "uint8" (U8S8), "int8" (S8S8) or "uint16" (A16W8); None: `activation_for` the input.
    float_first_layer: None keeps the first layer in float for feature-vector inputs (not for pixels)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(reader) == 0:
        raise ExportError(f"{fp32_path}: no calibration frames")
    activation = activation or activation_for(reader.dtype)
    if float_first_layer is None:
        float_first_layer = reader.dtype != np.uint8
    with tempfile.TemporaryDirectory(prefix="pitlane-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        exclude = float_layers(pre, first=float_first_layer)
        pixels = pixel_tensor(pre, reader.input_name) if reader.dtype == np.uint8 else None
        pixel_q = {"scale": np.array(PIXEL_SCALE, np.float32), "zero_point": np.array(0, np.uint8)}
        overrides = {pixels[0]: [pixel_q]} if pixels else {}
        with _expected_opset_upgrade_unlogged():
            quantize_static(
                str(pre),
                str(out_path),
                reader,
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTISED_OPS),
                per_channel=per_channel,
                activation_type=getattr(QuantType, _QUANT_TYPES[activation]),
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=exclude,
                extra_options={"CalibTensorRangeSymmetric": False, "TensorQuantOverrides": overrides},
            )
        if pixels is not None:
            feed_pixels(out_path, reader, pixels)
    log.info("int8 model %s (%s activations) calibrated on %d frames; kept in float: %s",
             out_path, activation, len(reader), exclude)  # fmt: skip
    return out_path


class _OpsetUpgradeNotice(logging.Filter):
    """Drops onnxruntime's warning that it raises a model to opset 21 for 16-bit activations: A16W8 is chosen
    on purpose here, the opset the file ends with is recorded in the card, and the parity report verifies the
    quantised model. Every other message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "does not support 16-bit integer quantization natively" not in record.getMessage()


@contextlib.contextmanager
def _expected_opset_upgrade_unlogged() -> Iterator[None]:
    """While quantising: onnxruntime logs through the root logger, so the filter sits there."""
    notice = _OpsetUpgradeNotice()
    root = logging.getLogger()
    root.addFilter(notice)
    try:
        yield
    finally:
        root.removeFilter(notice)


#: activation -> onnxruntime.quantization.QuantType member
_QUANT_TYPES = {"uint8": "QUInt8", "int8": "QInt8", "uint16": "QUInt16"}


def activation_for(input_dtype: np.dtype[Any] | str) -> str:
    """The activation type of an int8 model by its input: uint8 for pixels (CNN), uint16 for feature vectors
    (see the module docstring)."""
    return "uint8" if np.dtype(input_dtype) == np.uint8 else "uint16"


def float_layers(model_path: Path, *, first: bool) -> list[str]:
    """Names of the quantisable nodes kept in float: the last layer (the action head), the ReLU / Flatten
    nodes that feed it (so the head reads its input in float), and, with `first`, the first layer (nodes
    are in topological order in an exported graph)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    layers = [n for n in graph.node if n.op_type in LAYER_OPS]
    if not layers:
        return []
    head = layers[-1]
    keep = [head.name]
    producers = {o: n for n in graph.node for o in n.output}
    feeder = producers.get(head.input[0])
    while feeder is not None and feeder.op_type in ("Relu", "Flatten"):
        keep.append(feeder.name)
        feeder = producers.get(feeder.input[0])
    if first and len(layers) > 1:
        keep.insert(0, layers[0].name)
    return keep


def pixel_tensor(model_path: Path, input_name: str) -> tuple[str, str] | None:
    """(the first Conv's input, the uint8 tensor it is made of) when that input is `Div(Cast(u), 255)` and u
    comes from the uint8 graph input through shape-only ops (the camera's pixels / 255, perhaps rearranged
    space-to-depth, `graph.py`); else None."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_path)).graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producers = {o: n for n in graph.node for o in n.output}
    conv = next((n for n in graph.node if n.op_type == "Conv"), None)
    div = producers.get(conv.input[0]) if conv is not None else None
    if div is None or div.op_type != "Div" or div.input[1] not in consts:
        return None
    if not np.allclose(consts[div.input[1]], 255.0):
        return None
    tensor, source = div.input[0], None  # walk back to the input through shape-only ops and the cast
    while tensor != input_name:
        node = producers.get(tensor)
        if node is None or node.op_type not in ("Cast", *SHAPE_OPS):
            return None
        if node.op_type == "Cast":
            source = node.input[0]
        tensor = node.input[0]
    shapes = _shape_of(graph, source) if source else None, _shape_of(graph, conv.input[0])
    if source is None or (None not in shapes and shapes[0] != shapes[1]):
        return None
    return conv.input[0], source


#: ops that only move or reshape values (the walk from the first conv back to the camera input)
SHAPE_OPS = ("Gather", "Unsqueeze", "Squeeze", "Reshape", "Transpose")


def _shape_of(graph: Any, name: str) -> tuple[int, ...] | None:
    """A tensor's static shape from the graph's value_info (after shape inference), or None."""
    for info in (*graph.value_info, *graph.input):
        if info.name == name:
            return tuple(d.dim_value for d in info.type.tensor_type.shape.dim)
    return None


def feed_pixels(path: Path, reader: FrameReader, pixels: tuple[str, str]) -> bool:
    """Rewire the int8 model at `path` so its first conv reads the uint8 pixels (see the module docstring);
    keeps the rewired model only if it gives identical outputs on `reader`'s frames. True when rewired."""
    import onnx
    from onnx import numpy_helper

    from device.policy import load_session

    scaled, source = pixels
    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    quant = next((n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == scaled), None)
    if quant is None or float(inits[quant.input[1]]) != PIXEL_SCALE or int(inits[quant.input[2]]) != 0:
        log.info("%s: pixel input not rewired (no QuantizeLinear with scale 1/255, zero point 0)", path)
        return False
    if inits[quant.input[2]].dtype != np.uint8:
        return False
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == quant.output[0]:
                node.input[i] = source
    _prune(graph)
    rewired = path.with_suffix(".pixels.onnx")
    onnx.save_model(model, str(rewired))
    plain, direct = load_session(path), load_session(rewired)
    names = [o.name for o in plain.get_outputs()]
    reader.rewind()
    same = True
    while (feed := reader.get_next()) is not None:
        a, b = plain.run(names, feed), direct.run(names, feed)
        if not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)):
            same = False
            break
    reader.rewind()
    if same:
        rewired.replace(path)
    else:
        rewired.unlink()
        log.warning("%s: feeding pixels directly changed an output; kept the plain int8 graph", path)
    return same


def _prune(graph: Any) -> None:
    """Remove nodes whose outputs nothing reads, then unread initializers (the float pixel path after
    `feed_pixels`)."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
