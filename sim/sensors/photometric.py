"""Photometric effects on camera frames: tone curves (brightness, contrast, gamma) and pixel noise buffers."""

from __future__ import annotations

import math

import numpy as np

#: Pixel noise s.d. is rounded to this step (uint8 levels); one noise buffer per step value in use.
NOISE_STEP = 0.5
NOISE_BUFFER = 1 << 17  # 256 KB: stays in cache; frames read it at pseudo-random offsets


def tone_curve(brightness: float, contrast: float, gamma: float, headroom: int = 0) -> np.ndarray:
    """Randomised value of each clean pixel value (256,) uint8: 255 * brightness * ((v/255)**gamma - 0.5) *
    contrast + 0.5), i.e. gamma on normalised values, contrast around mid-grey, then a gain; clipped to
    [headroom, 255 - headroom] so that noise of at most `headroom` levels can be added without overflow."""
    x = np.arange(256) / 255.0
    tone = 255.0 * brightness * (((x**gamma) - 0.5) * contrast + 0.5)
    return np.clip(np.rint(tone), headroom, 255 - headroom).astype(np.uint8)


def noise_buffer(seed: int, std: float) -> np.ndarray:
    """(NOISE_BUFFER,) uint8: Gaussian pixel noise of s.d. `std` levels, rounded, cut at 3 s.d., stored modulo
    256 so that a wrapping uint8 addition adds it (the tone curve leaves that much headroom)."""
    z = np.random.default_rng(seed).standard_normal(NOISE_BUFFER)
    n = np.clip(np.rint(std * z), -noise_headroom(std), noise_headroom(std)).astype(np.int16)
    return (n & 0xFF).astype(np.uint8)


def noise_headroom(std: float) -> int:
    return math.ceil(3 * std)


def hash_draws(*columns: np.ndarray) -> np.ndarray:
    """An int64 per car mixing the bits of its float draws (so equal draws give equal noise)."""
    h = np.zeros(len(columns[0]), dtype=np.uint64)
    for col in columns:
        h = (h ^ np.ascontiguousarray(col, dtype=np.float64).view(np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
    return (h >> np.uint64(2)).astype(np.int64)


# --------------------------------------------------------------------------- the sensor
