"""Domain randomisation: per-episode variations of sensors and physics, drawn per car from its own generator.

A preset gives each quantity a range; when a car starts an episode, one value per quantity is drawn uniformly
from its range with that car's generator (so seeded runs repeat, and a batched env equals single envs).
Sensors and the physics read the drawn values from `EpisodeRandomization`'s arrays, indexed by car.

Presets: `none` (every value neutral, nothing drawn), `light`, `strong` (for training), and `eval-shift`, a
held-out shift that training never uses (darker, lower-contrast light, a ground texture no training preset
uses, thinner tape, a lower camera, less grip), to measure how a policy copes with what it has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from sim.errors import EnvConfigError

Range = tuple[float, float]


@dataclass(frozen=True)
class RandomizationPreset:
    """Ranges (low, high) drawn uniformly per car per episode; equal bounds mean a fixed value.

    brightness: gain on pixel values (1 = none). contrast: gain around mid-grey (1 = none). gamma: exponent on
    normalised pixel values (1 = none). noise_std: Gaussian pixel noise, uint8 levels. blur_sigma_px: Gaussian
    blur of the frame, pixels. line_width_scale: tape widths on the ground x this. ground_texture: index of the
    ground texture variant (drawn as an integer in [low, high]). camera_pitch_deg / camera_height_m: offsets
    added to the car config's camera mount. lidar_noise_m: Gaussian range noise, metres. steering_trim_deg: a
    constant error added to the steering the car actuates (+ = left). latency_ms: added to the car's actuation
    latency. grip_scale: the tyres' lateral grip x this.
    """

    name: str
    brightness: Range = (1.0, 1.0)
    contrast: Range = (1.0, 1.0)
    gamma: Range = (1.0, 1.0)
    noise_std: Range = (0.0, 0.0)
    blur_sigma_px: Range = (0.0, 0.0)
    line_width_scale: Range = (1.0, 1.0)
    ground_texture: Range = (0, 0)
    camera_pitch_deg: Range = (0.0, 0.0)
    camera_height_m: Range = (0.0, 0.0)
    lidar_noise_m: Range = (0.0, 0.0)
    steering_trim_deg: Range = (0.0, 0.0)
    latency_ms: Range = (0.0, 0.0)
    grip_scale: Range = (1.0, 1.0)

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if f.name != "name")

    @property
    def is_neutral(self) -> bool:
        """Every quantity fixed at its neutral value (the `none` preset's)."""
        return all(getattr(self, q) == getattr(NONE, q) for q in self.quantities)


#: Ground texture variants 0-2 are for training; 3 is held out for `eval-shift`.
TRAINING_TEXTURES = 3
EVAL_TEXTURE = 3

NONE = RandomizationPreset("none")
PRESETS: dict[str, RandomizationPreset] = {
    "none": NONE,
    "light": RandomizationPreset(
        "light",
        brightness=(0.85, 1.15),
        contrast=(0.9, 1.1),
        gamma=(0.9, 1.1),
        noise_std=(0.0, 4.0),
        blur_sigma_px=(0.0, 0.5),
        line_width_scale=(0.9, 1.1),
        ground_texture=(0, TRAINING_TEXTURES - 1),
        camera_pitch_deg=(-1.0, 1.0),
        camera_height_m=(-0.003, 0.003),
        lidar_noise_m=(0.0, 0.005),
        steering_trim_deg=(-1.0, 1.0),
        latency_ms=(0.0, 20.0),
        grip_scale=(0.9, 1.1),
    ),
    "strong": RandomizationPreset(
        "strong",
        brightness=(0.6, 1.4),
        contrast=(0.7, 1.3),
        gamma=(0.75, 1.3),
        noise_std=(0.0, 10.0),
        blur_sigma_px=(0.0, 1.2),
        line_width_scale=(0.75, 1.3),
        ground_texture=(0, TRAINING_TEXTURES - 1),
        camera_pitch_deg=(-3.0, 3.0),
        camera_height_m=(-0.01, 0.01),
        lidar_noise_m=(0.0, 0.02),
        steering_trim_deg=(-3.0, 3.0),
        latency_ms=(0.0, 60.0),
        grip_scale=(0.75, 1.2),
    ),
    "eval-shift": RandomizationPreset(
        "eval-shift",
        brightness=(0.5, 0.55),
        contrast=(0.6, 0.65),
        gamma=(1.35, 1.4),
        noise_std=(12.0, 12.0),
        blur_sigma_px=(1.5, 1.5),
        line_width_scale=(0.65, 0.65),
        ground_texture=(EVAL_TEXTURE, EVAL_TEXTURE),
        camera_pitch_deg=(4.0, 4.0),
        camera_height_m=(-0.012, -0.012),
        lidar_noise_m=(0.03, 0.03),
        steering_trim_deg=(4.0, 4.0),
        latency_ms=(80.0, 80.0),
        grip_scale=(0.7, 0.7),
    ),
}
TRAINING_PRESETS = ("none", "light", "strong")


def get_preset(name: str | RandomizationPreset) -> RandomizationPreset:
    """A preset by name (`none`, `light`, `strong`, `eval-shift`), or the preset given."""
    if isinstance(name, RandomizationPreset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise EnvConfigError(f"randomization: expected one of {sorted(PRESETS)}, got {name!r}") from None


class EpisodeRandomization:
    """The values drawn for each of n cars' current episode: one float64 array (n,) per quantity of the
    preset (`ground_texture` int64). With the `none` preset nothing is drawn and every value is neutral."""

    def __init__(self, n: int, preset: str | RandomizationPreset = "none") -> None:
        self.preset = get_preset(preset)
        self.neutral = self.preset.is_neutral
        for quantity in self.preset.quantities:
            low, _ = getattr(self.preset, quantity)
            dtype = np.int64 if quantity == "ground_texture" else np.float64
            setattr(self, quantity, np.full(n, low, dtype=dtype))

    def draw(self, idx: np.ndarray, rngs: list[np.random.Generator]) -> None:
        """New values for cars `idx`, each from its own generator `rngs[i]` (nothing drawn for `none`)."""
        if self.neutral:
            return
        for i in np.asarray(idx).tolist():
            rng = rngs[i]
            for quantity in self.preset.quantities:
                low, high = getattr(self.preset, quantity)
                column = getattr(self, quantity)
                if quantity == "ground_texture":
                    column[i] = rng.integers(int(low), int(high) + 1)
                else:
                    column[i] = low if low == high else rng.uniform(low, high)
