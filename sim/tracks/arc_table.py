"""`ArcTable`: quantities that depend only on the arc length along a closed centre line, pre-sampled.

Why by hand: reading k values at 1,024 arc lengths must cost a few gathers and blends (~20 µs), not a
projection or an `np.interp(period=...)` per column (which sorts its inputs on every call).

Values are linear between samples, except across a jump (a nearest border point leaping from one part of a
border to another at a bend): there the jump's position is found by bisection when the table is built, and
each side is extrapolated from its own neighbouring interval, so a lookup never blends two unrelated points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from sim.fastmath import ARRAYS, Math

ValuesFn = Callable[[np.ndarray], np.ndarray]


class ArcTable:
    """k columns sampled at n evenly spaced arc lengths over one lap of `length_m`."""

    #: Default spacing of the samples, metres.
    STEP_M = 0.002
    #: An interval whose values change by more than this many times the median change holds a jump.
    JUMP_FACTOR = 4.0

    def __init__(
        self,
        length_m: float,
        values: np.ndarray,
        fn: ValuesFn | None = None,
        *,
        jumps: np.ndarray | None = None,
        cuts: np.ndarray | None = None,
    ) -> None:
        """`values` (n,) or (n, k) sampled at s = i * length_m / n. Jumps are located by bisection with `fn`,
        or given: interval indices `jumps` (j,) and the fraction of each interval where its jump is, `cuts`."""
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
        if fn is not None:
            jumps, cuts = self._locate_jumps(fn)
        #: (j,) indices of the intervals holding a jump, and (j,) the fraction of the interval where it is
        self.jumps = np.zeros(0, dtype=np.intp) if jumps is None else np.asarray(jumps, dtype=np.intp)
        self.cuts = np.zeros(0) if cuts is None else np.asarray(cuts, dtype=np.float64)
        self.n_jumps = len(self.jumps)
        if self.n_jumps:
            # the slopes of the neighbouring intervals, read before any jump interval's slope is replaced
            before = self._slope[(self.jumps - 1) % self.n_samples]
            after = self._slope[(self.jumps + 1) % self.n_samples]
            self._slope[self.jumps] = before
            self._end_slope[self.jumps] = after
            self._cut[self.jumps] = self.cuts

    def arrays(self) -> dict[str, np.ndarray]:
        """What building computed: `values` (n, k) float64, `jumps` (j,) interval indices, `cuts` (j,)
        fractions; `from_arrays` with the same lap length gives an identical table."""
        return {"values": self.values, "jumps": self.jumps, "cuts": self.cuts}

    @classmethod
    def from_arrays(cls, length_m: float, arrays: Mapping[str, np.ndarray]) -> ArcTable:
        """The table `arrays()` described (KeyError or ValueError when the arrays are inconsistent)."""
        values, jumps, cuts = arrays["values"], arrays["jumps"], arrays["cuts"]
        if values.ndim != 2 or values.dtype != np.float64 or len(values) < 16:
            raise ValueError(f"values: expected (n >= 16, k) float64, got {values.shape} {values.dtype}")
        if jumps.ndim != 1 or jumps.shape != cuts.shape or not np.issubdtype(jumps.dtype, np.integer):
            raise ValueError(f"jumps, cuts: expected two (j,) arrays, got {jumps.shape} and {cuts.shape}")
        if len(jumps) and (jumps.min() < 0 or jumps.max() >= len(values)):
            raise ValueError(f"jumps: interval indices outside [0, {len(values)})")
        return cls(length_m, values, jumps=jumps, cuts=cuts)

    @property
    def values(self) -> np.ndarray:
        """(n, k) the sampled values (a view: do not modify)."""
        return self._start[: self.n_samples]

    @classmethod
    def sample(
        cls, length_m: float, fn: ValuesFn, step_m: float = STEP_M, *, split_jumps: bool = True
    ) -> ArcTable:
        """Sample `fn(s_m (n,)) -> (n,) or (n, k)` every `step_m` (or a little less) over the lap; with
        `split_jumps`, locate jumps in the values by calling `fn` again (skip it for continuous values)."""
        return cls(length_m, fn(cls.sample_points(length_m, step_m)), fn if split_jumps else None)

    @staticmethod
    def sample_points(length_m: float, step_m: float = STEP_M) -> np.ndarray:
        """(n,) the arc lengths `sample` evaluates, metres: n >= 16 even steps of at most `step_m`."""
        n = max(16, int(np.ceil(length_m / step_m)))
        return np.arange(n) * (length_m / n)

    def with_values(self, values: np.ndarray) -> ArcTable:
        """A table of other `values` (n,) or (n, k) sampled at the same arc lengths, split at the same jumps:
        for values that jump only where this table's do (a function of them), no bisection needed."""
        if len(values) != self.n_samples:
            raise ValueError(f"expected {self.n_samples} samples, got {len(values)}")
        return ArcTable(self.length_m, values, jumps=self.jumps, cuts=self.cuts)

    def _locate_jumps(self, fn: ValuesFn) -> tuple[np.ndarray, np.ndarray]:
        """Intervals whose values change much more than usual, and where in each the jump is (bisection)."""
        change = np.abs(self._slope[: self.n_samples]).max(axis=1)
        jumps = np.flatnonzero(change > self.JUMP_FACTOR * float(np.median(change)) + 1e-9)
        if not len(jumps):
            return jumps, np.zeros(0)
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
        return jumps, hi

    def at(self, s_m: np.ndarray, m: Math = ARRAYS) -> np.ndarray:
        """Values at arc lengths `s_m` (n,) already in [0, length_m]: (n, k); a list of k floats for a float
        arc length with `m=SCALARS`."""
        g = s_m * self._inv_step
        i = m.to_index(g)
        f = g - i
        left = m.lerp_rows(self._start, self._slope, i, f)
        if not self.n_jumps:
            return left
        right = m.lerp_rows(self._end, self._end_slope, i, f - 1.0)
        return m.where(m.column(f >= m.gather(self._cut, i)), right, left)
