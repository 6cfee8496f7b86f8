"""Built-in batched rewards against per-dict Python versions of the DeepRacer examples they mirror, on realistic
params, and the semantics of `progress_rate` (which needs the previous step's progress)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from firmware_configs import load_car
from sim.core import BatchedSim, EpisodeOptions
from sim.drivers import PurePursuitDriver
from sim.reward.builtin import BUILTIN_REWARDS, MAX_PROGRESS_STEP
from sim.reward.check import realistic_params
from sim.reward.params import PARAM_KEYS, params_dicts
from sim.rules import EpisodeStatus
from sim.tracks.library import load_track

# ---------------------------------------------------------------- DeepRacer's examples, per params dict


def follow_centerline(params: dict) -> float:
    """DeepRacer example 1."""
    track_width = params["track_width"]
    distance_from_center = params["distance_from_center"]
    marker_1, marker_2, marker_3 = 0.1 * track_width, 0.25 * track_width, 0.5 * track_width
    if distance_from_center <= marker_1:
        return 1.0
    if distance_from_center <= marker_2:
        return 0.5
    if distance_from_center <= marker_3:
        return 0.1
    return 1e-3


def stay_inside_borders(params: dict) -> float:
    """DeepRacer example 2."""
    reward = 1e-3
    if (
        params["all_wheels_on_track"]
        and (0.5 * params["track_width"] - params["distance_from_center"]) >= 0.05
    ):
        reward = 1.0
    return float(reward)


def prevent_zigzag(params: dict) -> float:
    """DeepRacer example 3."""
    reward = follow_centerline(params)
    if abs(params["steering_angle"]) > 15:
        reward *= 0.8
    return float(reward)


def centerline_speed(params: dict) -> float:
    """Not a DeepRacer example: the centre-line reward times 0.5 + 0.5 min(speed / 4, 1)."""
    return follow_centerline(params) * (0.5 + 0.5 * min(params["speed"] / 4.0, 1.0))


class ProgressRate:
    """progress_rate as a DeepRacer reward file would write it: the previous progress kept between calls."""

    def __init__(self) -> None:
        self.prev = 0.0

    def __call__(self, params: dict) -> float:
        if params["steps"] <= 2:  # the first step of an episode (DeepRacer's steps start at 2)
            self.prev = 0.0
        gained = params["progress"] - self.prev
        self.prev = params["progress"]
        if params["is_offtrack"] or abs(gained) > MAX_PROGRESS_STEP:
            return 0.0
        return gained


REFERENCES = {
    "centerline": lambda: follow_centerline,
    "all_wheels": lambda: stay_inside_borders,
    "steering_penalty": lambda: prevent_zigzag,
    "centerline_speed": lambda: centerline_speed,
    "progress_rate": ProgressRate,
}


@pytest.fixture(scope="module")
def per_car() -> list[list[dict]]:
    return realistic_params(load_track("reinvent_base"), n_cars=8, steps=120, seed=3)


def _as_batch(dicts: list[dict], prev_progress: list[float]) -> SimpleNamespace:
    """The arrays a batched reward reads, from one step's dicts of all cars."""
    keys = ("distance_from_center", "track_width", "all_wheels_on_track", "steering_angle", "speed")
    keys += ("progress", "is_offtrack")
    batch = {k: np.array([d[k] for d in dicts]) for k in keys}
    return SimpleNamespace(**batch, prev_progress=np.array(prev_progress), n=len(dicts))


def test_every_builtin_has_a_reference() -> None:
    assert set(BUILTIN_REWARDS) == set(REFERENCES)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_builtin_matches_the_per_dict_reference(name: str, per_car: list[list[dict]]) -> None:
    refs = [REFERENCES[name]() for _ in per_car]
    prev = [0.0] * len(per_car)
    n_steps = len(per_car[0])
    checked = 0
    for t in range(n_steps):
        dicts = [car[t] for car in per_car]
        prev = [0.0 if d["steps"] <= 2 else p for d, p in zip(dicts, prev, strict=True)]
        got = BUILTIN_REWARDS[name](_as_batch(dicts, prev))  # type: ignore[arg-type]
        want = np.array([ref(d) for ref, d in zip(refs, dicts, strict=True)])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"{name} at step {t}")
        prev = [d["progress"] for d in dicts]
        checked += len(dicts)
    assert checked == n_steps * len(per_car)


def test_realistic_params_cover_the_branches(per_car: list[list[dict]]) -> None:
    """The comparison above means something: every centre-line band and off-track steps occur."""
    flat = [d for car in per_car for d in car]
    bands = {follow_centerline(d) for d in flat}
    assert bands == {1.0, 0.5, 0.1, 1e-3}
    assert any(d["is_offtrack"] for d in flat)
    assert any(abs(d["steering_angle"]) > 15 for d in flat)


# ---------------------------------------------------------------- prev_progress and progress_rate


def _sim(n: int, track: str = "reinvent_base") -> BatchedSim:
    sim = BatchedSim(
        n, load_track(track), load_car("deepracer").vehicle_params(), EpisodeOptions(start="start_line")
    )
    for i in range(n):
        sim.seed(i, np.random.default_rng(i))
    sim.reset(np.arange(n))
    return sim


def test_prev_progress_is_the_previous_steps_progress_and_not_a_deepracer_key() -> None:
    sim = _sim(2)
    driver = PurePursuitDriver(sim, speed_mps=1.5)
    params = sim.standing(np.arange(2))
    np.testing.assert_array_equal(params.prev_progress, 0.0)
    # the episode starts from 0 % (standing, the point 0.14 m ahead already reads a little progress)
    last = np.zeros(2)
    for _ in range(20):
        steer, speed = driver(params)
        params = sim.step(steer, speed).params
        np.testing.assert_array_equal(params.prev_progress, last)
        last = params.progress.copy()
    for d in params_dicts(params):
        assert tuple(d) == PARAM_KEYS or set(d) == set(PARAM_KEYS)
        assert "prev_progress" not in d
    # reset writes prev_progress in place; params already handed out keep their values
    held = params.prev_progress.copy()
    sim.reset(np.array([0]))
    np.testing.assert_array_equal(params.prev_progress, held)


@pytest.mark.parametrize("reverse", [False, True])
def test_progress_rate_sums_to_100_over_a_lap(reverse: bool) -> None:
    sim = _sim(1, "oval")
    sim.is_reversed[:] = reverse
    sim.reset(np.array([0]))
    driver = PurePursuitDriver(sim, speed_mps=1.5)
    params = sim.standing(np.array([0]))
    total = 0.0
    for _ in range(5000):
        steer, speed = driver(params)
        outcome = sim.step(steer, speed)
        params = outcome.params
        total += float(BUILTIN_REWARDS["progress_rate"](params)[0])
        if outcome.terminated[0] or outcome.truncated[0]:
            break
    assert EpisodeStatus(int(outcome.status[0])) is EpisodeStatus.LAP_COMPLETE
    assert total == pytest.approx(100.0, abs=1e-6)


def test_progress_rate_after_reset_starts_from_zero_and_punishes_reversing() -> None:
    sim = _sim(1)
    params = sim.standing(np.array([0]))
    steps = [sim.step(np.array([0.0]), np.array([1.0])).params for _ in range(10)]
    gained = sum(float(BUILTIN_REWARDS["progress_rate"](p)[0]) for p in steps)
    assert gained == pytest.approx(float(steps[-1].progress[0]), abs=1e-9) and gained > 0
    # a new episode: the first step measures from 0 again, not from the old episode's progress
    sim.reset(np.array([0]))
    first = sim.step(np.array([0.0]), np.array([1.0])).params
    assert first.prev_progress[0] == 0.0
    assert 0.0 < BUILTIN_REWARDS["progress_rate"](first)[0] < 1.0
    # going backwards from the start line: progress unwraps below 0, the reward is negative, no 100 % jump
    sim.reset(np.array([0]))
    sim.state.yaw_rad[:] += np.pi
    sim.state.cos_yaw[:], sim.state.sin_yaw[:] = np.cos(sim.state.yaw_rad), np.sin(sim.state.yaw_rad)
    rewards = [
        float(BUILTIN_REWARDS["progress_rate"](sim.step(np.array([0.0]), np.array([1.0])).params)[0])
        for _ in range(8)
    ]
    assert min(rewards) < 0.0 and max(rewards) <= 0.0 + 1e-9
    del params
