"""DeepRacer's three camera topologies as stable-baselines3 features extractors.

What DeepRacer's simapp builds (aws-deepracer-community/deepracer-simapp):
- `bundle/markov/sensors/utils.py` `get_front_camera_embedders(network_type)`: the camera input embedder,
  conv layers `[filters, kernel, stride]` then dense layers;
- `bundle/markov/architecture/custom_architectures.py`: `DEFAULT_MIDDLEWARE` (FC 512) and `VGG_MIDDLEWARE`
  (FC 256, 128);
- `bundle/markov/agents/utils.py` `get_network_settings`: the deep topology takes `VGG_MIDDLEWARE`, the others
  `DEFAULT_MIDDLEWARE`; embedder type `SCHEME` with ReLU. `SCHEME` (`architecture/embedder_factory.py`
  `create_scheme`) keeps only the conv and dense layers: the batch-norm / tanh / dropout entries of the scheme
  dicts are read only by `BN_SCHEME`, which the shipped topologies do not use. So every layer here is
  conv/linear + ReLU, no batch norm, no dropout ("valid" padding, as rl_coach's Conv2d).

| network | DeepRacer name | camera embedder | middleware |
|---|---|---|---|
| `cnn_shallow` | DEEP_CONVOLUTIONAL_NETWORK_SHALLOW | conv 32@8x8/4, 64@4x4/2, 64@3x3/1 | FC 512 |
| `cnn` | DEEP_CONVOLUTIONAL_NETWORK | conv 32@5x5/2, 32@3x3/1, 64@3x3/2, 64@3x3/1, FC 64 | FC 512 |
| `cnn_deep` | DEEP_CONVOLUTIONAL_NETWORK_DEEP | conv 32@8x8/4, 32@4x4/2, 64@4x4/2, 64@3x3/1, FC 512, 512 | FC 256, 128 |

Stereo cameras (`get_stereo_camera_embedders`): `cnn_shallow` as above; `cnn` and `cnn_deep` use conv
32@3x3/1, 64@3x3/2, 64@3x3/1, 128@3x3/2, 128@3x3/1 (no dense layers). Lidar (`get_lidar_embedders`):
FC 256, 256. The `state` observation has no DeepRacer counterpart: FC 64, 64.
Embedders' outputs are concatenated and go through the middleware; SB3's policy and value heads follow
(`net_arch=[]` by default for CNN runs: DeepRacer's heads are single output layers after the middleware).

Parameter counts (features extractor only, `parameter_count`; SB3's heads add a few hundred more):
120x160 grayscale: `cnn_shallow` 5,839,520 · `cnn` 3,682,848 · `cnn_deep` 1,105,472 (its strided convs leave a
5x8 map, so its first FC is the smallest). 2x120x160 stereo: 5,841,568 · 57,621,984 · 28,982,624 (DeepRacer's
stride-1 stereo convs leave a 25x35x128 map before the first FC: slow on a laptop CPU).

Images: the simulator gives uint8 (H, W) grayscale or (H, W, 2) stereo. SB3 treats only 3-D uint8 boxes as
images (`is_image_space`): stereo is transposed to (2, H, W) by SB3's `VecTransposeImage` and divided by 255
by SB3's preprocessing; a 2-D grayscale box is not an image to SB3, reaches the extractor as float 0..255, and
`_CameraEmbedder` adds the channel axis and divides by 255 itself. Either way pixels are scaled exactly once.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from trainer.config import DEEPRACER_NETWORKS

NETWORKS = ("mlp", "cnn_shallow", "cnn", "cnn_deep")
__all__ = ["DEEPRACER_NETWORKS", "DeepRacerCNN", "DeepRacerCombinedExtractor", "policy_kwargs"]

# (filters, kernel, stride) convs, then dense units
CAMERA_EMBEDDERS: dict[str, tuple[tuple[tuple[int, int, int], ...], tuple[int, ...]]] = {
    "cnn_shallow": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), ()),
    "cnn": (((32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1)), (64,)),
    "cnn_deep": (((32, 8, 4), (32, 4, 2), (64, 4, 2), (64, 3, 1)), (512, 512)),
}
STEREO_EMBEDDERS = {
    "cnn_shallow": CAMERA_EMBEDDERS["cnn_shallow"],
    "cnn": (((32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2), (128, 3, 1)), ()),
    "cnn_deep": (((32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2), (128, 3, 1)), ()),
}
MIDDLEWARE = {"cnn_shallow": (512,), "cnn": (512,), "cnn_deep": (256, 128)}
LIDAR_EMBEDDER = (256, 256)
STATE_EMBEDDER = (64, 64)


def _mlp(n_in: int, units: tuple[int, ...]) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    for n in units:
        layers += [nn.Linear(n_in, n), nn.ReLU()]
        n_in = n
    return nn.Sequential(*layers), n_in


class _CameraEmbedder(nn.Module):
    """Conv layers + dense layers of one DeepRacer camera embedder, for a (H, W) or (C, H, W) uint8 box."""

    def __init__(self, space: spaces.Box, network: str) -> None:
        super().__init__()
        shape = tuple(space.shape)
        if len(shape) == 2:
            self._add_channel, self._scale = True, True
            channels, h, w = 1, *shape
        elif len(shape) == 3 and is_image_space(space, check_channels=False):
            if shape[0] > min(shape[1:]):
                raise ValueError(
                    f"camera space {shape}: expected channel-first (C, H, W) after SB3's transpose"
                )
            self._add_channel, self._scale = False, False  # SB3 divides image spaces by 255
            channels, h, w = shape
        else:
            raise ValueError(f"camera space {space}: expected a uint8 (H, W) or (C, H, W) image box")
        table = STEREO_EMBEDDERS if channels == 2 else CAMERA_EMBEDDERS
        convs, dense = table[network]
        layers: list[nn.Module] = []
        for filters, kernel, stride in convs:
            layers += [nn.Conv2d(channels, filters, kernel, stride), nn.ReLU()]
            channels = filters
        layers.append(nn.Flatten())
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = int(self.convs(torch.zeros(1, shape[0] if not self._add_channel else 1, h, w)).shape[1])
        self.dense, self.out_dim = _mlp(n_flat, dense)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._add_channel:
            x = x.unsqueeze(1)
        if self._scale:
            x = x / 255.0
        return self.dense(self.convs(x))


def _embedder(key: str, space: spaces.Space, network: str) -> tuple[nn.Module, int]:
    if key == "camera":
        cam = _CameraEmbedder(space, network)
        return cam, cam.out_dim
    n_in = int(torch.Size(space.shape).numel())
    mlp, n_out = _mlp(n_in, LIDAR_EMBEDDER if key == "lidar" else STATE_EMBEDDER)
    return nn.Sequential(nn.Flatten(), mlp), n_out


class DeepRacerCNN(BaseFeaturesExtractor):
    """A camera-only observation: DeepRacer's camera embedder, then its middleware."""

    def __init__(self, observation_space: spaces.Box, network: str = "cnn_shallow") -> None:
        embedder, n = _embedder("camera", observation_space, network)
        middleware, n_out = _mlp(n, MIDDLEWARE[network])
        super().__init__(observation_space, n_out)
        self.embedder = embedder
        self.middleware = middleware

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.middleware(self.embedder(observations))


class DeepRacerCombinedExtractor(BaseFeaturesExtractor):
    """A Dict observation (`camera`, `state`, `lidar`): one embedder per key, concatenated, the middleware."""

    def __init__(self, observation_space: spaces.Dict, network: str = "cnn_shallow") -> None:
        embedders: dict[str, nn.Module] = {}
        n = 0
        for key, sub in observation_space.spaces.items():
            embedders[key], n_key = _embedder(key, sub, network)
            n += n_key
        middleware, n_out = _mlp(n, MIDDLEWARE[network])
        super().__init__(observation_space, n_out)
        self.embedders = nn.ModuleDict(embedders)
        self.middleware = middleware

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [module(observations[key]) for key, module in self.embedders.items()]
        return self.middleware(torch.cat(parts, dim=1))


def policy_kwargs(network: str, observation_space: spaces.Space) -> dict[str, Any]:
    """SB3 `policy_kwargs` entries selecting `network`'s extractor ({} for `mlp`)."""
    if network == "mlp":
        return {}
    cls = DeepRacerCombinedExtractor if isinstance(observation_space, spaces.Dict) else DeepRacerCNN
    return {"features_extractor_class": cls, "features_extractor_kwargs": {"network": network}}


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
