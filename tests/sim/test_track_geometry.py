"""Properties of track geometry on the built-in tracks and a sample of the shipped DeepRacer route files (the
three most used, and the narrowest, longest, widest and a `_ccw` variant): every shipped file is loaded by
tests/sim/test_track_library.py; building every raster of all 126 here would cost minutes of CI.

Points are drawn with hypothesis as (fraction of the lap, lateral offset along the local normal) and mapped
to the plane, so they land where cars drive: on the road and just off it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.path import Path as MplPath

from sim.tracks import Track, load_track
from sim.tracks.builtin import BUILTIN_NAMES, MIN_RADIUS_MARGIN_M, builtin_route, check_route
from sim.tracks.library import DATA_DIR

DEEPRACER_SAMPLE = [
    "reinvent_base",
    "reInvent2019_track",
    "2022_summit_speedway",
    "2024_reinvent_champ_cw",
    "penbay_pro",
    "Monaco",
    "2022_march_open_ccw",
]
ALL_TRACKS = [*BUILTIN_NAMES, *DEEPRACER_SAMPLE]
EXAMPLES = settings(max_examples=20, deadline=None)

fractions = st.lists(st.floats(0.0, 0.999999), min_size=1, max_size=40)
inner_fractions = st.lists(st.floats(1e-6, 0.999999), min_size=1, max_size=40)  # not exactly the start
offsets = st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=40)


def on_centre(track: Track, fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points at `fraction` of the lap on the centre line, and the unit left normal of their segment."""
    s = np.asarray(fraction) * track.length_m
    x = np.interp(s, track.cum_s_m, track.waypoints[:, 0])
    y = np.interp(s, track.cum_s_m, track.waypoints[:, 1])
    seg = np.clip(np.searchsorted(track.cum_s_m, s, side="right") - 1, 0, len(track.cum_s_m) - 2)
    d = track.waypoints[seg + 1] - track.waypoints[seg]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return x, y, np.column_stack([-d[:, 1], d[:, 0]])


def near_road(track: Track, fraction: list[float], offset: list[float], reach_m: float) -> tuple:
    """Points offset from the centre line by `offset` x `reach_m` along the normal (so within `reach_m`)."""
    n = min(len(fraction), len(offset))
    x, y, normal = on_centre(track, np.array(fraction[:n]))
    lateral = np.array(offset[:n]) * reach_m
    return x + lateral * normal[:, 0], y + lateral * normal[:, 1]


def point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, axis=1) / np.maximum(np.sum(ab * ab, axis=1), 1e-300), 0, 1)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def even_odd_on_road(track: Track, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Reference road test, independent of the rasters: inside the outer ring and not inside the inner."""
    pts = np.column_stack([x, y])
    return MplPath(track.outer).contains_points(pts) & ~MplPath(track.inner).contains_points(pts)


@pytest.fixture(scope="module", params=ALL_TRACKS)
def track(request: pytest.FixtureRequest) -> Track:
    return load_track(request.param)


# --------------------------------------------------------------------------- projection


@EXAMPLES
@given(fraction=inner_fractions)
def test_progress_increases_along_the_centre_line(track: Track, fraction: list[float]) -> None:
    frac = np.sort(np.array(fraction))
    x, y, _ = on_centre(track, frac)
    proj = track.project(x, y)
    np.testing.assert_allclose(proj.s_m, frac * track.length_m, atol=1e-6)
    assert np.all(np.diff(proj.s_m) >= -1e-9)


def test_the_start_point_projects_to_progress_zero() -> None:
    starts = {}
    for name in ALL_TRACKS:
        track = load_track(name)
        x, y, _ = track.pose_at(0.0)
        starts[name] = float(track.project(np.array([x]), np.array([y])).s_m[0])
    assert starts == dict.fromkeys(ALL_TRACKS, 0.0)


@EXAMPLES
@given(fraction=fractions)
def test_points_on_the_centre_line_are_at_distance_zero(track: Track, fraction: list[float]) -> None:
    x, y, _ = on_centre(track, np.array(fraction))
    assert track.project(x, y).distance_m.max() < 1e-9


@EXAMPLES
@given(fraction=fractions, offset=offsets)
def test_closest_waypoints_bracket_the_projection(
    track: Track, fraction: list[float], offset: list[float]
) -> None:
    x, y = near_road(track, fraction, offset, track.mean_width_m / 2)
    proj = track.project(x, y)
    prev, nxt = track.prev_next_waypoints(proj.s_m / track.length_m)
    cum = track.cum_s_m
    end = np.where(nxt == 0, track.length_m, cum[nxt])
    assert np.all(cum[prev] <= proj.s_m + 1e-9)
    assert np.all(proj.s_m <= end + 1e-9)
    foot = np.column_stack([proj.px_m, proj.py_m])
    between = point_segment_distance(foot, track.waypoints[prev], track.waypoints[nxt])
    assert between.max() < 1e-9


@EXAMPLES
@given(fraction=fractions, offset=offsets)
def test_grid_projection_equals_brute_force(track: Track, fraction: list[float], offset: list[float]) -> None:
    x, y = near_road(track, fraction, offset, track.mean_width_m / 2 + 0.25)
    fast = track.project(x, y)
    exact = track.centre_locator.project_brute_force(x, y)
    np.testing.assert_allclose(fast.distance_m, exact.distance_m, rtol=0, atol=1e-12)
    # near-ties (a point on the bisector of a waypoint) may pick either neighbour: same point within 1 µm
    np.testing.assert_allclose(fast.px_m, exact.px_m, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.py_m, exact.py_m, rtol=0, atol=1e-6)
    ds = np.abs(fast.s_m - exact.s_m)
    assert np.all(np.minimum(ds, track.length_m - ds) < 1e-6)  # s = 0 and s = length are the same place


@EXAMPLES
@given(fraction=fractions, offset=offsets)
def test_on_road_matches_an_exact_polygon_test(
    track: Track, fraction: list[float], offset: list[float]
) -> None:
    x, y = near_road(track, fraction, offset, track.mean_width_m / 2 + 0.3)
    to_border = np.minimum(
        track.inner_locator.project_brute_force(x, y).distance_m,
        track.outer_locator.project_brute_force(x, y).distance_m,
    )
    clear = to_border > 1e-6
    np.testing.assert_array_equal(track.on_road(x, y)[clear], even_odd_on_road(track, x, y)[clear])


@pytest.mark.parametrize("name", ["reinvent_base", "2022_summit_speedway", "technical"])
def test_on_road_is_exact_beside_border_vertices(name: str) -> None:
    # the raster's bilinear distance is cone-shaped wrong beside sharp vertices: those points are re-checked
    track = load_track(name)
    rng = np.random.default_rng(0)
    vertices = np.vstack([track.inner[:-1], track.outer[:-1]])
    p = vertices[rng.integers(0, len(vertices), 20_000)] + rng.normal(0.0, 0.01, (20_000, 2))
    x, y = p[:, 0], p[:, 1]
    to_border = np.minimum(
        track.inner_locator.project_brute_force(x, y).distance_m,
        track.outer_locator.project_brute_force(x, y).distance_m,
    )
    clear = to_border > 1e-6
    np.testing.assert_array_equal(track.on_road(x, y)[clear], even_odd_on_road(track, x, y)[clear])


def test_centre_line_is_on_road_and_beyond_the_borders_is_not(track: Track) -> None:
    x, y, _ = on_centre(track, np.linspace(0, 1, 200, endpoint=False))
    assert track.on_road(x, y).all()
    for border in (track.outer, track.inner):
        away = border[:-1] - track.waypoints[:-1]
        beyond = border[:-1] + 0.05 * away / np.linalg.norm(away, axis=1, keepdims=True)
        assert not track.on_road(beyond[:, 0], beyond[:, 1]).any()


# --------------------------------------------------------------------------- direction and duplicates


@pytest.mark.parametrize("name", ALL_TRACKS)
def test_reversed_track_is_the_same_road_the_other_way(name: str) -> None:
    fwd = Track.from_npy(DATA_DIR / f"{name}.npy")
    rev = fwd.reversed()
    assert rev.length_m == pytest.approx(fwd.length_m, abs=1e-9)
    np.testing.assert_allclose(rev.ndists, 1.0 - fwd.ndists[::-1], atol=1e-12)
    np.testing.assert_array_equal(rev.waypoints, fwd.waypoints[::-1])
    assert rev.is_ccw is not fwd.is_ccw
    assert rev.is_reversed and not fwd.is_reversed
    assert rev.reversed().is_ccw is fwd.is_ccw


def test_duplicate_waypoints_are_dropped_unless_kept() -> None:
    path = DATA_DIR / "reInvent2019_track.npy"
    assert len(np.load(path)) == 155
    assert Track.from_npy(path).n_waypoints == 154
    assert Track.from_npy(path, keep_duplicate_waypoints=True).n_waypoints == 155
    assert load_track("reInvent2019_track", keep_duplicate_waypoints=True).n_waypoints == 155


# --------------------------------------------------------------------------- the built-in designs


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_files_are_well_formed(name: str) -> None:
    route = np.load(DATA_DIR / f"{name}.npy")
    assert route.dtype == np.float64 and route.shape[1] == 6
    np.testing.assert_array_equal(route[0], route[-1])
    np.testing.assert_allclose(route[:, 0:2], 0.5 * (route[:, 2:4] + route[:, 4:6]), atol=1e-12)
    width = np.linalg.norm(route[:, 2:4] - route[:, 4:6], axis=1)
    np.testing.assert_allclose(width, width[0], atol=1e-9)
    track = Track.from_npy(DATA_DIR / f"{name}.npy")
    assert track.is_ccw
    assert track.n_waypoints == len(route)  # no duplicated waypoints
    spacing = np.diff(track.cum_s_m)
    assert spacing.min() >= 0.15 and spacing.max() <= 0.2
    check_route(route, float(width[0]), name)  # radius >= width/2 + margin, no border crossings, gaps
    assert 1 / np.abs(track.curvature_per_m).max() >= width[0] / 2 + MIN_RADIUS_MARGIN_M - 0.01


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_files_match_their_designs(name: str) -> None:
    np.testing.assert_allclose(np.load(DATA_DIR / f"{name}.npy"), builtin_route(name), atol=1e-9)


def test_builtin_tracks_have_the_promised_shapes() -> None:
    lengths = {name: load_track(name).length_m for name in BUILTIN_NAMES}
    assert lengths["oval"] == pytest.approx(18, abs=1)
    assert lengths["hairpin"] == pytest.approx(22, abs=1.5)
    assert lengths["long_straight"] == pytest.approx(31, abs=1.5)
    assert lengths["technical"] == pytest.approx(20, abs=2.5)
    assert lengths["tiny_loop"] == pytest.approx(8, abs=1)
    track = load_track("long_straight")
    straight = np.abs(track.curvature_per_m[:-1]) < 0.01  # radius > 100 m
    lap = "".join("s" if s else "." for s in straight)
    longest = max(len(run) for run in (lap + lap).split("."))  # the start/finish straight wraps round
    assert longest * np.diff(track.cum_s_m).mean() >= 7.5  # a ~8 m straight
    hairpin = load_track("hairpin")
    assert 1 / np.abs(hairpin.curvature_per_m).max() < 0.8  # a real hairpin: tight
