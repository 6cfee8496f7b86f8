"""Tracks: geometry (`Track`), spatial indexes, and the library that resolves track names."""

from sim.tracks.library import TrackInfo, import_track, list_tracks, load_track
from sim.tracks.track import Track

__all__ = ["Track", "TrackInfo", "import_track", "list_tracks", "load_track"]
