"""Spatial indexes over a closed track, answering batched queries in O(1) per point.

Why by hand: shapely answers one point at a time (~20 µs each); the simulator asks ~5,000 questions per step
for 1,024 cars and has a budget of about 1 µs each. Both indexes are rasters built once per track (and kept
in the on-disk geometry cache, `sim.tracks.cache`), then read with numpy fancy indexing.

- :class:`SegmentLocator` — the nearest point on a closed polyline (centre line or a border): a raster holds
  the nearest segment of each cell centre; a query refines over that segment's neighbours, exactly.
- :class:`RoadField` — the signed distance to the road's edge (positive on the road), bilinear between cell
  centres; its zero level set is the road polygon's boundary to well under a millimetre.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from sim.fastmath import ARRAYS, SCALARS, Math, clamp

log = logging.getLogger(__name__)

#: Raster resolution. 2 cm keeps a query's true nearest segment within ±2 segments of the cell's on every
#: track we ship (tested against brute force with hypothesis), and a 30 m x 20 m track under 2 M cells.
DEFAULT_CELL_M = 0.02
#: How far the rasters extend beyond the outer border; cars farther out are off track anyway.
DEFAULT_MARGIN_M = 1.0
#: Neighbour segments checked on each side of the cell's nearest segment.
WINDOW_SEGMENTS = 2
_MAX_CELLS = 4_000_000
#: Elements of one (points, segments) temporary array of a brute-force projection.
_BRUTE_FORCE_ELEMENTS = 2_000_000
#: Building a locator's raster checks segments per square block of this many cells a side.
_BLOCK_CELLS = 32
#: `RoadField` measures its bilinear error in the patches whose corner lies this close to the road's edge,
#: and decides exactly the points the raster cannot; both ask the border locators about points that close.
EDGE_BAND_M = 0.05


def edge_band_m(cell_m: float) -> float:
    """How far from its polyline a locator with cells of `cell_m` is exact by default, metres: the road
    field's `EDGE_BAND_M`, plus a patch's diagonal (its sample points lie that far from the cell centre that
    was tested) and a cell's diagonal of margin (`certify` bounds each cell from its centre)."""
    return EDGE_BAND_M + 2.0 * math.sqrt(2.0) * cell_m


@dataclass(frozen=True)
class Projection:
    """Nearest points on a polyline for n query points (every array has shape (n,)).

    `segment` is the index i of segment (p[i], p[i+1]); `t` in [0, 1] the fraction along it; `s_m` the arc
    length from the polyline's first point; (`px_m`, `py_m`) the nearest point; `distance_m` its distance.
    """

    segment: np.ndarray
    t: np.ndarray
    s_m: np.ndarray
    px_m: np.ndarray
    py_m: np.ndarray
    distance_m: np.ndarray


@dataclass(frozen=True)
class Raster:
    """A regular grid over the track: cell (iy, ix) has its centre at (x0 + (ix + .5) h, y0 + (iy + .5) h)."""

    x0_m: float
    y0_m: float
    cell_m: float
    nx: int
    ny: int

    @classmethod
    def around(cls, points_m: np.ndarray, cell_m: float, margin_m: float) -> Raster:
        lo = points_m.min(axis=0) - margin_m
        hi = points_m.max(axis=0) + margin_m
        span = hi - lo
        cell_m = max(cell_m, float(np.sqrt(span[0] * span[1] / _MAX_CELLS)))
        nx, ny = (np.ceil(span / cell_m).astype(int) + 1).tolist()
        return cls(float(lo[0]), float(lo[1]), cell_m, nx, ny)

    def centre_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """(nx,) x and (ny,) y of the cell centres in metres."""
        return (
            self.x0_m + (np.arange(self.nx) + 0.5) * self.cell_m,
            self.y0_m + (np.arange(self.ny) + 0.5) * self.cell_m,
        )

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(ny, nx) arrays of the cell centres' x and y in metres."""
        xs = self.x0_m + (np.arange(self.nx) + 0.5) * self.cell_m
        ys = self.y0_m + (np.arange(self.ny) + 0.5) * self.cell_m
        return np.meshgrid(xs, ys)

    def cell_of(self, x_m: np.ndarray, y_m: np.ndarray, m: Math = ARRAYS) -> np.ndarray:
        """Flat index of the cell holding each point (points outside are clamped to the edge); an int for a
        float point with `m=SCALARS`."""
        inv = 1.0 / self.cell_m
        ix = m.clamp(m.to_index((x_m - self.x0_m) * inv), 0, self.nx - 1)
        iy = m.clamp(m.to_index((y_m - self.y0_m) * inv), 0, self.ny - 1)
        return iy * self.nx + ix


def _to_segment(
    x_m: Any, y_m: Any, ax: Any, ay: Any, vx: Any, vy: Any, inv_len2: Any, m: Math
) -> tuple[Any, Any]:
    """Fraction t in [0, 1] along segments (a, a + v) of the nearest point to (x_m, y_m), and its squared
    distance: broadcast arrays (the batched query's (W, n) candidates) or floats (one candidate)."""
    dx = x_m - ax
    dy = y_m - ay
    t = m.clamp((dx * vx + dy * vy) * inv_len2, 0.0, 1.0)
    dx -= t * vx  # in place for arrays (fresh ones)
    dy -= t * vy
    return t, dx * dx + dy * dy


def _nearest_on_grid(
    xs: np.ndarray,
    ys: np.ndarray,
    segments: tuple[np.ndarray, ...],
    window_centre: np.ndarray | None = None,
    wanted: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each grid point (xs[i], ys[j]) (row-major, (ny * nx,) each): the nearest of `segments` (ax, ay,
    vx, vy, inv_len2; the first of equally near ones) as int32, and its squared distance (m^2). With
    `window_centre` (ny * nx,), the segments within `WINDOW_SEGMENTS` of each point's window centre are left
    out: the nearest segment *outside* its window (-1 and inf when there is none). With `wanted` (ny * nx,)
    bool, blocks holding no wanted point are skipped (their points get -1 and inf).

    Exact, by blocks of `_BLOCK_CELLS` x `_BLOCK_CELLS` points: a segment can be the nearest (allowed) one to a
    point of a block only if its distance to the block's centre is within twice the block's half diagonal of
    the nearest allowed one's to the centre, so each block checks those few segments. Why not a k-d tree over
    dense samples of the line: around a bend's centre of curvature its queries visit nearly every sample (on
    a 60 m track, 5-10 s per polyline against ~0.15 s here)."""
    ax, ay, vx, vy, inv_len2 = segments
    n_seg = len(ax)

    def distances2(px: np.ndarray, py: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """(n, k) squared distances from points (n,) to segments `seg` (k,)."""
        dx = px[:, None] - ax[seg]
        dy = py[:, None] - ay[seg]
        t = np.minimum(np.maximum((dx * vx[seg] + dy * vy[seg]) * inv_len2[seg], 0.0), 1.0)
        dx -= t * vx[seg]
        dy -= t * vy[seg]
        return dx * dx + dy * dy

    def in_window(centre: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """(n, k): segment seg[k] is within the window around segment centre[n]."""
        offset = (seg[None, :] - centre[:, None]) % n_seg
        return (offset <= WINDOW_SEGMENTS) | (offset >= n_seg - WINDOW_SEGMENTS)

    nx, ny = len(xs), len(ys)
    x_lo, y_lo = np.arange(0, nx, _BLOCK_CELLS), np.arange(0, ny, _BLOCK_CELLS)
    x_hi, y_hi = np.minimum(x_lo + _BLOCK_CELLS, nx), np.minimum(y_lo + _BLOCK_CELLS, ny)
    # per block (row-major, as np.ndindex below): its centre and half diagonal, from its points
    centre_x, centre_y = np.meshgrid(0.5 * (xs[x_lo] + xs[x_hi - 1]), 0.5 * (ys[y_lo] + ys[y_hi - 1]))
    half_x, half_y = np.meshgrid(0.5 * (xs[x_hi - 1] - xs[x_lo]), 0.5 * (ys[y_hi - 1] - ys[y_lo]))
    twice_half = 2.0 * np.hypot(half_x, half_y).ravel() + 1e-9  # 1e-9 m absorbs rounding
    all_segments = np.arange(n_seg)
    to_block = np.sqrt(distances2(centre_x.ravel(), centre_y.ravel(), all_segments))  # (blocks, M)
    seg_out = np.full((ny, nx), -1, dtype=np.int32)
    d2_out = np.full((ny, nx), np.inf)
    windows = None if window_centre is None else window_centre.reshape(ny, nx)
    wanted_grid = None if wanted is None else wanted.reshape(ny, nx)
    for b, (j, i) in enumerate(np.ndindex(len(y_lo), len(x_lo))):
        block = (slice(y_lo[j], y_hi[j]), slice(x_lo[i], x_hi[i]))
        if wanted_grid is not None and not wanted_grid[block].any():
            continue
        allowed = to_block[b]
        if windows is not None:  # the nearest segment outside the windows of all the block's points
            centres = np.unique(windows[block])
            allowed = np.where(in_window(centres, all_segments).any(axis=0), np.inf, allowed)
        # ascending indices, so argmin keeps the first of equally near segments
        candidates = np.flatnonzero(to_block[b] <= allowed.min() + twice_half[b])
        px, py = np.meshgrid(xs[block[1]], ys[block[0]])
        d2 = distances2(px.ravel(), py.ravel(), candidates)
        if windows is not None:
            d2[in_window(windows[block].ravel(), candidates)] = np.inf
        nearest = np.argmin(d2, axis=1)
        best = d2[np.arange(len(nearest)), nearest]
        seg_out[block] = np.where(np.isfinite(best), candidates[nearest], -1).reshape(px.shape)
        d2_out[block] = best.reshape(px.shape)
    return seg_out.ravel(), d2_out.ravel()


class SegmentLocator:
    """Batched nearest-point queries on a closed polyline `points_m` (M+1, 2) whose last point is its first.

    Zero-length segments (duplicated waypoints kept for DeepRacer's older indexing) are allowed: they are
    never the unique nearest segment, so ties go to the earlier segment as in shapely's `project`.

    A new locator is exact for points within `edge_band_m(cell_m)` of the polyline (what `RoadField` asks
    of the borders); `certify` widens that. Without it, a point's nearest segment can lie outside the window
    around its cell's one while the window holds a nearer local minimum: on a border with short segments
    (a dense DeepRacer route) where it bends back on itself, two arms a few centimetres apart.

    Building the raster is the expensive part (~0.1-0.5 s); `arrays()` returns what it computed and
    `from_arrays` rebuilds an identical locator from them (the track geometry cache stores them on disk).
    """

    def __init__(
        self,
        points_m: np.ndarray,
        cell_m: float = DEFAULT_CELL_M,
        margin_m: float = DEFAULT_MARGIN_M,
        *,
        cell_segment: np.ndarray | None = None,
    ) -> None:
        pts = np.asarray(points_m, dtype=np.float64)
        self.n_segments = len(pts) - 1
        self._ax, self._ay = pts[:-1, 0].copy(), pts[:-1, 1].copy()
        self._vx, self._vy = np.diff(pts[:, 0]), np.diff(pts[:, 1])
        length2 = self._vx**2 + self._vy**2
        self._inv_len2 = np.divide(1.0, length2, out=np.zeros_like(length2), where=length2 > 0)
        self.cum_s_m = np.concatenate([[0.0], np.cumsum(np.sqrt(length2))])
        self.raster = Raster.around(pts, cell_m, margin_m)
        # squared distance of each cell centre to the polyline, kept from building until `certify` uses it
        self._cell_d2: np.ndarray | None = None
        if cell_segment is None:
            self._cell_segment, self._cell_d2 = self._build_cell_segments()
        else:
            cells = _checked(cell_segment, "cell_segment", self.raster, np.int32)
            if cells.min() < 0 or cells.max() >= self.n_segments:
                raise ValueError(f"cell_segment: segment indices outside [0, {self.n_segments})")
            self._cell_segment = cells
        # Segment data padded with wrapped copies, so a candidate window never needs a modulo: padded index
        # k + WINDOW_SEGMENTS holds segment k.
        pad = np.r_[
            np.arange(-WINDOW_SEGMENTS, 0) % self.n_segments,
            np.arange(self.n_segments),
            np.arange(WINDOW_SEGMENTS),
        ]
        self._pad_segment = pad
        self._pad = [a[pad] for a in (self._ax, self._ay, self._vx, self._vy, self._inv_len2)]
        # (W, 1) offsets: candidate arrays are laid out (W, n), which numpy reduces fastest over axis 0
        self._offsets = np.arange(2 * WINDOW_SEGMENTS + 1)[:, None]
        # per cell: no segment outside the cell's window is nearer than this (inf: not certified)
        self._outside_bound_m = np.full(len(self._cell_segment), np.inf)
        # the band certified on first use (or widened by `certify` first: one pass over the raster either way)
        self._pending_band_m = edge_band_m(self.raster.cell_m) if cell_segment is None else None

    def arrays(self) -> dict[str, np.ndarray]:
        """What building (and `certify`) computed, per raster cell (ny * nx,): `cell_segment` int32 and
        `outside_bound_m` float64. `from_arrays` with the same points and cell size gives an identical locator."""
        self._settle()
        return {"cell_segment": self._cell_segment, "outside_bound_m": self._outside_bound_m}

    @classmethod
    def from_arrays(
        cls,
        points_m: np.ndarray,
        arrays: Mapping[str, np.ndarray],
        cell_m: float = DEFAULT_CELL_M,
        margin_m: float = DEFAULT_MARGIN_M,
    ) -> SegmentLocator:
        """The locator `arrays()` described, without rebuilding its raster. Raises KeyError or ValueError when
        the arrays do not fit these points (wrong shape, dtype or segment indices)."""
        locator = cls(points_m, cell_m, margin_m, cell_segment=arrays["cell_segment"])
        locator._outside_bound_m = _checked(arrays["outside_bound_m"], "outside_bound_m", locator.raster)
        return locator

    def certify(self, band_m: float) -> None:
        """Make `project` exact for every point within `band_m` of the polyline.

        Near a bend's centre of curvature the distance to the polyline is nearly flat along many segments and
        can have two local minima inside and outside a cell's window. For each cell within `band_m`, store a
        lower bound on the distance to any segment outside its window; a query that finds a larger distance is
        answered by brute force.
        """
        if self._pending_band_m is not None:
            band_m = max(band_m, self._pending_band_m)
            self._pending_band_m = None
        xs, ys = self.raster.centre_axes()
        segments = self._segments()
        nearest_d2 = self._cell_d2 if self._cell_d2 is not None else _nearest_on_grid(xs, ys, segments)[1]
        self._cell_d2 = None  # only needed once
        wanted = nearest_d2 <= band_m * band_m
        _, outside_d2 = _nearest_on_grid(xs, ys, segments, window_centre=self._cell_segment, wanted=wanted)
        near = np.flatnonzero(wanted)
        half_diagonal = self.raster.cell_m * np.sqrt(0.5)
        self._outside_bound_m[near] = np.sqrt(outside_d2[near]) - half_diagonal

    def _settle(self) -> None:
        """Certify the default band if nothing has yet (one attribute test on the query path)."""
        if self._pending_band_m is not None:
            self.certify(self._pending_band_m)

    def _segments(self) -> tuple[np.ndarray, ...]:
        """(ax, ay, vx, vy, inv_len2), each (M,): segment i runs from (ax, ay)[i] to (ax + vx, ay + vy)[i]."""
        return self._ax, self._ay, self._vx, self._vy, self._inv_len2

    def _build_cell_segments(self) -> tuple[np.ndarray, np.ndarray]:
        """(ny * nx,) int32: the segment nearest each cell centre, exactly (the first of equals); and (ny * nx,)
        its squared distance, m^2."""
        return _nearest_on_grid(*self.raster.centre_axes(), self._segments())

    def project(self, x_m: np.ndarray, y_m: np.ndarray, m: Math = ARRAYS) -> Projection:
        """Nearest points on the polyline to points (x_m[i], y_m[i]); x_m and y_m have shape (n,).

        With `m=SCALARS`, one point as two floats: the same candidates and arithmetic in a Python loop, and a
        Projection of Python numbers."""
        self._settle()
        if m.scalar:
            return self._project_one(x_m, y_m)
        x_m = np.asarray(x_m, dtype=np.float64)
        y_m = np.asarray(y_m, dtype=np.float64)
        cell = self.raster.cell_of(x_m, y_m)
        k0 = self._cell_segment[cell]
        cand = k0 + self._offsets  # (W, n) padded indices
        ax, ay, vx_all, vy_all, inv_len2 = self._pad
        t, d2 = _to_segment(x_m, y_m, ax[cand], ay[cand], vx_all[cand], vy_all[cand], inv_len2[cand], ARRAYS)
        j = np.argmin(d2, axis=0)
        pick = j * len(x_m) + np.arange(
            len(x_m)
        )  # flat index of (j[i], i): 1-D takes beat 2-D fancy indexing
        seg = self._pad_segment[cand.take(pick)]
        tt = t.take(pick)
        # A minimum at the window's edge may continue beyond it (a point near a tight bend's centre of
        # curvature): answer those few exactly.
        edge = np.flatnonzero(
            (j == 0) | (j == 2 * WINDOW_SEGMENTS) | (d2.take(pick) > self._outside_bound_m[cell] ** 2)
        )
        if len(edge):
            exact = self.project_brute_force(x_m[edge], y_m[edge])
            seg[edge] = exact.segment
            tt[edge] = exact.t
        return self._at(seg, tt, x_m, y_m)

    @cached_property
    def _pad_lists(self) -> tuple[list[float], ...]:
        """`_pad` as Python lists: indexing a list costs a tenth of indexing an array for one point."""
        return tuple(a.tolist() for a in self._pad)

    def _project_one(self, x_m: float, y_m: float) -> Projection:
        """`project` of one point given as floats (see `project`)."""
        cell = self.raster.cell_of(x_m, y_m, SCALARS)
        k0 = self._cell_segment.item(cell)
        ax, ay, vx, vy, inv_len2 = self._pad_lists
        best_j, best_t, best_d2 = 0, 0.0, math.inf
        for j in range(2 * WINDOW_SEGMENTS + 1):  # first minimum wins, as np.argmin
            k = k0 + j
            t, d2 = _to_segment(x_m, y_m, ax[k], ay[k], vx[k], vy[k], inv_len2[k], SCALARS)
            if d2 < best_d2:
                best_j, best_t, best_d2 = j, t, d2
        bound = self._outside_bound_m.item(cell)
        if best_j == 0 or best_j == 2 * WINDOW_SEGMENTS or best_d2 > bound * bound:
            exact = self.project_brute_force(x_m, y_m)
            return self._at(exact.segment.item(0), exact.t.item(0), x_m, y_m, SCALARS)
        return self._at(self._pad_segment.item(k0 + best_j), best_t, x_m, y_m, SCALARS)

    def _at(
        self, seg: np.ndarray, t: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, m: Math = ARRAYS
    ) -> Projection:
        # the end of the last segment is the start of the first: report arc length 0 there, as shapely does
        at_end = (seg == self.n_segments - 1) & (t >= 1.0)
        if m.any(at_end):
            seg = m.where(at_end, 0, seg)
            t = m.where(at_end, 0.0, t)
        px = m.pick(self._ax, seg) + t * m.pick(self._vx, seg)
        py = m.pick(self._ay, seg) + t * m.pick(self._vy, seg)
        s0 = m.pick(self.cum_s_m, seg)
        s = s0 + t * (m.pick(self.cum_s_m, seg + 1) - s0)
        dx, dy = x_m - px, y_m - py
        return Projection(seg, t, s, px, py, m.sqrt(dx * dx + dy * dy))

    def side(self, x_m: np.ndarray, y_m: np.ndarray, proj: Projection) -> np.ndarray:
        """(n,) > 0 where points lie left of the polyline's direction, < 0 right, given their projection.

        At a vertex the side is taken against the sum of the two segments' unit normals (the angle-weighted
        pseudo-normal), which classifies points near convex and concave corners correctly."""
        seg, t = proj.segment, proj.t
        m = self.n_segments
        # a nearest point at a segment's end is the next segment's start: look at both segments there
        at_start = t <= 0.0
        at_end = t >= 1.0
        other = np.where(at_start, (seg - 1) % m, np.where(at_end, (seg + 1) % m, seg))
        nx, ny = self._unit_normal(seg)
        ox, oy = self._unit_normal(other)
        px, py = x_m - proj.px_m, y_m - proj.py_m
        return px * (nx + ox) + py * (ny + oy)

    def _unit_normal(self, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Left unit normals (-vy, vx)/|v| of segments `seg` (zero for zero-length segments)."""
        inv_len = np.sqrt(self._inv_len2[seg])
        return -self._vy[seg] * inv_len, self._vx[seg] * inv_len

    def distance(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Distance to the polyline for many points (n,), in chunks to bound memory, metres."""
        out = np.empty(len(x_m))
        for start in range(0, len(x_m), 200_000):
            sl = slice(start, start + 200_000)
            out[sl] = self.project(x_m[sl], y_m[sl]).distance_m
        return out

    def project_brute_force(self, x_m: np.ndarray, y_m: np.ndarray) -> Projection:
        """The same answer by checking every segment: O(n M). For tests and the few uncertain queries."""
        x_m = np.atleast_1d(np.asarray(x_m, dtype=np.float64))
        y_m = np.atleast_1d(np.asarray(y_m, dtype=np.float64))
        seg = np.empty(len(x_m), dtype=np.intp)
        t_at = np.empty(len(x_m))
        # in chunks of points, so the (points, M) temporaries stay ~16 MB on long, dense polylines
        chunk = max(1, _BRUTE_FORCE_ELEMENTS // max(1, self.n_segments))
        for start in range(0, len(x_m), chunk):
            sl = slice(start, start + chunk)
            dx = x_m[sl, None] - self._ax
            dy = y_m[sl, None] - self._ay
            t = clamp((dx * self._vx + dy * self._vy) * self._inv_len2, 0.0, 1.0)
            d2 = (dx - t * self._vx) ** 2 + (dy - t * self._vy) ** 2
            seg[sl] = np.argmin(d2, axis=1)
            t_at[sl] = t[np.arange(len(d2)), seg[sl]]
        return self._at(seg, t_at, x_m, y_m)


def _checked(
    values: np.ndarray, name: str, raster: Raster, dtype: type[np.generic] = np.float64
) -> np.ndarray:
    """`values` if it holds one `dtype` value per cell of `raster`, else ValueError naming the array."""
    values = np.asarray(values)
    if values.shape != (raster.nx * raster.ny,) or values.dtype != dtype:
        raise ValueError(
            f"{name}: expected {raster.nx * raster.ny} {np.dtype(dtype)} values (one per cell of a "
            f"{raster.nx} x {raster.ny} raster), got shape {values.shape} dtype {values.dtype}"
        )
    return values


def _inside_rings(cx: np.ndarray, cy: np.ndarray, rings: list[np.ndarray]) -> np.ndarray:
    """Even-odd rule over all edges of the given closed rings, one scan line per raster row."""
    inside = np.zeros(cx.shape, dtype=bool)
    edges = [(r[:-1], r[1:]) for r in rings]
    a = np.concatenate([e[0] for e in edges])
    b = np.concatenate([e[1] for e in edges])
    for row in range(cx.shape[0]):
        y = cy[row, 0]
        crosses = (a[:, 1] > y) != (b[:, 1] > y)
        if not crosses.any():
            continue
        a_c, b_c = a[crosses], b[crosses]
        x_cross = np.sort(a_c[:, 0] + (y - a_c[:, 1]) * (b_c[:, 0] - a_c[:, 0]) / (b_c[:, 1] - a_c[:, 1]))
        inside[row] = np.searchsorted(x_cross, cx[row], side="right") % 2 == 1
    return inside


class RoadField:
    """Signed distance to the road edge (metres, positive on the road) for a road between two closed rings.

    `on_road(x, y)` is DeepRacer's `road_polygon.contains(point)` (strictly inside the polygon whose exterior
    is the outer border and whose hole is the inner border). The bilinear raster decides most points; where
    its value is within the cell's error bound of zero, the point is decided exactly from its nearest border
    point. The bilinear error is ~0 along straight borders and grows beside sharp border vertices, where the
    true distance is cone-shaped; each cell's bound is measured when the field is built.
    """

    #: A bound above this is logged (at debug level: `on_road` stays exact, it only decides more points
    #: exactly): the raster is coarse for the track's sharpest border kinks. A bound once reached 0.03 m on
    #: smooth, densely sampled borders, when the exact reference came from uncertified border locators.
    WARN_ERROR_M = 0.01
    _ERROR_FLOOR_M = 2e-5

    def __init__(
        self,
        inner: SegmentLocator,
        outer: SegmentLocator,
        inner_m: np.ndarray,
        outer_m: np.ndarray,
        cell_m: float = DEFAULT_CELL_M,
        margin_m: float = DEFAULT_MARGIN_M,
        *,
        arrays: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Builds the field, or takes it from `arrays` (what `arrays()` returned for the same borders and cell
        size: no rebuild; KeyError or ValueError when they do not fit)."""
        self.raster = Raster.around(np.vstack([inner_m, outer_m]), cell_m, margin_m)
        self._inner, self._outer = inner, outer
        # a point is on the road when it lies inside the outer ring and outside the inner ring
        self._road_side = {id(outer): _ring_orientation(outer_m), id(inner): -_ring_orientation(inner_m)}
        if arrays is not None:
            self._sdf = _checked(arrays["sdf_m"], "sdf_m", self.raster)
            self._error_m = _checked(arrays["error_m"], "error_m", self.raster)
            return
        cx, cy = self.raster.cell_centres()
        xs, ys = self.raster.centre_axes()
        d2 = np.minimum(
            _nearest_on_grid(xs, ys, inner._segments())[1], _nearest_on_grid(xs, ys, outer._segments())[1]
        )
        distance = np.sqrt(d2)
        sign = np.where(_inside_rings(cx, cy, [outer_m, inner_m]).ravel(), 1.0, -1.0)
        self._sdf = sign * distance
        self._error_m = self._measure_errors()
        self._warn_if_coarse()

    def arrays(self) -> dict[str, np.ndarray]:
        """What building computed, per raster cell (ny * nx,) float64: `sdf_m` (signed distance at the cell
        centres) and `error_m` (each bilinear patch's error bound)."""
        return {"sdf_m": self._sdf, "error_m": self._error_m}

    def _warn_if_coarse(self) -> None:
        if self._error_m.max() > self.WARN_ERROR_M:
            log.debug(
                "road raster error bound %.4f m exceeds %.4f m (sharp border kinks): points that near the "
                "edge are decided exactly, which costs a little time",
                self._error_m.max(),
                self.WARN_ERROR_M,
            )

    def _measure_errors(self) -> np.ndarray:
        """Per cell (the cell whose centre is the bilinear patch's lower-left corner): twice the largest
        difference between the bilinear and the exact signed distance at 4x4 points inside the patch, for
        patches near the edge; a small floor elsewhere."""
        r = self.raster
        error = np.full(r.nx * r.ny, self._ERROR_FLOOR_M)
        near = np.flatnonzero(np.abs(self._sdf) < EDGE_BAND_M)
        near = near[(near % r.nx < r.nx - 1) & (near // r.nx < r.ny - 1)]
        frac = (np.arange(4) + 0.5) / 4
        fx, fy = (a.ravel() for a in np.meshgrid(frac, frac))
        x0 = r.x0_m + (near % r.nx + 0.5) * r.cell_m
        y0 = r.y0_m + (near // r.nx + 0.5) * r.cell_m
        px = (x0[:, None] + fx * r.cell_m).ravel()
        py = (y0[:, None] + fy * r.cell_m).ravel()
        distance = np.minimum(self._inner.distance(px, py), self._outer.distance(px, py))
        exact = np.where(self._on_road_exact(px, py), distance, -distance)
        worst = np.abs(self.signed_distance(px, py) - exact).reshape(len(near), -1).max(axis=1)
        error[near] = np.maximum(2.0 * worst, self._ERROR_FLOOR_M)
        return error

    @property
    def max_error_m(self) -> float:
        """The largest bilinear error bound of any cell, metres (a margin for callers that trust the raster)."""
        return float(self._error_m.max())

    def signed_distance(self, x_m: np.ndarray, y_m: np.ndarray, m: Math = ARRAYS) -> np.ndarray:
        """Bilinear signed distance at points of any shape (same shape out; a float with `SCALARS`), metres."""
        return self._bilinear(x_m, y_m, m)[0]

    def _bilinear(self, x_m: np.ndarray, y_m: np.ndarray, m: Math = ARRAYS) -> tuple[np.ndarray, np.ndarray]:
        """(bilinear signed distance, index of the patch's lower-left cell), both the inputs' shape (floats
        and an int for one point with `m=SCALARS`)."""
        r = self.raster
        inv = 1.0 / r.cell_m
        gx = m.clamp((x_m - r.x0_m) * inv - 0.5, 0.0, r.nx - 1.000001)
        gy = m.clamp((y_m - r.y0_m) * inv - 0.5, 0.0, r.ny - 1.000001)
        ix = m.to_index(gx)
        iy = m.to_index(gy)
        fx = gx - ix
        fy = gy - iy
        i00 = iy * r.nx + ix
        f = self._sdf
        f00, f01 = m.pick(f, i00), m.pick(f, i00 + 1)
        f10, f11 = m.pick(f, i00 + r.nx), m.pick(f, i00 + r.nx + 1)
        top = f00 + fx * (f01 - f00)
        bottom = f10 + fx * (f11 - f10)
        return top + fy * (bottom - top), i00

    def on_road(self, x_m: np.ndarray, y_m: np.ndarray, m: Math = ARRAYS) -> np.ndarray:
        """True where a point is strictly inside the road polygon (same shape as the inputs; one point as
        floats and a bool with `m=SCALARS`)."""
        if not m.scalar:
            x_m = np.asarray(x_m, dtype=np.float64)
            y_m = np.asarray(y_m, dtype=np.float64)
        sdf, cell = self._bilinear(x_m, y_m, m)
        inside = sdf > 0.0
        close = m.flatnonzero(m.absolute(sdf) < m.gather(self._error_m, cell))
        if len(close):
            exact = self._on_road_exact(m.subset(x_m, close), m.subset(y_m, close))
            inside = m.patch(inside, close, exact)
        return inside

    def _on_road_exact(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """(n,) exact road membership of points near the edge: the side of their nearest border point."""
        # a few points (the usual case, per step): checking every segment takes fewer numpy calls
        few = len(x_m) <= 64
        to_inner = (self._inner.project_brute_force if few else self._inner.project)(x_m, y_m)
        to_outer = (self._outer.project_brute_force if few else self._outer.project)(x_m, y_m)
        use_inner = to_inner.distance_m < to_outer.distance_m
        side = np.where(
            use_inner,
            self._road_side[id(self._inner)] * self._inner.side(x_m, y_m, to_inner),
            self._road_side[id(self._outer)] * self._outer.side(x_m, y_m, to_outer),
        )
        return side > 0.0


def _ring_orientation(ring: np.ndarray) -> float:
    """+1 for a counter-clockwise closed ring (its inside is on the left), -1 for clockwise."""
    x, y = ring[:-1, 0], ring[:-1, 1]
    return 1.0 if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0 else -1.0
