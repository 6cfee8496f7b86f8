"""The physical limit (`sim.raceline`): the minimum-curvature line stays on the road and beats the centre line;
the velocity profile keeps to the car's grip, top speed, acceleration and braking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from firmware_configs import load_car
from sim.raceline import (
    RaceLine,
    centre_line_lap_time,
    default_margin_m,
    line_curvature,
    minimum_curvature_line,
    race_line,
    total_squared_curvature,
    velocity_profile,
)
from sim.tracks import load_track

RACE_TRACKS = ["reinvent_base", "hairpin", "2022_summit_speedway"]
CAR = load_car("deepracer")
VEHICLE = CAR.vehicle_params()


def circle(radius_m: float, n: int = 400) -> np.ndarray:
    theta = np.linspace(0.0, 2 * np.pi, n + 1)
    return np.column_stack([radius_m * np.cos(theta), radius_m * np.sin(theta)])


def stadium(radius_m: float, straight_m: float, spacing_m: float = 0.02) -> np.ndarray:
    """A closed counter-clockwise stadium: two straights of `straight_m` joined by half circles."""
    n_arc = round(np.pi * radius_m / spacing_m)
    n_str = round(straight_m / spacing_m)
    bottom = np.column_stack([np.linspace(0, straight_m, n_str, endpoint=False), np.full(n_str, -radius_m)])
    theta = np.linspace(-np.pi / 2, np.pi / 2, n_arc, endpoint=False)
    right = np.column_stack([straight_m + radius_m * np.cos(theta), radius_m * np.sin(theta)])
    top = np.column_stack([np.linspace(straight_m, 0, n_str, endpoint=False), np.full(n_str, radius_m)])
    left = np.column_stack([-radius_m * np.cos(theta), -radius_m * np.sin(theta)])
    pts = np.vstack([bottom, right, top, left])
    return np.vstack([pts, pts[:1]])


def assert_profile_within_limits(line: np.ndarray, speed: np.ndarray, top_mps: float) -> None:
    kappa = np.abs(line_curvature(line))
    grip = VEHICLE.lateral_grip_mps2
    assert np.all(speed > 0)
    assert np.all(speed <= top_mps + 1e-9)
    assert np.all(speed**2 * kappa <= grip * (1 + 1e-9))
    ds = np.linalg.norm(np.diff(line, axis=0), axis=1)
    accel = (speed[1:] ** 2 - speed[:-1] ** 2) / (2 * ds)
    assert accel.max() <= VEHICLE.max_accel_mps2 * (1 + 1e-6)
    assert accel.min() >= -VEHICLE.max_brake_mps2 * (1 + 1e-6)


@pytest.mark.parametrize("name", RACE_TRACKS)
def test_race_line_is_closed_and_keeps_the_body_on_the_road(name: str) -> None:
    track = load_track(name)
    line = race_line(track)
    pts = line.points
    assert isinstance(line, RaceLine)
    assert np.array_equal(pts[0], pts[-1])
    assert len(pts) == len(line.s_m) == len(line.speed_mps) == len(line.curvature_per_m)
    assert np.linalg.norm(np.diff(pts, axis=0), axis=1).max() < 0.15  # evenly spaced, no jumps
    assert line.length_m == pytest.approx(line.s_m[-1])
    assert track.on_road(pts[:, 0], pts[:, 1]).all()
    # midpoints too: the segments between points do not cut a border
    mid = 0.5 * (pts[1:] + pts[:-1])
    assert track.on_road(mid[:, 0], mid[:, 1]).all()
    half_width = 0.5 * CAR.vehicle.body_width_m
    for locator in (track.inner_locator, track.outer_locator):
        clearance = locator.project_brute_force(pts[:, 0], pts[:, 1]).distance_m
        assert clearance.min() >= default_margin_m() - 1e-6
        assert clearance.min() > half_width


@pytest.mark.parametrize("name", RACE_TRACKS)
def test_race_line_is_smoother_and_faster_than_the_centre_line(name: str) -> None:
    track = load_track(name)
    line = race_line(track)
    assert total_squared_curvature(line.points) < total_squared_curvature(track.waypoints)
    centre_s = centre_line_lap_time(track)
    assert line.lap_time_s < centre_s
    assert 0.0 < line.lap_time_s < line.length_m / VEHICLE.max_speed_mps + 5.0
    assert line.lap_time_s > line.length_m / VEHICLE.max_speed_mps  # nothing beats top speed all the way


@pytest.mark.parametrize("name", RACE_TRACKS)
def test_race_line_profile_keeps_to_the_car_limits(name: str) -> None:
    line = race_line(load_track(name))
    assert np.allclose(line.curvature_per_m, line_curvature(line.points))
    assert_profile_within_limits(line.points, line.speed_mps, VEHICLE.max_speed_mps)
    dt = 2 * np.diff(line.s_m) / (line.speed_mps[1:] + line.speed_mps[:-1])
    assert line.lap_time_s == pytest.approx(dt.sum())


def test_oval_straights_reach_top_speed() -> None:
    line = race_line(load_track("oval"))
    assert line.speed_mps.max() == pytest.approx(VEHICLE.max_speed_mps)
    at_top = line.speed_mps >= VEHICLE.max_speed_mps - 1e-9
    assert at_top.mean() > 0.1  # a real stretch at top speed on each straight, not one point
    assert line.speed_mps.min() < VEHICLE.max_speed_mps - 0.2  # and slower in the turns


def test_circle_is_driven_at_the_grip_limit() -> None:
    radius = 1.0
    line = circle(radius)
    speed, lap_s = velocity_profile(line, VEHICLE)
    expected = np.sqrt(VEHICLE.lateral_grip_mps2 * radius)
    assert np.allclose(speed, expected, rtol=1e-3)
    assert lap_s == pytest.approx(2 * np.pi * radius / expected, rel=1e-3)
    # the closing point may be left off
    speed_open, lap_open = velocity_profile(line[:-1], VEHICLE)
    assert lap_open == pytest.approx(lap_s)
    assert np.allclose(speed_open, speed)


def test_long_straight_reaches_top_speed_short_one_the_accel_limited_speed() -> None:
    radius = 1.0
    corner = np.sqrt(VEHICLE.lateral_grip_mps2 * radius)
    a, b = VEHICLE.max_accel_mps2, VEHICLE.max_brake_mps2

    long_line = stadium(radius, 8.0)
    speed, _ = velocity_profile(long_line, VEHICLE)
    assert speed.max() == pytest.approx(VEHICLE.max_speed_mps)
    assert_profile_within_limits(long_line, speed, VEHICLE.max_speed_mps)

    straight = 2.0  # accelerate from the corner speed, brake back to it: peak where the two parabolas meet
    short_line = stadium(radius, straight)
    speed, _ = velocity_profile(short_line, VEHICLE, max_speed_mps=100.0)
    peak = np.sqrt((2 * a * b * straight + (a + b) * corner**2) / (a + b))
    # the curvature window and friction circle at the corner exits cost a little
    assert speed.max() == pytest.approx(peak, rel=0.03)
    assert speed.max() < VEHICLE.max_speed_mps + 1.0
    assert_profile_within_limits(short_line, speed, 100.0)


def test_a_wider_margin_keeps_the_line_further_from_the_borders() -> None:
    track = load_track("reinvent_base")
    line = minimum_curvature_line(track, margin_m=0.25)
    for locator in (track.inner_locator, track.outer_locator):
        assert locator.project_brute_force(line[:, 0], line[:, 1]).distance_m.min() >= 0.25 - 1e-6


def test_race_line_is_cached_per_track_and_car() -> None:
    track = load_track("hairpin")
    assert race_line(track) is race_line(track, "deepracer")
    reverse = race_line(load_track("hairpin", reverse=True))
    assert reverse is not race_line(track)
    assert reverse.lap_time_s < centre_line_lap_time(load_track("hairpin", reverse=True))


def test_race_line_is_solved_once_per_track_file_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line is kept in the track geometry cache: a new process (here: cleared in-memory caches) reads it
    back without solving, and gets the same line; a different margin (another car) is solved anew."""
    import sim.raceline as raceline

    monkeypatch.setenv("PITLANE_CACHE_DIR", str(tmp_path))
    track = load_track("reinvent_base")
    raceline._race_line.cache_clear()
    solved = race_line(track).points.copy()
    raceline._race_line.cache_clear()

    def no_solving(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("the cached race line was solved again")

    monkeypatch.setattr(raceline, "minimum_curvature_line", no_solving)
    np.testing.assert_array_equal(race_line(track).points, solved)
    raceline._race_line.cache_clear()
    monkeypatch.setattr(raceline, "default_margin_m", lambda car: 0.3)
    with pytest.raises(AssertionError, match="solved again"):
        race_line(track)
    raceline._race_line.cache_clear()
