"""DeepRacer's episode rules on the batched simulator, driven by a scripted driver."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from firmware_configs import load_car
from sim.core import BatchedSim, EpisodeOptions
from sim.drivers import PurePursuitDriver
from sim.rules import REVERSED_STEPS, EpisodeStatus
from sim.tracks import load_track


def make_sim(n: int = 1, track: str = "reinvent_base", **options) -> BatchedSim:
    options.setdefault("start", "start_line")
    sim = BatchedSim(n, load_track(track), load_car("deepracer").vehicle_params(), EpisodeOptions(**options))
    for i in range(n):
        sim.seed(i, np.random.default_rng(i))
    sim.reset(np.arange(n))
    return sim


def drive(sim: BatchedSim, controller, max_steps: int = 2000):
    """Step until every car's episode ends once; returns (final status per car, step count per car, history)."""
    params = sim.standing(np.arange(sim.n))
    ended = np.full(sim.n, -1)
    status = np.zeros(sim.n, dtype=np.int8)
    history = []
    for k in range(1, max_steps + 1):
        steer, speed = controller(params)
        outcome = sim.step(steer, speed)
        params = outcome.params
        history.append(outcome)
        new = (outcome.status != EpisodeStatus.IN_PROGRESS) & (ended < 0)
        ended[new] = k
        status[new] = outcome.status[new]
        if (ended > 0).all():
            return status, ended, history
    raise AssertionError(f"episodes did not end in {max_steps} steps")


@pytest.mark.parametrize("track", ["reinvent_base", "reInvent2019_track", "2022_summit_speedway"])
def test_following_the_centre_line_completes_a_lap(track: str) -> None:
    sim = make_sim(track=track)
    driver = PurePursuitDriver(sim, speed_mps=1.0)
    status, ended, history = drive(sim, driver)
    assert EpisodeStatus(status[0]) is EpisodeStatus.LAP_COMPLETE
    final = history[-1].params
    assert final.progress[0] == 100.0
    assert history[0].params.steps[0] == 2.0  # the reward function first sees steps = 2
    progress = np.array([o.params.progress[0] for o in history])
    assert (np.diff(progress) > 0).all()
    lap_time_s = ended[0] / 15.0
    assert sim.forward.length_m / 1.0 < lap_time_s < 1.15 * sim.forward.length_m / 1.0
    assert all(o.params.all_wheels_on_track[0] for o in history)


def test_reversed_track_lap_counts_progress_the_other_way() -> None:
    sim = make_sim(reverse=True)
    status, _, history = drive(sim, PurePursuitDriver(sim, speed_mps=1.2))
    assert EpisodeStatus(status[0]) is EpisodeStatus.LAP_COMPLETE
    first = history[0].params
    assert first.is_reversed[0]
    assert first.closest_waypoints[0].tolist() == [0, 1]  # waypoint 0 is still the start line


def test_driving_straight_off_the_road_ends_off_track() -> None:
    sim = make_sim()
    status, _ended, history = drive(sim, lambda p: (np.full(1, 30.0), np.full(1, 2.0)))
    assert EpisodeStatus(status[0]) is EpisodeStatus.OFF_TRACK
    last = history[-1].params
    assert last.is_offtrack[0] and not last.all_wheels_on_track[0]
    # before the end, some wheel was still on: the car crossed the border over several steps
    assert history[-2].params.is_offtrack[0] == False  # noqa: E712
    assert any(not o.params.all_wheels_on_track[0] for o in history[:-1])


def test_driving_backwards_along_the_track_ends_reversed() -> None:
    sim = make_sim()
    # turn the car around, then follow the centre line the wrong way
    sim.state.place(np.array([0]), sim.state.x_m, sim.state.y_m, sim.state.yaw_rad + np.pi)
    forward_driver = PurePursuitDriver(sim, speed_mps=0.8)

    def backwards(params):
        return forward_driver(dataclasses.replace(params, is_reversed=np.ones(1, dtype=bool)))

    status, ended, history = drive(sim, backwards)
    assert EpisodeStatus(status[0]) is EpisodeStatus.REVERSED
    falling = [o.params.progress[0] for o in history]
    assert falling[-1] < falling[-REVERSED_STEPS]
    assert ended[0] >= REVERSED_STEPS


def test_a_car_that_barely_moves_is_immobilized_after_15_steps() -> None:
    sim = make_sim()
    status, ended, _ = drive(sim, lambda p: (np.zeros(1), np.full(1, 0.003)))
    assert EpisodeStatus(status[0]) is EpisodeStatus.IMMOBILIZED
    assert 15 <= ended[0] <= 17


def test_time_limit_truncates() -> None:
    sim = make_sim(time_limit_s=1.0)
    status, ended, history = drive(sim, PurePursuitDriver(sim, speed_mps=0.5))
    assert EpisodeStatus(status[0]) is EpisodeStatus.TIME_UP
    assert ended[0] == 15
    assert history[-1].truncated[0] and not history[-1].terminated[0]


def test_round_robin_starts_advance_by_5_percent_of_a_lap() -> None:
    sim = make_sim(start="round_robin")
    starts = []
    for _ in range(4):
        starts.append(sim.start_ndist[0])
        sim.reset(np.array([0]))
    assert np.mod(np.diff(starts), 1.0) == pytest.approx([0.05, 0.05, 0.05])


def test_alternating_direction_flips_every_episode() -> None:
    sim = make_sim(alternate_direction=True)
    directions = []
    for _ in range(4):
        directions.append(bool(sim.is_reversed[0]))
        sim.reset(np.array([0]))
    assert directions == [False, True, False, True]


def test_start_pose_is_on_the_centre_line_facing_the_next_waypoint() -> None:
    sim = make_sim()
    params = sim.standing(np.array([0]))
    assert params.distance_from_center[0] < 0.01
    assert params.progress[0] == pytest.approx(100 * 0.14 / sim.forward.length_m, abs=0.05)
    wp = sim.forward.waypoints
    expected_heading = np.degrees(np.arctan2(wp[1, 1] - wp[0, 1], wp[1, 0] - wp[0, 0]))
    assert params.heading[0] == pytest.approx(expected_heading)
