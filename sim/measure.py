"""What the simulator measures of every car at a step: `Measurements`.

`BatchedSim.measure()` makes one for n cars after each step and at a reset: where each car is on the track
(reported point, nearest centre-line point and segment, progress, distance from the centre line, wheels on
the road), how it drives (heading, commanded speed and steering) and its episode clock. Everything after the
physics reads it: the episode rules, the observations, the scripted drivers, the evaluation's laps, the
simtrace and the rewards. It is named for what it is, a per-step measurement of every car (plural: one record
holds the values of all n cars), rather than for one of its readers; the reward is one reader among several.

The fields keep DeepRacer's reward-params names, units and semantics (see ../shared/deepracer/REFERENCE.md),
so a batched reward reads them as a DeepRacer reward reads `params`: x, y are 0.14 m ahead of the chassis
centre; progress counts from the episode's start point; speed and steering_angle are the commanded action;
steps start at 2. Code holding one often calls it `params` (as `StepOutcome.params` does), DeepRacer's word
for these values. The per-car dicts that users' Python `reward_function(params)` receive are a view of this
record made in `sim.reward.params`: `sim.core`, the observations and the drivers do not import `sim.reward`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from sim.fastmath import ARRAYS, Math
from sim.tracks.track import Track

#: DeepRacer reports the position of a point this far ahead of the chassis centre (RELATIVE_POSITION_OF_FRONT_OF_CAR).
MODEL_POINT_AHEAD_M = 0.14


def compute_current_progress(
    raw_fraction: np.ndarray, prev_progress: np.ndarray, m: Math = ARRAYS
) -> np.ndarray:
    """DeepRacer's `compute_current_prog`, batched: progress (%) from (ndist - start_ndist) and the previous
    step's progress, unwrapping a crossing of the start point in either direction; capped at 100."""
    progress = 100.0 * raw_fraction
    progress = m.where(progress <= 0.0, progress + 100.0, progress)
    progress = m.where(prev_progress > progress + 50.0, progress + 100.0, progress)
    progress = m.where(progress > prev_progress + 50.0, progress - 100.0, progress)
    return m.minimum(progress, 100.0)


@dataclass
class Measurements:
    """What the simulator measured of n cars at one step. Arrays have shape (n,) unless noted; units as
    DeepRacer's (m, deg, %, s).

    `track_width` and `is_left_of_center` need two more projections (onto the borders), so they are computed
    only when read.

    `m` is the number kind (`sim.fastmath`): `ARRAYS`, or `SCALARS` for the one car of the single
    environment, whose measurements hold Python numbers in place of arrays (`as_arrays()` gives the (1,)
    arrays).
    """

    forward: Track
    backward: Track
    x: np.ndarray
    y: np.ndarray
    yaw_rad: np.ndarray  # heading in radians (not a DeepRacer key; `heading` is degrees)
    speed: np.ndarray
    steering_angle: np.ndarray
    progress: np.ndarray
    steps: np.ndarray
    distance_from_center: np.ndarray
    all_wheels_on_track: np.ndarray
    is_offtrack: np.ndarray
    is_reversed: np.ndarray
    projection_distance: np.ndarray
    sim_time: np.ndarray
    # not DeepRacer keys: the nearest centre-line point, its segment (forward direction) and the fraction
    # along it, and the cosine and sine of the heading
    centre_x: np.ndarray
    centre_y: np.ndarray
    segment: np.ndarray
    segment_t: np.ndarray
    cos_yaw: np.ndarray
    sin_yaw: np.ndarray
    # not a DeepRacer key: the previous step's progress (%, 0 at an episode's start), for progress-rate rewards
    prev_progress: np.ndarray
    m: Math = ARRAYS

    @property
    def n(self) -> int:
        return 1 if self.m.scalar else len(self.x)

    def as_arrays(self) -> Measurements:
        """These measurements with (n,) arrays (a copy with arrays of one car for `SCALARS` ones; self
        otherwise)."""
        if not self.m.scalar:
            return self
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_PER_CAR}
        return Measurements(
            forward=self.forward,
            backward=self.backward,
            **{key: np.array([value]) for key, value in values.items()},
        )

    @property
    def track_length(self) -> float:
        return self.forward.length_m

    @cached_property
    def heading(self) -> np.ndarray:
        """Yaw in degrees, counter-clockwise from +x, in (-180, 180]."""
        return self.m.degrees(self.yaw_rad)

    @cached_property
    def closest_waypoints(self) -> np.ndarray:
        """(n, 2) int [previous, next] waypoint indices in the driving direction: DeepRacer's bisect_right of
        the car's lap fraction in the waypoints' lap fractions, read off the projected segment instead of
        searched. Forward segment k runs from waypoint k to k+1; driven backwards it runs from M-1-k to M-k."""
        last = self.forward.n_waypoints - 1
        seg, t = self.segment, self.segment_t
        prev = self.m.where(self.is_reversed, (last - 1) - seg + (t <= 0.0), seg + (t >= 1.0))
        # standing on the start line: lap fraction 0 lies between waypoints 0 and 1
        if self.m.scalar:
            prev = 0 if prev >= last else prev
            return np.array([[prev, prev + 1]])
        prev[prev >= last] = 0
        return np.stack([prev, prev + 1], axis=1)

    @cached_property
    def is_crashed(self) -> np.ndarray:
        """Always False: the simulator has no objects or bot cars to crash into."""
        return False if self.m.scalar else np.zeros(self.n, dtype=bool)

    @cached_property
    def _border_points(self) -> np.ndarray:
        """(n, 4): inner x, y and outer x, y of the border points nearest the car's centre-line point."""
        return self.forward.border_table.at(self._s_forward, self.m)

    @cached_property
    def _s_forward(self) -> np.ndarray:
        """Arc length of the car's centre-line point from waypoint 0 in the file's direction, m."""
        return self.m.where(
            self.is_reversed, self.forward.length_m - self.projection_distance, self.projection_distance
        )

    @cached_property
    def track_width(self) -> np.ndarray:
        """Distance between the inner and outer border points nearest the car's centre-line point, m."""
        return self.m.first_column(self.forward.width_table.at(self._s_forward, self.m))

    @cached_property
    def is_left_of_center(self) -> np.ndarray:
        """Nearer the inner border point than the outer, XOR the track runs clockwise in this direction."""
        inner_x, inner_y, outer_x, outer_y = self.m.columns(self._border_points)
        dx, dy = self.x - inner_x, self.y - inner_y
        to_inner2 = dx * dx + dy * dy
        dx, dy = self.x - outer_x, self.y - outer_y
        to_outer2 = dx * dx + dy * dy
        is_ccw = self.forward.is_ccw ^ self.is_reversed
        return (to_inner2 < to_outer2) ^ self.m.logical_not(is_ccw)


#: Fields of Measurements that are not per-car values.
_NOT_PER_CAR = frozenset({"forward", "backward", "m"})
