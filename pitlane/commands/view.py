"""`pitlane view`: watch the simulator in a pygame window — a scripted driver, your keyboard, or a replay.

pygame, numpy and the simulator are imported inside the command so that `pitlane --help` stays fast.
`--frames N` renders headless (SDL's dummy video driver, no window) unless `--window` is given.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pitlane.commands.common import SingleCommandGroup, fail

if TYPE_CHECKING:
    from sim.car import CarConfig
    from sim.tracks import Track
    from sim.viewer.session import BaseSession

END_HOLD_S = 1.0  # in a window, an episode's last frame stays this long before the car is reset
KEYS_HELP = "arrows: up/down speed, left/right steer · space brake · r reset · esc/q quit"
MODEL_NOT_YET = (
    "--model: watching a policy in the viewer is not built yet; evaluate it with `pitlane evaluate MODEL --png F` "
    "(a trajectory plot) or drive it with `pitlane drive --hal sim`, or use --drive centreline, --drive keyboard "
    "or --replay simtrace.csv"
)


app = typer.Typer(
    invoke_without_command=True,
    cls=SingleCommandGroup,
)


class Drive(str, Enum):
    """Who drives the car."""

    centreline = "centreline"
    keyboard = "keyboard"


def _no_display() -> bool:
    """On Linux, no X11 or Wayland display and no SDL video driver chosen: a window would be invisible."""
    names = ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")
    return sys.platform.startswith("linux") and not any(os.environ.get(name) for name in names)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT in pixels, e.g. 960x720, got {text!r}") from None
    if width < 160 or height < 120 or width > 8192 or height > 8192:
        raise typer.BadParameter(f"expected 160x120 to 8192x8192 pixels, got {text!r}")
    return width, height


class KeyboardDriver:
    """Arrow keys drive: up/down raise/lower the target speed while held, left/right steer while held
    (centring when released), space brakes to the lowest speed. Steering in degrees (+ = left), m/s."""

    def __init__(self, max_steer_deg: float, speed_low_mps: float, speed_high_mps: float, rate_hz: float):
        self.max_steer_deg = max_steer_deg
        self.speed_low_mps, self.speed_high_mps = speed_low_mps, speed_high_mps
        self.steer_step_deg = 150.0 / rate_hz  # lock to lock in about 0.4 s
        self.speed_step_mps = 2.0 / rate_hz  # 2 m/s per second held
        self.steer_deg = 0.0
        self.speed_mps = speed_low_mps

    def update(self, pressed: Any, keys: Any) -> tuple[float, float]:
        """Apply one frame of held keys (`pressed[key]` true while held; `keys` holds pygame's K_* codes) and
        return the command (steering deg, speed m/s)."""
        steer_target = self.max_steer_deg * (bool(pressed[keys.K_LEFT]) - bool(pressed[keys.K_RIGHT]))
        delta = max(-self.steer_step_deg, min(self.steer_step_deg, steer_target - self.steer_deg))
        self.steer_deg += delta
        if pressed[keys.K_SPACE]:
            self.speed_mps = self.speed_low_mps
        else:
            change = self.speed_step_mps * (bool(pressed[keys.K_UP]) - bool(pressed[keys.K_DOWN]))
            self.speed_mps = max(self.speed_low_mps, min(self.speed_high_mps, self.speed_mps + change))
        return self.steer_deg, self.speed_mps

    def reset(self) -> None:
        self.steer_deg, self.speed_mps = 0.0, self.speed_low_mps


def _key_action(events: list[Any], pg: Any) -> str | None:
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
        if _key_action(session.show(), pg) == "quit" or session.closed:
            return False
    return True


def _run_drive(
    track: Track,
    car: CarConfig,
    drive: Drive,
    speed_mps: float,
    frames: int | None,
    seed: int | None,
    size: tuple[int, int],
    window: bool,
) -> tuple[BaseSession, int]:
    """Drive `track` with the centre-line driver or the keyboard; returns the session and frames drawn."""
    import numpy as np

    from sim.action_space import ContinuousActionSpace
    from sim.drivers import PurePursuitDriver
    from sim.envs.time_trial import TimeTrialEnv
    from sim.viewer import RenderSession
    from sim.viewer.draw import import_pygame

    v = car.vehicle
    low_speed = min(0.1, 0.5 * v.max_speed_mps)  # DeepRacer's simulator actuates at least 0.1 m/s
    space = ContinuousActionSpace(-v.max_steer_deg, v.max_steer_deg, low_speed, v.max_speed_mps)
    env = TimeTrialEnv(track=track, car=car, action_space=space, start="start_line")
    session = RenderSession(env, size, mode="human" if window else "rgb_array", car=car)
    rate = env.sim.options.control_rate_hz
    if drive is Drive.keyboard:
        keyboard = KeyboardDriver(v.max_steer_deg, low_speed, v.max_speed_mps, rate)
        session.caption = f"{track.name} · {car.car.name} · {KEYS_HELP}"
    else:
        driver = PurePursuitDriver(env.sim, speed_mps=speed_mps)
        session.caption = f"{track.name} · {car.car.name} · centre-line driver at {speed_mps:g} m/s"
    obs, info = env.reset(seed=seed)
    session.reset(obs, info)
    pg = import_pygame() if window else None
    if window and _key_action(session.show(), pg) == "quit":  # open the window: key states need it
        return session, 0
    drawn = 0
    while frames is None or drawn < frames:
        action = None
        if drive is Drive.keyboard:
            steer, speed = keyboard.update(pg.key.get_pressed(), pg)
        else:
            steer_arr, speed_arr = driver(env.sim.standing(np.array([0])))
            steer, speed = float(steer_arr[0]), float(speed_arr[0])
        obs, reward, terminated, truncated, info = env.step(space.encode_nearest(steer, speed)[0])
        session.update(obs, reward, terminated, truncated, info)
        if window:
            action = _key_action(session.show(), pg)
            if action == "quit" or session.closed:
                break
            if action == "reset":
                terminated = True
                if drive is Drive.keyboard:
                    keyboard.reset()
        else:
            session.draw()
        drawn += 1
        if terminated or truncated:
            if window and action != "reset" and not _hold(session, pg, END_HOLD_S):
                break
            obs, info = env.reset()
            session.reset(obs, info)
    return session, drawn


def _replay_rate_hz(tstamp_s: Any) -> float:
    """The control rate a simtrace was logged at, from its time stamps (15 Hz when they do not say)."""
    import numpy as np

    steps = np.diff(tstamp_s)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    rate = 1.0 / float(np.median(steps)) if len(steps) else 15.0
    return rate if 1.0 <= rate <= 1000.0 else 15.0


def _run_replay(
    path: Path, track: Track, car: CarConfig, frames: int | None, size: tuple[int, int], window: bool
) -> tuple[BaseSession, int]:
    """Replay the rows of a simtrace CSV; in a window, hold the last frame until the viewer is closed."""
    from sim.viewer import CarShape, ReplaySession, read_simtrace
    from sim.viewer.draw import import_pygame

    trace = read_simtrace(path)
    session = ReplaySession(
        trace,
        track,
        CarShape.from_config(car),
        size,
        mode="human" if window else "rgb_array",
        fps=_replay_rate_hz(trace.tstamp_s),
        speed_range_mps=car.vehicle.max_speed_mps,
    )
    session.caption = f"{track.name} · replay of {path.name} ({len(trace)} rows)"
    pg = import_pygame() if window else None
    drawn = 0
    while (frames is None or drawn < frames) and session.advance():
        if window:
            if _key_action(session.show(), pg) == "quit" or session.closed:
                return session, drawn + 1
        else:
            session.draw()
        drawn += 1
    while window and frames is None and not session.closed:
        if _key_action(session.show(), pg) == "quit":
            break
    return session, drawn


@app.callback()
def view(
    track: Annotated[
        str,
        typer.Option("--track", "-t", help="Track name (see `pitlane tracks list`) or a .npy route file."),
    ] = "reinvent_base",
    car: Annotated[str, typer.Option("--car", "-c", help="Car name or .toml car file.")] = "deepracer",
    drive: Annotated[
        Drive | None,
        typer.Option(
            "--drive",
            help="Who drives: 'centreline' (scripted pure pursuit, default) or 'keyboard' (arrows).",
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", min=0.1, help="Speed of the centre-line driver, m/s.")
    ] = 1.5,
    replay: Annotated[
        Path | None,
        typer.Option(
            "--replay",
            help="Replay a DeepRacer simtrace CSV (X, Y, yaw, throttle, progress, reward).",
            dir_okay=False,
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Watch a trained policy (not built yet).")
    ] = None,
    frames: Annotated[
        int | None, typer.Option("--frames", min=1, help="Stop after N frames; headless unless --window.")
    ] = None,
    screenshot: Annotated[
        Path | None,
        typer.Option("--screenshot", help="Save the last frame to this PNG file.", dir_okay=False),
    ] = None,
    window: Annotated[
        bool, typer.Option("--window", help="Show the window even with --frames (needs a display).")
    ] = False,
    size: Annotated[
        str, typer.Option("--size", help="Window or frame size, WIDTHxHEIGHT pixels.")
    ] = "960x720",
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the environment.")] = None,
) -> None:
    """Watch the simulator: a scripted driver, your keyboard, or a replayed simtrace.

    Keys with --drive keyboard: up/down speed, left/right steer, space brake, r reset, esc or q quit.

    --frames N --screenshot FILE.png renders headless and saves the last frame.
    """
    if model is not None:
        fail(MODEL_NOT_YET)
    if replay is not None and drive is not None:
        fail("--replay and --drive: a replay has no driver; give one of them")
    width_height = _parse_size(size)
    window = window or frames is None
    if not window:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    if window and _no_display():
        fail(
            "no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset): "
            "run headless with --frames N --screenshot FILE.png"
        )
    if drive is Drive.keyboard and not window:
        fail("--drive keyboard needs a window: drop --frames or add --window")
    if screenshot is not None and screenshot.suffix.lower() not in (".png", ".bmp", ".tga", ".jpg", ".jpeg"):
        fail(f"--screenshot {screenshot}: expected a .png file name")
    session, drawn = _run(
        track, car, drive or Drive.centreline, speed, replay, frames, seed, width_height, window
    )
    try:
        if screenshot is not None:
            session.save(screenshot)
    except Exception as exc:  # noqa: BLE001 - pygame.error and OSError both mean "cannot write"
        fail(f"--screenshot {screenshot}: cannot write the picture ({exc})")
    finally:
        session.close()
    what = f"replayed {drawn} rows of {replay}" if replay is not None else f"{drawn} frames"
    saved = f"; screenshot {screenshot}" if screenshot is not None else ""
    Console().print(escape(f"{what} on {track}{saved}"), soft_wrap=True)


def _run(
    track_spec: str,
    car_spec: str,
    drive: Drive,
    speed: float,
    replay: Path | None,
    frames: int | None,
    seed: int | None,
    size: tuple[int, int],
    window: bool,
) -> tuple[BaseSession, int]:
    """Load the track and car, then drive or replay; every expected failure becomes a one-line error."""
    try:
        from firmware_configs.schema import FirmwareConfigError
        from sim.car import load_car
        from sim.errors import SimError
        from sim.tracks import load_track
        from sim.viewer.draw import import_pygame

        pg = import_pygame()
    except ImportError as exc:
        fail(f"{exc}: the viewer needs the simulator extra (pip install 'pitlane[sim]')")
    try:
        track = load_track(track_spec)
        car = load_car(car_spec)
        if replay is not None:
            return _run_replay(replay, track, car, frames, size, window)
        return _run_drive(track, car, drive, speed, frames, seed, size, window)
    except (SimError, FirmwareConfigError) as exc:
        fail(str(exc))
    except pg.error as exc:
        hint = "run headless with --frames N --screenshot FILE.png" if window else "check --size"
        fail(f"pygame: {exc} ({hint})")
