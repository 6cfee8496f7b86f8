"""The physical limit of a car on a track: a minimum-curvature racing line and its velocity profile.

Method (see each function):
- `minimum_curvature_line`: the classic minimum-curvature line. The centre line, resampled every
  `SPACING_M`, is displaced along its unit left normals by alpha_i; alpha is bounded so the car's body
  (half its width plus a safety margin) stays inside the road. Curvature is approximated by the second
  differences of the displaced points, which are linear in alpha, so the sum of their squares is a
  box-constrained quadratic programme, solved exactly by a sparse primal active-set method. Second
  differences measure curvature only for even spacing, so the solution is resampled and the problem solved
  again around it (`REFINE_PASSES` times; lap times change < 0.3 % after that); a check measures every
  point's clearance from the borders and tightens the bounds of any point that came too close. With the
  spacing held fixed the objective also favours shorter lines, which makes the line faster than the exact
  minimiser of the integral of kappa^2 (tried: Gauss-Newton on the exact curvature gave lines 5-25 % longer
  and laps 3-20 % slower, at 10x the cost).
- `velocity_profile`: a forward-backward pass with a friction circle (see its docstring).

Lines follow the `Track` convention: (K, 2) arrays in metres, the first point repeated at the end.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from contracts.car_file import VehicleParams
from firmware_configs import load_car
from sim.tracks import Track, cache

if TYPE_CHECKING:
    from scipy import sparse

log = logging.getLogger(__name__)

#: Spacing of the resampled lines (m): fine enough for the tightest DeepRacer turns (~0.5 m radius).
SPACING_M = 0.1
#: Extra clearance beyond half the body width for the default margin (m).
SAFETY_MARGIN_M = 0.02
#: Solves, each around the evenly resampled result of the last (second differences assume even spacing).
REFINE_PASSES = 3
#: Curvature is the circle through points this far (arc length, m) either side: exact on arcs, and it
#: spreads the kinks of piecewise-linear centre lines over a realistic distance instead of one sample.
CURVATURE_HALF_WINDOW_M = 0.2


@dataclass(frozen=True, eq=False)
class RaceLine:
    """A racing line with its limit velocity profile; arrays (K,), the first point repeated at the end.

    points: (K, 2) metres; s_m: arc length from points[0] (m); curvature_per_m: signed (1/m, + = left);
    speed_mps: the limit speed profile (m/s); lap_time_s: its lap time (s); length_m: the line's length (m).
    """

    points: np.ndarray
    s_m: np.ndarray
    curvature_per_m: np.ndarray
    speed_mps: np.ndarray
    lap_time_s: float
    length_m: float


# --------------------------------------------------------------------------- line geometry


def _open(line: np.ndarray) -> np.ndarray:
    """The distinct points (n, 2) of a closed line, whether or not its first point is repeated at the end."""
    line = np.asarray(line, dtype=np.float64)
    return line[:-1] if len(line) > 1 and np.allclose(line[0], line[-1]) else line


def _closed(points: np.ndarray) -> np.ndarray:
    return np.vstack([points, points[:1]])


def resample_closed(line: np.ndarray, spacing_m: float = SPACING_M) -> np.ndarray:
    """A closed line resampled to evenly spaced distinct points (n, 2), starting at its first point."""
    pts = _closed(_open(line))
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    n = max(8, round(s[-1] / spacing_m))
    s_new = np.linspace(0.0, s[-1], n, endpoint=False)
    return np.column_stack([np.interp(s_new, s, pts[:, 0]), np.interp(s_new, s, pts[:, 1])])


def _left_normals(points: np.ndarray) -> np.ndarray:
    """Unit left normals (n, 2) of distinct closed-loop points, from central differences."""
    tangent = np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    return np.column_stack([-tangent[:, 1], tangent[:, 0]])


def line_curvature(line: np.ndarray) -> np.ndarray:
    """Signed curvature (1/m, + = left) at each point of a closed line (K, 2), first point repeated at the end.

    The circle through the points `CURVATURE_HALF_WINDOW_M` of arc length before and after (Menger
    curvature): exact on circular arcs, robust to uneven spacing. Returns (K,), the last value the first."""
    pts = _open(line)
    seg = np.linalg.norm(np.diff(_closed(pts), axis=0), axis=1)
    k = max(1, round(CURVATURE_HALF_WINDOW_M / max(float(np.median(seg)), 1e-9)))
    k = min(k, (len(pts) - 1) // 2)
    a, b, c = np.roll(pts, k, axis=0), pts, np.roll(pts, -k, axis=0)
    ab, bc, ca = b - a, c - b, a - c
    cross = ab[:, 0] * bc[:, 1] - ab[:, 1] * bc[:, 0]
    norms = np.linalg.norm(ab, axis=1) * np.linalg.norm(bc, axis=1) * np.linalg.norm(ca, axis=1)
    kappa = 2.0 * cross / np.maximum(norms, 1e-12)
    return np.append(kappa, kappa[0])


def total_squared_curvature(line: np.ndarray) -> float:
    """Integral of curvature squared along a closed line (1/m): sum kappa_i^2 ds_i."""
    pts = _closed(_open(line))
    ds = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    return float(np.sum(line_curvature(pts)[:-1] ** 2 * ds))


# --------------------------------------------------------------------------- minimum curvature


def default_margin_m(car: str = "deepracer") -> float:
    """Half the car's body width plus `SAFETY_MARGIN_M` (m): how close the line may come to a border."""
    return 0.5 * load_car(car).vehicle.body_width_m + SAFETY_MARGIN_M


def _border_clearances(track: Track, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances (m) from points (n, 2) to the border on their left and on their right (driving direction)."""
    x, y = points[:, 0], points[:, 1]
    inner = track.inner_locator.project_brute_force(x, y).distance_m
    outer = track.outer_locator.project_brute_force(x, y).distance_m
    # The inner border is on the left of a counter-clockwise lap (`is_ccw` flips with `reversed()`).
    return (inner, outer) if track.is_ccw else (outer, inner)


def _second_difference(n: int) -> sparse.csr_matrix:
    """The cyclic second-difference matrix (n, n): row i gives p[i-1] - 2 p[i] + p[i+1]."""
    from scipy import sparse  # here, not at the top: a cached line (the usual case) never needs scipy

    eye = sparse.identity(n, format="csr")
    shift = sparse.csr_matrix((np.ones(n), (np.arange(n), (np.arange(n) + 1) % n)), shape=(n, n))
    return shift + shift.T - 2.0 * eye


def _solve_offsets(ref: np.ndarray, normals: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Offsets alpha (n,) in [lo, hi] minimising sum |D2 (ref + alpha normals)|^2 (a box-constrained QP).

    With the spacing fixed, second differences also shrink where the line is shorter, so this trades a little
    curvature for length: a faster line than the exact minimiser of the integral of kappa^2 (see the
    module docstring)."""
    from scipy import sparse

    d2 = _second_difference(len(ref))
    a = sparse.vstack([d2 @ sparse.diags(normals[:, 0]), d2 @ sparse.diags(normals[:, 1])]).tocsr()
    b = -np.concatenate([d2 @ ref[:, 0], d2 @ ref[:, 1]])
    hess = (a.T @ a).tocsr()
    grad0 = -(a.T @ b)
    return _primal_active_set(hess, grad0, lo, hi, np.zeros(len(ref)))


def _primal_active_set(
    hess: sparse.csr_matrix, grad0: np.ndarray, lo: np.ndarray, hi: np.ndarray, x0: np.ndarray
) -> np.ndarray:
    """Minimise 0.5 x'Hx + g'x over lo <= x <= hi (H sparse, positive definite) by the classic primal
    active-set method from the feasible point nearest `x0`: move toward the minimiser over the free
    variables until a bound blocks (fix it); at that minimiser free the bound whose multiplier has the wrong
    sign; stop when none has. Exact and monotone. Chosen over dense solvers (scipy's lsq_linear, L-BFGS-B)
    because it needs only small sparse banded solves: dense LAPACK/BLAS calls on a few hundred unknowns took
    30x longer (seconds) on a busy 2-core machine, where BLAS threads contend; this takes ~10 ms."""
    from scipy.sparse.linalg import spsolve

    x = np.clip(x0, lo, hi)
    at_lo, at_hi = x <= lo, (x >= hi) & ~(x <= lo)
    pinned = lo >= hi  # no room at all: never freed
    tol = 1e-12 * max(1.0, float(np.abs(grad0).max()))
    for _ in range(10 * len(x)):
        free = ~(at_lo | at_hi)
        target = x.copy()
        if free.any():
            h_free = hess[free]
            target[free] = spsolve(h_free[:, free].tocsc(), -grad0[free] - h_free[:, ~free] @ x[~free])
        step = target - x
        if np.abs(step).max() <= 1e-12:
            residual = hess @ x + grad0  # the multipliers: >= 0 at a lower bound, <= 0 at an upper one
            wrong = np.where(at_lo & ~pinned, -residual, np.where(at_hi & ~pinned, residual, 0.0))
            worst = int(np.argmax(wrong))
            if wrong[worst] <= tol:
                return x
            at_lo[worst] = at_hi[worst] = False
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(step < 0, (lo - x) / step, np.where(step > 0, (hi - x) / step, np.inf))
        t = min(1.0, float(room.min()))
        x = np.clip(x + t * step, lo, hi)
        if t < 1.0:
            blocked = room <= t + 1e-12
            at_lo |= blocked & (step < 0)
            at_hi |= blocked & (step > 0)
            x = np.where(at_lo, lo, np.where(at_hi, hi, x))
    log.warning("box QP did not converge; using the best feasible line found")
    return x


def _offset_bounds(track: Track, ref: np.ndarray, margin_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the left offset (m) that keep `margin_m` from both borders.

    Moving a distance d changes the distance to a border by at most d, so the nearest-border distance
    minus the margin is a safe reach on each side."""
    left, right = _border_clearances(track, ref)
    lo, hi = -(right - margin_m), left - margin_m
    squeezed = lo > hi  # narrower than the car plus margins: stay in the middle of what there is
    mid = 0.5 * (lo + hi)
    return np.where(squeezed, mid, lo), np.where(squeezed, mid, hi)


def minimum_curvature_line(
    track: Track, *, margin_m: float | None = None, car: str = "deepracer", passes: int = REFINE_PASSES
) -> np.ndarray:
    """The closed minimum-curvature line (K, 2), metres, first point repeated at the end.

    `margin_m`: the closest any line point may come to a border; default half `car`'s body width plus
    `SAFETY_MARGIN_M` (m). `passes`: solves, each around the evenly resampled result of the last. The line
    starts near waypoint 0 and runs in the track's driving direction."""
    margin = default_margin_m(car) if margin_m is None else float(margin_m)
    ref = resample_closed(track.waypoints)
    line = ref
    for _ in range(passes):
        normals = _left_normals(ref)
        lo, hi = _offset_bounds(track, ref, margin)
        line = ref + _solve_offsets(ref, normals, lo, hi)[:, None] * normals
        # The bounds are safe by the triangle inequality toward each border; check anyway, and tighten the
        # bounds of any point that came too close to the border it was not moving toward.
        for _ in range(3):
            left, right = _border_clearances(track, line)
            short = np.minimum(left, right) - margin
            if short.min() >= -1e-6:
                break
            bad = short < -1e-6
            alpha = np.einsum("ij,ij->i", line - ref, normals)
            hi = np.where(bad & (left < right), alpha + short - 1e-4, hi)
            lo = np.where(bad & (right <= left), alpha - short + 1e-4, lo)
            lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
            line = ref + _solve_offsets(ref, normals, lo, hi)[:, None] * normals
        ref = resample_closed(line)
    log.debug("min-curvature line on %s: %d points, margin %.3f m", track.name, len(line), margin)
    return _closed(line)


# --------------------------------------------------------------------------- velocity profile


def _ds(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(points, axis=0), axis=1)


def velocity_profile(
    line: np.ndarray, vehicle: VehicleParams, *, max_speed_mps: float | None = None
) -> tuple[np.ndarray, float]:
    """The fastest speed profile (m/s) along a closed line (K, 2) and its lap time (s).

    Limits: lateral v <= sqrt(grip / |kappa|) (grip = `vehicle.lateral_grip_mps2`); top speed
    `max_speed_mps` (default `vehicle.max_speed_mps`); acceleration `max_accel_mps2` and braking
    `max_brake_mps2`, each shrunk by a friction circle a_long = a_max sqrt(1 - (a_lat / grip)^2) because
    tyres cannot give full longitudinal and full lateral force at once. The lateral use is evaluated with
    the speed at the start of each step and the curvature at its far end (where the car is going), so a car
    on the limit in a steady turn can still accelerate out as the turn opens. Forward and backward passes
    go around the loop until nothing changes. Lap time = sum ds / mean(v) over each step (exact for
    constant acceleration). Returns (speed (K,), the last value the first; lap time)."""
    pts = _closed(_open(line))
    kappa = np.abs(line_curvature(pts)[:-1])
    ds = _ds(pts)
    n = len(ds)
    grip = vehicle.lateral_grip_mps2
    top = vehicle.max_speed_mps if max_speed_mps is None else float(max_speed_mps)
    v_lat = np.minimum(top, np.sqrt(grip / np.maximum(kappa, 1e-9)))

    def step(v0: float, kappa_end: float, dist: float, a_max: float) -> float:
        used = min(1.0, (v0 * v0 * kappa_end / grip) ** 2)
        return math.sqrt(v0 * v0 + 2.0 * a_max * math.sqrt(1.0 - used) * dist)

    v = v_lat.copy()
    # Start at the slowest corner: no pass can lower it (steps never lose speed), so it anchors the loop.
    start = int(np.argmin(v_lat))
    for _ in range(10):
        before = v.copy()
        for j in range(n):  # forward: accelerating from i to i+1
            i, k = (start + j) % n, (start + j + 1) % n
            v[k] = min(v[k], step(v[i], kappa[k], ds[i], vehicle.max_accel_mps2))
        for j in range(n):  # backward: braking from i+1 to i, seen from the end
            k = (start - j) % n
            i = (k - 1) % n
            v[i] = min(v[i], step(v[k], kappa[i], ds[i], vehicle.max_brake_mps2))
        if np.allclose(v, before, rtol=0, atol=1e-9):
            break
    lap_time = float(np.sum(2.0 * ds / (v + np.roll(v, -1))))
    return np.append(v, v[0]), lap_time


# --------------------------------------------------------------------------- cached results


def _arc_lengths(points: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(_ds(points))])


def _profile(points: np.ndarray, car: str) -> RaceLine:
    speed, lap_time = velocity_profile(points, load_car(car).vehicle_params())
    s = _arc_lengths(points)
    for arr in (points, s, speed):
        arr.setflags(write=False)
    kappa = line_curvature(points)
    kappa.setflags(write=False)
    return RaceLine(points, s, kappa, speed, lap_time, float(s[-1]))


def race_line(track: Track, car: str = "deepracer") -> RaceLine:
    """The minimum-curvature line for `car` on `track` and its limit profile; cached per (track, car)
    (tracks are shared objects from the library, so identity is the right key)."""
    return _race_line(track, car)  # positional, so `race_line(t)` and `race_line(t, "deepracer")` share


@dataclass(frozen=True)
class _LinePoints:
    """A minimum-curvature line (K, 2) as the track geometry cache stores it."""

    points: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {"points": self.points}


def _restore_line(arrays: Mapping[str, np.ndarray]) -> _LinePoints:
    points = np.asarray(arrays["points"], dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 4:
        raise ValueError(f"a race line of shape (K, 2) was expected, not {points.shape}")
    return _LinePoints(points)


def _cached_minimum_curvature_line(track: Track, car: str) -> np.ndarray:
    """`minimum_curvature_line(track, car=car)`, solved once per track file and margin and then read from
    the on-disk track geometry cache (the solve takes ~0.3 s plus scipy's import; reading takes ~1 ms)."""
    margin_m = default_margin_m(car)
    key = cache.geometry_key(
        track.route, "race-line", {"margin_m": margin_m, "passes": REFINE_PASSES, "spacing_m": SPACING_M}
    )
    stored = cache.load_or_build(
        key,
        lambda: _LinePoints(minimum_curvature_line(track, margin_m=margin_m)),
        _restore_line,
    )
    return stored.points.copy()


@lru_cache(maxsize=32)
def _race_line(track: Track, car: str) -> RaceLine:
    points = _cached_minimum_curvature_line(track, car)
    result = _profile(points, car)
    log.info(
        "%s / %s: race line %.2f m, limit lap %.2f s", track.name, car, result.length_m, result.lap_time_s
    )
    return result


def centre_line_profile(track: Track, car: str = "deepracer") -> RaceLine:
    """The same velocity profile along the centre line (resampled like the race line), for comparison."""
    return _centre_line_profile(track, car)


@lru_cache(maxsize=32)
def _centre_line_profile(track: Track, car: str) -> RaceLine:
    return _profile(_closed(resample_closed(track.waypoints)), car)


def centre_line_lap_time(track: Track, car: str = "deepracer") -> float:
    """The limit lap time (s) driving the centre line with `car`'s grip, acceleration and top speed."""
    return centre_line_profile(track, car).lap_time_s
