"""`pitlane view --model`: a trained policy drives in the viewer, headless here (`--frames`, `--record`), through
the same loaders as `pitlane evaluate` (ONNX Runtime for an .onnx model, stable-baselines3 for a run); and a
training run's simtrace files begin at episode starts, so their replay shows only real laps.

The models are the session's exports (tests/export_fixtures.py), built once per xdist group."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pitlane.commands.view import app
from sim.simtrace import read_simtrace
from sim.tracks import load_track
from sim.viewer import Inset, Viewer
from sim.viewer.draw import CAR_COLOURS, import_pygame
from sim.viewer.session import state_names
from tests.export_fixtures import exported_camera, exported_state

# the session's trained and exported models (tests/export_fixtures.py) are built once.
pytestmark = pytest.mark.xdist_group("exported-models")
__all__ = ["exported_camera", "exported_state"]

runner = CliRunner()
SIZE = (640, 480)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich: messages on one line


def read_png(path: Path) -> np.ndarray:
    pg = import_pygame()
    return np.ascontiguousarray(pg.surfarray.array3d(pg.image.load(str(path))).transpose(1, 0, 2))


def car_position_m(frame: np.ndarray, viewer: Viewer) -> np.ndarray:
    """The world point (m) under the centre of the car's body colour in the track area of a frame."""
    area = frame[:, : viewer.track_width_px]
    rows, cols = np.nonzero(np.all(area == np.array(CAR_COLOURS[0], dtype=np.uint8), axis=2))
    assert len(rows) > 20, "no car in the frame"
    to_px = viewer.transform
    col, row = cols.mean() + 0.5, rows.mean() + 0.5
    return np.array(
        [
            to_px.centre_m[0] + (col - to_px.centre_px[0]) / to_px.scale_px_per_m,
            to_px.centre_m[1] - (row - to_px.centre_px[1]) / to_px.scale_px_per_m,
        ]
    )


def test_an_onnx_state_policy_drives_along_the_track(exported_state: Path, tmp_path: Path) -> None:
    frames_dir = tmp_path / "frames"
    args = ["--model", str(exported_state / "model.onnx"), "--frames", "24", "--size", "640x480"]
    result = runner.invoke(app, [*args, "--record", str(frames_dir)])
    assert result.exit_code == 0, result.output
    assert "drove 24 frames on reinvent_base" in result.output  # the model card's track
    pngs = sorted(frames_dir.glob("frame_*.png"))
    assert len(pngs) == 24
    track = load_track("reinvent_base")
    # the command's layout: the track left of the state readout's column
    viewer = Viewer(track, SIZE, insets=[Inset("readout", np.zeros(11), names=state_names())])
    positions = np.array([car_position_m(read_png(pngs[i]), viewer) for i in (0, 8, 16, 23)])
    along_m = track.project(positions[:, 0], positions[:, 1]).s_m
    half = track.length_m / 2
    moved_m = (np.diff(along_m) + half) % track.length_m - half  # the start line is at 0 m and L m alike
    assert np.all(moved_m > 0.2), along_m  # from the start line on along the track
    assert moved_m.sum() > 1.5
    # on the road, or leaving it by less than the car's size (an episode ends when all four wheels are off)
    assert np.all(track.road.signed_distance(positions[:, 0], positions[:, 1]) > -0.25)
    # the observation readout: value text in the column right of the track
    last = read_png(pngs[-1])
    assert (last[SIZE[1] // 2 :, viewer.track_width_px :].min(axis=2) > 200).sum() > 100


def test_a_camera_policy_shows_what_its_camera_sees(exported_camera: Path, tmp_path: Path) -> None:
    png = tmp_path / "camera.png"
    # an export folder names its model.onnx; --track overrides the card's
    args = ["--model", str(exported_camera), "--track", "oval", "--frames", "5", "--screenshot", str(png)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "model.onnx drove 5 frames on oval" in result.output
    frame = read_png(png)
    viewer = Viewer(load_track("oval"), (960, 720), insets=[Inset("camera", np.zeros((120, 160), np.uint8))])
    column = frame[:, viewer.track_width_px + 12 : -12]
    grey = (column[..., 0] == column[..., 1]) & (column[..., 1] == column[..., 2])
    rows = np.flatnonzero(grey.mean(axis=1) > 0.95)  # the inset: rows of grey pixels only (a camera frame)
    assert len(rows) >= 120  # the 160x120 frame, shown at 1x beside a 960x720 view
    picture = column[rows][..., 0]
    assert picture.std() > 20  # road, tape and floor, not a blank panel


def test_a_run_directory_drives_through_stable_baselines3(exported_state: Path, tmp_path: Path) -> None:
    png = tmp_path / "run.png"
    result = runner.invoke(
        app, ["--model", str(exported_state / "run"), "--frames", "3", "--screenshot", str(png)]
    )
    assert result.exit_code == 0, result.output
    assert "run drove 3 frames on reinvent_base" in result.output
    assert read_png(png).shape == (720, 960, 3)


def test_training_simtrace_files_begin_at_episode_starts(exported_state: Path) -> None:
    files = sorted(
        (exported_state / "run" / "training-simtrace").glob("*-iteration.csv"),
        key=lambda p: int(p.name.split("-")[0]),
    )
    assert len(files) >= 2
    previous_last = None
    for path in files:
        trace = read_simtrace(path)
        episodes = trace.episodes()
        assert trace.steps[0] == 1 and trace.status[0] == "prepare", f"{path.name} begins inside an episode"
        assert all(e.whole for e in episodes)
        assert all(trace.status[e.start] == "prepare" for e in episodes)  # DeepRacer's first row of each
        if previous_last is not None:  # the file goes on where the last one stopped
            assert episodes[0].number == previous_last + 1
        previous_last = episodes[-1].number
        ends = [e.stop - 1 for e in episodes if e.status != "in_progress"]
        assert ends, f"{path.name}: no episode ends in it"
        # a finished episode's last row keeps the progress it reached (not the next episode's 0)
        reached = [trace.progress[i] for i in ends if i > 0 and trace.episode[i - 1] == trace.episode[i]]
        assert all(p > 0.5 for p in reached)
    for (
        path
    ) in files:  # every file holds finished episodes only, two each but the last (DeepRacer's iterations)
        trace = read_simtrace(path)
        assert trace.status[-1] != "in_progress"
        assert len(trace.episodes()) == 2 or path == files[-1]
    result = runner.invoke(app, ["--replay", str(files[1]), "--frames", "10000"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no/such/run", "--frames", "2"], "no/such/run: no such run directory or model file"),
        (["--model", "m.onnx", "--replay", "t.csv"], "--model and --replay: give one of them"),
        (["--model", "m.onnx", "--drive", "keyboard"], "--model and --drive: give one of them"),
        (["--episode", "3", "--frames", "2"], "--episode N chooses an episode of a replay"),
        (["--frames", "2", "--record", "frames.mp4"], "expected a folder"),
    ],
)
def test_bad_model_arguments_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
