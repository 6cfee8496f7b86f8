"""`ArcTable`: quantities that depend only on the arc length along a closed centre line, pre-sampled.

Why by hand: reading k values at 1,024 arc lengths must cost one gather and one blend (~10 µs), not a
projection or an `np.interp(period=...)` per column (which sorts its inputs on every call).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class ArcTable:
    """k columns sampled at n evenly spaced arc lengths over one lap of `length_m`; linear in between."""

    #: Default spacing of the samples, metres.
    STEP_M = 0.002

    def __init__(self, length_m: float, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        self.length_m = float(length_m)
        self.n_samples = len(values)
        self._inv_step = self.n_samples / self.length_m
        # closing row = first row, so a lookup never wraps; one spare row absorbs s == length_m exactly
        self._rows = np.vstack([values, values[:1], values[:1]])
        self._delta = np.diff(self._rows, axis=0)

    @classmethod
    def sample(
        cls, length_m: float, fn: Callable[[np.ndarray], np.ndarray], step_m: float = STEP_M
    ) -> ArcTable:
        """Sample `fn(s_m (n,)) -> (n,) or (n, k)` every `step_m` (or a little less) over the lap."""
        n = max(16, int(np.ceil(length_m / step_m)))
        return cls(length_m, fn(np.arange(n) * (length_m / n)))

    def at(self, s_m: np.ndarray) -> np.ndarray:
        """Values at arc lengths `s_m` (n,) already in [0, length_m]: (n, k)."""
        g = s_m * self._inv_step
        i = g.astype(np.intp)
        # take(axis=0) gathers rows 4x faster than fancy indexing
        return self._rows.take(i, axis=0) + (g - i)[:, None] * self._delta.take(i, axis=0)

    def at_wrapped(self, s_m: np.ndarray) -> np.ndarray:
        """`at` for arc lengths anywhere (wrapped into the lap first)."""
        return self.at(np.mod(s_m, self.length_m))
