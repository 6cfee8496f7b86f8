"""DeepRacer's reward-function `params` dicts: the per-car view of `sim.measure.Measurements`.

Users' DeepRacer `reward_function(params)` receive one dict per car per step with every key of `PARAM_KEYS`
in plain Python values (the waypoint list is one shared list per direction, never copied). Batched rewards
read the `Measurements` arrays directly and never need these dicts.
"""

from __future__ import annotations

from typing import Any

from sim.measure import Measurements

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


def params_dicts(measured: Measurements) -> list[dict[str, Any]]:
    """One DeepRacer params dict per car of `measured` (every key of `PARAM_KEYS`), with plain Python values;
    a list of one dict for `SCALARS` measurements."""
    if measured.m.scalar:
        d = {key: getattr(measured, key) for key in _ARRAY_KEYS}
        d["track_length"] = measured.track_length
        d["waypoints"] = (measured.backward if measured.is_reversed else measured.forward).waypoint_list
        d["closest_waypoints"] = measured.closest_waypoints[0].tolist()
        d.update(no_objects())
        return [d]
    columns = [getattr(measured, key).tolist() for key in _ARRAY_KEYS]
    closest = measured.closest_waypoints.tolist()
    reversed_ = columns[_ARRAY_KEYS.index("is_reversed")]
    fwd, back = measured.forward.waypoint_list, measured.backward.waypoint_list
    length = measured.track_length
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


#: Keys whose values differ per car, read from the measurements (in `PARAM_KEYS` order).
_ARRAY_KEYS = tuple(
    key for key in PARAM_KEYS if key not in {"track_length", "waypoints", "closest_waypoints", *no_objects()}
)
