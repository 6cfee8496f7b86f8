"""Tracks: geometry (`Track`), spatial indexes, and the library that resolves track names."""

from sim.tracks.track import Track

__all__ = ["Track"]
