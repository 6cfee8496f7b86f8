"""The road raster's error bound on a densely sampled route (as some DeepRacer route files are).

A route resampled ten times more densely along the same straight segments is the same road: the same polygon,
the same signed distance. Its border segments are a few centimetres long, so at a hairpin a point's nearest
border point can lie outside the ±2-segment window around its raster cell's nearest segment while the window
still holds a nearer local minimum; an uncertified border locator then answered a wrong (too far) point, which
inflated the road's measured bilinear error above `RoadField.WARN_ERROR_M` and misplaced the road's edge in
`on_road`'s exact path.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from sim.tracks import Track
from sim.tracks.geometry import EDGE_BAND_M, RoadField, SegmentLocator
from sim.tracks.library import resolve_track

pytestmark = pytest.mark.xdist_group("road_raster_accuracy")

DENSITY = 10


def densified(route: np.ndarray, factor: int) -> np.ndarray:
    """`route` (N, 6) with `factor - 1` points inserted evenly along every segment: the same road."""
    t = np.linspace(0, len(route) - 1, factor * (len(route) - 1) + 1)
    return np.column_stack([np.interp(t, np.arange(len(route)), route[:, k]) for k in range(6)])


def road_of(track: Track) -> RoadField:
    """A road field built in memory (not through the on-disk cache)."""
    inner, outer = SegmentLocator(track.inner), SegmentLocator(track.outer)
    return RoadField(inner, outer, track.inner, track.outer)


@pytest.fixture(scope="module")
def tracks() -> tuple[Track, Track]:
    route = np.load(resolve_track("2022_summit_speedway"))
    return Track(route, "summit"), Track(densified(route, DENSITY), "summit dense")


@pytest.fixture(scope="module")
def roads(tracks: tuple[Track, Track]) -> tuple[RoadField, RoadField]:
    return road_of(tracks[0]), road_of(tracks[1])


def near_border_points(track: Track, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n,) x and y within EDGE_BAND_M of the inner or outer border, both sides."""
    rng = np.random.default_rng(seed)
    ring = track.inner if seed % 2 == 0 else track.outer
    seg = rng.integers(0, len(ring) - 1, n)
    t = rng.uniform(0.0, 1.0, n)
    p = ring[seg] + t[:, None] * (ring[seg + 1] - ring[seg])
    angle = rng.uniform(0.0, 2 * np.pi, n)
    radius = rng.uniform(0.0, EDGE_BAND_M, n)
    return p[:, 0] + radius * np.cos(angle), p[:, 1] + radius * np.sin(angle)


def test_a_denser_route_of_the_same_road_has_the_same_error_bound(roads: tuple[RoadField, RoadField]) -> None:
    coarse, dense = roads
    assert dense.max_error_m <= RoadField.WARN_ERROR_M
    assert dense.max_error_m == pytest.approx(coarse.max_error_m, abs=1e-6)


def test_building_a_road_warns_users_of_nothing(
    tracks: tuple[Track, Track], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sim.tracks.geometry"):
        road_of(tracks[1])
    assert not caplog.records


@pytest.mark.parametrize("seed", [0, 1])
def test_border_projection_is_exact_near_a_dense_border(tracks: tuple[Track, Track], seed: int) -> None:
    dense = tracks[1]
    locator = SegmentLocator(dense.inner if seed % 2 == 0 else dense.outer)
    x, y = near_border_points(dense, 20_000, seed)
    fast, exact = locator.project(x, y), locator.project_brute_force(x, y)
    np.testing.assert_allclose(fast.distance_m, exact.distance_m, atol=1e-12)


def test_the_error_bound_covers_the_true_bilinear_error(
    tracks: tuple[Track, Track], roads: tuple[RoadField, RoadField]
) -> None:
    dense, road = tracks[1], roads[1]
    (x0, y0), (x1, y1) = near_border_points(dense, 20_000, 0), near_border_points(dense, 20_000, 1)
    x, y = np.concatenate([x0, x1]), np.concatenate([y0, y1])
    inner, outer = SegmentLocator(dense.inner), SegmentLocator(dense.outer)
    distance = np.minimum(
        inner.project_brute_force(x, y).distance_m, outer.project_brute_force(x, y).distance_m
    )
    inside = even_odd_on_road(dense, x, y)
    error = np.abs(road.signed_distance(x, y) - np.where(inside, distance, -distance))
    assert error.max() <= road.max_error_m
    # and the batched exact path (more than 64 points near the edge) agrees with the polygon
    np.testing.assert_array_equal(road.on_road(x, y), inside)


def even_odd_on_road(track: Track, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Reference road test, independent of the rasters: inside the outer ring and not inside the inner."""
    pts = np.column_stack([x, y])
    return MplPath(track.outer).contains_points(pts) & ~MplPath(track.inner).contains_points(pts)
