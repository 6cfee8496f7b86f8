"""`pitlane view`, run in-process with typer's CliRunner, headless (`--frames`; the conftest sets SDL's dummy
video driver). The command's own sub-app is invoked, so these tests do not depend on `pitlane.cli`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pitlane.commands.view import app
from sim.tracks import load_track
from sim.viewer import Viewer
from sim.viewer.draw import CAR_COLOURS, FLOOR, ROAD, import_pygame

runner = CliRunner()

HEADER = (
    "episode,steps,X,Y,yaw,steer,throttle,action,reward,done,all_wheels_on_track,progress,closest_waypoint,"
    "track_len,tstamp,episode_status,pause_duration,obstacle_crash_counter,wall_clock"
)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich: error messages on one line


def read_png(path: Path) -> np.ndarray:
    pg = import_pygame()
    return np.ascontiguousarray(pg.surfarray.array3d(pg.image.load(str(path))).transpose(1, 0, 2))


def close_to(pixel: np.ndarray, colour: tuple[int, int, int], tol: int = 6) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tol))


def test_frames_and_screenshot_write_a_png_of_the_track(tmp_path: Path) -> None:
    png = tmp_path / "oval.png"
    result = runner.invoke(app, ["--track", "oval", "--frames", "30", "--screenshot", str(png)])
    assert result.exit_code == 0, result.output
    assert "30 frames on oval" in result.output
    frame = read_png(png)
    assert frame.shape == (720, 960, 3)
    track = load_track("oval")
    to_px = Viewer(track, (960, 720)).transform  # the same layout as the command's
    mid = (track.waypoints + 0.5 * (track.outer - track.waypoints))[10:-10]
    cols, rows = np.floor(to_px(mid)).astype(int).T
    assert np.mean([close_to(frame[r, c], ROAD) for r, c in zip(rows, cols, strict=True)]) > 0.95
    cols, rows = np.floor(to_px(track.outer[10:-10])).astype(int).T
    assert np.mean([frame[r, c].min() >= 235 for r, c in zip(rows, cols, strict=True)]) > 0.9
    c, r = to_px.pixel(*track.waypoints.mean(axis=0))
    assert close_to(frame[r, c], FLOOR)
    # after 2 s at up to 1.5 m/s from the start line, the car is on the road ahead of it
    assert np.all(frame == np.array(CAR_COLOURS[0], dtype=np.uint8), axis=2).sum() > 50


def test_replay_draws_the_car_at_the_csv_position(tmp_path: Path) -> None:
    track = load_track("reinvent_base")
    x, y, yaw = track.pose_at(6.0)
    csv_path = tmp_path / "0-iteration.csv"
    rows = [
        f"0,{i + 2},{x - 0.1 * (4 - i) * np.cos(yaw):.4f},{y - 0.1 * (4 - i) * np.sin(yaw):.4f},"
        f"{np.degrees(yaw):.4f},0.00,{1.0 + 0.5 * i:.2f},3,1.0000,False,True,{i:.4f},5,17.71,"
        f"{i / 15:.3f},in_progress,0.00,0,1700000000.0"
        for i in range(5)
    ]
    csv_path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    png = tmp_path / "replay.png"
    result = runner.invoke(app, ["--replay", str(csv_path), "--frames", "100", "--screenshot", str(png)])
    assert result.exit_code == 0, result.output
    assert "replayed 5 rows" in result.output
    frame = read_png(png)
    c, r = Viewer(track, (960, 720)).transform.pixel(x, y)  # the last row's X, Y
    assert close_to(frame[r, c], CAR_COLOURS[0])


def test_a_malformed_csv_exits_2_naming_the_line(tmp_path: Path) -> None:
    csv_path = tmp_path / "broken.csv"
    csv_path.write_text(
        HEADER + "\n0,2,1.0,1.0,0.0,0,1,3,1,False,True,1,1\n0,3,1.0,oops,0.0,0,1,3,1,False,True,1,1\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["--replay", str(csv_path), "--frames", "5"])
    assert result.exit_code == 2
    assert "broken.csv:3" in result.output
    assert "column Y" in result.output and "'oops'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--track", "ovl", "--frames", "2"], "unknown track 'ovl'"),
        (["--car", "no-such-car", "--frames", "2"], "no-such-car"),
        (["--drive", "keyboard", "--frames", "2"], "--drive keyboard needs a window"),
        (["--replay", "x.csv", "--drive", "centreline"], "--replay and --drive"),
        (["--replay", "missing.csv", "--frames", "2"], "no such simtrace file"),
        (["--frames", "2", "--screenshot", "picture.txt"], "expected a .png"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_unwritable_screenshot_exits_2(tmp_path: Path) -> None:
    png = tmp_path / "no" / "such" / "dir" / "x.png"
    result = runner.invoke(app, ["--track", "tiny_loop", "--frames", "2", "--screenshot", str(png)])
    assert result.exit_code == 2
    assert "cannot write the picture" in result.output


def test_size_option(tmp_path: Path) -> None:
    png = tmp_path / "small.png"
    result = runner.invoke(
        app, ["--track", "tiny_loop", "--frames", "3", "--size", "480x320", "--screenshot", str(png)]
    )
    assert result.exit_code == 0, result.output
    assert read_png(png).shape == (320, 480, 3)
    bad = runner.invoke(app, ["--size", "big", "--frames", "1"])
    assert bad.exit_code == 2 and "WIDTHxHEIGHT" in bad.output


def test_keyboard_driver_steers_and_speeds_while_keys_are_held() -> None:
    from sim.keyboard import KeyboardDriver

    pg = import_pygame()
    held: dict[int, bool] = {k: False for k in (pg.K_LEFT, pg.K_RIGHT, pg.K_UP, pg.K_DOWN, pg.K_SPACE)}
    kb = KeyboardDriver(30.0, 0.1, 4.0, 15.0)
    held[pg.K_UP] = held[pg.K_LEFT] = True
    for _ in range(5):
        steer, speed = kb.update(held, pg)
    assert steer == pytest.approx(30.0) and speed == pytest.approx(0.1 + 5 * 2.0 / 15)
    held[pg.K_LEFT] = False
    steer, _ = kb.update(held, pg)
    assert steer == pytest.approx(20.0)  # centring
    held[pg.K_SPACE] = True
    assert kb.update(held, pg)[1] == pytest.approx(0.1)


@pytest.mark.parametrize("drive", ["centreline", "keyboard"])
def test_window_mode_runs_on_the_dummy_display(drive: str, tmp_path: Path) -> None:
    png = tmp_path / "window.png"
    args = ["--track", "tiny_loop", "--drive", drive, "--frames", "3", "--window", "--screenshot", str(png)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert read_png(png).shape == (720, 960, 3)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY / WAYLAND_DISPLAY are Linux's")
def test_a_window_without_a_display_exits_2_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["--track", "oval"])
    assert result.exit_code == 2
    assert "no display" in result.output and "--frames N --screenshot" in result.output


def test_record_writes_every_frame_to_a_folder_or_a_gif(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "frames"
    args = ["--track", "tiny_loop", "--frames", "4", "--size", "320x240"]
    result = runner.invoke(app, [*args, "--record", str(folder)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == [f"frame_0000{i}.png" for i in range(4)]
    assert read_png(folder / "frame_00003.png").shape == (240, 320, 3)
    gif = tmp_path / "lap.gif"
    result = runner.invoke(app, [*args, "--record", str(gif)])
    assert result.exit_code == 0, result.output
    with Image.open(gif) as image:
        assert image.n_frames == 4 and image.size == (320, 240)
        assert image.info["duration"] == 70  # 15 Hz as the simulator steps, in whole centiseconds
    first, last = (np.asarray(Image.open(folder / f"frame_0000{i}.png").convert("RGB")) for i in (0, 3))
    assert np.any(first != last)  # the car moved between the first and last frame
