"""`ArcTable`: quantities that depend only on the arc length along a closed centre line, pre-sampled.

Why by hand: reading k values at 1,024 arc lengths must cost a few gathers and blends (~20 µs), not a
projection or an `np.interp(period=...)` per column (which sorts its inputs on every call).

Values are linear between samples, except across a jump (a nearest border point leaping from one part of a
border to another at a bend): there the jump's position is found by bisection when the table is built, and
each side is extrapolated from its own neighbouring interval, so a lookup never blends two unrelated points.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ValuesFn = Callable[[np.ndarray], np.ndarray]


class ArcTable:
    """k columns sampled at n evenly spaced arc lengths over one lap of `length_m`."""

    #: Default spacing of the samples, metres.
    STEP_M = 0.002
    #: An interval whose values change by more than this many times the median change holds a jump.
    JUMP_FACTOR = 4.0

    def __init__(self, length_m: float, values: np.ndarray, fn: ValuesFn | None = None) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        self.length_m = float(length_m)
        self.n_samples = len(values)
        self._step_m = self.length_m / self.n_samples
        self._inv_step = 1.0 / self._step_m
        # closing row = first row, so a lookup never wraps; one spare row absorbs s == length_m exactly.
        # Interval i (fraction f in [0, 1)) reads start[i] + f * slope[i] before cut[i] and
        # end[i] + (f - 1) * end_slope[i] from it on; without a jump cut = 2 (never).
        rows = np.vstack([values, values[:1], values[:1]])
        self._start = rows[:-1]
        self._slope = np.diff(rows, axis=0)
        self._end = rows[1:].copy()
        self._end_slope = self._slope.copy()
        self._cut = np.full(len(self._start), 2.0)
        self.n_jumps = 0
        if fn is not None:
            self._split_jumps(fn)

    @classmethod
    def sample(
        cls, length_m: float, fn: ValuesFn, step_m: float = STEP_M, *, split_jumps: bool = True
    ) -> ArcTable:
        """Sample `fn(s_m (n,)) -> (n,) or (n, k)` every `step_m` (or a little less) over the lap; with
        `split_jumps`, locate jumps in the values by calling `fn` again (skip it for continuous values)."""
        n = max(16, int(np.ceil(length_m / step_m)))
        return cls(length_m, fn(np.arange(n) * (length_m / n)), fn if split_jumps else None)

    def _split_jumps(self, fn: ValuesFn) -> None:
        change = np.abs(self._slope[: self.n_samples]).max(axis=1)
        jumps = np.flatnonzero(change > self.JUMP_FACTOR * float(np.median(change)) + 1e-9)
        self.n_jumps = len(jumps)
        if not len(jumps):
            return
        before = self._slope[(jumps - 1) % self.n_samples]
        after = self._slope[(jumps + 1) % self.n_samples]
        start, end = self._start[jumps], self._end[jumps]
        lo, hi = np.zeros(len(jumps)), np.ones(len(jumps))
        for _ in range(40):  # bisection to ~1e-12 of an interval
            mid = 0.5 * (lo + hi)
            value = np.atleast_2d(fn((jumps + mid) * self._step_m).reshape(len(jumps), -1))
            left = np.abs(value - (start + mid[:, None] * before)).max(axis=1)
            right = np.abs(value - (end + (mid - 1.0)[:, None] * after)).max(axis=1)
            on_left = left <= right
            lo = np.where(on_left, mid, lo)
            hi = np.where(on_left, hi, mid)
        self._slope[jumps] = before
        self._end_slope[jumps] = after
        self._cut[jumps] = hi

    def at(self, s_m: np.ndarray) -> np.ndarray:
        """Values at arc lengths `s_m` (n,) already in [0, length_m]: (n, k)."""
        g = s_m * self._inv_step
        i = g.astype(np.intp)
        f = g - i
        # take(axis=0) gathers rows 4x faster than fancy indexing
        left = self._start.take(i, axis=0) + f[:, None] * self._slope.take(i, axis=0)
        if not self.n_jumps:
            return left
        right = self._end.take(i, axis=0) + (f - 1.0)[:, None] * self._end_slope.take(i, axis=0)
        return np.where((f >= self._cut.take(i))[:, None], right, left)
