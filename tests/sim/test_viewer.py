"""The pygame viewer (`sim.viewer`), headless: frames show the track, the car where the sim has it, a growing
trail, a HUD and sensor insets; simtrace files are read with clear errors; importing `sim` loads no pygame."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest

from firmware_configs import load_car
from sim.action_space import ContinuousActionSpace
from sim.drivers import PurePursuitDriver
from sim.envs.time_trial import TimeTrialEnv
from sim.viewer import (
    CarShape,
    Inset,
    RenderSession,
    ReplaySession,
    SimTraceError,
    WorldToScreen,
    insets_from_observation,
    observation_view,
    read_simtrace,
    speed_colours,
)
from sim.viewer.draw import CAR_COLOURS, FLOOR, HEADLIGHT, RAY, READOUT_BAR, ROAD
from tests.conftest import REPO_ROOT

SPACE = ContinuousActionSpace(-30.0, 30.0, 0.1, 4.0)


def close_to(pixel: np.ndarray, colour: tuple[int, int, int], tol: int = 6) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tol))


def drive(env: TimeTrialEnv, session: RenderSession, steps: int, speed_mps: float = 1.5) -> None:
    driver = PurePursuitDriver(env.sim, speed_mps=speed_mps)
    for _ in range(steps):
        steer, speed = driver(env.sim.standing(np.array([0])))
        obs, reward, terminated, truncated, info = env.step(SPACE.encode_nearest(steer, speed)[0])
        session.update(obs, reward, terminated, truncated, info)
        assert not (terminated or truncated)


@pytest.fixture
def oval() -> tuple[TimeTrialEnv, RenderSession]:
    env = TimeTrialEnv(track="oval", action_space=SPACE, start="start_line")
    session = RenderSession(env, car=load_car("deepracer"))
    obs, info = env.reset(seed=0)
    session.reset(obs, info)
    return env, session


def test_importing_sim_does_not_import_pygame() -> None:
    code = "import sys, sim, sim.envs.time_trial, sim.viewer; print('pygame' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


@pytest.mark.parametrize("size", [(960, 720), (640, 360)])
def test_frames_have_the_requested_shape(size: tuple[int, int]) -> None:
    env = TimeTrialEnv(track="oval", action_space=SPACE, start="start_line")
    session = RenderSession(env, size=size)
    session.reset(*env.reset(seed=0))
    frame = session.frame()
    assert frame.shape == (size[1], size[0], 3)
    assert frame.dtype == np.uint8
    frame[0, 0] = 0  # writable, as gymnasium's rgb_array users expect


def test_pixels_show_the_track(oval: tuple[TimeTrialEnv, RenderSession]) -> None:
    env, session = oval
    frame = session.frame()
    to_px = session.viewer.transform
    track = env.sim.forward
    away_from_start = np.arange(5, track.n_waypoints - 5)  # not the start line, the car or its trail
    # halfway between the centre line and a border: road (the centre dashes are not there)
    mid = track.waypoints + 0.5 * (track.outer - track.waypoints)
    cols, rows = np.floor(to_px(mid[away_from_start])).astype(int).T
    road = [close_to(frame[r, c], ROAD) for r, c in zip(rows, cols, strict=True)]
    assert np.mean(road) > 0.95
    # on the centre line: road or centre-line paint
    cols, rows = np.floor(to_px(track.waypoints[away_from_start])).astype(int).T
    assert all(frame[r, c].tolist() != list(FLOOR) for r, c in zip(rows, cols, strict=True))
    # on the borders: white tape
    for border in (track.inner, track.outer):
        cols, rows = np.floor(to_px(border[away_from_start])).astype(int).T
        tape = [frame[r, c].min() >= 235 for r, c in zip(rows, cols, strict=True)]
        assert np.mean(tape) > 0.9
    # 0.1 m outside the outer border and the middle of the infield: floor
    outward = track.outer - track.waypoints
    outward /= np.linalg.norm(outward, axis=1, keepdims=True)
    cols, rows = np.floor(to_px(track.outer + 0.1 * outward)[away_from_start]).astype(int).T
    assert np.mean([close_to(frame[r, c], FLOOR) for r, c in zip(rows, cols, strict=True)]) > 0.95
    c, r = to_px.pixel(*track.waypoints.mean(axis=0))
    assert close_to(frame[r, c], FLOOR)


def test_the_track_fits_with_its_aspect_ratio(oval: tuple[TimeTrialEnv, RenderSession]) -> None:
    env, session = oval
    viewer = session.viewer
    corners = np.vstack([env.sim.forward.inner, env.sim.forward.outer])
    px = viewer.transform(corners)
    assert px[:, 0].min() >= 0 and px[:, 0].max() <= viewer.size[0]
    assert px[:, 1].min() >= viewer.hud_height_px and px[:, 1].max() <= viewer.size[1]
    # one metre is as many pixels across as up
    a, b, c = viewer.transform(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    assert np.hypot(*(b - a)) == pytest.approx(np.hypot(*(c - a)))
    fit = WorldToScreen.fit(np.array([0.0, 0.0]), np.array([4.0, 1.0]), (0, 0, 400, 400), 0)
    assert fit.scale_px_per_m == pytest.approx(100.0)
    assert fit.pixel(2.0, 0.5) == (200, 200)


def test_the_car_is_drawn_where_the_sim_says_facing_its_heading(
    oval: tuple[TimeTrialEnv, RenderSession],
) -> None:
    env, session = oval
    drive(env, session, 25)
    frame = session.frame()
    st = env.sim.state
    x, y, yaw = float(st.x_m[0]), float(st.y_m[0]), float(st.yaw_rad[0])
    to_px = session.viewer.transform
    c, r = to_px.pixel(x, y)
    assert close_to(frame[r, c], CAR_COLOURS[0])
    # headlights at the front corners, plain body at the rear corners
    shape = CarShape.from_config(load_car("deepracer"))
    along, across = np.array([np.cos(yaw), np.sin(yaw)]), np.array([-np.sin(yaw), np.cos(yaw)])
    for side in (1, -1):
        lateral = side * 0.67 * shape.body_width_m / 2 * across
        front = np.array([x, y]) + 0.91 * shape.body_length_m / 2 * along + lateral
        rear = np.array([x, y]) - 0.91 * shape.body_length_m / 2 * along + lateral
        fc, fr = to_px.pixel(*front)
        rc, rr = to_px.pixel(*rear)
        assert any(close_to(p, HEADLIGHT, 10) for p in frame[fr - 1 : fr + 2, fc - 1 : fc + 2].reshape(-1, 3))
        assert not any(
            close_to(p, HEADLIGHT, 10) for p in frame[rr - 1 : rr + 2, rc - 1 : rc + 2].reshape(-1, 3)
        )
    # nowhere else: the car colour is not drawn far from the car
    reds = np.argwhere(np.all(frame == np.array(CAR_COLOURS[0], dtype=np.uint8), axis=2))
    assert np.hypot(reds[:, 1] - c, reds[:, 0] - r).max() < 0.3 * to_px.scale_px_per_m


def test_the_trail_grows_and_is_coloured_by_speed(oval: tuple[TimeTrialEnv, RenderSession]) -> None:
    env, session = oval
    drive(env, session, 10)
    first = len(session.trails[0])
    drive(env, session, 20)
    assert len(session.trails[0]) == first + 20
    xy, speed = session.trails[0].arrays()
    frame = session.frame()
    c, r = session.viewer.transform.pixel(*xy[-12])  # driven over, the car has gone on
    expected = speed_colours(np.array([speed[-12]]), session.speed_range_mps)[0]
    assert close_to(frame[r, c], tuple(int(v) for v in expected), 30)
    assert not close_to(frame[r, c], ROAD)
    # a reset breaks the line but keeps it
    session.reset(*env.reset())
    assert len(session.trails[0]) == first + 21
    assert np.isnan(session.trails[0].arrays()[0]).any()


def test_the_hud_shows_text(oval: tuple[TimeTrialEnv, RenderSession]) -> None:
    env, session = oval
    drive(env, session, 5)
    frame = session.frame()
    bar = frame[: session.viewer.hud_height_px]
    assert (bar.min(axis=2) > 200).sum() > 300  # white value text
    assert len(np.unique(bar.reshape(-1, 3), axis=0)) > 20  # anti-aliased glyphs, not a blank panel
    labels = [label for label, _ in session.hud()]
    assert labels[:6] == ["lap", "lap time", "speed", "progress", "reward", "status"]
    assert dict(session.hud())["status"] == "in_progress"


def test_speed_colours_run_from_blue_to_red() -> None:
    colours = speed_colours(np.array([0.0, 2.0, 4.0, 9.0, np.nan]), 4.0)
    assert colours.dtype == np.uint8 and colours.shape == (5, 3)
    assert colours[0, 2] > 200 and colours[0, 0] < 80  # blue
    assert colours[2, 0] > 200 and colours[2, 2] < 80  # red
    assert colours[3].tolist() == colours[2].tolist()  # clipped
    assert colours[4].tolist() == colours[0].tolist()  # NaN counts as stopped


def test_camera_and_lidar_insets_are_drawn(oval: tuple[TimeTrialEnv, RenderSession]) -> None:
    _, session = oval
    camera = np.full((120, 160), 201, dtype=np.uint8)
    session.insets = [Inset("camera", camera), Inset("lidar", np.full(64, 0.5), max_range_m=1.0)]
    frame = session.frame()
    assert np.all(frame == 201, axis=2).sum() >= 120 * 160
    assert np.all(frame == np.array(RAY, dtype=np.uint8), axis=2).sum() > 100
    stereo = Inset("camera", np.zeros((120, 160, 2), dtype=np.uint8))
    assert stereo.camera_rgb().shape == (120, 322, 3)
    with pytest.raises(ValueError, match="lidar"):
        Inset("lidar", np.zeros((3, 3)))


def test_insets_are_found_in_observations() -> None:
    assert insets_from_observation(np.zeros(11, dtype=np.float32)) == []
    (camera,) = insets_from_observation(np.zeros((120, 160), dtype=np.uint8))
    assert camera.kind == "camera"
    kinds = [
        i.kind for i in insets_from_observation({"camera": np.zeros((4, 4), np.uint8), "lidar": np.ones(8)})
    ]
    assert kinds == ["camera", "lidar"]
    assert insets_from_observation(np.ones(64), kind="lidar")[0].kind == "lidar"


def test_a_state_policy_view_shows_its_observation_and_command() -> None:
    env = TimeTrialEnv(track="oval", action_space=SPACE, start="start_line")
    kind, lidar = observation_view(env.observer)
    assert (kind, lidar) == ("state", None)
    session = RenderSession(env, inset_kind=kind)
    session.reset(*env.reset(seed=0))
    session.command = (12.5, 2.0)
    drive(env, session, 10)
    (inset,) = session.insets
    assert inset.kind == "readout" and len(inset.names) == 11 and inset.names[0] == "speed m/s"
    assert inset.data[0] == pytest.approx(float(env.sim.state.speed_mps[0]))  # what the policy saw last
    hud = dict(session.hud())
    assert hud["steer cmd"] == "+12.5 deg" and hud["speed cmd"] == "2.00 m/s" and "reward" not in hud
    frame = session.frame()
    left = session.viewer.track_width_px
    assert left < 960 - 150  # a column for the readout
    panel = frame[400:, left:]
    assert (panel.min(axis=2) > 200).sum() > 200  # white value text in the readout's column
    # the plain env render keeps state features to itself (they are no sensor a car has)
    plain = TimeTrialEnv(track="oval", action_space=SPACE, render_mode="rgb_array")
    plain.reset(seed=0)
    assert plain.render().shape == (720, 960, 3) and plain._viewer.insets == []


def test_sector_lidar_codes_show_as_bars() -> None:
    env = TimeTrialEnv(track="oval", action_space=SPACE, observation="sector_lidar", start="start_line")
    kind, lidar = observation_view(env.observer)
    assert (kind, lidar) == ("readout", None)
    session = RenderSession(env, inset_kind=kind)
    obs, info = env.reset(seed=0)
    session.reset(np.ones_like(obs), info)
    frame = session.frame()
    assert np.all(frame == np.array(READOUT_BAR, dtype=np.uint8), axis=2).sum() > 500
    with pytest.raises(ValueError, match="2 names for 3 values"):
        Inset("readout", np.zeros(3), names=("a", "b"))


def test_a_camera_observation_gets_room_beside_the_track() -> None:
    env = TimeTrialEnv(track="oval", action_space=SPACE, start="start_line")
    plain = RenderSession(env)
    plain.reset(*env.reset(seed=0))
    with_camera = RenderSession(env, inset_kind="camera")
    _, info = env.reset(seed=0)
    with_camera.reset(np.zeros((120, 160), dtype=np.uint8), info)
    assert with_camera.viewer.track_width_px < plain.viewer.track_width_px
    assert with_camera.frame().shape == plain.frame().shape


def test_render_session_accepts_a_gymnasium_made_env() -> None:
    env = gymnasium.make("pitlane/TimeTrial-v0", track="tiny_loop", action_space=SPACE)
    session = RenderSession(env, size=(320, 240))
    session.reset(*env.reset(seed=1))
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    session.update(obs, reward, terminated, truncated, info)
    assert session.render().shape == (240, 320, 3)
    assert session.car == CarShape.from_config(env.unwrapped.car)
    with pytest.raises(ValueError, match="render mode"):
        RenderSession(env, mode="window")


# --------------------------------------------------------------------------- simtrace files

HEADER = (
    "episode,steps,X,Y,yaw,steer,throttle,action,reward,done,all_wheels_on_track,progress,closest_waypoint,"
    "track_len,tstamp,episode_status,pause_duration,obstacle_crash_counter,wall_clock"
)


def test_read_simtrace_takes_deepracer_rows(tmp_path: Path) -> None:
    path = tmp_path / "0-iteration.csv"
    path.write_text(
        HEADER + "\n"
        "0,2,1.5000,0.5000,90.0,5.00,1.20,3,0.8000,False,True,1.5,1,17.71,0.067,in_progress,0.00,0,1.0\n"
        # a continuous action written unquoted splits in two fields; a missing trailing column
        "0,3,1.5000,0.6000,90.0,-5.00,1.40,[-5.0, 1.4],0.9000,False,True,2.0,1,17.71,0.133,in_progress,0.00,0\n"
        '1,2,2.0000,0.5000,0.0,0.00,1.00,"[0.0, 1.0]",1.0,True,True,100.0,2,17.71,0.2,lap_complete\n',
        encoding="utf-8",
    )
    trace = read_simtrace(path)
    assert len(trace) == 3
    assert trace.x_m.tolist() == [1.5, 1.5, 2.0]
    assert trace.throttle_mps.tolist() == [1.2, 1.4, 1.0]
    assert trace.reward.tolist() == [0.8, 0.9, 1.0]
    assert trace.progress.tolist() == [1.5, 2.0, 100.0]
    assert trace.status == ("in_progress", "in_progress", "lap_complete")
    assert trace.line.tolist() == [2, 3, 4]


def test_read_simtrace_takes_log_lines_without_a_header(tmp_path: Path) -> None:
    path = tmp_path / "robomaker.log"
    path.write_text(
        "SIM_TRACE_LOG:0,2,1.5,0.5,90.0,5.0,1.2,3,0.8,False,True,1.5,1,17.71,0.067,in_progress,0.0,0,1.0\n",
        encoding="utf-8",
    )
    trace = read_simtrace(path)
    assert trace.y_m.tolist() == [0.5] and trace.yaw_deg.tolist() == [90.0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            HEADER + "\n0,2,1.5,0.5,90\n0,3,abc,0.5,90\n",
            r"bad\.csv:3: column X: expected a number, got 'abc'",
        ),
        (HEADER + "\n0,2,1.5\n", r"bad\.csv:2: expected at least 5 comma-separated fields, got 3"),
        ("episode,steps,X\n0,1,2\n", r"bad\.csv:1: the header has no column Y, yaw"),
        (HEADER + "\n", r"bad\.csv: no simtrace rows"),
        (HEADER + "\n0,2,nan,0.5,90\n", r"bad\.csv:2: column X: expected a finite number"),
    ],
)
def test_read_simtrace_names_the_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(SimTraceError, match=message):
        read_simtrace(path)


def test_read_simtrace_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SimTraceError, match="no such simtrace file"):
        read_simtrace(tmp_path / "nope.csv")


def test_replay_draws_the_car_at_the_rows(tmp_path: Path) -> None:
    from sim.tracks import load_track

    track = load_track("oval")
    x0, y0, yaw0 = track.pose_at(3.0)
    path = tmp_path / "trace.csv"
    rows = [
        f"0,{i + 2},{x0 + 0.05 * i:.4f},{y0:.4f},{np.degrees(yaw0):.4f},0,1.5,1,1.0,False,True,{i},1"
        for i in range(5)
    ]
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    session = ReplaySession(read_simtrace(path), track, size=(640, 480))
    steps = 0
    while session.advance():
        steps += 1
    assert steps == 5 and not session.advance()
    frame = session.frame()
    c, r = session.viewer.transform.pixel(x0 + 0.2, y0)
    assert close_to(frame[r, c], CAR_COLOURS[0])
    assert len(session.trails[0]) == 5
    assert dict(session.hud())["episode / step"] == "0 / 6"


def test_human_mode_shows_a_window_on_the_dummy_display() -> None:
    env = TimeTrialEnv(track="tiny_loop", action_space=SPACE)
    session = RenderSession(env, size=(320, 240), mode="human", fps=1000)
    session.reset(*env.reset(seed=0))
    assert session.render() is None
    events = session.show()
    assert isinstance(events, list) and not session.closed
    session.close()
