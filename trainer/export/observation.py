"""The graph input of a run's observation: what the car's sensor gives, batch of one first.

| kind | input name | shape | dtype |
|---|---|---|---|
| `camera` | camera | (1, 1, H, W) | uint8 pixels 0..255 (normalisation is in the graph) |
| `stereo_camera` | camera | (1, 2, H, W) | uint8 (the simulator's (H, W, 2) frames, channels first) |
| `lidar`, `scan` | lidar | (1, N) | float32 ranges, m |
| `sector_lidar`, `discretized_sector_lidar` | lidar | (1, N) | float32 sector values |
| `state` | state | (1, 11) | float32 privileged features (simulator only) |

Combined observations (`camera+lidar`) are several inputs; a car runs one sensor per model, so export takes
one kind (ExportError otherwise).
"""

from __future__ import annotations

import math
from typing import Any

from contracts.model_card import CameraGeometry, LidarGeometry, ObservationCard
from contracts.vocabulary import SLOT
from sim.observations import parse_observation
from trainer.export.errors import ExportError


def single_kind(observation: str) -> str:
    """The one observation kind of a run (ExportError for combined observations)."""
    kinds = parse_observation(observation)
    if len(kinds) != 1:
        raise ExportError(
            f"observation {observation!r}: export takes one sensor per model (the graph's one input is the "
            f"car's sensor reading); got {len(kinds)} kinds {list(kinds)}"
        )
    return kinds[0]


def observation_card(observation: str, parts: Any) -> ObservationCard:
    """The card's observation entry for `observation` in an environment built by `sim.envs.setup.build_parts`
    (its sensor tells the lidar's beams and range; its car config the camera)."""
    kind = single_kind(observation)
    slot = SLOT[kind]
    space = parts.observe.space
    if slot == "camera":
        cam = parts.car.camera
        channels = 2 if kind == "stereo_camera" else 1
        return ObservationCard(
            kind=kind,
            input_name="camera",
            shape=(1, channels, cam.height_px, cam.width_px),
            dtype="uint8",
            camera=CameraGeometry.from_camera(cam),
        )
    lidar = None
    if slot == "lidar":
        sensor = parts.observe.sensor("lidar")
        fan = sensor.fan
        lidar = LidarGeometry(
            n_beams=sensor.n_beams,
            fov_deg=math.degrees(abs(fan.step_rad) * max(fan.n - 1, 1)),
            min_range_m=sensor.min_range_m,
            max_range_m=sensor.max_range_m,
        )
    return ObservationCard(kind=kind, input_name=slot, shape=(1, *space.shape), dtype="float32", lidar=lidar)
