"""The reward params of `params_at_pose` against an independent, plain reference of DeepRacer's semantics.

The reference below re-implements what DeepRacer's simulator (simapp `markov/track_geom/track_data.py`, shapely
`project`/`interpolate`, `find_prev_next`, `compute_current_prog`) computes, with plain Python loops over the
segments of the route read straight from the shipped `.npy` file: none of the simulator's geometry (rasters,
locators, arc tables) is used, so an error there cannot hide in both.

Tolerances:
- x, y, heading, distance_from_center, projection_distance, progress: 1e-9 (progress and projection_distance
  are skipped where the reference's lap fraction is within 1e-9 of a wrap: 0, 1, and 0.5 for progress);
- closest_waypoints: exact, except within 1e-9 of a waypoint's lap fraction, where the answer of any lap
  fraction within 1e-9 is accepted (but not [last, 0] at the start point, which shapely puts at 0, never 1);
- track_width: 2e-3 m (the simulator reads the border points from a table sampled every 2 mm);
  is_left_of_center: skipped where the distances to the two border points differ by less than 2e-3 m;
- all_wheels_on_track / is_offtrack: skipped when a wheel centre is within 1 mm of a border.

Poses: seeded random points along each lap (on the road and up to 0.2 m beyond it, any heading), around the
start line, on and beside waypoints; plus the corner outside the start point, and poses half a millimetre from
the places where DeepRacer's nearest border point jumps (where a sampled table is most likely to be wrong).
"""

from __future__ import annotations

import bisect
import importlib.resources
import itertools
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.measure import compute_current_progress
from sim.reward.check import params_at_pose
from sim.reward.params import PARAM_KEYS
from sim.tracks import load_track

DEEPRACER_TRACKS = ("reinvent_base", "reInvent2019_track", "2022_summit_speedway")

#: DeepRacer's params x, y are this far ahead of the chassis centre along the heading.
POINT_AHEAD_M = 0.14
#: Wheel centres of the `deepracer` car relative to the chassis centre: (±wheelbase/2, ±track/2).
WHEELBASE_M, TRACK_M = 0.164, 0.162
WHEELS_M = [(sx * WHEELBASE_M / 2, sy * TRACK_M / 2) for sx in (1, -1) for sy in (1, -1)]

ABS = 1e-9
WIDTH_TOL_M = 2e-3
SIDE_MARGIN_M = 2e-3
WHEEL_MARGIN_M = 1e-3
OUTSIDE_M = 0.2  # poses reach this far beyond the borders

OBJECT_DEFAULTS = {
    "is_crashed": False,
    "closest_objects": [0, 0],
    "objects_location": [],
    "objects_left_of_center": [],
    "objects_distance": [],
    "objects_distance_from_center": [],
    "objects_heading": [],
    "objects_speed": [],
    "object_in_camera": False,
}

Point = tuple[float, float]


# --------------------------------------------------------------------------- the reference


class Ring:
    """A closed polyline (last point == first) with shapely's `project` / `interpolate` on it, by hand."""

    def __init__(self, points: list[Point]) -> None:
        assert points[0] == points[-1]
        self.points = points
        self.cum = [0.0]
        for (ax, ay), (bx, by) in itertools.pairwise(points):
            self.cum.append(self.cum[-1] + math.hypot(bx - ax, by - ay))
        self.length = self.cum[-1]

    def nearest(self, x: float, y: float) -> tuple[float, float]:
        """(arc length, distance) of the nearest point; the first segment wins ties (GEOS's strict `<`)."""
        best_d, best_s = math.inf, 0.0
        for i in range(len(self.points) - 1):
            (ax, ay), (bx, by) = self.points[i], self.points[i + 1]
            vx, vy = bx - ax, by - ay
            len2 = vx * vx + vy * vy
            t = 0.0 if len2 == 0.0 else min(1.0, max(0.0, ((x - ax) * vx + (y - ay) * vy) / len2))
            d = math.hypot(x - (ax + t * vx), y - (ay + t * vy))
            if d < best_d:
                best_d, best_s = d, self.cum[i] + t * (self.cum[i + 1] - self.cum[i])
        return best_s, best_d

    def project(self, x: float, y: float) -> float:
        return self.nearest(x, y)[0]

    def distance(self, x: float, y: float) -> float:
        return self.nearest(x, y)[1]

    def interpolate(self, s: float) -> Point:
        s = min(max(s, 0.0), self.length)
        for i in range(len(self.points) - 1):
            seg = self.cum[i + 1] - self.cum[i]
            if seg > 0.0 and s <= self.cum[i + 1]:
                f = (s - self.cum[i]) / seg
                (ax, ay), (bx, by) = self.points[i], self.points[i + 1]
                return ax + f * (bx - ax), ay + f * (by - ay)
        return self.points[-1]

    def contains(self, x: float, y: float) -> bool:
        """Even-odd rule (the point's distance to the ring is checked separately)."""
        inside = False
        for (ax, ay), (bx, by) in itertools.pairwise(self.points):
            if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
                inside = not inside
        return inside


def find_prev_next(ndists: list[float], x: float) -> tuple[int, int]:
    """DeepRacer's `markov.track_geom.utils.find_prev_next`."""
    nxt = bisect.bisect_right(ndists, x)
    prev = nxt - 1
    if prev == -1:
        prev = len(ndists) - 1
    if nxt == len(ndists):
        nxt = 0
    return prev, nxt


def compute_current_prog(raw: float, prev_progress: float) -> float:
    """DeepRacer's `compute_current_prog` on one value."""
    p = 100.0 * raw
    if p <= 0.0:
        p += 100.0
    if prev_progress > p + 50.0:
        p += 100.0
    if p > prev_progress + 50.0:
        p -= 100.0
    return min(p, 100.0)


def signed_area(points: list[Point]) -> float:
    return 0.5 * sum(ax * by - bx * ay for (ax, ay), (bx, by) in itertools.pairwise(points))


def route_rows(name: str, keep_duplicates: bool) -> list[list[float]]:
    """The route file's rows, closed, consecutive duplicated centre points dropped (with their rows)."""
    path = importlib.resources.files("sim.tracks") / "data" / f"{name}.npy"
    with importlib.resources.as_file(path) as p:
        rows = np.load(p, allow_pickle=False).tolist()
    if rows[0] != rows[-1]:
        rows.append(rows[0])
    if keep_duplicates:
        return rows
    return [rows[0]] + [row for prev, row in itertools.pairwise(rows) if row[:2] != prev[:2]]


@dataclass
class RefTrack:
    """DeepRacer's TrackData for one direction."""

    centre: Ring
    inner: Ring
    outer: Ring
    ndists: list[float]
    is_ccw: bool  # the centre line runs counter-clockwise in the driving direction
    reverse: bool


@cache
def ref_track(name: str, reverse: bool, keep_duplicates: bool = False) -> RefTrack:
    rows = route_rows(name, keep_duplicates)
    forward_ccw = signed_area([(r[0], r[1]) for r in rows]) > 0
    if reverse:
        rows = rows[::-1]
    centre = Ring([(r[0], r[1]) for r in rows])
    inner = Ring([(r[2], r[3]) for r in rows])
    outer = Ring([(r[4], r[5]) for r in rows])
    ndists = [centre.project(x, y) / centre.length for x, y in centre.points[:-1]] + [1.0]
    return RefTrack(centre, inner, outer, ndists, forward_ccw ^ reverse, reverse)


@dataclass
class Expected:
    params: dict[str, Any]
    ndist: float
    side_margin_m: float  # |d_in - d_out|
    wheel_margin_m: float  # nearest wheel centre to a border


def reference_params(ref: RefTrack, x: float, y: float, heading_deg: float) -> Expected:
    """What DeepRacer reports for a car standing with its params point at (x, y), episode started at 0."""
    length = ref.centre.length
    ndist = ref.centre.project(x, y) / length
    cx, cy = ref.centre.interpolate(ndist * length)
    in_x, in_y = ref.inner.interpolate(ref.inner.project(cx, cy))
    out_x, out_y = ref.outer.interpolate(ref.outer.project(cx, cy))
    d_in = math.hypot(x - in_x, y - in_y)
    d_out = math.hypot(x - out_x, y - out_y)

    yaw = math.radians(heading_deg)
    c, s = math.cos(yaw), math.sin(yaw)
    chassis_x, chassis_y = x - POINT_AHEAD_M * c, y - POINT_AHEAD_M * s
    on_road, wheel_margin = [], math.inf
    for wx, wy in WHEELS_M:
        px, py = chassis_x + c * wx - s * wy, chassis_y + s * wx + c * wy
        on_road.append(ref.outer.contains(px, py) and not ref.inner.contains(px, py))
        wheel_margin = min(wheel_margin, ref.inner.distance(px, py), ref.outer.distance(px, py))

    params = {
        "x": x,
        "y": y,
        "heading": heading_deg,
        "distance_from_center": math.hypot(x - cx, y - cy),
        "progress": compute_current_prog(ndist - 0.0, 0.0),
        "projection_distance": ndist * length,
        "closest_waypoints": list(find_prev_next(ref.ndists, ndist)),
        "track_width": math.hypot(in_x - out_x, in_y - out_y),
        "is_left_of_center": (d_in < d_out) ^ (not ref.is_ccw),
        "all_wheels_on_track": all(on_road),
        "is_offtrack": not any(on_road),
        "track_length": length,
        "waypoints": list(ref.centre.points),
        "is_reversed": ref.reverse,
        "steps": 2.0,
        "speed": 0.0,
        "steering_angle": 0.0,
        **OBJECT_DEFAULTS,
    }
    return Expected(params, ndist, abs(d_in - d_out), wheel_margin)


def mismatches(ref: RefTrack, got: dict[str, Any], exp: Expected) -> list[str]:
    """Every disagreement between the simulator's dict and the reference, as readable strings."""
    want = exp.params
    out = []

    def bad(key: str, note: str = "") -> None:
        out.append(f"{key}: simulator {got[key]!r}, reference {want[key]!r}{note}")

    assert set(got) == set(PARAM_KEYS), sorted(set(got) ^ set(PARAM_KEYS))
    for key in ("x", "y", "heading", "distance_from_center", "track_length"):
        if not abs(got[key] - want[key]) <= ABS:
            bad(key)
    near_wrap = min(exp.ndist, 1.0 - exp.ndist) < ABS
    if not near_wrap and not abs(got["projection_distance"] - want["projection_distance"]) <= ABS:
        bad("projection_distance")
    if not near_wrap and abs(exp.ndist - 0.5) >= ABS and not abs(got["progress"] - want["progress"]) <= ABS:
        bad("progress", f" (ndist {exp.ndist!r})")

    # closest_waypoints: exact away from the waypoints' lap fractions; next to one, the answer of any lap
    # fraction within 1e-9 is accepted (DeepRacer's ndist is never 1.0 where the reference's is 0.0: shapely
    # reports the start point at arc length 0)
    near = [d for d in ref.ndists if abs(d - exp.ndist) < ABS]
    if near:
        candidates = [exp.ndist - ABS, exp.ndist, exp.ndist + ABS, *near]
        allowed = [list(find_prev_next(ref.ndists, v % 1.0 if v != 1.0 else v)) for v in candidates]
        if got["closest_waypoints"] not in allowed:
            bad("closest_waypoints", f" (on a waypoint's ndist: allowed {allowed})")
    elif got["closest_waypoints"] != want["closest_waypoints"]:
        bad("closest_waypoints", f" (ndist {exp.ndist!r})")
    if not all(isinstance(i, int) for i in got["closest_waypoints"]):
        bad("closest_waypoints", " (not ints)")

    if not abs(got["track_width"] - want["track_width"]) <= WIDTH_TOL_M:
        bad("track_width")
    if exp.side_margin_m >= SIDE_MARGIN_M and got["is_left_of_center"] != want["is_left_of_center"]:
        bad("is_left_of_center", f" (|d_in - d_out| = {exp.side_margin_m:.4f})")
    if exp.wheel_margin_m >= WHEEL_MARGIN_M:
        for key in ("all_wheels_on_track", "is_offtrack"):
            if got[key] is not want[key]:
                bad(key, f" (nearest wheel {exp.wheel_margin_m:.4f} m from a border)")

    if got["waypoints"] != want["waypoints"]:
        out.append("waypoints: not the reference's list of centre points in the driving direction")
    for key in ("is_reversed", "steps", "speed", "steering_angle", *OBJECT_DEFAULTS):
        if got[key] != want[key] or type(got[key]) is not type(want[key]):
            bad(key)
    for key in ("all_wheels_on_track", "is_offtrack", "is_left_of_center", "is_reversed"):
        if not isinstance(got[key], bool):
            bad(key, " (not a bool)")
    if not (isinstance(got["sim_time"], float) and got["sim_time"] >= 0.0):
        bad("sim_time")
    return out


# --------------------------------------------------------------------------- poses


def sample_poses(
    ref: RefTrack, seed: int, n_uniform: int = 160, n_start: int = 30, n_vertex: int = 30
) -> list:
    """(x, y, heading) of params points on the road and up to OUTSIDE_M beyond it: uniform along the lap,
    around the start line, and next to waypoints (where projections sit on a vertex)."""
    rng = np.random.default_rng(seed)
    c = ref.centre
    length = c.length
    s_values = list(rng.uniform(0.0, length, n_uniform))
    s_values += list(rng.uniform(-0.3, 0.3, n_start) % length)
    vertex_ids = rng.integers(0, len(c.points) - 1, n_vertex)
    s_values += [c.cum[i] for i in vertex_ids]
    poses = []
    for s in s_values:
        i = max(0, min(bisect.bisect_right(c.cum, s) - 1, len(c.points) - 2))
        while c.cum[i + 1] == c.cum[i]:  # a kept duplicate: use the next real segment
            i = (i + 1) % (len(c.points) - 1)
        (ax, ay), (bx, by) = c.points[i], c.points[i + 1]
        seg = math.hypot(bx - ax, by - ay)
        nx, ny = -(by - ay) / seg, (bx - ax) / seg
        px, py = c.interpolate(s)
        half_width = 0.5 * math.hypot(
            ref.inner.points[i][0] - ref.outer.points[i][0], ref.inner.points[i][1] - ref.outer.points[i][1]
        )
        lateral = rng.uniform(-(half_width + OUTSIDE_M), half_width + OUTSIDE_M)
        heading = float(rng.uniform(-180.0, 180.0))
        poses.append((float(px + lateral * nx), float(py + lateral * ny), heading))
    # exactly on some waypoints and on the start point
    for i in (0, 1, len(c.points) // 2):
        poses.append((c.points[i][0], c.points[i][1], 90.0))
    return poses


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed"])
@pytest.mark.parametrize("name", DEEPRACER_TRACKS)
def test_params_match_reference(name: str, reverse: bool) -> None:
    ref = ref_track(name, reverse)
    track = load_track(name)
    problems = []
    checked = {"closest": 0, "side": 0, "wheels": 0}
    seed = 10 * DEEPRACER_TRACKS.index(name) + reverse
    for x, y, heading in sample_poses(ref, seed=seed):
        got = params_at_pose(track, x, y, heading, reverse=reverse)
        exp = reference_params(ref, x, y, heading)
        checked["side"] += exp.side_margin_m >= SIDE_MARGIN_M
        checked["wheels"] += exp.wheel_margin_m >= WHEEL_MARGIN_M
        checked["closest"] += all(abs(d - exp.ndist) >= ABS for d in ref.ndists)
        problems += [f"pose ({x!r}, {y!r}, {heading!r}): {m}" for m in mismatches(ref, got, exp)]
    assert not problems, f"{len(problems)} mismatches, first ones:\n" + "\n".join(problems[:15])
    # the skips must leave most poses checked
    assert min(checked.values()) > 150, checked


def test_poses_cover_road_and_outside() -> None:
    """The sampled poses include all four wheel outcomes and both sides."""
    ref = ref_track("reinvent_base", False)
    exps = [reference_params(ref, *pose) for pose in sample_poses(ref, seed=1)]
    all_on = sum(e.params["all_wheels_on_track"] for e in exps)
    off = sum(e.params["is_offtrack"] for e in exps)
    left = sum(e.params["is_left_of_center"] for e in exps)
    assert all_on > 30 and off > 10 and len(exps) - all_on - off > 10
    assert 30 < left < len(exps) - 30


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed"])
@pytest.mark.parametrize("name", DEEPRACER_TRACKS)
def test_start_point_corner(name: str, reverse: bool) -> None:
    """Outside the corner at waypoint 0, the nearest centre-line point is the start point itself, which shapely
    reports at arc length 0: projection_distance 0, progress 0, closest_waypoints [0, 1]."""
    ref = ref_track(name, reverse)
    (px, py), (ax, ay), (bx, by) = ref.centre.points[-2], ref.centre.points[0], ref.centre.points[1]
    len_in, len_out = math.hypot(ax - px, ay - py), math.hypot(bx - ax, by - ay)
    ix, iy, ox, oy = (ax - px) / len_in, (ay - py) / len_in, (bx - ax) / len_out, (by - ay) / len_out
    turn = ix * oy - iy * ox
    assert turn != 0.0
    # the corner's outward bisector: the mean of the two segments' left normals, flipped for a left turn
    nx, ny = -(iy + oy), ix + ox
    norm = math.hypot(nx, ny) * (-1.0 if turn > 0 else 1.0)
    ux, uy = nx / norm, ny / norm
    assert ux * ix + uy * iy > 0 and ux * ox + uy * oy < 0  # beyond the end of one segment, before the other
    track = load_track(name)
    for r in (0.01, 0.05, 0.2):
        x, y = ax + r * ux, ay + r * uy
        exp = reference_params(ref, x, y, 0.0)
        assert exp.ndist == 0.0 and exp.params["closest_waypoints"] == [0, 1]
        got = params_at_pose(track, x, y, 0.0, reverse=reverse)
        summary = (got["projection_distance"], got["progress"], got["closest_waypoints"])
        assert summary == (0.0, 0.0, [0, 1]), f"params point ({x!r}, {y!r}): {summary}"


def test_heading_is_reported_in_deepracer_range() -> None:
    """DeepRacer's heading is the yaw in degrees in (-180, 180], whatever angle the pose was given with."""
    track = load_track("reinvent_base")
    for given_deg, want_deg in [
        (270.0, -90.0),
        (-270.0, 90.0),
        (370.0, 10.0),
        (-190.0, 170.0),
        (540.0, 180.0),
    ]:
        got = params_at_pose(track, 3.0, 0.7, given_deg)["heading"]
        assert got == pytest.approx(want_deg, abs=ABS), f"heading {given_deg} reported as {got}"
    # the edge: -180 is 180 (DeepRacer's own atan2 can land on either, so both are accepted)
    assert abs(params_at_pose(track, 3.0, 0.7, -180.0)["heading"]) == pytest.approx(180.0, abs=ABS)


def test_reference_sanity() -> None:
    """The reference reproduces REFERENCE.md's table: lengths, waypoint counts, directions."""
    facts = {
        "reinvent_base": (17.71, 119),
        "reInvent2019_track": (23.12, 154),
        "2022_summit_speedway": (25.17, 126),
    }
    for name, (length, n) in facts.items():
        fwd, back = ref_track(name, False), ref_track(name, True)
        assert round(fwd.centre.length, 2) == length and len(fwd.centre.points) == n
        assert fwd.centre.points == back.centre.points[::-1]
        assert fwd.is_ccw != back.is_ccw
        assert fwd.ndists == sorted(fwd.ndists) and back.ndists == sorted(back.ndists)
    assert len(ref_track("reInvent2019_track", False, keep_duplicates=True).centre.points) == 155


# ---- where DeepRacer's nearest border point jumps


def border_jumps(ref: RefTrack, step_m: float = 0.01, min_jump_m: float = 0.03) -> list[float]:
    """Arc lengths along the centre line where the nearest inner or outer border point to the centre-line
    point (DeepRacer's `border.project(near_pnt_ctr)`) jumps: at vertices on the concave side of a border, the
    nearest point leaps from one segment to the next. Found by a scan every `step_m`, then bisection."""
    c = ref.centre
    rings = (ref.inner, ref.outer)

    def border_s(s: float, j: int) -> float:
        return rings[j].project(*c.interpolate(s))

    n = round(c.length / step_m)
    grid = [k * c.length / n for k in range(n + 1)]
    values = [(border_s(s, 0), border_s(s, 1)) for s in grid]
    jumps = []
    for k in range(n):
        for j in (0, 1):
            a, b = values[k][j], values[k + 1][j]
            if min(abs(b - a), rings[j].length - abs(b - a)) <= min_jump_m:
                continue
            lo, hi = grid[k], grid[k + 1]
            for _ in range(30):
                mid = 0.5 * (lo + hi)
                m = border_s(mid, j)
                if abs(m - a) < abs(m - b):
                    lo = mid
                else:
                    hi = mid
            jumps.append(0.5 * (lo + hi))
    return jumps


@pytest.mark.parametrize("name", DEEPRACER_TRACKS)
def test_params_next_to_border_jumps(name: str) -> None:
    """track_width and is_left_of_center within a millimetre of a jump of DeepRacer's nearest border point,
    both directions: a table sampled every 2 mm must not blend the two sides of a jump."""
    forward = ref_track(name, False)
    track = load_track(name)
    c = forward.centre
    problems = []
    for s in border_jumps(forward):
        # half a millimetre either side of the jump, 5 mm either side of the centre line, both directions
        for ds, lateral, reverse in (
            (-5e-4, -0.005, False),
            (5e-4, 0.005, False),
            (-5e-4, 0.005, True),
            (5e-4, -0.005, True),
        ):
            px, py = c.interpolate(s + ds)
            i = max(0, min(bisect.bisect_right(c.cum, s + ds) - 1, len(c.points) - 2))
            (ax, ay), (bx, by) = c.points[i], c.points[i + 1]
            seg = math.hypot(bx - ax, by - ay)
            x, y = px - lateral * (by - ay) / seg, py + lateral * (bx - ax) / seg
            heading = math.degrees(math.atan2(by - ay, bx - ax))
            ref = ref_track(name, reverse)
            got = params_at_pose(track, x, y, heading, reverse=reverse)
            problems += [
                f"pose ({x!r}, {y!r}, {heading!r}){' reversed' if reverse else ''}, {ds * 1e3:+.1f} mm from "
                f"a jump at s={s:.4f}: {m}"
                for m in mismatches(ref, got, reference_params(ref, x, y, heading))
            ]
    assert not problems, f"{len(problems)} mismatches, first ones:\n" + "\n".join(problems[:15])


# ---- keep_duplicate_waypoints: older DeepRacer indexing


DUP_NAME = "reInvent2019_track"
DUP_ROW = 38  # rows 38 and 39 repeat the same centre point


def mid_segment(ref: RefTrack, i: int) -> Point:
    (ax, ay), (bx, by) = ref.centre.points[i], ref.centre.points[i + 1]
    return 0.5 * (ax + bx), 0.5 * (ay + by)


def test_keep_duplicate_waypoints_shifts_indices_after_the_duplicate() -> None:
    kept = load_track(DUP_NAME, keep_duplicate_waypoints=True)
    dropped = load_track(DUP_NAME)
    ref_kept = ref_track(DUP_NAME, False, keep_duplicates=True)
    assert ref_kept.centre.points[DUP_ROW] == ref_kept.centre.points[DUP_ROW + 1]
    for i in (5, DUP_ROW - 2, DUP_ROW + 1, DUP_ROW + 5, 120):
        x, y = mid_segment(ref_kept, i)  # kept indexing: segment i runs from waypoint i to i + 1
        p_kept = params_at_pose(kept, x, y, 0.0)
        p_dropped = params_at_pose(dropped, x, y, 0.0)
        assert len(p_kept["waypoints"]) == 155 and len(p_dropped["waypoints"]) == 154
        assert p_kept["closest_waypoints"] == [i, i + 1]
        shift = 1 if i > DUP_ROW else 0
        assert p_dropped["closest_waypoints"] == [i - shift, i + 1 - shift]
        assert p_kept["progress"] == pytest.approx(p_dropped["progress"], abs=ABS)
    # driven in reverse, the duplicate is near the end of the list: indices after it shift there
    p_kept = params_at_pose(kept, *mid_segment(ref_kept, 5), 180.0, reverse=True)
    p_dropped = params_at_pose(dropped, *mid_segment(ref_kept, 5), 180.0, reverse=True)
    assert p_kept["closest_waypoints"] == [154 - 6, 154 - 5]
    assert p_dropped["closest_waypoints"] == [153 - 6, 153 - 5]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed"])
def test_keep_duplicate_waypoints_match_reference(reverse: bool) -> None:
    ref = ref_track(DUP_NAME, reverse, keep_duplicates=True)
    track = load_track(DUP_NAME, keep_duplicate_waypoints=True)
    problems = []
    for x, y, heading in sample_poses(ref, seed=7 + reverse, n_uniform=80, n_start=10, n_vertex=10):
        got = params_at_pose(track, x, y, heading, reverse=reverse)
        problems += [
            f"pose ({x!r}, {y!r}, {heading!r}): {m}"
            for m in mismatches(ref, got, reference_params(ref, x, y, heading))
        ]
    assert not problems, f"{len(problems)} mismatches, first ones:\n" + "\n".join(problems[:15])


# ---- compute_current_progress


def test_compute_current_progress_examples() -> None:
    raw = np.array([0.0, 0.25, 0.75, -0.1, 0.98, 0.02, 1.0])
    prev = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 97.0, 99.0])
    assert compute_current_progress(raw, prev).tolist() == [
        0.0,
        25.0,
        -25.0,
        90.0 - 100.0,
        -2.0,
        100.0,
        100.0,
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-1.0, 1.0, exclude_min=True, exclude_max=True, allow_nan=False),
            st.floats(-50.0, 150.0, allow_nan=False),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_compute_current_progress_matches_scalar_formula(pairs: list[tuple[float, float]]) -> None:
    raw = np.array([r for r, _ in pairs])
    prev = np.array([p for _, p in pairs])
    got = compute_current_progress(raw, prev)
    assert got.shape == raw.shape
    assert got.tolist() == [compute_current_prog(r, p) for r, p in pairs]
