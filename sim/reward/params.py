"""DeepRacer's reward-function `params`, computed for n cars at once.

`RewardParams` holds every key as an array of shape (n,) (or (n, 2) for `closest_waypoints`), with DeepRacer's
semantics (see ../shared/deepracer/REFERENCE.md): x, y are 0.14 m ahead of the chassis centre; progress counts
from the episode's start point; speed and steering_angle are the commanded action; steps start at 2.
Batched reward functions read the arrays; `dicts()` turns them into the per-car dicts that users' DeepRacer
`reward_function(params)` receive (the waypoint list is one shared list per direction, never copied).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np

from sim.fastmath import ARRAYS, Math
from sim.tracks.track import Track

#: DeepRacer reports the position of a point this far ahead of the chassis centre (RELATIVE_POSITION_OF_FRONT_OF_CAR).
MODEL_POINT_AHEAD_M = 0.14

#: Keys of a DeepRacer params dict, in the order DeepRacer documents them.
PARAM_KEYS = (
    "all_wheels_on_track",
    "x",
    "y",
    "heading",
    "distance_from_center",
    "is_left_of_center",
    "progress",
    "steps",
    "speed",
    "steering_angle",
    "track_width",
    "track_length",
    "waypoints",
    "closest_waypoints",
    "is_reversed",
    "is_crashed",
    "is_offtrack",
    "closest_objects",
    "objects_location",
    "objects_left_of_center",
    "objects_distance",
    "objects_distance_from_center",
    "objects_heading",
    "objects_speed",
    "object_in_camera",
    "projection_distance",
    "sim_time",
)


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
class RewardParams:
    """DeepRacer params for n cars. Arrays have shape (n,) unless noted; units as DeepRacer's (m, deg, %, s).

    `track_width` and `is_left_of_center` need two more projections (onto the borders), so they are computed
    only when read.

    `m` is the number kind (`sim.fastmath`): `ARRAYS`, or `SCALARS` for the one car of the single
    environment, whose params hold Python numbers in place of arrays (`as_arrays()` gives the (1,) arrays).
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

    def as_arrays(self) -> RewardParams:
        """These params with (n,) arrays (a copy with arrays of one car for `SCALARS` params; self otherwise)."""
        if not self.m.scalar:
            return self
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_PER_CAR}
        return RewardParams(
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

    def waypoints_for(self, i: int) -> list[tuple[float, float]]:
        return (self.backward if self.is_reversed[i] else self.forward).waypoint_list

    def dicts(self) -> list[dict[str, Any]]:
        """One DeepRacer params dict per car (every key of `PARAM_KEYS`), with plain Python values."""
        if self.m.scalar:
            d = {key: getattr(self, key) for key in _ARRAY_KEYS}
            d["track_length"] = self.track_length
            d["waypoints"] = (self.backward if self.is_reversed else self.forward).waypoint_list
            d["closest_waypoints"] = self.closest_waypoints[0].tolist()
            d.update(no_objects())
            return [d]
        columns = [getattr(self, key).tolist() for key in _ARRAY_KEYS]
        closest = self.closest_waypoints.tolist()
        reversed_ = columns[_ARRAY_KEYS.index("is_reversed")]
        fwd, back = self.forward.waypoint_list, self.backward.waypoint_list
        length = self.track_length
        out = []
        for i, values in enumerate(zip(*columns, strict=True)):
            d = dict(zip(_ARRAY_KEYS, values, strict=True))
            d["track_length"] = length
            d["waypoints"] = back if reversed_[i] else fwd  # shared, never copied per call
            d["closest_waypoints"] = closest[i]
            d.update(no_objects())
            out.append(d)
        return out


def no_objects() -> dict[str, Any]:
    """DeepRacer's values of the object keys on a track without objects or bot cars (fresh lists each call)."""
    return {
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


#: Fields of RewardParams that are not per-car values.
_NOT_PER_CAR = frozenset({"forward", "backward", "m"})
#: Keys whose values differ per car, read from the arrays (in `PARAM_KEYS` order).
_ARRAY_KEYS = tuple(
    key for key in PARAM_KEYS if key not in {"track_length", "waypoints", "closest_waypoints", *no_objects()}
)
