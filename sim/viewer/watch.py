"""Watching the simulator in a pygame window (or headless, frame by frame): a scripted driver or the keyboard
drives, a policy drives, or a simtrace is replayed; each frame can be recorded.

What `pitlane view` runs. pygame is imported only when a window is opened (`import_pygame`), and the
environments only when something is watched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.viewer.draw import import_pygame

if TYPE_CHECKING:
    from contracts.car_file import CarConfig
    from sim.action_space import ActionSpace
    from sim.tracks import Track
    from sim.viewer.record import FrameRecorder
    from sim.viewer.session import BaseSession, RenderSession

#: obs -> (the env's action, commanded steering deg, commanded speed m/s)
Act = Callable[[Any], tuple[Any, float, float]]

END_HOLD_S = 1.0  # in a window, an episode's last frame stays this long before the car is reset
KEYS_HELP = "arrows: up/down speed, left/right steer · space brake · r reset · esc/q quit"


@dataclass(frozen=True)
class WatchOptions:
    """How anything is watched: `frames` to draw (None: until the window is closed), the episodes' `seed`,
    the picture's `size` (width, height) px, in a pygame `window` or headless, and `record` (a folder of PNG
    files or a .gif for every frame; None: no recording)."""

    frames: int | None = None
    seed: int | None = None
    size: tuple[int, int] = (960, 720)
    window: bool = False
    record: Path | None = None

    @property
    def mode(self) -> str:
        """The sessions' render mode."""
        return "human" if self.window else "rgb_array"


def key_action(events: list[Any], pg: Any) -> str | None:
    """'quit' for esc / q / a closed window, 'reset' for r, else None."""
    for event in events:
        if event.type == pg.QUIT or (event.type == pg.KEYDOWN and event.key in (pg.K_ESCAPE, pg.K_q)):
            return "quit"
        if event.type == pg.KEYDOWN and event.key == pg.K_r:
            return "reset"
    return None


def _hold(session: BaseSession, pg: Any, seconds: float) -> bool:
    """Keep showing the current frame for `seconds` (an episode's end, so it can be read); False on quit."""
    for _ in range(max(1, round(seconds * session.fps))):
        if key_action(session.show(), pg) == "quit" or session.closed:
            return False
    return True


def drive_loop(
    env: Any,
    session: RenderSession,
    act: Act,
    frames: int | None,
    seed: int | None,
    window: bool,
    recorder: FrameRecorder | None,
    *,
    show_command: bool = False,
    on_reset: Callable[[], None] | None = None,
) -> int:
    """Step `env` with `act` and draw each step (window or headless), episode after episode, until `frames`
    frames or the window is closed; returns the frames drawn. An episode's end is held `END_HOLD_S` in a
    window, then the car starts again."""
    obs, info = env.reset(seed=seed)
    session.reset(obs, info)
    pg = import_pygame() if window else None
    if window and key_action(session.show(), pg) == "quit":  # open the window: key states need it
        return 0
    drawn = 0
    while frames is None or drawn < frames:
        action, steer_deg, speed_mps = act(obs)
        if show_command:
            session.command = (steer_deg, speed_mps)
        obs, reward, terminated, truncated, info = env.step(action)
        session.update(obs, reward, terminated, truncated, info)
        key = None
        if window:
            key = key_action(session.show(), pg)
            if key == "quit" or session.closed:
                break
            if key == "reset":
                terminated = True
                if on_reset is not None:
                    on_reset()
        else:
            session.draw()
        if recorder is not None:
            recorder.add(session.viewer.surface)
        drawn += 1
        if terminated or truncated:
            if window and key != "reset" and not _hold(session, pg, END_HOLD_S):
                break
            obs, info = env.reset()
            session.reset(obs, info)
    return drawn


def watch_driver(
    track: Track,
    car: CarConfig,
    keyboard: bool,
    speed_mps: float,
    options: WatchOptions,
) -> tuple[BaseSession, int]:
    """Drive `track` with the centre-line driver at `speed_mps` or, with `keyboard`, the arrow keys (a window
    is needed). Returns the session and the frames drawn."""
    from sim.action_space import ContinuousActionSpace
    from sim.drivers import PurePursuitDriver
    from sim.envs.time_trial import TimeTrialEnv
    from sim.keyboard import KeyboardDriver
    from sim.viewer import RenderSession

    v = car.vehicle
    low_speed = min(0.1, 0.5 * v.max_speed_mps)  # DeepRacer's simulator actuates at least 0.1 m/s
    space = ContinuousActionSpace(-v.max_steer_deg, v.max_steer_deg, low_speed, v.max_speed_mps)
    env = TimeTrialEnv(track=track, car=car, action_space=space, start="start_line")
    session = RenderSession(env, options.size, mode=options.mode, car=car)
    rate = env.sim.options.control_rate_hz
    on_reset = None
    if keyboard:
        keys = KeyboardDriver(v.max_steer_deg, low_speed, v.max_speed_mps, rate)
        session.caption = f"{track.name} · {car.car.name} · {KEYS_HELP}"
        on_reset = keys.reset

        def act(_obs: Any) -> tuple[Any, float, float]:
            pg = import_pygame()
            steer, speed = keys.update(pg.key.get_pressed(), pg)
            return space.encode_nearest(steer, speed)[0], steer, speed

    else:
        driver = PurePursuitDriver(env.sim, speed_mps=speed_mps)
        session.caption = f"{track.name} · {car.car.name} · centre-line driver at {speed_mps:g} m/s"

        def act(_obs: Any) -> tuple[Any, float, float]:
            steer_arr, speed_arr = driver(env.sim.standing(np.array([0])))
            steer, speed = float(steer_arr[0]), float(speed_arr[0])
            return space.encode_nearest(steer, speed)[0], steer, speed

    recorder = _recorder(options.record, rate)
    drawn = drive_loop(
        env, session, act, options.frames, options.seed, options.window, recorder, on_reset=on_reset
    )
    _close_recorder(recorder)
    return session, drawn


def watch_policy(
    policy: Callable[[Any], Any],
    track: Track,
    car: CarConfig,
    *,
    observation: str,
    action_space: ActionSpace,
    reverse: bool,
    label: str,
    options: WatchOptions,
) -> tuple[BaseSession, int]:
    """`policy` (observation -> the env's action) drives from the start line, lap after lap. The observation
    it sees (`observation` kind) is drawn as an inset, its command in the HUD; `label` names it in the
    caption. Returns the session and the frames drawn."""
    from sim.envs.time_trial import TimeTrialEnv
    from sim.viewer import RenderSession, observation_view

    env = TimeTrialEnv(
        track=track,
        car=car,
        observation=observation,
        action_space=action_space,
        reward="centerline",  # never changes the driving (and a run's reward file may not be on this machine)
        reverse=reverse,
        start="start_line",
    )
    inset_kind, lidar = observation_view(env.observer)
    session = RenderSession(env, options.size, mode=options.mode, car=car, inset_kind=inset_kind, lidar=lidar)
    session.caption = f"{track.name} · {car.car.name} · {label}"

    def act(obs: Any) -> tuple[Any, float, float]:
        action = policy(obs)
        steer, speed = action_space.decode(np.asarray(action)[None, ...])
        return action, float(steer[0]), float(speed[0])

    recorder = _recorder(options.record, env.sim.options.control_rate_hz)
    drawn = drive_loop(
        env, session, act, options.frames, options.seed, options.window, recorder, show_command=True
    )
    _close_recorder(recorder)
    return session, drawn


def _recorder(record: Path | None, fps: float) -> FrameRecorder | None:
    """Every frame into `record` (a folder of PNG files, or a .gif) at `fps`; None for no recording."""
    if record is None:
        return None
    from sim.viewer.record import FrameRecorder

    return FrameRecorder(record, fps)


def _close_recorder(recorder: FrameRecorder | None) -> None:
    if recorder is not None:
        recorder.close()


def replay_rate_hz(tstamp_s: Any) -> float:
    """The control rate a simtrace was logged at, from its time stamps (15 Hz when they do not say)."""
    steps = np.diff(tstamp_s)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    rate = 1.0 / float(np.median(steps)) if len(steps) else 15.0
    return rate if 1.0 <= rate <= 1000.0 else 15.0


def watch_replay(
    path: Path,
    track: Track,
    car: CarConfig,
    options: WatchOptions,
    episode: int | None,
) -> tuple[BaseSession, int]:
    """Replay the rows of a simtrace CSV, episode by episode (only `episode` when given; `options.seed` is
    not used); in a window, hold the last frame until the viewer is closed."""
    from sim.viewer import CarShape, ReplaySession, read_simtrace

    trace = read_simtrace(path)
    fps = replay_rate_hz(trace.tstamp_s)
    session = ReplaySession(
        trace,
        track,
        CarShape.from_config(car),
        options.size,
        mode=options.mode,
        fps=fps,
        speed_range_mps=car.vehicle.max_speed_mps,
        episode=episode,
    )
    which = "" if episode is None else f", episode {episode}"
    session.caption = f"{track.name} · replay of {path.name} ({len(session)} rows{which})"
    recorder = _recorder(options.record, fps)
    frames, window = options.frames, options.window
    pg = import_pygame() if window else None
    drawn = 0
    while (frames is None or drawn < frames) and session.advance():
        if window:
            if key_action(session.show(), pg) == "quit" or session.closed:
                drawn += 1
                break
        else:
            session.draw()
        if recorder is not None:
            recorder.add(session.viewer.surface)
        drawn += 1
    _close_recorder(recorder)
    while window and frames is None and not session.closed:
        if key_action(session.show(), pg) == "quit":
            break
    return session, drawn
