"""The lidar (`sim.sensors.lidar`): exact ranges against a brute-force ray/segment intersection, known distances
on a straight, DeepRacer's LIDAR / SECTOR_LIDAR / DISCRETIZED_SECTOR_LIDAR, batching, noise and clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.errors import EnvConfigError
from sim.randomization import EpisodeRandomization
from sim.sensors.base import Poses
from sim.sensors.lidar import (
    DEEPRACER_MOUNT_X_M,
    LidarSensor,
    discretized_sectors,
    sector_occupancy,
)
from sim.tracks import load_track

TRACKS = ("reinvent_base", "reInvent2019_track", "2022_summit_speedway", "hairpin", "technical", "tiny_loop")
#: Beams passing this close to a border vertex are left out of exact comparisons: an infinitesimal change of
#: the ray flips them between hitting the vertex and slipping past it (a spike in the polyline).
DEGENERATE_M = 1e-4


# ----------------------------------------------------------------------------- references


def brute_force(track, sx: np.ndarray, sy: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact first crossings of rays from (sx[i], sy[i]) at world angles angles[i, k] with every border segment:
    (ranges (n, B) float64, +inf when none; degenerate (n, B) bool, see DEGENERATE_M)."""
    a = np.vstack([track.inner[:-1], track.outer[:-1]])
    b = np.vstack([track.inner[1:], track.outer[1:]])
    v = b - a
    vertices = np.vstack([track.inner, track.outer])
    ranges = np.full(angles.shape, np.inf)
    degenerate = np.zeros(angles.shape, dtype=bool)
    for i in range(len(sx)):
        dx, dy = np.cos(angles[i])[:, None], np.sin(angles[i])[:, None]
        wx, wy = a[:, 0] - sx[i], a[:, 1] - sy[i]
        den = dx * v[:, 1] - dy * v[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (wx * v[:, 1] - wy * v[:, 0]) / den
            u = (wx * dy - wy * dx) / den
        hit = (u >= 0) & (u <= 1) & (t >= 0)
        ranges[i] = np.where(hit, t, np.inf).min(axis=1)
        px, py = vertices[:, 0] - sx[i], vertices[:, 1] - sy[i]
        ahead = px * dx + py * dy
        miss = np.abs(px * dy - py * dx)
        degenerate[i] = ((ahead > 0) & (miss < DEGENERATE_M)).any(axis=1)
    return ranges, degenerate


def deepracer_sector_filter(obs: np.ndarray, num_sectors: int, num_values: int, clip: float) -> np.ndarray:
    """DeepRacer's ObservationSectorDiscretizeFilter.filter, transcribed (one observation (B,), float64)."""
    discrete_range = clip / num_values
    obs = np.min(obs.reshape(-1, int(obs.shape[0] / num_sectors)), axis=1)
    np.minimum(obs, clip, out=obs)
    obs = np.floor(obs / discrete_range).astype(int)
    one_hot = np.zeros((obs.size, num_values + 1))
    one_hot[np.arange(obs.size), obs] = 1
    one_hot = np.delete(one_hot, -1, axis=1)
    return one_hot.reshape(-1).astype(float)


def random_poses(track, n: int, seed: int, spread: float = 0.5) -> Poses:
    """Cars along the track, up to `spread` track widths either side of the centre line (0.5: the borders),
    any heading."""
    rng = np.random.default_rng(seed)
    x, y, yaw = track.poses_at(rng.uniform(0, track.length_m, n))
    offset = rng.uniform(-spread, spread, n) * track.mean_width_m
    x, y = x - np.sin(yaw) * offset, y + np.cos(yaw) * offset
    yaw = rng.uniform(-np.pi, np.pi, n)
    return Poses(x, y, np.cos(yaw), np.sin(yaw))


def sensor_rays(sensor: LidarSensor, poses: Poses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sensor positions (n,) and world beam angles (n, B) of `sensor` on cars at `poses`."""
    yaw = np.arctan2(poses.sin_yaw, poses.cos_yaw)
    sx = poses.x_m + poses.cos_yaw * sensor.mount_x_m
    sy = poses.y_m + poses.sin_yaw * sensor.mount_x_m
    return sx, sy, yaw[:, None] + sensor.beam_angles_rad[None, :]


def take(poses: Poses, i: int | slice | np.ndarray) -> Poses:
    sel = np.atleast_1d(np.arange(poses.n)[i])
    return Poses(poses.x_m[sel], poses.y_m[sel], poses.cos_yaw[sel], poses.sin_yaw[sel])


# ----------------------------------------------------------------------------- known distances


@pytest.fixture(scope="module")
def straight():
    """long_straight's straight: (track, x of the car at its middle, y of its centre line, x where it ends)."""
    track = load_track("long_straight")
    w = track.waypoints
    heading = np.arctan2(np.diff(w[:, 1]), np.diff(w[:, 0]))
    # the longest run of segments heading along +x, wrapping through waypoint 0
    along = np.abs(heading) < 1e-9
    assert along[0] and along[-1], "long_straight's straight should pass through its start line"
    end = int(np.argmin(along))  # first segment that leaves the straight
    start = len(along) - int(np.argmin(along[::-1]))  # first segment of the straight before the wrap
    x_start, x_end = w[start, 0], w[end, 0]
    assert x_end - x_start > 6.0  # a ~7 m straight
    assert np.allclose(w[start : len(w), 1], w[0, 1]) and np.allclose(w[: end + 1, 1], w[0, 1])
    x_mid = 0.5 * (x_start + x_end)
    return track, x_mid, float(w[0, 1]), float(x_end)


def test_straight_sees_both_borders_at_half_width_and_the_far_bend_ahead(straight) -> None:
    track, x_mid, y_c, x_end = straight
    half_width = 0.5 * track.mean_width_m
    # beams at -90° (right), 0° (ahead) and +90° (left), on the chassis origin
    sensor = LidarSensor(
        track,
        kind="scan",
        n_beams=3,
        fov_deg=180,
        mount_x_m=0,
        mount_yaw_deg=0,
        min_range_m=0.01,
        max_range_m=20,
    )
    np.testing.assert_allclose(np.degrees(sensor.beam_angles_rad), [-90, 0, 90], atol=1e-9)
    right, ahead, left = sensor.render(Poses.single(x_mid, y_c, 0.0), np.arange(1))[0]
    assert right == pytest.approx(half_width, abs=0.01)
    assert left == pytest.approx(half_width, abs=0.01)
    assert ahead > x_end - x_mid  # past the end of the straight: the bend's outer border
    exact, _ = brute_force(track, np.array([x_mid]), np.array([y_c]), np.array([[0.0]]))
    assert ahead == pytest.approx(exact[0, 0], abs=0.01)
    # with a short max range, the beam ahead reads max range
    short = LidarSensor(
        track, kind="scan", n_beams=3, fov_deg=180, mount_x_m=0, mount_yaw_deg=0, max_range_m=2.0
    )
    assert short.render(Poses.single(x_mid, y_c, 0.0), np.arange(1))[0, 1] == pytest.approx(2.0)


def test_deepracer_lidar_on_the_straight_reads_half_width_over_sine(straight) -> None:
    """DeepRacer's LIDAR looks backwards: 64 beams from 30° left of ahead round the back to 30° right; a beam
    at angle φ meets a side border at half_width / |sin φ|, and the observation clips at [0.15, 1.0]."""
    track, x_mid, y_c, _ = straight
    sensor = LidarSensor(track)  # kind="lidar", DeepRacer's defaults
    angles = sensor.beam_angles_rad
    assert math.degrees(angles[0]) == pytest.approx(30.0, abs=0.01)
    assert math.degrees(angles[-1]) == pytest.approx(-30.0, abs=0.01)
    assert np.all(np.abs(angles) > math.radians(29.9))  # the blind spot ahead
    obs = sensor.render(Poses.single(x_mid, y_c, 0.0), np.arange(1))[0]
    expected = np.clip(0.5 * track.mean_width_m / np.abs(np.sin(angles)), 0.15, 1.0)
    np.testing.assert_allclose(obs, expected, atol=0.01)
    assert obs.min() == pytest.approx(0.5 * track.mean_width_m, abs=0.01)  # the beams nearest ±90°
    assert obs.max() == 1.0  # beams along the track see no border within 1 m


# ----------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("track_name", TRACKS)
def test_ranges_equal_brute_force_on_random_poses(track_name: str) -> None:
    track = load_track(track_name)
    cases = [
        (LidarSensor(track, max_range_m=12.0), random_poses(track, 150, seed=1, spread=0.9)),
        (LidarSensor(track), random_poses(track, 150, seed=2, spread=0.6)),  # DeepRacer's [0.15, 1.0]
        (LidarSensor(track, kind="scan", n_beams=181), random_poses(track, 20, seed=3, spread=0.6)),
    ]
    for sensor, poses in cases:
        sx, sy, angles = sensor_rays(sensor, poses)
        exact, degenerate = brute_force(track, sx, sy, angles)
        expected = np.clip(exact, sensor.min_range_m, sensor.max_range_m)
        got = sensor.ranges(poses, np.arange(poses.n))
        assert got.shape == expected.shape and got.dtype == np.float32
        error = np.abs(got - expected)[~degenerate]
        assert degenerate.mean() < 0.01
        assert error.max() < 0.01, (sensor.kind, np.argwhere(np.abs(got - expected) >= 0.01)[:5])
        assert np.median(error) < 1e-4


def test_sensor_far_off_the_track_and_in_the_infield() -> None:
    track = load_track("reinvent_base")
    sensor = LidarSensor(track, kind="scan", n_beams=91, fov_deg=360, mount_x_m=0, max_range_m=12.0)
    centre = 0.5 * (track.inner.min(axis=0) + track.inner.max(axis=0))
    far = np.array([100.0, -50.0])
    poses = Poses(np.array([far[0], centre[0]]), np.array([far[1], centre[1]]), np.ones(2), np.zeros(2))
    got = sensor.ranges(poses, np.arange(2))
    assert np.all(got[0] == 12.0)  # nothing within reach
    sx, sy, angles = sensor_rays(sensor, poses)
    exact, degenerate = brute_force(track, sx[1:], sy[1:], angles[1:])
    ok = ~degenerate[0]
    np.testing.assert_allclose(got[1][ok], np.clip(exact[0], 0.06, 12.0)[ok], atol=0.01)


# ----------------------------------------------------------------------------- DeepRacer's sector kinds


def test_sector_functions_equal_deepracers_filter() -> None:
    rng = np.random.default_rng(0)
    ranges = rng.uniform(0.15, 3.0, (200, 64)).astype(np.float32)
    # exact bin edges and the clip itself, where floor() decides
    ranges[:20, :8] = np.float32(0.5)
    ranges[20:40, 8:16] = np.float32(0.25)
    ranges[40:60, 16:24] = np.float32(2.0)
    ranges[60:80] = np.float32(12.0)
    for sectors, values, clip in ((8, 1, 0.5), (8, 8, 2.0), (4, 3, 1.5), (64, 2, 0.3), (1, 5, 12.0)):
        expected = np.stack(
            [deepracer_sector_filter(r.astype(np.float64), sectors, values, clip) for r in ranges]
        )
        got = discretized_sectors(ranges, sectors, values, clip)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
        if values == 1:
            np.testing.assert_array_equal(sector_occupancy(ranges, sectors, clip), expected)


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        ("sector_lidar", None),
        ("discretized_sector_lidar", None),
        ("discretized_sector_lidar", {"num_sectors": 16}),
    ],
)
def test_sector_kinds_are_derived_from_the_ranges(kind: str, config: dict | None) -> None:
    track = load_track("reInvent2019_track")
    sensor = LidarSensor(track, kind=kind, lidar_config=config)
    poses = random_poses(track, 300, seed=4, spread=0.6)
    idx = np.arange(poses.n)
    obs = sensor.render(poses, idx)
    sectors, values, clip = sensor.sectors
    ranges = sensor.ranges(poses, idx)
    expected = np.stack(
        [deepracer_sector_filter(r.astype(np.float64), sectors, values, clip) for r in ranges]
    )
    np.testing.assert_array_equal(obs, expected)
    assert obs.shape == (poses.n, *sensor.space.shape)
    assert 0 < obs.mean() < 1 / values  # some sectors see a border, none has two ones


def test_sector_lidar_by_hand_on_the_straight(straight) -> None:
    """0.1 m left of the centre line the left border is 0.435 m away: beams within ~60° of the left side read
    < 0.5 m, the right border (0.635 m) is never that near."""
    track, x_mid, y_c, _ = straight
    sensor = LidarSensor(track, kind="sector_lidar")
    obs = sensor.render(Poses.single(x_mid, y_c + 0.1, 0.0), np.arange(1))[0]
    phi = sensor.beam_angles_rad.reshape(8, 8)
    left = 0.5 * track.mean_width_m - 0.1
    expected = ((np.sin(phi) > 0) & (left / np.abs(np.sin(phi)) < 0.5)).any(axis=1)
    np.testing.assert_array_equal(obs, expected.astype(np.float32))
    np.testing.assert_array_equal(obs, [1, 1, 1, 0, 0, 0, 0, 0])


def test_deepracer_spaces_and_config_checks() -> None:
    track = load_track("reinvent_base")
    lidar = LidarSensor(track)
    assert lidar.space.shape == (64,) and lidar.space.dtype == np.float32
    assert float(lidar.space.low[0]) == pytest.approx(0.15) and float(lidar.space.high[0]) == 1.0
    assert lidar.mount_x_m == DEEPRACER_MOUNT_X_M
    assert LidarSensor(track, kind="sector_lidar").space.shape == (8,)
    assert LidarSensor(track, kind="discretized_sector_lidar").space.shape == (64,)  # 8 x 8 by default
    custom = LidarSensor(
        track,
        kind="discretized_sector_lidar",
        lidar_config={"num_sectors": 4, "num_values_per_sector": 3, "clipping_dist": 20.0},
    )
    assert custom.space.shape == (12,)
    assert custom.sectors == (4, 3, 12.0)  # the clipping distance is clamped to the sensor's 12 m
    scan = LidarSensor(track, kind="scan")
    assert scan.space.shape == (1081,)
    assert math.degrees(scan.fan.step_rad) == pytest.approx(0.25)
    assert (float(scan.space.low[0]), float(scan.space.high[0])) == pytest.approx((0.06, 10.0))
    with pytest.raises(EnvConfigError, match="num_sectors"):
        LidarSensor(track, kind="discretized_sector_lidar", lidar_config={"num_sectors": 5})
    with pytest.raises(EnvConfigError, match="num_values_per_sector"):
        LidarSensor(track, kind="discretized_sector_lidar", lidar_config={"num_values_per_sector": 0})
    with pytest.raises(EnvConfigError, match="kind"):
        LidarSensor(track, kind="radar")
    with pytest.raises(EnvConfigError, match="min_range_m < max_range_m"):
        LidarSensor(track, min_range_m=2.0, max_range_m=1.0)


# ----------------------------------------------------------------------------- batches, noise, limits


@pytest.mark.parametrize("kind", ["lidar", "sector_lidar", "discretized_sector_lidar", "scan"])
def test_batched_equals_single(kind: str) -> None:
    track = load_track("2022_summit_speedway")
    sensor = LidarSensor(track, kind=kind)
    poses = random_poses(track, 24, seed=5)
    batch = sensor.render(poses, np.arange(poses.n))
    assert batch.shape == (poses.n, *sensor.space.shape) and batch.dtype == np.float32
    assert all(sensor.space.contains(row) for row in batch)
    for i in range(poses.n):
        np.testing.assert_array_equal(sensor.render(take(poses, i), np.array([i]))[0], batch[i])
    assert sensor.render(take(poses, slice(0, 0)), np.arange(0)).shape == (0, *sensor.space.shape)


def test_reversed_track_has_the_same_walls() -> None:
    track = load_track("reInvent2019_track")
    poses = random_poses(track, 32, seed=8)
    idx = np.arange(poses.n)
    forward = LidarSensor(track, max_range_m=12.0).render(poses, idx)
    np.testing.assert_allclose(
        LidarSensor(track.reversed(), max_range_m=12.0).render(poses, idx), forward, atol=1e-5
    )


def test_no_noise_unless_asked_for() -> None:
    track = load_track("reinvent_base")
    poses = random_poses(track, 16, seed=6)
    idx = np.arange(poses.n)
    for randomization in (None, EpisodeRandomization(poses.n, "none")):
        sensor = LidarSensor(track, randomization=randomization, rng=0)
        state = sensor.rng.bit_generator.state
        first = sensor.render(poses, idx)
        np.testing.assert_array_equal(first, sensor.render(poses, idx))
        assert sensor.rng.bit_generator.state == state  # nothing drawn


def test_noise_is_reproducible_and_per_car() -> None:
    track = load_track("long_straight")
    n = 6
    randomization = EpisodeRandomization(n, "strong")
    randomization.draw(np.arange(n), [np.random.default_rng(10 + i) for i in range(n)])
    # cars on the straight's centre line; wide limits so that no noisy range is clipped
    x, y, yaw = track.pose_at(0.0)
    poses = Poses(np.full(n, x), np.full(n, y), np.full(n, math.cos(yaw)), np.full(n, math.sin(yaw)))
    idx = np.arange(n)

    def make(seed: int | None) -> LidarSensor:
        return LidarSensor(
            track, noise_std_m=0.005, randomization=randomization, rng=seed, min_range_m=0.0, max_range_m=50.0
        )

    a, b, c = make(7), make(7), make(8)
    first = a.render(poses, idx)
    np.testing.assert_array_equal(first, b.render(poses, idx))
    assert not np.array_equal(first, c.render(poses, idx))
    a.seed(7)
    np.testing.assert_array_equal(a.render(poses, idx), first)

    clean = LidarSensor(track, min_range_m=0.0, max_range_m=50.0).render(poses, idx)
    side = np.abs(np.sin(a.beam_angles_rad)) > 0.5  # beams that meet a side border on the straight
    errors = np.concatenate([a.render(poses, idx) - clean for _ in range(200)], axis=1)[:, np.tile(side, 200)]
    expected_std = np.hypot(0.005, randomization.lidar_noise_m)
    np.testing.assert_allclose(errors.std(axis=1), expected_std, rtol=0.1)
    np.testing.assert_allclose(errors.mean(axis=1), 0.0, atol=0.003)


def test_ranges_are_clipped_to_the_configured_limits() -> None:
    track = load_track("hairpin")
    sensor = LidarSensor(
        track, kind="scan", n_beams=90, min_range_m=0.3, max_range_m=0.6, noise_std_m=0.05, rng=1
    )
    poses = random_poses(track, 64, seed=7)
    got = sensor.render(poses, np.arange(poses.n))
    assert got.min() >= np.float32(0.3) and got.max() <= np.float32(0.6)
    assert (got == np.float32(0.3)).any() and (got == np.float32(0.6)).any()
    assert all(sensor.space.contains(row) for row in got)
    quiet = LidarSensor(track, kind="scan", n_beams=90, min_range_m=0.3, max_range_m=0.6)
    sx, sy, angles = sensor_rays(quiet, poses)
    exact, degenerate = brute_force(track, sx, sy, angles)
    error = np.abs(quiet.render(poses, np.arange(poses.n)) - np.clip(exact, 0.3, 0.6))
    assert error[~degenerate].max() < 0.01
