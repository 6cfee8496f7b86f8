"""Single-frame latency of an exported ONNX file in the car's ONNX Runtime session (one thread).

Used by `pitlane export`'s report (`trainer.export.pipeline.latency`) and by `pitlane bench inference`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LatencyRow:
    network: str
    precision: str
    p50_ms: float
    p99_ms: float
    mean_ms: float
    runs: int
    model_bytes: int


def time_model(path: Path, frames: np.ndarray, *, seconds: float, min_runs: int = 200) -> LatencyRow:
    """Latency of one `session.run` per frame, cycling through `frames`, for `seconds` (at least min_runs)."""
    from device.policy import load_session

    session = load_session(path)
    name = session.get_inputs()[0].name
    shape = tuple(session.get_inputs()[0].shape)
    inputs = [np.ascontiguousarray(f).reshape(shape) for f in frames]
    outputs = [o.name for o in session.get_outputs()]
    for x in inputs[:50]:  # warm-up: first runs allocate
        session.run(outputs, {name: x})
    samples: list[int] = []
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end or len(samples) < min_runs:
        feed = {name: inputs[i % len(inputs)]}
        t0 = time.perf_counter_ns()
        session.run(outputs, feed)
        samples.append(time.perf_counter_ns() - t0)
        i += 1
    ms = np.asarray(samples, dtype=np.float64) / 1e6
    return LatencyRow(
        network="",
        precision="",
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=float(ms.mean()),
        runs=len(ms),
        model_bytes=path.stat().st_size,
    )
