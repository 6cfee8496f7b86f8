"""Facts about a track, as `pitlane tracks show` reports them: size, width, turns, start pose, and optionally
the car's physical limit on it (the minimum-curvature race line and its lap time). Units in the key names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sim.tracks.library import list_tracks, load_track
from sim.tracks.track import Track


def track_facts(track: Track, kind: str) -> dict[str, Any]:
    """Facts about `track` (`kind`: "builtin", "deepracer", "imported" or "file"), units in the key names (m, deg)."""
    x, y, yaw = track.pose_at(0.0)
    span = np.vstack([track.inner, track.outer])
    max_curvature = float(np.abs(track.curvature_per_m).max())
    return {
        "name": track.name,
        "kind": kind,
        "source": track.source,
        "reversed": track.is_reversed,
        "direction": "counter-clockwise" if track.is_ccw else "clockwise",
        "length_m": round(track.length_m, 4),
        "n_waypoints": track.n_waypoints,
        "mean_width_m": round(track.mean_width_m, 4),
        "min_width_m": round(track.min_width_m, 4),
        "max_width_m": round(float(track.waypoint_widths_m.max()), 4),
        "min_turn_radius_m": round(1.0 / max_curvature, 3) if max_curvature > 0 else None,
        "size_m": [round(float(v), 3) for v in np.ptp(span, axis=0)],
        "start": {"x_m": round(x, 4), "y_m": round(y, 4), "heading_deg": round(float(np.degrees(yaw)), 2)},
    }


def track_kind(spec: str) -> str:
    """The kind of the track `spec` names in the track library, "file" for a route file's path."""
    kinds = {info.name: info.kind for info in list_tracks()}
    return kinds.get(spec, "file")


def describe_track(
    spec: str, *, reverse: bool = False, raceline_car: str | None = None, png: Path | None = None
) -> dict[str, Any]:
    """Load the track `spec` (a name or route .npy path, driven reversed or not) and return its facts; with
    `raceline_car` (a car name or .toml path) add "raceline": that car's minimum-curvature race line length
    (m), its limit lap time and the centre line's at the same limits (s); with `png`, draw the track (and
    the race line, coloured by speed) into that PNG file.

    Raises TrackError / CarFileError for a bad track or car, OSError when the picture cannot be written."""
    track = load_track(spec, reverse=reverse)
    line = None
    if raceline_car is not None:
        from sim.raceline import centre_line_lap_time, race_line

        line = race_line(track, raceline_car)
        centre_lap_s = centre_line_lap_time(track, raceline_car)
    if png is not None:
        # matplotlib loads only when a picture is asked for
        from sim.tracks.plot import plot_track

        plot_track(
            track,
            png,
            raceline=None if line is None else line.points,
            raceline_speed_mps=None if line is None else line.speed_mps,
        )
    facts = track_facts(track, track_kind(spec))
    if line is not None:
        facts["raceline"] = {
            "car": raceline_car,
            "length_m": round(line.length_m, 3),
            "limit_lap_s": round(line.lap_time_s, 3),
            "centre_line_lap_s": round(centre_lap_s, 3),
        }
    return facts
