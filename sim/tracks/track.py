"""`Track`: a closed race track — centre line and borders in metres — and DeepRacer's view of it.

A track is built from a DeepRacer route array (N, 6): centre x, y; inner border x, y; outer border x, y; the
first row repeated at the end when the loop is closed. Files are read unchanged; a file whose last row is
not its first is closed by appending the first row, unless the gap is far longer than any segment (an open
line such as DeepRacer's `Straight_track`: closing it would fold the road back over itself).

Waypoint indexing follows the current DeepRacer simulator: consecutive duplicated centre points are dropped
before indexing (`keep_duplicate_waypoints=True` keeps them, as older simulator versions did). A reversed
track (`track.reversed()`) is the same road driven the other way: every array is flipped, so waypoint 0 is
still the start line and indices count in the driving direction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path

import numpy as np

from sim.errors import TrackError
from sim.tracks import cache
from sim.tracks.arc_table import ArcTable
from sim.tracks.geometry import DEFAULT_CELL_M, DEFAULT_MARGIN_M, Projection, RoadField, SegmentLocator

#: Beyond the road, centre-line projections stay exact this far out (a car is off track long before).
EXACT_BAND_M = 0.5


def _validate_route(route: np.ndarray, source: str) -> np.ndarray:
    arr = np.asarray(route)
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise TrackError(
            f"{source}: expected a DeepRacer route array of shape (N, 6) "
            f"(centre x,y, inner x,y, outer x,y in metres), got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise TrackError(f"{source}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise TrackError(f"{source}: row {bad} has a NaN or infinite coordinate")
    if not np.array_equal(arr[0], arr[-1]):
        _check_closable(arr, source)
        arr = np.vstack([arr, arr[:1]])
    if len(arr) < 5:
        raise TrackError(f"{source}: a closed track needs at least 4 distinct waypoints, got {len(arr) - 1}")
    return arr


#: A missing closing segment may be this many times the longest segment (and at least CLOSING_GAP_MIN_M).
CLOSING_GAP_FACTOR = 3.0
CLOSING_GAP_MIN_M = 1.0


def _check_closable(arr: np.ndarray, source: str) -> None:
    """TrackError when the centre line's end is far from its start: an open line, not an unclosed loop."""
    centre = arr[:, :2]
    gap_m = float(np.linalg.norm(centre[-1] - centre[0]))
    longest_m = float(np.linalg.norm(np.diff(centre, axis=0), axis=1).max(initial=0.0))
    if gap_m > max(CLOSING_GAP_FACTOR * longest_m, CLOSING_GAP_MIN_M):
        raise TrackError(
            f"{source}: not a closed loop: the centre line ends {gap_m:.2f} m from where it starts (its longest "
            f"segment is {longest_m:.2f} m); pitlane races on loops, whose last waypoint is the first"
        )


def stretched_route(route: np.ndarray, length_m: float) -> np.ndarray:
    """A DeepRacer route (N, 6) whose centre line is `route`'s scaled about its first point to `length_m`
    long, with the borders at the same offsets from it (the same widths): a larger track of the same shape,
    with gentler turns. For benchmarks and tests of long tracks."""
    arr = np.asarray(route, dtype=np.float64)
    centre = arr[:, 0:2]
    length = float(np.linalg.norm(np.diff(centre, axis=0), axis=1).sum())
    if length <= 0 or length_m <= 0:
        raise TrackError(f"stretched_route: expected positive lengths, got {length} m -> {length_m} m")
    new_centre = centre[0] + (centre - centre[0]) * (length_m / length)
    offset = new_centre - centre
    return np.hstack([new_centre, arr[:, 2:4] + offset, arr[:, 4:6] + offset])


def _drop_consecutive_duplicates(route: np.ndarray) -> np.ndarray:
    centre = route[:, :2]
    keep = np.concatenate([[True], np.any(centre[1:] != centre[:-1], axis=1)])
    return route[keep]


def _signed_area_m2(ring: np.ndarray) -> float:
    x, y = ring[:-1, 0], ring[:-1, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


class Track:
    """A closed track. Geometry in metres; arrays of points have shape (M+1, 2) with the last point the first.

    Attributes:
        name: what the user calls it (`reinvent_base`, `oval`, or a file stem).
        source: where it came from (a path or `builtin:NAME`).
        route: (M+1, 6) float64, the route array after closing and duplicate handling.
        waypoints: (M+1, 2) centre line in the driving direction, closing point repeated (DeepRacer's list).
        inner, outer: (M+1, 2) borders.
        length_m: centre-line length.
        ndists: (M+1,) each waypoint's arc length over `length_m` (DeepRacer's `TrackLine.ndists`).
        is_ccw: the centre line runs counter-clockwise in this direction.
        is_reversed: this is the reversed direction of the file's track.
    """

    def __init__(
        self,
        route: np.ndarray,
        name: str,
        source: str = "",
        *,
        keep_duplicate_waypoints: bool = False,
        is_reversed: bool = False,
    ) -> None:
        source = source or name
        arr = _validate_route(route, source)
        if not keep_duplicate_waypoints:
            arr = _drop_consecutive_duplicates(arr)
            if len(arr) < 5:
                raise TrackError(f"{source}: fewer than 4 distinct centre points")
        self.name = name
        self.source = source
        self.keep_duplicate_waypoints = keep_duplicate_waypoints
        self.is_reversed = is_reversed
        self.route = arr
        self.route.setflags(write=False)
        self.waypoints = arr[:, 0:2]
        self.inner = arr[:, 2:4]
        self.outer = arr[:, 4:6]
        seg_len = np.linalg.norm(np.diff(self.waypoints, axis=0), axis=1)
        self.cum_s_m = np.concatenate([[0.0], np.cumsum(seg_len)])
        self.length_m = float(self.cum_s_m[-1])
        if self.length_m <= 0:
            raise TrackError(f"{source}: the centre line has zero length")
        self.ndists = self.cum_s_m / self.length_m
        self.ndists[-1] = 1.0
        self.is_ccw = _signed_area_m2(self.waypoints) > 0
        self.waypoint_widths_m = np.linalg.norm(self.inner - self.outer, axis=1)

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_npy(cls, path: str | Path, name: str | None = None, **kwargs: bool) -> Track:
        """Load a DeepRacer route file (.npy) unchanged."""
        path = Path(path)
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise TrackError(f"{path}: no such track file") from None
        except (OSError, ValueError, EOFError) as exc:
            raise TrackError(f"{path}: not a readable .npy route file ({exc})") from exc
        return cls(arr, name or path.stem, str(path), **kwargs)

    def reversed(self) -> Track:
        """The same road driven the other way (DeepRacer's `REVERSE_DIR`)."""
        return Track(
            self.route[::-1].copy(),
            self.name,
            self.source,
            keep_duplicate_waypoints=True,  # duplicates were already handled for this track
            is_reversed=not self.is_reversed,
        )

    def __repr__(self) -> str:
        direction = ", reversed" if self.is_reversed else ""
        return f"Track({self.name!r}, {self.length_m:.2f} m, {self.n_waypoints} waypoints{direction})"

    # ----------------------------------------------------------------- simple facts

    @property
    def n_waypoints(self) -> int:
        """Waypoints in DeepRacer's list, closing point included."""
        return len(self.waypoints)

    @property
    def mean_width_m(self) -> float:
        return float(self.waypoint_widths_m[:-1].mean())

    @property
    def min_width_m(self) -> float:
        return float(self.waypoint_widths_m[:-1].min())

    @cached_property
    def waypoint_list(self) -> list[tuple[float, float]]:
        """DeepRacer's `params["waypoints"]`: one shared list of (x, y) tuples, never copied per call."""
        return [tuple(p) for p in self.waypoints.tolist()]

    @cached_property
    def curvature_per_m(self) -> np.ndarray:
        """(M+1,) signed curvature at each waypoint (1/m, + = turning left), from the turning angle over the
        neighbouring half-segments, lightly smoothed; the closing value equals the first."""
        d = np.diff(self.waypoints, axis=0)
        heading = np.arctan2(d[:, 1], d[:, 0])
        turn = np.angle(np.exp(1j * (heading - np.roll(heading, 1))))  # turn at waypoint i (0..M-1)
        seg = np.linalg.norm(d, axis=1)
        ds = np.maximum(0.5 * (seg + np.roll(seg, 1)), 1e-6)
        kappa = turn / ds
        kappa = (np.roll(kappa, 1) + 2 * kappa + np.roll(kappa, -1)) / 4
        return np.append(kappa, kappa[0])

    # ----------------------------------------------------------------- spatial queries
    # Each index is built once per track file and kept in the on-disk geometry cache (sim.tracks.cache),
    # keyed by this direction's route array: another process (or the next command) reads it back.

    def _cached(
        self,
        component: str,
        build: Callable[[], cache.T],
        restore: Callable[[Mapping[str, np.ndarray]], cache.T],
        **parameters: float,
    ) -> cache.T:
        parameters = {"cell_m": DEFAULT_CELL_M, "margin_m": DEFAULT_MARGIN_M, **parameters}
        return cache.load_or_build(cache.geometry_key(self.route, component, parameters), build, restore)

    @cached_property
    def centre_locator(self) -> SegmentLocator:
        """Exact (certified) for points within half the widest width + `EXACT_BAND_M` of the centre line."""
        band_m = 0.5 * float(self.waypoint_widths_m.max()) + EXACT_BAND_M

        def build() -> SegmentLocator:
            locator = SegmentLocator(self.waypoints)
            locator.certify(band_m)
            return locator

        return self._cached(
            "centre", build, lambda a: SegmentLocator.from_arrays(self.waypoints, a), band_m=band_m
        )

    @cached_property
    def inner_locator(self) -> SegmentLocator:
        return self._cached(
            "inner", lambda: SegmentLocator(self.inner), lambda a: SegmentLocator.from_arrays(self.inner, a)
        )

    @cached_property
    def outer_locator(self) -> SegmentLocator:
        return self._cached(
            "outer", lambda: SegmentLocator(self.outer), lambda a: SegmentLocator.from_arrays(self.outer, a)
        )

    @cached_property
    def road(self) -> RoadField:
        def make(arrays: Mapping[str, np.ndarray] | None) -> RoadField:
            return RoadField(self.inner_locator, self.outer_locator, self.inner, self.outer, arrays=arrays)

        return self._cached("road", lambda: make(None), make)

    def project(self, x_m: np.ndarray, y_m: np.ndarray) -> Projection:
        """Nearest centre-line points of points (n,): DeepRacer's `center_line.project`/`interpolate`."""
        return self.centre_locator.project(np.atleast_1d(x_m), np.atleast_1d(y_m))

    def on_road(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Points strictly inside the road polygon (outer border, inner border as a hole); any shape."""
        return self.road.on_road(np.asarray(x_m, dtype=np.float64), np.asarray(y_m, dtype=np.float64))

    def prev_next_waypoints(self, ndist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """DeepRacer's `find_prev_next(ndists, ndist)`: bisect_right, wrapping at both ends. Arrays (n,)."""
        nxt = np.searchsorted(self.ndists, ndist, side="right")
        prev = nxt - 1
        prev = np.where(prev == -1, len(self.ndists) - 1, prev)
        nxt = np.where(nxt == len(self.ndists), 0, nxt)
        return prev, nxt

    def poses_at(self, s_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start poses at arc lengths `s_m` (n,) on the centre line: x_m, y_m, yaw_rad (n,) each, the yaw
        pointing at the next waypoint (DeepRacer's `interpolate_pose(..., FORWARD_DIFFERENCE)`)."""
        s = np.mod(np.asarray(s_m, dtype=np.float64), self.length_m)
        seg = np.clip(np.searchsorted(self.cum_s_m, s, side="right") - 1, 0, len(self.cum_s_m) - 2)
        seg_len = self.cum_s_m[seg + 1] - self.cum_s_m[seg]
        t = np.divide(s - self.cum_s_m[seg], seg_len, out=np.zeros_like(s), where=seg_len > 0)
        a, b = self.waypoints[seg], self.waypoints[seg + 1]
        pos = a + t[:, None] * (b - a)
        _, nxt = self.prev_next_waypoints(s / self.length_m)
        target = self.waypoints[nxt]
        # standing exactly on the next waypoint (or a duplicate of it): aim at the one after
        on_target = np.all(np.isclose(target, pos), axis=1)
        target[on_target] = self.waypoints[(nxt[on_target] + 1) % (self.n_waypoints - 1)]
        yaw = np.arctan2(target[:, 1] - pos[:, 1], target[:, 0] - pos[:, 0])
        return pos[:, 0], pos[:, 1], yaw

    def pose_at(self, s_m: float) -> tuple[float, float, float]:
        """`poses_at` for one arc length: (x_m, y_m, yaw_rad)."""
        x, y, yaw = self.poses_at(np.array([s_m]))
        return float(x[0]), float(y[0]), float(yaw[0])

    def centre_points(self, s_m: np.ndarray) -> np.ndarray:
        """Points on the centre line at arc lengths `s_m` (n,) from waypoint 0, wrapped into the lap: (n, 2)."""
        s = np.mod(np.asarray(s_m, dtype=np.float64), self.length_m)
        seg = np.clip(np.searchsorted(self.cum_s_m, s, side="right") - 1, 0, self.n_waypoints - 2)
        seg_len = self.cum_s_m[seg + 1] - self.cum_s_m[seg]
        t = np.divide(s - self.cum_s_m[seg], seg_len, out=np.zeros_like(s), where=seg_len > 0)
        return self.waypoints[seg] + t[:, None] * (self.waypoints[seg + 1] - self.waypoints[seg])

    def _border_samples(self, s_m: np.ndarray) -> np.ndarray:
        """(n, 4): x_in, y_in, x_out, y_out of the border points nearest the centre-line points at `s_m`."""
        c = self.centre_points(s_m)
        inner, outer = self.border_points(c[:, 0], c[:, 1])
        return np.column_stack([inner.px_m, inner.py_m, outer.px_m, outer.py_m])

    @cached_property
    def border_table(self) -> ArcTable:
        """For arc length s, the nearest inner and outer border points (x_in, y_in, x_out, y_out, metres) to the
        centre-line point at s: DeepRacer's `inner_border.interpolate(inner_border.project(near_pnt_ctr))` and
        its outer twin, computed exactly every `ArcTable.STEP_M` and linear in between."""
        return self._cached(
            "border",
            lambda: ArcTable.sample(self.length_m, self._border_samples),
            lambda a: ArcTable.from_arrays(self.length_m, a),
            step_m=ArcTable.STEP_M,
            jump_factor=ArcTable.JUMP_FACTOR,
        )

    @cached_property
    def width_table(self) -> ArcTable:
        """For arc length s, DeepRacer's `track_width`: the distance between the two border points of
        `border_table` (its own one-column table, so rewards that only need the width read one value). The
        width is continuous except where a border point jumps, so it is split at `border_table`'s jumps."""
        b = self.border_table.values
        return self.border_table.with_values(np.hypot(b[:, 0] - b[:, 2], b[:, 1] - b[:, 3]))

    def curvature_at(self, s_m: np.ndarray) -> np.ndarray:
        """Centre-line curvature (1/m, + = left) at arc lengths `s_m` (any shape; wrapped into the lap)."""
        return np.interp(np.mod(s_m, self.length_m), self.cum_s_m, self.curvature_per_m)

    def border_points(self, cx_m: np.ndarray, cy_m: np.ndarray) -> tuple[Projection, Projection]:
        """Nearest inner and outer border points to centre-line points (n,): DeepRacer's
        `inner_border.interpolate(inner_border.project(near_pnt_ctr))` and the same for the outer border, by
        brute force over every border segment (exact even where the nearest point jumps at a bend)."""
        return self.inner_locator.project_brute_force(cx_m, cy_m), self.outer_locator.project_brute_force(
            cx_m, cy_m
        )
