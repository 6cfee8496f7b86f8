"""Domain randomisation: per-episode variations of sensors and physics, drawn per car from its own generator.

A preset gives each quantity a range; when a car starts an episode, one value per quantity is drawn uniformly
from its range with that car's generator (so seeded runs repeat, and a batched env equals single envs).
Sensors and the physics read the drawn values from `EpisodeRandomization`'s arrays, indexed by car.

Presets: `none` (every value neutral, nothing drawn), `light`, `strong` (for training), and `eval-shift`, a
held-out shift that training never uses (darker, lower-contrast light, a ground texture and a backdrop no
training preset uses, a brighter backdrop, thinner tape, a lower camera, a steering trim of either sign, more
latency, less grip), to measure how a policy copes with what it has not seen. Every eval-shift range lies
beyond the training presets' ranges and has width, so each seed draws its own perturbation (the same seed the
same one).
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
    latency. grip_scale: the tyres' lateral grip x this. backdrop: what the camera sees above the floor, an
    index into `sim.sensors.backdrop.BACKDROP_NAMES` (drawn as an integer in [low, high]; 0 is the grey
    wall). backdrop_brightness: the backdrop's luminance x this.

    min_magnitude: (quantity, m) pairs drawn as a magnitude in [m, high] with a random sign, for a symmetric
    range (-high, high) whose middle (|x| < m, what training covers) is held out.
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
    backdrop: Range = (0, 0)
    backdrop_brightness: Range = (1.0, 1.0)
    min_magnitude: tuple[tuple[str, float], ...] = ()

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if f.name not in ("name", "min_magnitude"))

    @property
    def is_neutral(self) -> bool:
        """Every quantity fixed at its neutral value (the `none` preset's)."""
        return all(getattr(self, q) == getattr(NONE, q) for q in self.quantities)


#: Ground texture variants 0-2 are for training; 3 is held out for `eval-shift`.
TRAINING_TEXTURES = 3
EVAL_TEXTURE = 3
#: Backdrop variants 0-6 (0: the grey wall `none` shows) are for training; 7 is held out for `eval-shift`.
TRAINING_BACKDROPS = 7
EVAL_BACKDROP = 7
#: Quantities drawn as integers (variant indices).
INTEGER_QUANTITIES = ("ground_texture", "backdrop")

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
        backdrop=(0, TRAINING_BACKDROPS - 1),
        backdrop_brightness=(0.8, 1.2),
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
        backdrop=(0, TRAINING_BACKDROPS - 1),
        backdrop_brightness=(0.6, 1.4),
    ),
    # ranges, not fixed values: a fixed value would give every evaluation seed the same perturbation
    "eval-shift": RandomizationPreset(
        "eval-shift",
        brightness=(0.45, 0.55),
        contrast=(0.55, 0.65),
        gamma=(1.35, 1.5),
        noise_std=(11.0, 14.0),
        blur_sigma_px=(1.3, 1.8),
        line_width_scale=(0.6, 0.7),
        ground_texture=(EVAL_TEXTURE, EVAL_TEXTURE),
        camera_pitch_deg=(3.5, 5.0),
        camera_height_m=(-0.015, -0.011),
        lidar_noise_m=(0.025, 0.035),
        steering_trim_deg=(-5.0, 5.0),
        latency_ms=(70.0, 100.0),
        grip_scale=(0.62, 0.72),
        backdrop=(EVAL_BACKDROP, EVAL_BACKDROP),
        backdrop_brightness=(1.45, 1.6),
        min_magnitude=(("steering_trim_deg", 3.5),),
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
    preset (`ground_texture` and `backdrop` int64). With the `none` preset nothing is drawn and every value is
    neutral."""

    def __init__(self, n: int, preset: str | RandomizationPreset = "none") -> None:
        self.preset = get_preset(preset)
        self.neutral = self.preset.is_neutral
        for quantity in self.preset.quantities:
            low, _ = getattr(self.preset, quantity)
            dtype = np.int64 if quantity in INTEGER_QUANTITIES else np.float64
            setattr(self, quantity, np.full(n, low, dtype=dtype))

    def draw(self, idx: np.ndarray, rngs: list[np.random.Generator]) -> None:
        """New values for cars `idx`, each from its own generator `rngs[i]` (nothing drawn for `none`)."""
        if self.neutral:
            return
        magnitudes = dict(self.preset.min_magnitude)
        for i in np.asarray(idx).tolist():
            rng = rngs[i]
            for quantity in self.preset.quantities:
                getattr(self, quantity)[i] = _draw_one(
                    rng, getattr(self.preset, quantity), quantity, magnitudes
                )


def _draw_one(rng: np.random.Generator, bounds: Range, quantity: str, magnitudes: dict[str, float]) -> float:
    """One value of `quantity` from `bounds` (uniform; an integer for a variant index; outside the band
    |x| < magnitudes[quantity] with a random sign when the quantity has one)."""
    low, high = bounds
    if quantity in INTEGER_QUANTITIES:
        return int(rng.integers(int(low), int(high) + 1))
    if quantity in magnitudes:
        magnitude = rng.uniform(magnitudes[quantity], high)
        return -magnitude if rng.random() < 0.5 else magnitude
    return low if low == high else rng.uniform(low, high)
