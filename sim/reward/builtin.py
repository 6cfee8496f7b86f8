"""Built-in batched reward functions: DeepRacer's documented examples, arrays in, array out.

A batched reward takes the cars' `Measurements` (arrays of shape (n,) under DeepRacer's params names) and
returns rewards of shape (n,). Each one here gives exactly what the DeepRacer example of the same idea gives
per car, without the per-car Python call.
Write your own with the `@batched_reward` decorator.

The built-ins read `p.m` (`sim.fastmath`) for `where`, `minimum`, ... so the single environment runs them on
its one car's Python floats (`p.m` is `SCALARS` there); with `p.m` = `ARRAYS` they are plain numpy. Your
own batched rewards always receive arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.fastmath import ARRAYS, Math
from sim.measure import Measurements

BatchedRewardFn = Callable[[Measurements], np.ndarray]


def batched_reward(fn: BatchedRewardFn) -> BatchedRewardFn:
    """Mark `fn(params: Measurements) -> np.ndarray (n,)` as batched (otherwise a callable is treated as a
    DeepRacer per-car `reward_function(params: dict) -> float`)."""
    fn.__pitlane_batched__ = True  # type: ignore[attr-defined]
    return fn


def _m(p: Measurements) -> Math:
    """The number kind of `p` (any object with the arrays works too: users and tests pass namespaces)."""
    return getattr(p, "m", ARRAYS)


@batched_reward
def centerline(p: Measurements) -> np.ndarray:
    """DeepRacer example 1, "follow the centre line": 1.0 / 0.5 / 0.1 within 10 / 25 / 50 % of the track
    width from the centre line, else 1e-3."""
    where = _m(p).where
    d, w = p.distance_from_center, p.track_width
    reward = where(d <= 0.5 * w, 0.1, 1e-3)
    reward = where(d <= 0.25 * w, 0.5, reward)
    return where(d <= 0.1 * w, 1.0, reward)


@batched_reward
def all_wheels(p: Measurements) -> np.ndarray:
    """DeepRacer example 2, "stay inside the borders": 1.0 while all wheels are on the track and the car is
    at least 5 cm from the border, else 1e-3."""
    inside = p.all_wheels_on_track & (0.5 * p.track_width - p.distance_from_center >= 0.05)
    return _m(p).where(inside, 1.0, 1e-3)


@batched_reward
def steering_penalty(p: Measurements) -> np.ndarray:
    """DeepRacer example 3: the centre-line reward, times 0.8 when |steering| exceeds 15 degrees."""
    m = _m(p)
    return centerline(p) * m.where(m.absolute(p.steering_angle) > 15.0, 0.8, 1.0)


@batched_reward
def centerline_speed(p: Measurements) -> np.ndarray:
    """The centre-line reward scaled by the commanded speed (0.5 at standstill, 1.0 at 4 m/s and above), so
    a car learns to be fast once it can stay on the road."""
    return centerline(p) * (0.5 + 0.5 * _m(p).minimum(p.speed / 4.0, 1.0))


#: Largest progress change one step may earn or lose, % of a lap: a car at 4 m/s on a 17 m track gains ~1.6 %
#: per 15 Hz step, so this only cuts jumps that are not driving (a reset putting the car back, a new lap).
MAX_PROGRESS_STEP = 5.0


@batched_reward
def progress_rate(p: Measurements) -> np.ndarray:
    """Progress gained this step, in % of a lap (a lap sums to 100), 0 on the step the car leaves the track;
    negative when driving backwards. Faster laps earn the same total sooner, so discounting rewards speed.

    Not a DeepRacer example: it reads `prev_progress` (the previous step's progress, 0 at an episode's
    start), which DeepRacer's params do not have; a DeepRacer reward file keeps it in a global instead.
    Progress unwraps across the start line within an episode, so the difference needs no wrap handling; a
    change beyond +-MAX_PROGRESS_STEP (a reset or new lap that did not restart `prev_progress`) earns 0."""
    gained = p.progress - p.prev_progress
    m = _m(p)
    ok = m.logical_not(p.is_offtrack) & (m.absolute(gained) <= MAX_PROGRESS_STEP)
    return m.where(ok, gained, 0.0)


BUILTIN_REWARDS: dict[str, BatchedRewardFn] = {
    "centerline": centerline,
    "all_wheels": all_wheels,
    "steering_penalty": steering_penalty,
    "centerline_speed": centerline_speed,
    "progress_rate": progress_rate,
}
