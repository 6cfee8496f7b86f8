"""The pygame viewer: a top-down view of the track, cars, speed-coloured trails, sensor insets and a HUD.

`RenderSession(env)` follows a running environment (gymnasium's `render()` in `rgb_array` or `human` mode);
`ReplaySession(read_simtrace(path), track)` replays a DeepRacer simtrace CSV; `Viewer` draws single frames.
pygame is imported only when something is drawn: importing this package does not load it.
"""

from sim.errors import SimTraceError
from sim.simtrace import SIMTRACE_COLUMNS, SimTrace, TraceEpisode, best_lap_s, read_simtrace
from sim.viewer.draw import CarPose, CarShape, Inset, Viewer, WorldToScreen, speed_colours
from sim.viewer.replay import ReplaySession
from sim.viewer.session import (
    RENDER_MODES,
    LidarLayout,
    RenderSession,
    Trail,
    insets_from_observation,
    observation_view,
)

__all__ = [
    "RENDER_MODES",
    "SIMTRACE_COLUMNS",
    "CarPose",
    "CarShape",
    "Inset",
    "LidarLayout",
    "RenderSession",
    "ReplaySession",
    "SimTrace",
    "SimTraceError",
    "TraceEpisode",
    "Trail",
    "Viewer",
    "WorldToScreen",
    "best_lap_s",
    "insets_from_observation",
    "observation_view",
    "read_simtrace",
    "speed_colours",
]
