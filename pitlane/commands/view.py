"""`pitlane view`: watch the simulator in a pygame window — a scripted driver, your keyboard, a trained
policy (`--model`), or a replay.

The watching itself is `sim.viewer.watch`; pygame, numpy and the simulator are imported inside the command
so that `pitlane --help` stays fast.
`--frames N` renders headless (SDL's dummy video driver, no window) unless `--window` is given; `--record`
saves every frame (PNG files in a folder, or a GIF).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pitlane.commands.common import SingleCommandGroup, fail, require

if TYPE_CHECKING:
    from sim.viewer.session import BaseSession
    from sim.viewer.watch import WatchOptions

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


def import_pygame() -> Any:
    """pygame, as the viewer loads it (imported here, not at the top: `pitlane --help` stays fast)."""
    from sim.viewer.draw import import_pygame as load

    return load()


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
    options: WatchOptions,
) -> tuple[BaseSession, int]:
    """A trained policy drives: a run directory or .zip through stable-baselines3, an .onnx model through
    ONNX Runtime (`device.policy.OnnxPolicy`, as on a car), both loaded by `trainer.evaluate.load_policy`;
    the track and car are the run's unless given."""
    from firmware_configs import load_car
    from sim.tracks import load_track
    from sim.viewer.watch import watch_policy
    from trainer.evaluate import load_policy

    policy, config = load_policy(model, car=car_spec)
    return watch_policy(
        policy,
        load_track(track_spec or config.track),
        load_car(car_spec or config.car),
        observation=config.observation,
        action_space=config.resolved_action_space(),
        reverse=config.reverse,
        label=f"{model.name} ({config.observation} policy)",
        options=replace(options, seed=config.seed if options.seed is None else options.seed),
    )


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
        from contracts.errors import CarFileError
        from firmware_configs import load_car
        from sim.errors import SimError
        from sim.tracks import load_track
        from sim.viewer.watch import WatchOptions, watch_driver, watch_replay

        pg = import_pygame()
    except ImportError as exc:
        fail(f"{exc}: the viewer needs the simulator extra (pip install 'pitlane[sim]')")
    errors: tuple[type[Exception], ...] = (SimError, CarFileError)
    if req.model is not None:
        from device.errors import DeviceError
        from trainer.errors import TrainerError

        errors = (*errors, TrainerError, DeviceError)
    options = WatchOptions(
        frames=req.frames, seed=req.seed, size=req.size, window=req.window, record=req.record
    )
    try:
        if req.model is not None:
            return _run_model(req.model, req.track, req.car, options)
        track = load_track(req.track or DEFAULT_TRACK)
        car = load_car(req.car or DEFAULT_CAR)
        if req.replay is not None:
            return watch_replay(req.replay, track, car, options, req.episode)
        keyboard = req.drive is Drive.keyboard
        return watch_driver(track, car, keyboard, req.speed_mps, options)
    except errors as exc:
        fail(str(exc))
    except pg.error as exc:
        hint = "run headless with --frames N --screenshot FILE.png" if req.window else "check --size"
        fail(f"pygame: {exc} ({hint})")
