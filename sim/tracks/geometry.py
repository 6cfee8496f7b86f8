"""Spatial indexes over a closed track, answering batched queries in O(1) per point.

Why by hand: shapely answers one point at a time (~20 µs each); the simulator asks ~5,000 questions per step
for 1,024 cars and has a budget of about 1 µs each. Both indexes are rasters built once per track with
scipy's cKDTree, then read with numpy fancy indexing.

- :class:`SegmentLocator` — the nearest point on a closed polyline (centre line or a border): a raster holds
  the nearest segment of each cell centre; a query refines over that segment's neighbours, exactly.
- :class:`RoadField` — the signed distance to the road's edge (positive on the road), bilinear between cell
  centres; its zero level set is the road polygon's boundary to well under a millimetre.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from sim.fastmath import clamp

log = logging.getLogger(__name__)

#: Raster resolution. 2 cm keeps a query's true nearest segment within ±2 segments of the cell's on every
#: track we ship (tested against brute force with hypothesis), and a 30 m x 20 m track under 2 M cells.
DEFAULT_CELL_M = 0.02
#: How far the rasters extend beyond the outer border; cars farther out are off track anyway.
DEFAULT_MARGIN_M = 1.0
#: Neighbour segments checked on each side of the cell's nearest segment.
WINDOW_SEGMENTS = 2
_MAX_CELLS = 4_000_000


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

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(ny, nx) arrays of the cell centres' x and y in metres."""
        xs = self.x0_m + (np.arange(self.nx) + 0.5) * self.cell_m
        ys = self.y0_m + (np.arange(self.ny) + 0.5) * self.cell_m
        return np.meshgrid(xs, ys)

    def cell_of(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Flat index of the cell holding each point (points outside are clamped to the edge)."""
        inv = 1.0 / self.cell_m
        ix = clamp(((x_m - self.x0_m) * inv).astype(np.intp), 0, self.nx - 1)
        iy = clamp(((y_m - self.y0_m) * inv).astype(np.intp), 0, self.ny - 1)
        return iy * self.nx + ix


def _resample(points_m: np.ndarray, spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Dense samples along a polyline (k, 2) and the segment index each belongs to (k,)."""
    starts, ends = points_m[:-1], points_m[1:]
    lengths = np.linalg.norm(ends - starts, axis=1)
    counts = np.maximum(1, np.ceil(lengths / spacing_m).astype(int))
    segment = np.repeat(np.arange(len(starts)), counts)
    # fraction along each segment: 0, 1/c, 2/c, ... (1 excluded: it is the next segment's 0)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    frac = offsets / np.repeat(counts, counts)
    samples = starts[segment] + frac[:, None] * (ends - starts)[segment]
    return samples, segment


class SegmentLocator:
    """Batched nearest-point queries on a closed polyline `points_m` (M+1, 2) whose last point is its first.

    Zero-length segments (duplicated waypoints kept for DeepRacer's older indexing) are allowed: they are
    never the unique nearest segment, so ties go to the earlier segment as in shapely's `project`.
    """

    def __init__(
        self, points_m: np.ndarray, cell_m: float = DEFAULT_CELL_M, margin_m: float = DEFAULT_MARGIN_M
    ) -> None:
        pts = np.asarray(points_m, dtype=np.float64)
        self.n_segments = len(pts) - 1
        self._ax, self._ay = pts[:-1, 0].copy(), pts[:-1, 1].copy()
        self._vx, self._vy = np.diff(pts[:, 0]), np.diff(pts[:, 1])
        length2 = self._vx**2 + self._vy**2
        self._inv_len2 = np.divide(1.0, length2, out=np.zeros_like(length2), where=length2 > 0)
        self.cum_s_m = np.concatenate([[0.0], np.cumsum(np.sqrt(length2))])
        self.raster = Raster.around(pts, cell_m, margin_m)
        self._cell_segment = self._build_cell_segments(pts)
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

    def certify(self, band_m: float) -> None:
        """Make `project` exact for every point within `band_m` of the polyline.

        Near a bend's centre of curvature the distance to the polyline is nearly flat along many segments and
        can have two local minima inside and outside a cell's window. For each cell within `band_m`, store a
        lower bound on the distance to any segment outside its window; a query that finds a larger distance is
        answered by brute force.
        """
        cx, cy = self.raster.cell_centres()
        cx, cy = cx.ravel(), cy.ravel()
        near = np.flatnonzero(self.distance(cx, cy) <= band_m)
        half_diagonal = self.raster.cell_m * np.sqrt(0.5)
        seg_ids = np.arange(self.n_segments)
        for start in range(0, len(near), 4096):
            cells = near[start : start + 4096]
            d2 = self._segment_distances2(cx[cells], cy[cells])
            offset = (seg_ids[None, :] - self._cell_segment[cells][:, None]) % self.n_segments
            in_window = (offset <= WINDOW_SEGMENTS) | (offset >= self.n_segments - WINDOW_SEGMENTS)
            d2[in_window] = np.inf
            self._outside_bound_m[cells] = np.sqrt(d2.min(axis=1)) - half_diagonal

    def _build_cell_segments(self, pts: np.ndarray) -> np.ndarray:
        samples, segment = _resample(pts, self.raster.cell_m / 4)
        cx, cy = self.raster.cell_centres()
        _, nearest = cKDTree(samples).query(np.column_stack([cx.ravel(), cy.ravel()]))
        return segment[nearest].astype(np.int32)

    def project(self, x_m: np.ndarray, y_m: np.ndarray) -> Projection:
        """Nearest points on the polyline to points (x_m[i], y_m[i]); x_m and y_m have shape (n,)."""
        x_m = np.asarray(x_m, dtype=np.float64)
        y_m = np.asarray(y_m, dtype=np.float64)
        cell = self.raster.cell_of(x_m, y_m)
        k0 = self._cell_segment[cell]
        cand = k0 + self._offsets  # (W, n) padded indices
        ax, ay, vx_all, vy_all, inv_len2 = self._pad
        vx, vy = vx_all[cand], vy_all[cand]
        dx = x_m - ax[cand]
        dy = y_m - ay[cand]
        t = clamp((dx * vx + dy * vy) * inv_len2[cand], 0.0, 1.0)
        dx -= t * vx
        dy -= t * vy
        d2 = dx * dx + dy * dy
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

    def _at(self, seg: np.ndarray, t: np.ndarray, x_m: np.ndarray, y_m: np.ndarray) -> Projection:
        # the end of the last segment is the start of the first: report arc length 0 there, as shapely does
        at_end = (seg == self.n_segments - 1) & (t >= 1.0)
        if at_end.any():
            seg = np.where(at_end, 0, seg)
            t = np.where(at_end, 0.0, t)
        px = self._ax[seg] + t * self._vx[seg]
        py = self._ay[seg] + t * self._vy[seg]
        s = self.cum_s_m[seg] + t * (self.cum_s_m[seg + 1] - self.cum_s_m[seg])
        dx, dy = x_m - px, y_m - py
        return Projection(seg, t, s, px, py, np.sqrt(dx * dx + dy * dy))

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

    def _segment_distances2(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """(n, M) squared distances from each point to each segment."""
        dx = x_m[:, None] - self._ax
        dy = y_m[:, None] - self._ay
        t = clamp((dx * self._vx + dy * self._vy) * self._inv_len2, 0.0, 1.0)
        return (dx - t * self._vx) ** 2 + (dy - t * self._vy) ** 2

    def project_brute_force(self, x_m: np.ndarray, y_m: np.ndarray) -> Projection:
        """The same answer by checking every segment: O(n M). For tests and the few uncertain queries."""
        x_m = np.atleast_1d(np.asarray(x_m, dtype=np.float64))
        y_m = np.atleast_1d(np.asarray(y_m, dtype=np.float64))
        dx = x_m[:, None] - self._ax
        dy = y_m[:, None] - self._ay
        t = clamp((dx * self._vx + dy * self._vy) * self._inv_len2, 0.0, 1.0)
        d2 = (dx - t * self._vx) ** 2 + (dy - t * self._vy) ** 2
        seg = np.argmin(d2, axis=1)
        return self._at(seg, t[np.arange(len(x_m)), seg], x_m, y_m)


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

    #: A bound above this is logged: the raster is too coarse for the track's sharpest border kinks.
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
    ) -> None:
        self.raster = Raster.around(np.vstack([inner_m, outer_m]), cell_m, margin_m)
        cx, cy = self.raster.cell_centres()
        flat_x, flat_y = cx.ravel(), cy.ravel()
        distance = np.minimum(inner.distance(flat_x, flat_y), outer.distance(flat_x, flat_y))
        sign = np.where(_inside_rings(cx, cy, [outer_m, inner_m]).ravel(), 1.0, -1.0)
        self._sdf = sign * distance
        self._inner, self._outer = inner, outer
        # a point is on the road when it lies inside the outer ring and outside the inner ring
        self._road_side = {id(outer): _ring_orientation(outer_m), id(inner): -_ring_orientation(inner_m)}
        self._error_m = self._measure_errors()

    def _measure_errors(self) -> np.ndarray:
        """Per cell (the cell whose centre is the bilinear patch's lower-left corner): twice the largest
        difference between the bilinear and the exact signed distance at 4x4 points inside the patch, for
        patches near the edge; a small floor elsewhere."""
        r = self.raster
        error = np.full(r.nx * r.ny, self._ERROR_FLOOR_M)
        near = np.flatnonzero(np.abs(self._sdf) < 0.05)
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
        if error.max() > self.WARN_ERROR_M:
            log.warning(
                "road raster error %.4f m exceeds %.4f m: use smaller cells", error.max(), self.WARN_ERROR_M
            )
        return error

    @property
    def max_error_m(self) -> float:
        """The largest bilinear error bound of any cell, metres (a margin for callers that trust the raster)."""
        return float(self._error_m.max())

    def signed_distance(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Bilinear signed distance at points of any shape (same shape out), metres."""
        return self._bilinear(x_m, y_m)[0]

    def _bilinear(self, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bilinear signed distance, index of the patch's lower-left cell), both the inputs' shape."""
        r = self.raster
        inv = 1.0 / r.cell_m
        gx = clamp((x_m - r.x0_m) * inv - 0.5, 0.0, r.nx - 1.000001)
        gy = clamp((y_m - r.y0_m) * inv - 0.5, 0.0, r.ny - 1.000001)
        ix = gx.astype(np.intp)
        iy = gy.astype(np.intp)
        fx = gx - ix
        fy = gy - iy
        i00 = iy * r.nx + ix
        f = self._sdf
        top = f[i00] + fx * (f[i00 + 1] - f[i00])
        bottom = f[i00 + r.nx] + fx * (f[i00 + r.nx + 1] - f[i00 + r.nx])
        return top + fy * (bottom - top), i00

    def on_road(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """True where a point is strictly inside the road polygon (same shape as the inputs)."""
        x_m = np.asarray(x_m, dtype=np.float64)
        y_m = np.asarray(y_m, dtype=np.float64)
        sdf, cell = self._bilinear(x_m, y_m)
        inside = sdf > 0.0
        close = np.flatnonzero(np.abs(sdf) < self._error_m[cell])
        if len(close):
            flat = inside.reshape(-1)
            flat[close] = self._on_road_exact(x_m.reshape(-1)[close], y_m.reshape(-1)[close])
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
