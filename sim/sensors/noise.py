"""Sensor noise that repeats with the seed and does not depend on how cars are batched.

Why by hand: drawing fresh Gaussian noise per car from each car's own generator costs a Python call per car
per step, and one shared generator makes a car's noise depend on the other cars in its batch (a batched env
would no longer equal single envs). Instead every car reads a window of a fixed table of standard normal
samples at a position derived from its *noise key*, an integer that the simulator advances every step and
that starts, per car, from a value the car's seed picks.
"""

from __future__ import annotations

from functools import cache

import numpy as np

_TABLE_SIZE = 1 << 20
#: the widest window `NoiseTable.shared()` serves (a stereo 160x120 frame is 38,400 values)
SHARED_MAX_WIDTH = 1 << 16
_TABLE_SEED = 20261127
_MIX = 0x9E3779B97F4A7C15 >> 1  # an odd 63-bit constant: consecutive keys land far apart in the table


class NoiseTable:
    """Standard normal float32 samples; `windows(keys, width)` gives each key its own (width,) window."""

    def __init__(self, max_width: int) -> None:
        self.max_width = int(max_width)
        rng = np.random.default_rng(_TABLE_SEED)
        self._table = rng.standard_normal(_TABLE_SIZE + self.max_width, dtype=np.float32)
        self._offsets = np.arange(self.max_width)

    def windows(self, keys: np.ndarray, width: int) -> np.ndarray:
        """(n, width) float32 standard normal noise for keys (n,) int64; equal keys give equal windows."""
        start = (np.asarray(keys, dtype=np.uint64) * np.uint64(_MIX)) % np.uint64(_TABLE_SIZE)
        return self._table[start.astype(np.intp)[:, None] + self._offsets[:width]]


@cache
def shared_noise_table() -> NoiseTable:
    """One table per process (4 MB, ~30 ms to fill), shared by every sensor."""
    return NoiseTable(SHARED_MAX_WIDTH)
