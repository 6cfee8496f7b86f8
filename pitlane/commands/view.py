"""`pitlane view`: watch the simulator in a pygame window — a scripted driver, your keyboard, a trained
policy (`--model`), or a replay.

pygame, numpy and the simulator are imported inside the command so that `pitlane --help` stays fast.
`--frames N` renders headless (SDL's dummy video driver, no window) unless `--window` is given; `--record`
saves every frame (PNG files in a folder, or a GIF).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pitlane.commands.common import SingleCommandGroup, fail, require

if TYPE_CHECKING:
    from collections.abc import Callable

    from sim.car import CarConfig
    from sim.tracks import Track
    from sim.viewer.record import FrameRecorder
    from sim.viewer.session import BaseSession, RenderSession

    #: obs -> (the env's action, commanded steering deg, commanded speed m/s)
    Act = Callable[[Any], tuple[Any, float, float]]

END_HOLD_S = 1.0  # in a window, an episode's last frame stays this long before the car is reset
KEYS_HELP = "arrows: up/down speed, left/right steer · space brake · r reset · esc/q quit"
DEFAULT_TRACK = "reinvent_base"
DEFAULT_CAR = "deepracer"


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


def _drive_loop(
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
    if window and _key_action(session.show(), pg) == "quit":  # open the window: key states need it
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
            key = _key_action(session.show(), pg)
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


def import_pygame() -> Any:
    """pygame, as the viewer loads it (imported here, not at the top: `pitlane --help` stays fast)."""
    from sim.viewer.draw import import_pygame as load

    return load()


def _run_drive(
    track: Track,
    car: CarConfig,
    drive: Drive,
    speed_mps: float,
    frames: int | None,
    seed: int | None,
    size: tuple[int, int],
    window: bool,
    record: Path | None,
) -> tuple[BaseSession, int]:
    """Drive `track` with the centre-line driver or the keyboard; returns the session and frames drawn."""
    import numpy as np

    from sim.action_space import ContinuousActionSpace
    from sim.drivers import PurePursuitDriver
    from sim.envs.time_trial import TimeTrialEnv
    from sim.viewer import RenderSession

    v = car.vehicle
    low_speed = min(0.1, 0.5 * v.max_speed_mps)  # DeepRacer's simulator actuates at least 0.1 m/s
    space = ContinuousActionSpace(-v.max_steer_deg, v.max_steer_deg, low_speed, v.max_speed_mps)
    env = TimeTrialEnv(track=track, car=car, action_space=space, start="start_line")
    session = RenderSession(env, size, mode="human" if window else "rgb_array", car=car)
    rate = env.sim.options.control_rate_hz
    on_reset = None
    if drive is Drive.keyboard:
        keyboard = KeyboardDriver(v.max_steer_deg, low_speed, v.max_speed_mps, rate)
        session.caption = f"{track.name} · {car.car.name} · {KEYS_HELP}"
        on_reset = keyboard.reset

        def act(_obs: Any) -> tuple[Any, float, float]:
            pg = import_pygame()
            steer, speed = keyboard.update(pg.key.get_pressed(), pg)
            return space.encode_nearest(steer, speed)[0], steer, speed

    else:
        driver = PurePursuitDriver(env.sim, speed_mps=speed_mps)
        session.caption = f"{track.name} · {car.car.name} · centre-line driver at {speed_mps:g} m/s"

        def act(_obs: Any) -> tuple[Any, float, float]:
            steer_arr, speed_arr = driver(env.sim.standing(np.array([0])))
            steer, speed = float(steer_arr[0]), float(speed_arr[0])
            return space.encode_nearest(steer, speed)[0], steer, speed

    recorder = _recorder(record, rate)
    drawn = _drive_loop(env, session, act, frames, seed, window, recorder, on_reset=on_reset)
    _close_recorder(recorder)
    return session, drawn


def _model_path(spec: str) -> Path:
    """The file or run directory `--model` names: an export folder (model.json and model.onnx, no run's
    best.zip/final.zip) means its model.onnx."""
    path = Path(spec)
    is_run = any((path / name).is_file() for name in ("best.zip", "final.zip"))
    if path.is_dir() and not is_run and (path / "model.onnx").is_file():
        return path / "model.onnx"
    return path


def _run_model(
    model: Path,
    track_spec: str | None,
    car_spec: str | None,
    frames: int | None,
    seed: int | None,
    size: tuple[int, int],
    window: bool,
    record: Path | None,
) -> tuple[BaseSession, int]:
    """A trained policy drives: a run directory or .zip through stable-baselines3, an .onnx model through
    ONNX Runtime (`device.policy.OnnxPolicy`, as on a car), both loaded by `trainer.evaluate.load_policy`.
    The observation the policy sees is drawn as an inset, its command in the HUD."""
    import numpy as np

    from sim.car import load_car
    from sim.envs.time_trial import TimeTrialEnv
    from sim.tracks import load_track
    from sim.viewer import RenderSession, observation_view
    from trainer.evaluate import load_policy

    policy, config = load_policy(model, car=car_spec)
    track = load_track(track_spec or config.track)
    car = load_car(car_spec or config.car)
    space = config.resolved_action_space()
    env = TimeTrialEnv(
        track=track,
        car=car,
        observation=config.observation,
        action_space=space,
        reward="centerline",  # never changes the driving (and a run's reward file may not be on this machine)
        reverse=config.reverse,
        start="start_line",
    )
    inset_kind, lidar = observation_view(env.observer)
    session = RenderSession(
        env, size, mode="human" if window else "rgb_array", car=car, inset_kind=inset_kind, lidar=lidar
    )
    session.caption = f"{track.name} · {car.car.name} · {model.name} ({config.observation} policy)"

    def act(obs: Any) -> tuple[Any, float, float]:
        action = policy(obs)
        steer, speed = space.decode(np.asarray(action)[None, ...])
        return action, float(steer[0]), float(speed[0])

    recorder = _recorder(record, env.sim.options.control_rate_hz)
    drawn = _drive_loop(
        env, session, act, frames, config.seed if seed is None else seed, window, recorder, show_command=True
    )
    _close_recorder(recorder)
    return session, drawn


def _recorder(record: Path | None, fps: float) -> FrameRecorder | None:
    if record is None:
        return None
    from sim.viewer.record import FrameRecorder

    return FrameRecorder(record, fps)


def _close_recorder(recorder: FrameRecorder | None) -> None:
    if recorder is not None:
        recorder.close()


def _replay_rate_hz(tstamp_s: Any) -> float:
    """The control rate a simtrace was logged at, from its time stamps (15 Hz when they do not say)."""
    import numpy as np

    steps = np.diff(tstamp_s)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    rate = 1.0 / float(np.median(steps)) if len(steps) else 15.0
    return rate if 1.0 <= rate <= 1000.0 else 15.0


def _run_replay(
    path: Path,
    track: Track,
    car: CarConfig,
    frames: int | None,
    size: tuple[int, int],
    window: bool,
    record: Path | None,
    episode: int | None,
) -> tuple[BaseSession, int]:
    """Replay the rows of a simtrace CSV, episode by episode; in a window, hold the last frame until the
    viewer is closed."""
    from sim.viewer import CarShape, ReplaySession, read_simtrace

    trace = read_simtrace(path)
    fps = _replay_rate_hz(trace.tstamp_s)
    session = ReplaySession(
        trace,
        track,
        CarShape.from_config(car),
        size,
        mode="human" if window else "rgb_array",
        fps=fps,
        speed_range_mps=car.vehicle.max_speed_mps,
        episode=episode,
    )
    which = "" if episode is None else f", episode {episode}"
    session.caption = f"{track.name} · replay of {path.name} ({len(session)} rows{which})"
    recorder = _recorder(record, fps)
    pg = import_pygame() if window else None
    drawn = 0
    while (frames is None or drawn < frames) and session.advance():
        if window:
            if _key_action(session.show(), pg) == "quit" or session.closed:
                drawn += 1
                break
        else:
            session.draw()
        if recorder is not None:
            recorder.add(session.viewer.surface)
        drawn += 1
    _close_recorder(recorder)
    while window and frames is None and not session.closed:
        if _key_action(session.show(), pg) == "quit":
            break
    return session, drawn


@app.callback()
def view(
    track: Annotated[
        str | None,
        typer.Option(
            "--track",
            "-t",
            help="Track name (see `pitlane tracks list`) or a .npy route file "
            f"(default: the model's track, else {DEFAULT_TRACK}).",
        ),
    ] = None,
    car: Annotated[
        str | None,
        typer.Option(
            "--car", "-c", help=f"Car name or .toml car file (default: the model's, else {DEFAULT_CAR})."
        ),
    ] = None,
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
            help="Replay a DeepRacer simtrace CSV (X, Y, yaw, throttle, progress, reward), episode by episode.",
            dir_okay=False,
        ),
    ] = None,
    episode: Annotated[
        int | None, typer.Option("--episode", min=0, help="With --replay: play only this episode.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Watch a trained policy drive: a run directory (its best.zip, else final.zip), a .zip inside "
            "one, an exported .onnx model (its model.json beside it) or an export folder (its model.onnx).",
        ),
    ] = None,
    frames: Annotated[
        int | None, typer.Option("--frames", min=1, help="Stop after N frames; headless unless --window.")
    ] = None,
    screenshot: Annotated[
        Path | None,
        typer.Option("--screenshot", help="Save the last frame to this PNG file.", dir_okay=False),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(
            "--record",
            help="Save every frame: into a folder as frame_00000.png, ... or into an animated .gif file.",
        ),
    ] = None,
    window: Annotated[
        bool, typer.Option("--window", help="Show the window even with --frames (needs a display).")
    ] = False,
    size: Annotated[
        str, typer.Option("--size", help="Window or frame size, WIDTHxHEIGHT pixels.")
    ] = "960x720",
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the environment (default with --model: the run's).")
    ] = None,
) -> None:
    """Watch the simulator: a scripted driver, your keyboard, a trained policy, or a replayed simtrace.

    Keys with --drive keyboard: up/down speed, left/right steer, space brake, r reset, esc or q quit.

    --model RUN_OR_ONNX: the policy drives from the start line, lap after lap; its observation is shown as
    an inset (the camera frame, the lidar scan, or the state's values) and its command in the top bar.

    --frames N --screenshot FILE.png renders headless and saves the last frame; --record DIR or F.gif saves
    every frame.
    """
    sources = [
        name for name, given in (("--model", model), ("--replay", replay), ("--drive", drive)) if given
    ]
    if len(sources) > 1:
        fail(f"{' and '.join(sources)}: give one of them (who drives, or what is replayed)")
    if episode is not None and replay is None:
        fail("--episode N chooses an episode of a replay: add --replay simtrace.csv")
    width_height = _parse_size(size)
    window = window or frames is None
    if not window:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    if window and _no_display():
        fail(
            "no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset): "
            "run headless with --frames N --screenshot FILE.png (or --record DIR)"
        )
    if drive is Drive.keyboard and not window:
        fail("--drive keyboard needs a window: drop --frames or add --window")
    if screenshot is not None and screenshot.suffix.lower() not in (".png", ".bmp", ".tga", ".jpg", ".jpeg"):
        fail(f"--screenshot {screenshot}: expected a .png file name")
    model_path = None
    if model is not None:
        model_path = _model_path(model)
        if model_path.suffix.lower() == ".onnx":
            require("device", "onnxruntime")  # an exported model needs ONNX Runtime, not torch
        else:
            require("train", "torch", "stable_baselines3")
    request = _Request(
        track, car, drive or Drive.centreline, speed, replay, episode, model_path, frames, seed,
        width_height, window, record,
    )  # fmt: skip
    session, drawn = _run(request)
    try:
        if screenshot is not None:
            session.save(screenshot)
    except Exception as exc:  # noqa: BLE001 - pygame.error and OSError both mean "cannot write"
        fail(f"--screenshot {screenshot}: cannot write the picture ({exc})")
    finally:
        session.close()
    Console().print(escape(_summary(session, drawn, replay, model_path, screenshot, record)), soft_wrap=True)


def _summary(
    session: BaseSession,
    drawn: int,
    replay: Path | None,
    model: Path | None,
    screenshot: Path | None,
    record: Path | None,
) -> str:
    """One line: what was shown, on which track, and the files written."""
    track = session.track.name
    if replay is not None:
        what = f"replayed {drawn} rows of {replay} on {track}"
    elif model is not None:
        laps = getattr(session, "laps", 0)
        best = getattr(session, "best_lap_s", None)
        best_text = "" if best is None else f", best {best:.2f} s"
        what = f"{model} drove {drawn} frames on {track}: {laps} lap{'s' * (laps != 1)}{best_text}"
    else:
        what = f"{drawn} frames on {track}"
    saved = f"; screenshot {screenshot}" if screenshot is not None else ""
    recorded = f"; frames in {record}" if record is not None else ""
    return f"{what}{saved}{recorded}"


@dataclass(frozen=True)
class _Request:
    """What the command was asked to show (its options, parsed)."""

    track: str | None
    car: str | None
    drive: Drive
    speed_mps: float
    replay: Path | None
    episode: int | None
    model: Path | None
    frames: int | None
    seed: int | None
    size: tuple[int, int]
    window: bool
    record: Path | None


def _run(req: _Request) -> tuple[BaseSession, int]:
    """Load the track and car, then drive, watch the model or replay; every expected failure becomes a
    one-line error."""
    try:
        from firmware_configs.schema import FirmwareConfigError
        from sim.car import load_car
        from sim.errors import SimError
        from sim.tracks import load_track

        pg = import_pygame()
    except ImportError as exc:
        fail(f"{exc}: the viewer needs the simulator extra (pip install 'pitlane[sim]')")
    errors: tuple[type[Exception], ...] = (SimError, FirmwareConfigError)
    if req.model is not None:
        from device.errors import DeviceError
        from trainer.errors import TrainerError

        errors = (*errors, TrainerError, DeviceError)
    try:
        if req.model is not None:
            return _run_model(
                req.model, req.track, req.car, req.frames, req.seed, req.size, req.window, req.record
            )
        track = load_track(req.track or DEFAULT_TRACK)
        car = load_car(req.car or DEFAULT_CAR)
        if req.replay is not None:
            return _run_replay(
                req.replay, track, car, req.frames, req.size, req.window, req.record, req.episode
            )
        return _run_drive(
            track, car, req.drive, req.speed_mps, req.frames, req.seed, req.size, req.window, req.record
        )
    except errors as exc:
        fail(str(exc))
    except pg.error as exc:
        hint = "run headless with --frames N --screenshot FILE.png" if req.window else "check --size"
        fail(f"pygame: {exc} ({hint})")
