"""The plain actor as a torch module, and its ONNX export.

`ActorGraph` holds only what the deterministic policy uses, taken from the stable-baselines3 policy (not the
policy object itself, whose `predict` does numpy pre/post-processing outside torch):

    PPO: pi_features_extractor -> mlp_extractor.policy_net -> action_net
    SAC: actor.features_extractor -> actor.latent_pi -> actor.mu -> tanh

and puts in the graph what SB3 and the simulator do around it, so the car needs nothing else:
- input: the sensor reading, batch first (`trainer/export/observation.py`): uint8 camera frames are cast to
  float; a mono frame (1, 1, H, W) loses its channel axis, because the trainer's extractor receives the
  simulator's (H, W) frames and adds the channel and the /255 itself (`trainer/networks.py`); stereo frames
  (1, 2, H, W) are divided by 255 here, as SB3's preprocessing does for its (transposed) image spaces;
- output: discrete: argmax of the logits, then the action table (SB3 `deterministic=True` is the argmax);
  continuous: the mean (PPO; SAC: tanh of it), clipped to [-1, 1] as SB3's predict does, then scaled to
  [low, high] and clipped again as `sim.action_space.ContinuousActionSpace.decode` does.
Outputs `steering_deg` (1,) and `speed_mps` (1,) float32; with `raw=True` also the head's output (logits or
mean), for the parity report.

`actor_graph(..., space_to_depth=True)` (what `pitlane export` ships) computes a mono camera CNN's first
strided conv on a space-to-depth view of the frame (`SpaceToDepthCamera`): the same function, faster in int8.
The parity report compares it with the plain actor.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from contracts.model_card import OUTPUT_NAMES
from sim.action_space import ContinuousActionSpace, DiscreteActionSpace
from trainer.export.errors import ExportError

log = logging.getLogger(__name__)

OPSET = 17


class ActorGraph(nn.Module):
    """obs (1, ...) -> (steering_deg (1,), speed_mps (1,)[, raw head output]). See the module docstring."""

    def __init__(
        self,
        features: nn.Module,
        latent: nn.Module,
        head: nn.Module,
        action_space: DiscreteActionSpace | ContinuousActionSpace,
        *,
        kind: str,
        squash: bool = False,
        raw: bool = False,
    ) -> None:
        super().__init__()
        self.features, self.latent, self.head = features, latent, head
        self.action_space = action_space
        self.kind = kind
        self.squash = squash
        self.raw = raw
        self.discrete = isinstance(action_space, DiscreteActionSpace)
        if self.discrete:
            steer, speed = action_space.decode(np.arange(len(action_space)))
            self.register_buffer("steer_table", torch.tensor(steer, dtype=torch.float32))
            self.register_buffer("speed_table", torch.tensor(speed, dtype=torch.float32))
        else:
            a = action_space
            self.register_buffer(
                "low", torch.tensor([a.steering_deg_low, a.speed_mps_low], dtype=torch.float32)
            )
            self.register_buffer(
                "high", torch.tensor([a.steering_deg_high, a.speed_mps_high], dtype=torch.float32)
            )

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """The sensor reading -> what the trained extractor received from SB3 (see the module docstring)."""
        if isinstance(self.features, SpaceToDepthCamera):
            return self.features.preprocess(obs)
        if self.kind == "camera":
            return obs.to(torch.float32)[:, 0]  # (1, H, W) float 0..255: the extractor adds channel and /255
        if self.kind == "stereo_camera":
            return obs.to(torch.float32) / 255.0
        return obs

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.head(self.latent(self.features(self.preprocess(obs))))
        if self.discrete:
            index = torch.argmax(out, dim=1)
            steer, speed = self.steer_table[index], self.speed_table[index]
        else:
            u = torch.tanh(out) if self.squash else out
            t = (torch.clamp(u, -1.0, 1.0) + 1.0) * 0.5
            value = torch.maximum(torch.minimum(self.low + t * (self.high - self.low), self.high), self.low)
            steer, speed = value[:, 0], value[:, 1]
        return (steer, speed, out) if self.raw else (steer, speed)


def actor_graph(
    model: Any, action_space: Any, kind: str, *, raw: bool = False, space_to_depth: bool = False
) -> ActorGraph:
    """The ActorGraph of a stable-baselines3 PPO or SAC model (eval mode, on the CPU); `space_to_depth`:
    with `with_space_to_depth` applied (the graph `pitlane export` ships)."""
    policy = model.policy
    if hasattr(policy, "mlp_extractor"):  # PPO / A2C ActorCriticPolicy
        if getattr(policy, "use_sde", False):
            raise ExportError("a policy trained with gSDE cannot be exported (its mode is not a plain layer)")
        graph = ActorGraph(
            policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net, action_space,
            kind=kind, raw=raw,
        )  # fmt: skip
    elif hasattr(policy, "actor"):  # SAC
        actor = policy.actor
        graph = ActorGraph(
            actor.features_extractor, actor.latent_pi, actor.mu, action_space, kind=kind, squash=True, raw=raw
        )
    else:
        raise ExportError(f"cannot export a {type(policy).__name__}: expected a PPO or SAC policy")
    graph = graph.eval().cpu()
    return with_space_to_depth(graph) if space_to_depth else graph


class SpaceToDepthCamera(nn.Module):
    """A trained mono-camera extractor (`trainer.networks.DeepRacerCNN`) whose first conv (k x k, stride s) runs
    on the frame's s x s blocks as channels: (1, H, W) -> (s*s, H/s, W/s), then a ceil(k/s)^2 conv of stride 1
    with the same weights rearranged (zero-padded to a multiple of s). The same function (the parity
    report measures it against the plain actor), but ONNX Runtime's int8 conv is slow on one input
    channel: cnn_shallow's first conv took 70 us int8 (fp32: 52 us) and 33 us as 16 channels; the whole
    cnn_shallow int8 went from 0.34 to 0.26 ms p50 here. The blocks are laid out channel-last and then
    transposed to NCHW, which ONNX Runtime's NHWC layout pass cancels against its own transpose before the
    first QLinearConv: one 5 us transpose of the uint8 frame remains. Written by hand: neither torch's
    exporter nor ONNX Runtime's graph optimiser rewrites a conv this way."""

    def __init__(self, extractor: nn.Module, frame_hw: tuple[int, int]) -> None:
        super().__init__()
        embedder = extractor.embedder
        first = embedder.convs[0]
        s, k = first.stride[0], first.kernel_size[0]
        kk = -(-k // s)
        weight = torch.zeros(first.out_channels, 1, kk * s, kk * s)
        weight[:, :, :k, :k] = first.weight.detach()
        # w'[o, dy * s + dx, ky, kx] = w[o, 0, ky * s + dy, kx * s + dx]
        weight = weight.reshape(first.out_channels, kk, s, kk, s).permute(0, 2, 4, 1, 3)
        self.conv = nn.Conv2d(s * s, first.out_channels, kk, 1)
        self.conv.weight.data = weight.reshape(first.out_channels, s * s, kk, kk).contiguous()
        self.conv.bias.data = first.bias.detach().clone()
        self.rest, self.dense, self.middleware = embedder.convs[1:], embedder.dense, extractor.middleware
        self.stride, self.frame_hw = s, frame_hw

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """uint8 (n, 1, H, W) -> float (n, s*s, H/s, W/s) in [0, 1], channel dy * s + dx."""
        s, (h, w) = self.stride, self.frame_hw
        blocks = (
            obs.reshape(-1, h // s, s, w // s, s).permute(0, 1, 3, 2, 4).reshape(-1, h // s, w // s, s * s)
        )
        return blocks.permute(0, 3, 1, 2).to(torch.float32) / 255.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.middleware(self.dense(self.rest(self.conv(x))))


def with_space_to_depth(actor: ActorGraph) -> ActorGraph:
    """`actor` with a `SpaceToDepthCamera` extractor when it is a mono camera CNN whose first conv is strided
    (square kernel and stride, no padding or dilation) over a frame that the stride divides; else `actor`."""
    from trainer.networks import DeepRacerCNN

    features = actor.features
    if actor.kind != "camera" or not isinstance(features, DeepRacerCNN):
        return actor
    first = features.embedder.convs[0]
    h, w = features._observation_space.shape[-2:]
    s = first.stride[0]
    plain = (
        isinstance(first, nn.Conv2d) and first.in_channels == 1 and first.groups == 1 and first.bias is not None
        and first.stride == (s, s) and first.kernel_size[0] == first.kernel_size[1]
        and first.padding == (0, 0) and first.dilation == (1, 1)
    )  # fmt: skip
    if not plain or s < 2 or h % s or w % s:
        return actor
    graph = ActorGraph(
        SpaceToDepthCamera(features, (int(h), int(w))), actor.latent, actor.head, actor.action_space,
        kind=actor.kind, squash=actor.squash, raw=actor.raw,
    )  # fmt: skip
    return graph.eval()


def example_input(shape: tuple[int, ...], dtype: str) -> torch.Tensor:
    """A zero observation of the graph input's shape and dtype (tracing input)."""
    return torch.zeros(shape, dtype=torch.uint8 if dtype == "uint8" else torch.float32)


def to_onnx_bytes(graph: ActorGraph, example: torch.Tensor, input_name: str) -> bytes:
    """The graph as ONNX (opset 17, fixed batch of one) via torch's TorchScript exporter.

    The TorchScript exporter, not the dynamo one: it needs no onnxscript, and for these small feed-forward
    actors it gives the same graph of Conv/Gemm/Relu."""
    outputs = [*OUTPUT_NAMES, "raw"] if graph.raw else list(OUTPUT_NAMES)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        torch.onnx.export(
            graph,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[input_name],
            output_names=outputs,
            do_constant_folding=True,
        )
    return buffer.getvalue()


def finish_model(model_bytes: bytes, metadata: dict[str, str], doc: str) -> Any:
    """The onnx ModelProto with `metadata` as metadata_props, checked by `onnx.checker` (full check)."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    set_metadata(model, metadata, doc)
    check(model, "exported graph")
    return model


def set_metadata(model: Any, metadata: dict[str, str], doc: str) -> None:
    """Replace the model's metadata_props with `metadata`; producer pitlane."""
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "pitlane"
    model.doc_string = doc


def check(model: Any, what: str) -> None:
    """`onnx.checker.check_model(full_check=True)` (with shape inference); ExportError naming `what`."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{what}: fails the ONNX checker: {exc}") from None


def save(model: Any, path: Path) -> Path:
    import onnx

    onnx.save_model(model, str(path))
    return path
