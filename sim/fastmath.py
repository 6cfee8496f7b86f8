"""Small numpy helpers for the simulator's hot paths, and the two number kinds its step runs on.

Why by hand: `np.clip` goes through a Python-level dispatcher that costs ~5 µs a call; the simulator calls it
dozens of times per step on arrays of ~1,000 elements, where two ufunc calls cost ~2 µs.

`ARRAYS` and `SCALARS`: the step of the simulator (physics, projections, rules, params, the state
observation, the built-in rewards) is written once against a small set of primitives `m`, and runs either on
(n,) numpy arrays (`m = ARRAYS`, the batched path) or on plain Python floats for one car (`m = SCALARS`, the
single `gymnasium.make` environment). Why: every numpy call costs ~0.5-2 µs whatever the size, so a step of
one car made of ~100 numpy calls on arrays of one element cost ~0.3 ms, where the same arithmetic on Python
floats costs ~0.05 µs an operation. numba would compile shared kernels instead, but it adds a large
dependency with its own release cadence against numpy's, a compile on first use (the warm-up users already
noticed) and libm differences from numpy's results; the float path reaches the speed wanted with neither.
Results are identical, bit for bit (tests/sim/test_single_car_path.py): both paths do the same IEEE operations
in the same order (`+ - * /` and `sqrt` are correctly rounded either way), and functions whose numpy
implementation is not the C library's (`tan`, `arctan2`, `cos`, `sin`) are numpy's in both.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def clamp(values: np.ndarray, low: float | np.ndarray, high: float | np.ndarray) -> np.ndarray:
    """`np.clip(values, low, high)` for arrays, as two ufunc calls (a new array; inputs unchanged)."""
    return np.minimum(np.maximum(values, low), high)


_NO_INDEX = np.zeros(0, dtype=np.intp)
_FIRST = np.zeros(1, dtype=np.intp)


class ArrayMath:
    """The primitives on (n,) numpy arrays (the batched simulator)."""

    scalar = False
    clamp = staticmethod(clamp)
    where = staticmethod(np.where)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    absolute = staticmethod(np.absolute)
    sqrt = staticmethod(np.sqrt)
    tan = staticmethod(np.tan)
    arctan2 = staticmethod(np.arctan2)
    radians = staticmethod(np.radians)
    degrees = staticmethod(np.degrees)
    logical_not = staticmethod(np.logical_not)
    flatnonzero = staticmethod(np.flatnonzero)

    @staticmethod
    def any(values: np.ndarray) -> bool:
        return bool(values.any())

    @staticmethod
    def to_index(values: np.ndarray) -> np.ndarray:
        """Truncated toward zero to np.intp (callers pass values >= 0: a floor)."""
        return values.astype(np.intp)

    @staticmethod
    def column(values: np.ndarray) -> np.ndarray:
        """(n,) -> (n, 1), to scale the rows of an (n, k) table."""
        return values[:, None]

    @staticmethod
    def unbox(values: np.ndarray) -> np.ndarray:
        """The (n,) state array itself (`SCALARS` reads its one element)."""
        return values

    @staticmethod
    def pick(values: np.ndarray, idx: Any) -> np.ndarray:
        return values[idx]

    @staticmethod
    def copy(values: np.ndarray) -> np.ndarray:
        return values.copy()

    @staticmethod
    def gather(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """table[idx] for a 1-D table (`take` beats fancy indexing)."""
        return table.take(idx)

    @staticmethod
    def lerp_rows(start: np.ndarray, slope: np.ndarray, idx: np.ndarray, frac: np.ndarray) -> np.ndarray:
        """start[idx] + frac * slope[idx] for (N, k) tables: (n, k) (`SCALARS`: a list of k floats)."""
        # take(axis=0) gathers rows 4x faster than fancy indexing
        return start.take(idx, axis=0) + frac[:, None] * slope.take(idx, axis=0)

    @staticmethod
    def as_float(values: Any) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    @staticmethod
    def first_column(rows: np.ndarray) -> np.ndarray:
        """Column 0 of (n, k) rows (`SCALARS`: the first value of one row, a list)."""
        return rows[:, 0]

    @staticmethod
    def columns(rows: np.ndarray) -> Any:
        """The k columns of (n, k) rows (`SCALARS`: the k values of one row, a list)."""
        return rows.T

    @staticmethod
    def store(array: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The new value of a state attribute: the computed array (`SCALARS` writes into the (1,) array)."""
        return values

    @staticmethod
    def subset(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Elements `idx` (flat indices, from `flatnonzero`) of values, for an exact fix-up of a few of them;
        an array in both kinds."""
        return values.reshape(-1)[idx]

    @staticmethod
    def patch(values: np.ndarray, idx: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        """values with elements `idx` (flat indices) replaced by the array `fixed` (in place)."""
        values.reshape(-1)[idx] = fixed
        return values


def _where(condition: Any, a: Any, b: Any) -> Any:
    return a if condition else b


def _clamp(value: float, low: float, high: float) -> float:
    # the same order as np.minimum(np.maximum(...)); NaN never reaches the simulator's clamps
    return min(max(value, low), high)


class ScalarMath:
    """The same primitives on Python floats, ints and bools: one car (a simulator of n = 1)."""

    scalar = True
    clamp = staticmethod(_clamp)
    where = staticmethod(_where)
    minimum = staticmethod(min)
    maximum = staticmethod(max)
    absolute = staticmethod(abs)
    sqrt = staticmethod(math.sqrt)  # correctly rounded, as np.sqrt
    radians = staticmethod(math.radians)  # a multiplication by the same constant as np.radians
    degrees = staticmethod(math.degrees)
    to_index = staticmethod(int)
    any = staticmethod(bool)

    @staticmethod
    def tan(value: float) -> float:
        # numpy's own (SIMD) tan and arctan2 differ from the C library's (math.tan) in the last bit for ~1 %
        # of inputs; numpy on a Python float runs the same loop as on arrays, in ~0.6 µs
        return float(np.tan(value))

    @staticmethod
    def arctan2(y: float, x: float) -> float:
        return float(np.arctan2(y, x))

    @staticmethod
    def logical_not(value: Any) -> bool:
        return not value

    @staticmethod
    def flatnonzero(condition: Any) -> np.ndarray:
        return _FIRST if condition else _NO_INDEX

    @staticmethod
    def column(value: float) -> float:
        return value

    # ndarray.item itself (no Python frame): the one element of a (1,) state array, or element idx, as a
    # Python number
    unbox = staticmethod(np.ndarray.item)
    pick = staticmethod(np.ndarray.item)
    gather = staticmethod(np.ndarray.item)

    @staticmethod
    def copy(value: Any) -> Any:
        return value

    as_float = staticmethod(float)

    @staticmethod
    def lerp_rows(start: np.ndarray, slope: np.ndarray, idx: int, frac: float) -> list[float]:
        # lists: numpy on a row of a few values costs ~1 µs a call
        return [a + frac * b for a, b in zip(start[idx].tolist(), slope[idx].tolist(), strict=True)]

    @staticmethod
    def first_column(row: list[float]) -> float:
        return row[0]

    @staticmethod
    def columns(row: list[float]) -> list[float]:
        return row

    @staticmethod
    def store(array: np.ndarray, value: Any) -> np.ndarray:
        array[0] = value
        return array

    @staticmethod
    def subset(value: Any, idx: np.ndarray) -> np.ndarray:
        return np.array([value])

    @staticmethod
    def patch(value: Any, idx: np.ndarray, fixed: np.ndarray) -> Any:
        return fixed.item(0)


ARRAYS = ArrayMath()
SCALARS = ScalarMath()
Math = ArrayMath | ScalarMath
