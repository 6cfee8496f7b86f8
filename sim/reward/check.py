"""Tools for reward functions: run one over realistic params, and show the params of one pose.

`realistic_params` drives scripted cars (pure pursuit with noise, some aiming off the road) around a track
and collects the DeepRacer params dicts a reward function would receive, in call order per car.
`check_reward_file` calls a user's file on them with one module instance per car and summarises.
`params_at_pose` answers "what does my reward function see when the car stands here?".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from firmware_configs import load_car
from sim.core import BatchedSim, EpisodeOptions
from sim.drivers import PurePursuitDriver
from sim.measure import MODEL_POINT_AHEAD_M
from sim.reward.params import params_dicts
from sim.reward.python_file import RewardFile
from sim.tracks import Track, load_track


@dataclass
class RewardCheckReport:
    """What `check_reward_file` saw. Rewards in call order; times in microseconds per call."""

    path: str
    track: str
    calls: int
    rewards: np.ndarray = field(repr=False)
    offtrack_calls: int
    us_per_call: float

    def summary(self) -> dict[str, Any]:
        r = self.rewards
        return {
            "file": self.path,
            "track": self.track,
            "calls": self.calls,
            "offtrack_calls": self.offtrack_calls,
            "reward_min": float(r.min()),
            "reward_mean": float(r.mean()),
            "reward_max": float(r.max()),
            "distinct_values": len(np.unique(r)),
            "us_per_call": round(self.us_per_call, 2),
            "warnings": self.warnings(),
        }

    def warnings(self) -> list[str]:
        out = []
        if len(np.unique(self.rewards)) == 1:
            out.append("the reward is the same for every params seen: a policy cannot learn from it")
        if (self.rewards < 0).any():
            out.append("some rewards are negative (DeepRacer allows it, but most examples stay positive)")
        if self.us_per_call > 100:
            out.append(f"slow: {self.us_per_call:.0f} µs per call limits training speed")
        return out


def realistic_params(
    track: Track, car: str = "deepracer", n_cars: int = 8, steps: int = 60, seed: int = 0
) -> list[list[dict]]:
    """Params dicts, `steps` per car for `n_cars` scripted cars (noisy centre-line followers at 0.8-2.5 m/s,
    two aiming outside the borders, one driving the track reversed). Returns one list per car, in order."""
    rng = np.random.default_rng(seed)
    sim = BatchedSim(n_cars, track, load_car(car).vehicle_params(), EpisodeOptions(start="round_robin"))
    for i in range(n_cars):
        sim.seed(i, np.random.default_rng(seed + i))
    sim.is_reversed[n_cars - 1] = True
    sim.reset(np.arange(n_cars))
    offsets = np.zeros(n_cars)
    offsets[:2] = np.array([1.0, -1.0]) * track.mean_width_m * 0.7
    driver = PurePursuitDriver(sim, speed_mps=1.5, lateral_offset_m=offsets, noise_deg=6.0, rng=rng)
    speeds = rng.uniform(0.8, 2.5, size=n_cars)
    params = sim.standing(np.arange(n_cars))
    per_car: list[list[dict]] = [[] for _ in range(n_cars)]
    for _ in range(steps):
        steer, _ = driver(params)
        outcome = sim.step(steer, speeds)
        params = outcome.params
        for i, d in enumerate(params_dicts(params)):
            per_car[i].append(d)
        done = np.flatnonzero(outcome.terminated | outcome.truncated)
        if len(done):
            sim.reset(done)
    return per_car


def check_reward_file(
    path: str | Path, track: str | Path = "reinvent_base", car: str = "deepracer"
) -> RewardCheckReport:
    """Run a reward file over a few hundred realistic params (RewardFunctionError on the first failure)."""
    reward_file = RewardFile.load(path)
    track_obj = load_track(track)
    per_car = realistic_params(track_obj, car)
    rewards, offtrack = [], 0
    start = time.perf_counter()
    for car_params in per_car:
        instance = reward_file.instance()
        for p in car_params:
            rewards.append(instance(p))
            offtrack += p["is_offtrack"]
    elapsed = time.perf_counter() - start
    calls = len(rewards)
    return RewardCheckReport(
        str(reward_file.path), track_obj.name, calls, np.array(rewards), offtrack, elapsed / calls * 1e6
    )


def params_at_pose(
    track: str | Path | Track,
    x_m: float,
    y_m: float,
    heading_deg: float,
    *,
    car: str = "deepracer",
    reverse: bool = False,
) -> dict[str, Any]:
    """The params dict a reward function receives for a car whose reported point (params x, y: 0.14 m ahead of
    the chassis centre) is at (x_m, y_m), heading `heading_deg`: standing still, steering 0, steps 2, the
    episode started at the track's first waypoint."""
    track_obj = track if isinstance(track, Track) else load_track(track)
    sim = BatchedSim(
        1, track_obj, load_car(car).vehicle_params(), EpisodeOptions(start="start_line", reverse=reverse)
    )
    sim.reset(np.array([0]))
    yaw = np.radians(heading_deg)
    chassis_x = x_m - MODEL_POINT_AHEAD_M * np.cos(yaw)
    chassis_y = y_m - MODEL_POINT_AHEAD_M * np.sin(yaw)
    sim.state.place(np.array([0]), np.array([chassis_x]), np.array([chassis_y]), np.array([yaw]))
    sim.steps[0] = 2.0
    return params_dicts(sim.standing(np.array([0])))[0]
