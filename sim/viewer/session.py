"""Render sessions: what the viewer remembers between frames (trails, laps, HUD values) and the window.

`RenderSession(env)` follows a running `TimeTrialEnv` from its `(obs, reward, terminated, truncated, info)`
steps; `ReplaySession` (in `sim.viewer.replay`) plays back a DeepRacer simtrace CSV. Both give
`frame()` — an (H, W, 3) uint8 RGB array — or `show()` a window (`mode="human"`, paced at `fps`).
pygame is imported only when a frame is drawn.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.viewer.draw import CarPose, CarShape, Inset, Viewer, import_pygame

if TYPE_CHECKING:
    from contracts.car_file import CarConfig
    from sim.tracks.track import Track

log = logging.getLogger(__name__)

RENDER_MODES = ("rgb_array", "human")


class Trail:
    """Recent positions (m) and speeds (m/s) of one car, oldest first; a NaN row breaks the line (reset)."""

    def __init__(self, max_points: int) -> None:
        self._rows: deque[tuple[float, float, float]] = deque(maxlen=max(2, max_points))

    def add(self, x_m: float, y_m: float, speed_mps: float) -> None:
        self._rows.append((float(x_m), float(y_m), float(speed_mps)))

    def clear(self) -> None:
        """Forget every point (a new episode of a replay)."""
        self._rows.clear()

    def break_line(self) -> None:
        """Do not join the next point to the last (the car was moved, not driven)."""
        if self._rows and not math.isnan(self._rows[-1][0]):
            self._rows.append((math.nan, math.nan, math.nan))

    def __len__(self) -> int:
        """Points held (line breaks not counted)."""
        return sum(1 for row in self._rows if not math.isnan(row[0]))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (n, 2) m and speeds (n,) m/s."""
        rows = np.array(self._rows, dtype=np.float64).reshape(-1, 3)
        return rows[:, :2], rows[:, 2]


class BaseSession:
    """What both sessions share: the viewer (made on first use), trails, insets, the window."""

    def __init__(
        self,
        track: Track,
        car: CarShape,
        *,
        size: tuple[int, int],
        mode: str,
        fps: float,
        speed_range_mps: float,
        trail_points: int,
        n_cars: int = 1,
        title: str = "pitlane",
    ) -> None:
        if mode not in RENDER_MODES:
            raise ValueError(f"render mode: expected one of {RENDER_MODES}, got {mode!r}")
        self.track = track
        self.car = car
        self.size = (int(size[0]), int(size[1]))
        self.mode = mode
        self.fps = float(fps)
        self.speed_range_mps = float(speed_range_mps)
        self.title = title
        self.trails = [Trail(trail_points) for _ in range(n_cars)]
        self.insets: list[Inset] = []
        self.caption: str | None = None
        self.closed = False
        self._viewer: Viewer | None = None
        self._window: Any = None
        self._clock: Any = None
        self._drawn = False

    @property
    def viewer(self) -> Viewer:
        """The `Viewer` (built on first use: it imports pygame and draws the track once, leaving room for the
        sensor insets present then)."""
        if self._viewer is None:
            self._viewer = Viewer(self.track, self.size, self.car, self.speed_range_mps, self.insets)
        return self._viewer

    def cars(self) -> list[CarPose]:
        raise NotImplementedError

    def hud(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def draw(self) -> Any:
        """Draw the current state into the viewer's surface and return it."""
        trails = [trail.arrays() for trail in self.trails]
        self._drawn = True
        return self.viewer.draw(self.cars(), trails, self.hud(), self.insets, self.caption)

    def frame(self) -> np.ndarray:
        """The current view as an (H, W, 3) uint8 RGB array."""
        self.draw()
        return self.viewer.to_array()

    def show(self) -> list[Any]:
        """Draw into the window (opened on first call), wait for the next tick of `fps`, and return the
        pygame events since the last call; a window close sets `closed`."""
        pg = import_pygame()
        if self._window is None:
            pg.display.init()
            self._window = pg.display.set_mode(self.size)
            pg.display.set_caption(self.title)
            self._clock = pg.time.Clock()
            if pg.display.get_driver() in ("dummy", "offscreen"):
                log.warning("SDL video driver %r: the window is not visible", pg.display.get_driver())
        self._window.blit(self.draw(), (0, 0))
        pg.display.flip()
        events = pg.event.get()
        if any(event.type == pg.QUIT for event in events):
            self.closed = True
        self._clock.tick(self.fps)
        return events

    def render(self) -> np.ndarray | None:
        """gymnasium's `render()`: the frame in `rgb_array` mode, None after showing it in `human` mode."""
        if self.mode == "rgb_array":
            return self.frame()
        self.show()
        return None

    def save(self, path: str | Path) -> Path:
        """Write the last drawn frame (or the current view) to a PNG file."""
        if not self._drawn:
            self.draw()
        path = Path(path)
        import_pygame().image.save(self.viewer.surface, str(path))
        return path

    def close(self) -> None:
        """Close the window, if one is open."""
        if self._window is not None:
            import_pygame().display.quit()
            self._window = None


def _env_car_shape(base: Any, car: CarShape | CarConfig | None) -> CarShape:
    if isinstance(car, CarShape):
        return car
    config = car if car is not None else getattr(base, "car", None)
    if config is not None and hasattr(config, "vehicle"):
        return CarShape.from_config(config)
    return CarShape.from_vehicle(base.sim.vehicle)


@dataclass(frozen=True)
class LidarLayout:
    """Where a lidar's beams point (car frame, + = left, (N,) radians) and its longest range, metres."""

    angles_rad: np.ndarray
    max_range_m: float


def state_names() -> tuple[str, ...]:
    """Names (with units) of the `state` observation's 11 features, for its readout (`sim.observations`)."""
    from sim.observations import LOOKAHEAD_M  # gymnasium's import: only when a state readout is drawn

    return (
        "speed m/s",
        "wheel angle rad",
        "sin heading error",
        "cos heading error",
        "lateral half-widths",
        *(f"curvature {d:g} m 1/m" for d in LOOKAHEAD_M.tolist()),
    )


def observation_view(observer: Any) -> tuple[str | None, LidarLayout | None]:
    """How a `RenderSession` shows the observation of an environment's `sim.observations.Observer`:
    (inset_kind, lidar layout). Camera frames are found without a kind; lidar ranges (m) are drawn along
    their beams; a `state` vector gets a named readout and sector / discretised lidar codes a bar readout.
    Several kinds (a Dict) show their camera and lidar ranges."""
    kinds = tuple(observer.kinds)
    lidar = observer.sensor("lidar")
    layout = None
    if lidar is not None and lidar.kind in ("lidar", "scan"):  # ranges in metres (not sector codes)
        layout = LidarLayout(lidar.beam_angles_rad, lidar.max_range_m)
    if len(kinds) != 1:
        return None, layout
    kind = kinds[0]
    if kind == "state":
        return "state", None
    if layout is not None:
        return "lidar", layout
    if lidar is not None:
        return "readout", None
    return None, None


def insets_from_observation(
    obs: Any, kind: str | None = None, lidar: LidarLayout | None = None
) -> list[Inset]:
    """Sensor insets in an observation: a dict's `camera`/`lidar` entries; an array shown as `kind`
    ("camera", "lidar", "state": the named state readout, "readout": bars); with no kind, a uint8 array of
    2 or 3 dimensions is a camera frame (a `state` vector shows nothing). Lidar ranges are drawn along
    `lidar`'s beam angles when given."""
    if obs is None:
        return []
    if isinstance(obs, dict):
        keys = [kind] if kind else [k for k in ("camera", "lidar") if k in obs]
        return [_inset(k, np.asarray(obs[k]), lidar) for k in keys if k in obs]
    arr = np.asarray(obs)
    if kind:
        return [_inset(kind, arr, lidar)]
    if arr.dtype == np.uint8 and arr.ndim in (2, 3):
        return [Inset("camera", arr)]
    return []


def _inset(kind: str, data: np.ndarray, lidar: LidarLayout | None) -> Inset:
    if kind == "state":
        names = state_names()
        values = np.ravel(data)
        return Inset(
            "readout", values, names=names if len(values) == len(names) else None, label="observation: state"
        )
    if kind == "readout":
        return Inset("readout", np.ravel(data))
    if kind == "lidar" and lidar is not None and len(data) == len(lidar.angles_rad):
        return Inset("lidar", data, angles_rad=lidar.angles_rad, max_range_m=lidar.max_range_m)
    return Inset(kind, data)


class RenderSession(BaseSession):
    """Follows one `TimeTrialEnv` (or a wrapper of it): call `reset(obs, info)` after `env.reset()` and
    `update(obs, reward, terminated, truncated, info)` after each `env.step()`; then `frame()` or `show()`.

    Car poses, speeds and lap clocks are read from `env.sim`; progress, status and lap times from `info`.
    car: the car's shape (a `CarShape` or `CarConfig`; default: `env.car` if the env has one, else estimated
    from the physics). trail_s: seconds of trail kept. speed_range_mps: top of the trail colours (default
    the car's top speed). lidar: the beam layout of lidar ranges in the observation. inset_kind: "camera" |
    "lidar" to show the observation so (default: camera
    frames and dict observations are detected; "state" and "readout" show a vector's values, see
    `observation_view`). fps: window pace (default the control rate). `command`, when a caller sets it to
    the commanded (steering deg, speed m/s), is shown in the HUD instead of the reward.
    """

    def __init__(
        self,
        env: Any,
        size: tuple[int, int] = (960, 720),
        mode: str = "rgb_array",
        *,
        car: CarShape | CarConfig | None = None,
        trail_s: float = 30.0,
        speed_range_mps: float | None = None,
        inset_kind: str | None = None,
        lidar: LidarLayout | None = None,
        fps: float | None = None,
    ) -> None:
        base = getattr(env, "unwrapped", env)
        self.sim = base.sim
        rate = self.sim.options.control_rate_hz
        super().__init__(
            self.sim.forward,
            _env_car_shape(base, car),
            size=size,
            mode=mode,
            fps=fps or rate,
            speed_range_mps=speed_range_mps or self.sim.vehicle.max_speed_mps,
            trail_points=round(trail_s * rate),
            n_cars=self.sim.n,
            title=f"pitlane: {self.sim.forward.name}",
        )
        self.inset_kind = inset_kind
        self.lidar = lidar
        self.episodes = 0
        self.laps = 0
        self.last_lap_s: float | None = None
        self.best_lap_s: float | None = None
        self.reward: float | None = None
        self.episode_reward = 0.0
        self.progress = 0.0
        self.status = "in_progress"
        self.command: tuple[float, float] | None = None

    def reset(self, obs: Any = None, info: dict[str, Any] | None = None) -> None:
        """A new episode began (the car was placed at its start)."""
        for trail in self.trails:
            trail.break_line()
        self.episodes += 1
        self.reward, self.episode_reward = None, 0.0
        self._take(obs, info or {})

    def update(
        self, obs: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]
    ) -> None:
        """One step happened."""
        self.reward = float(reward)
        self.episode_reward += self.reward
        if "lap_time_s" in info:
            self.laps += 1
            self.last_lap_s = float(info["lap_time_s"])
            self.best_lap_s = min(self.best_lap_s or math.inf, self.last_lap_s)
        self._take(obs, info)

    def _take(self, obs: Any, info: dict[str, Any]) -> None:
        self.progress = float(info.get("progress", self.progress))
        self.status = str(info.get("episode_status", self.status))
        st = self.sim.state
        for i, trail in enumerate(self.trails):
            trail.add(st.x_m[i], st.y_m[i], st.speed_mps[i])
        self.insets = insets_from_observation(obs, self.inset_kind, self.lidar)

    def cars(self) -> list[CarPose]:
        st = self.sim.state
        return [
            CarPose(float(st.x_m[i]), float(st.y_m[i]), float(st.yaw_rad[i]), float(st.steer_rad[i]))
            for i in range(self.sim.n)
        ]

    def hud(self) -> list[tuple[str, str]]:
        lap_time = self.last_lap_s if self.status == "lap_complete" else float(self.sim.episode_time_s[0])
        if self.command is None:
            extra = [("reward", "-" if self.reward is None else f"{self.reward:.3f}")]
        else:
            extra = [
                ("steer cmd", f"{self.command[0]:+.1f} deg"),
                ("speed cmd", f"{self.command[1]:.2f} m/s"),
            ]
        return [
            ("lap", str(self.laps + (0 if self.status == "lap_complete" else 1))),
            ("lap time", f"{lap_time:.2f} s"),
            ("speed", f"{float(self.sim.state.speed_mps[0]):.2f} m/s"),
            ("progress", f"{self.progress:.1f} %"),
            *extra,
            ("status", self.status),
            ("best lap", "-" if self.best_lap_s is None else f"{self.best_lap_s:.2f} s"),
        ]
