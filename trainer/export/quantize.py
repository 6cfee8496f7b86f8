"""int8: onnxruntime static quantisation (QDQ format, per-channel int8 weights) calibrated on recorded frames.

Static, never dynamic: dynamic quantisation re-measures activation ranges at every call and leaves Conv in
float; the car's CNNs need calibrated activation scales. Only Conv, MatMul and Gemm are quantised: the
pixel cast and scaling, ReLU (fused by ONNX Runtime into the quantised op), argmax and the action table stay
as they are. `quant_pre_process` (shape inference and ORT's graph optimisation) runs first, as onnxruntime's
quantisation guide advises.

Layers kept in float (measured on a trained state policy, 5,000 closed-loop frames: all layers int8 agreed
with fp32 on 99.16 % of actions; the head in float 99.94 %; head and first layer in float 100 %):
- the action head (the last Gemm: logits or the mean action), always: int8 rounding of the logits flips
  near-tied argmaxes, and the head is a few thousand multiply-adds;
- the first layer when the input is a feature vector (state, lidar): features of different scales (speed in
  m/s beside curvature in 1/m) would share one activation scale. A camera's first conv sees pixels of one
  scale and is a tenth of the CNN's work, so it is quantised.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trainer.export.errors import ExportError

log = logging.getLogger(__name__)

QUANTISED_OPS = ("Conv", "MatMul", "Gemm")


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
    activation: str = "uint8",
    per_channel: bool = True,
    float_first_layer: bool = False,
) -> Path:
    """Write the int8 QDQ model of `fp32_path` to `out_path`, calibrated (MinMax) on `reader`'s frames.

    activation: "uint8" (U8S8: unsigned activations, signed weights — what x86 VNNI multiplies natively) or
    "int8" (S8S8)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(reader) == 0:
        raise ExportError(f"{fp32_path}: no calibration frames")
    with tempfile.TemporaryDirectory(prefix="pitlane-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        exclude = float_layers(pre, first=float_first_layer)
        quantize_static(
            str(pre),
            str(out_path),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTISED_OPS),
            per_channel=per_channel,
            activation_type=QuantType.QUInt8 if activation == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=exclude,
            extra_options={"CalibTensorRangeSymmetric": False},
        )
    log.info("int8 model %s calibrated on %d frames; kept in float: %s", out_path, len(reader), exclude)
    return out_path


def float_layers(model_path: Path, *, first: bool) -> list[str]:
    """Names of the quantisable nodes kept in float: the last (the action head) and, with `first`, the first
    (nodes are in topological order in an exported graph)."""
    import onnx

    nodes = [n.name for n in onnx.load(str(model_path)).graph.node if n.op_type in QUANTISED_OPS]
    keep = nodes[-1:]
    if first and len(nodes) > 1:
        keep = [nodes[0], *keep]
    return keep
