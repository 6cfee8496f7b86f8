"""`pitlane bench inference`: single-frame latency of the exported networks, fp32 vs int8, on one thread.

For each network — `mlp` (the state MLP, 64x64) and DeepRacer's `cnn_shallow`, `cnn`, `cnn_deep` on a
160x120 grayscale camera (`trainer/networks.py`) — an actor with random weights (latency does not depend on
the values) and DeepRacer's default 10-action head is exported exactly as `pitlane export` exports a run
(`trainer/export/graph.py`), quantised as it quantises (`trainer/export/quantize.py`), calibrated on frames
the simulator renders along a pure-pursuit lap of reinvent_base, and timed in the car's ONNX Runtime session
(`device.policy.session_options`: one thread, sequential, no spinning) one frame per call on real frames.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from trainer.export.latency import LatencyRow, time_model

log = logging.getLogger(__name__)

NETWORKS = ("mlp", "cnn_shallow", "cnn", "cnn_deep")
PRECISIONS = ("fp32", "int8")
BENCH_TRACK = "reinvent_base"


def sim_frames(observation: str, n_frames: int, *, track: str = BENCH_TRACK, seed: int = 0) -> np.ndarray:
    """(n, *obs) observations the simulator gives along a pure-pursuit drive of `track` (no policy needed)."""
    from sim.core import EpisodeOptions
    from sim.evaluation import SimPolicy, evaluate, pure_pursuit_policy

    recorded: list[np.ndarray] = []
    driver = pure_pursuit_policy()

    def make(parts: Any) -> Callable[[Any], Any]:
        inner = driver.make(parts)

        def policy(obs: Any) -> Any:
            recorded.append(np.array(obs))
            return inner(obs)

        return policy

    evaluate(SimPolicy(make), track=track, observation=observation, laps=1_000, seed=seed,
             max_time_s=(n_frames - 0.5) * EpisodeOptions().dt_s)  # fmt: skip
    return np.stack(recorded)


def random_actor(network: str, *, space_to_depth: bool = True) -> tuple[Any, str, tuple[int, ...], str]:
    """(ActorGraph with random weights (seed 0), observation kind, input shape, dtype) of `network`;
    `space_to_depth`: as `pitlane export` ships camera CNNs (`graph.with_space_to_depth`)."""
    import torch
    from gymnasium import spaces
    from torch import nn

    from sim.action_space import DEFAULT_ACTION_SPACE
    from trainer.export.graph import ActorGraph, with_space_to_depth
    from trainer.networks import DeepRacerCNN

    torch.manual_seed(0)
    n_actions = len(DEFAULT_ACTION_SPACE)
    if network == "mlp":
        # SB3's MlpPolicy as the trainer builds it: net_arch (64, 64), tanh, on the 11 state features
        latent = nn.Sequential(nn.Linear(11, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh())
        actor = ActorGraph(nn.Flatten(), latent, nn.Linear(64, n_actions), DEFAULT_ACTION_SPACE, kind="state")
        return actor.eval(), "state", (1, 11), "float32"
    extractor = DeepRacerCNN(spaces.Box(0, 255, (120, 160), np.uint8), network)
    head = nn.Linear(extractor.features_dim, n_actions)  # net_arch [] after DeepRacer's middleware
    actor = ActorGraph(extractor, nn.Identity(), head, DEFAULT_ACTION_SPACE, kind="camera")
    actor = with_space_to_depth(actor.eval()) if space_to_depth else actor.eval()
    return actor, "camera", (1, 1, 120, 160), "uint8"


def export_pair(network: str, folder: Path, frames: np.ndarray) -> dict[str, Path]:
    """fp32 and int8 ONNX files of `network` (random weights) in `folder`, int8 calibrated on `frames`."""
    from trainer.export import graph as graph_mod
    from trainer.export.quantize import FrameReader, quantize_int8

    actor, kind, shape, dtype = random_actor(network)
    name = "state" if kind == "state" else "camera"
    fp32 = folder / f"{network}.onnx"
    model = graph_mod.finish_model(
        graph_mod.to_onnx_bytes(actor, graph_mod.example_input(shape, dtype), name), {}, f"bench {network}"
    )
    graph_mod.save(model, fp32)
    int8 = folder / f"{network}.int8.onnx"
    quantize_int8(fp32, int8, FrameReader(name, frames, shape, dtype))
    return {"fp32": fp32, "int8": int8}


def bench_inference(
    networks: tuple[str, ...] = NETWORKS,
    *,
    seconds: float = 2.0,
    calibration_frames: int = 300,
    on_row: Callable[[LatencyRow], None] | None = None,
) -> list[LatencyRow]:
    """fp32 and int8 latency rows of `networks` (seconds of timing per row)."""
    frames = {
        kind: sim_frames(kind, calibration_frames)
        for kind in {("state" if n == "mlp" else "camera") for n in networks}
    }
    rows: list[LatencyRow] = []
    with tempfile.TemporaryDirectory(prefix="pitlane-bench-") as tmp:
        for network in networks:
            kind_frames = frames["state" if network == "mlp" else "camera"]
            paths = export_pair(network, Path(tmp), kind_frames)
            for precision in PRECISIONS:
                row = time_model(paths[precision], kind_frames, seconds=seconds)
                row = LatencyRow(**{**asdict(row), "network": network, "precision": precision})
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return rows


def targets(rows: list[LatencyRow]) -> dict[str, Any]:
    """The export's latency targets against the rows: cnn_shallow int8 p50 <= 0.3 ms, int8 <= 0.6x fp32."""
    by = {(r.network, r.precision): r for r in rows}
    out: dict[str, Any] = {}
    shallow = by.get(("cnn_shallow", "int8"))
    if shallow is not None:
        out["cnn_shallow_int8_p50_ms"] = shallow.p50_ms
        out["cnn_shallow_int8_p50_le_0.3_ms"] = shallow.p50_ms <= 0.3
    for network in NETWORKS:
        if (network, "fp32") in by and (network, "int8") in by:
            ratio = by[(network, "int8")].p50_ms / by[(network, "fp32")].p50_ms
            out[f"{network}_int8_over_fp32_p50"] = ratio
            out[f"{network}_int8_le_0.6x_fp32"] = ratio <= 0.6
    return out
