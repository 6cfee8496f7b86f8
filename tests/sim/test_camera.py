"""The camera sensor: geometry (symmetry, rotation, stereo disparity, horizon), batching, determinism,
randomisation, anti-aliasing, and what a frame looks like (a PNG with road, tape, floor and sky)."""

from __future__ import annotations

import math

import matplotlib.image
import numpy as np
import pytest

from firmware_configs import load_car
from sim.randomization import EpisodeRandomization, RandomizationPreset
from sim.sensors.base import Poses
from sim.sensors.camera import DEFAULT_STEREO_BASELINE_M, CameraSensor, tone_curve
from sim.sensors.ground import DASH_LUMA, SKY_LUMA, TAPE_LUMA, TAPE_WIDTH_M, ground_raster
from sim.tracks import load_track

CAR = load_car("deepracer")


@pytest.fixture(scope="module")
def straight():
    return load_track("long_straight")


@pytest.fixture(scope="module")
def camera(straight) -> CameraSensor:
    return CameraSensor(straight, CAR)


def straight_pose(track, ahead_m: float = 0.0, yaw_deg: float = 0.0, left_m: float = 0.0) -> Poses:
    """On long_straight's 8 m straight (along +x at y = 0.835, the lap starting half-way along it), 3 m
    before the start line plus `ahead_m`, `left_m` left of the centre line, heading `yaw_deg` from +x."""
    s = track.length_m - 3.0 + ahead_m
    x, y, yaw = track.poses_at(np.array([s]))
    assert abs(yaw[0]) < 1e-9  # the straight runs along +x
    yaw = np.radians(yaw_deg)
    return Poses(x, y + left_m, np.array([math.cos(yaw)]), np.array([math.sin(yaw)]))


def random_poses(track, n: int, seed: int) -> Poses:
    """n poses near the centre line (±0.2 m, ±20°) anywhere on the lap."""
    rng = np.random.default_rng(seed)
    x, y, yaw = track.poses_at(rng.uniform(0, track.length_m, n))
    off = rng.uniform(-0.2, 0.2, n)
    yaw = yaw + np.radians(rng.uniform(-20, 20, n))
    return Poses(x - off * np.sin(yaw), y + off * np.cos(yaw), np.cos(yaw), np.sin(yaw))


def subset(poses: Poses, i: int) -> Poses:
    key = None if poses.noise_key is None else poses.noise_key[i : i + 1]
    return Poses(*(a[i : i + 1] for a in (poses.x_m, poses.y_m, poses.cos_yaw, poses.sin_yaw)), key)


def best_shift(a: np.ndarray, b: np.ndarray, shifts: range) -> int:
    """The horizontal shift k (px) minimising the mean squared difference of a[:, c + k] and b[:, c]."""
    a, b = a.astype(float), b.astype(float)
    width = a.shape[1]

    def cost(k: int) -> float:
        if k >= 0:
            return float(np.mean((a[:, k:] - b[:, : width - k]) ** 2))
        return float(np.mean((a[:, : width + k] - b[:, -k:]) ** 2))

    return min(shifts, key=cost)


# --------------------------------------------------------------------------- geometry


def test_space_and_frame_shape(camera: CameraSensor, straight) -> None:
    frames = camera.render(straight_pose(straight))
    assert camera.space.shape == (120, 160) and camera.space.dtype == np.uint8
    assert frames.shape == (1, 120, 160) and frames.dtype == np.uint8
    assert camera.space.contains(frames[0])
    assert camera.render(Poses(*(np.zeros(0),) * 4)).shape == (0, 120, 160)


def test_looking_down_the_straight_the_borders_are_symmetric(camera: CameraSensor, straight) -> None:
    frame = camera.render(straight_pose(straight))[0].astype(int)
    centre = (frame.shape[1] - 1) / 2
    checked = 0
    for row in range(camera.first_ground_row + 2, 60):
        bright = np.flatnonzero(frame[row] > 160)  # tape (and floor beyond it); the road is ~70
        left = bright[bright < centre - 6]  # skip the centre dashes
        right = bright[bright > centre + 6]
        if len(left) == 0 or len(right) == 0:
            continue  # the tape has left the image at this row
        # the tape nearest the centre on each side: its inner edge, as far from the centre on both sides
        assert abs((centre - left.max()) - (right.min() - centre)) <= 1.5, row
        checked += 1
    assert checked >= 10
    # and the whole picture is close to its mirror image (textures and dither are not symmetric)
    assert np.mean(np.abs(frame - frame[:, ::-1])) < 6


@pytest.mark.parametrize("yaw_deg", [5.0, -5.0])
def test_turning_left_moves_the_picture_right(camera: CameraSensor, straight, yaw_deg: float) -> None:
    ahead = camera.render(straight_pose(straight))[0]
    turned = camera.render(straight_pose(straight, yaw_deg=yaw_deg))[0]
    rows = slice(camera.first_ground_row, 60)
    shift = best_shift(turned[rows], ahead[rows], range(-25, 26))
    expected = camera.camera.focal_px * math.tan(math.radians(yaw_deg))  # ~11 px near the horizon
    assert shift == pytest.approx(expected, abs=3)


def test_pixels_above_the_horizon_are_the_sky(camera: CameraSensor, straight) -> None:
    cam = camera.camera
    horizon = cam.height / 2 - cam.focal_px * math.tan(cam.pitch_rad)  # ~26.2 for a DeepRacer
    frames = camera.render(random_poses(straight, 8, seed=1))
    assert camera.first_ground_row >= math.floor(horizon)
    assert (frames[:, : math.floor(horizon)] == SKY_LUMA).all()
    assert (frames[:, : camera.first_ground_row] == SKY_LUMA).all()
    assert (frames[:, camera.first_ground_row + 1 :] != SKY_LUMA).mean() > 0.95


def test_stereo_frames_differ_by_the_baseline_disparity(straight) -> None:
    stereo = CameraSensor(straight, CAR, stereo=True)
    assert stereo.space.shape == (120, 160, 2)
    frame = stereo.render(straight_pose(straight, left_m=0.1, yaw_deg=8.0))[0]
    left, right = frame[..., 0], frame[..., 1]
    assert not np.array_equal(left, right)
    cam = stereo.camera
    baseline = CAR.camera.stereo_baseline_m or DEFAULT_STEREO_BASELINE_M
    checked = 0
    for row in range(45, 115, 10):
        band = slice(row - 2, row + 3)
        if left[band].std() < 10:
            continue  # no structure to match in this band
        # a point at depth Z along the optical axis sits f * b / Z px further right in the left camera
        down = (row + 0.5 - cam.height / 2) / cam.focal_px
        depth = cam.height_m / (math.sin(cam.pitch_rad) + down * math.cos(cam.pitch_rad))
        expected = cam.focal_px * baseline / depth
        assert best_shift(left[band], right[band], range(0, 70)) == pytest.approx(expected, abs=1.5), row
        checked += 1
    assert checked >= 4


# --------------------------------------------------------------------------- batching and determinism


def test_batched_frames_equal_single_car_frames(camera: CameraSensor, straight) -> None:
    poses = random_poses(straight, 12, seed=2)
    batch = camera.render(poses)
    for i in range(poses.n):
        np.testing.assert_array_equal(batch[i], camera.render(subset(poses, i))[0])


def test_frames_are_deterministic(camera: CameraSensor, straight) -> None:
    poses = random_poses(straight, 6, seed=3)
    first = camera.render(poses)
    np.testing.assert_array_equal(first, camera.render(poses))
    np.testing.assert_array_equal(first, CameraSensor(straight, CAR).render(poses))


# --------------------------------------------------------------------------- randomisation

#: Every camera quantity randomised, on one ground variant (building more costs seconds each).
CAMERA_ONLY = RandomizationPreset(
    "test-camera",
    brightness=(0.8, 1.2),
    contrast=(0.85, 1.15),
    gamma=(0.85, 1.15),
    noise_std=(0.0, 6.0),
    blur_sigma_px=(0.0, 1.5),
    camera_pitch_deg=(-2.0, 2.0),
    camera_height_m=(-0.01, 0.01),
)


def drawn(n: int, preset, seed: int = 0) -> EpisodeRandomization:
    rz = EpisodeRandomization(n, preset)
    rz.draw(np.arange(n), [np.random.default_rng(seed + i) for i in range(n)])
    return rz


def test_same_draws_give_the_same_frames_and_batching_does_not_matter(straight) -> None:
    n = 10
    poses = random_poses(straight, n, seed=4)
    a = CameraSensor(straight, CAR, randomization=drawn(n, CAMERA_ONLY)).render(poses, np.arange(n))
    sensor = CameraSensor(straight, CAR, randomization=drawn(n, CAMERA_ONLY))
    np.testing.assert_array_equal(a, sensor.render(poses, np.arange(n)))
    for i in range(n):
        np.testing.assert_array_equal(a[i], sensor.render(subset(poses, i), np.array([i]))[0])
    plain = CameraSensor(straight, CAR).render(poses)
    assert np.mean(np.abs(a.astype(int) - plain)) > 3
    other = CameraSensor(straight, CAR, randomization=drawn(n, CAMERA_ONLY, seed=100)).render(poses)
    assert not np.array_equal(a, other)


def test_brightness_gain_brightens_frames(straight) -> None:
    n = 4
    poses = random_poses(straight, n, seed=5)
    plain = CameraSensor(straight, CAR).render(poses).astype(float)
    bright = RandomizationPreset("bright", brightness=(1.15, 1.15))
    frames = CameraSensor(straight, CAR, randomization=drawn(n, bright)).render(poses, np.arange(n))
    ratio = frames.mean() / plain.mean()
    assert 1.1 < ratio < 1.16  # x1.15, less what clips at 255
    lut = tone_curve(1.15, 1.0, 1.0)
    np.testing.assert_array_equal(frames, lut[plain.astype(np.uint8)])


def test_pixel_noise_has_the_drawn_spread_and_never_wraps(straight) -> None:
    n = 3
    poses = random_poses(straight, n, seed=7)
    plain = CameraSensor(straight, CAR).render(poses).astype(int)
    noisy_preset = RandomizationPreset("noisy", noise_std=(4.0, 4.0))
    sensor = CameraSensor(straight, CAR, randomization=drawn(n, noisy_preset))
    noisy = sensor.render(poses, np.arange(n)).astype(int)
    clean = tone_curve(1.0, 1.0, 1.0, headroom=12)[plain]  # 3 s.d. of headroom at both ends
    noise = noisy - clean
    assert np.abs(noise).max() <= 12  # cut at 3 s.d., and no uint8 wrap-around
    assert noise.std() == pytest.approx(4.0, rel=0.1)
    assert abs(noise.mean()) < 0.2
    # the noise pattern changes when the car moves, and repeats for the same pose and draws
    moved = Poses(poses.x_m + 0.05, poses.y_m, poses.cos_yaw, poses.sin_yaw)
    clean_moved = tone_curve(1.0, 1.0, 1.0, headroom=12)[CameraSensor(straight, CAR).render(moved)]
    noise_moved = sensor.render(moved, np.arange(n)).astype(int) - clean_moved
    assert np.mean(noise_moved == noise) < 0.5  # ~1/10 of values agree by chance
    np.testing.assert_array_equal(sensor.render(poses, np.arange(n)), noisy)
    # with the simulator's noise keys (new every step) the noise changes even for a car standing still
    keyed = [
        Poses(poses.x_m, poses.y_m, poses.cos_yaw, poses.sin_yaw, np.arange(n) + (step << 32))
        for step in (1, 2, 1)
    ]
    frames = [sensor.render(p, np.arange(n)) for p in keyed]
    assert not np.array_equal(frames[0], frames[1])
    np.testing.assert_array_equal(frames[0], frames[2])
    np.testing.assert_array_equal(frames[0][1], sensor.render(subset(keyed[0], 1), np.array([1]))[0])


def test_light_preset_changes_brightness_measurably() -> None:
    track = load_track("tiny_loop")  # small rasters: the preset's 9 ground variants build in seconds
    n = 24
    poses = random_poses(track, n, seed=6)
    rz = drawn(n, "light")
    plain = CameraSensor(track, CAR).render(poses).reshape(n, -1).mean(axis=1)
    light = CameraSensor(track, CAR, randomization=rz).render(poses, np.arange(n)).reshape(n, -1).mean(axis=1)
    change = light / plain - 1
    assert np.abs(change).max() > 0.05
    # brighter draws give brighter frames
    assert np.corrcoef(change, rz.brightness)[0, 1] > 0.7


def test_pitch_jitter_moves_the_horizon(straight) -> None:
    pose = straight_pose(straight)
    rows = []
    for pitch in (-2.0, 0.0, 2.0):
        preset = RandomizationPreset("pitch", camera_pitch_deg=(pitch, pitch))
        sensor = CameraSensor(straight, CAR, randomization=drawn(1, preset))
        frame = sensor.render(pose, np.array([0]))[0]
        rows.append(int(np.argmax((frame != SKY_LUMA).any(axis=1))))
    # pitching the camera down shows more ground: the first ground row moves up, ~2.2 px per degree
    assert rows[0] > rows[1] > rows[2]
    assert rows[0] - rows[2] == pytest.approx(8.8, abs=2)


def test_blur_softens_the_far_tape(straight) -> None:
    pose = straight_pose(straight, left_m=0.2, yaw_deg=10.0)
    edges = []
    for blur in (0.0, 1.5):
        preset = RandomizationPreset("blur", blur_sigma_px=(blur, blur))
        sensor = CameraSensor(straight, CAR, randomization=drawn(1, preset))
        frame = sensor.render(pose, np.array([0]))[0].astype(int)
        far = frame[sensor.first_ground_row : sensor.tables.split_row]
        edges.append(np.abs(np.diff(far, axis=1)).max(axis=1).mean())  # the sharpest edge of each row
    assert edges[1] < 0.7 * edges[0]


# --------------------------------------------------------------------------- anti-aliasing and the look


def test_far_dashes_do_not_flicker(camera: CameraSensor, straight) -> None:
    # Creep down the straight 1 cm a frame. Where a pixel spans more than a dash period along the view, point
    # sampling would show a dash in one frame and road in the next; the prefiltered levels show a steady
    # grey stripe instead (without them these rows change by 2-4 levels a frame on average).
    frames = np.stack([camera.render(straight_pose(straight, ahead_m=0.01 * k))[0] for k in range(40)])
    cam = camera.camera
    rows = np.arange(camera.first_ground_row, camera.tables.split_row)
    centre_column = np.full(len(rows), cam.width / 2)
    near_x, _, _ = cam.ground(centre_column, rows + 1.0)  # lower and upper edge of each row's centre
    far_x, _, _ = cam.ground(centre_column, rows + 0.0)
    wide = rows[(far_x - near_x) > 0.3]  # along-view footprint longer than a dash and its gap
    assert len(wide) >= 3
    centre = frames[:, wide, 76:84].astype(float).mean(axis=2)  # the dashed centre line
    assert np.abs(np.diff(centre, axis=0)).mean() < 1.0
    # nearer, the dashes are resolved and move down the image as the car advances
    assert np.abs(np.diff(frames[:, 60:, 76:84].astype(float), axis=0)).mean() > 5


def test_ground_raster_luminance(straight) -> None:
    ground = ground_raster(straight)
    x, y, yaw = straight.poses_at(np.array([1.0]))
    normal = np.array([-math.sin(yaw[0]), math.cos(yaw[0])])
    half = straight.waypoint_widths_m[0] / 2  # the borders are half a width either side of the centre

    def at(d: float) -> tuple[float, float]:  # d metres left of the centre line
        return x[0] + d * normal[0], y[0] + d * normal[1]

    for stack in (ground.far, ground.near):
        tape = stack.sample(*at(half - TAPE_WIDTH_M / 2))
        assert abs(int(tape) - TAPE_LUMA) < 12
        road = stack.sample(*at(half / 2))
        assert road < 100
        floor = stack.sample(*at(half + 0.3))
        assert 150 < floor < 215
    assert ground.nbytes < 50e6


def test_png_of_a_frame_shows_road_tape_floor_and_sky(camera: CameraSensor, straight, tmp_path) -> None:
    frame = camera.render(straight_pose(straight, left_m=0.25, yaw_deg=12.0))[0]
    path = tmp_path / "camera.png"
    matplotlib.image.imsave(path, frame, cmap="gray", vmin=0, vmax=255)
    back = np.rint(matplotlib.image.imread(path)[..., 0] * 255).astype(int)
    assert back.shape == frame.shape
    np.testing.assert_allclose(back, frame, atol=2)  # the gray colormap keeps the values

    def share(value: float, tol: float = 12) -> float:
        return float(np.mean(np.abs(back - value) <= tol))

    assert share(SKY_LUMA, 2) > 0.2  # the wall above the horizon
    assert share(70, 20) > 0.3  # the road
    assert share(TAPE_LUMA) > 0.01  # border tape
    assert share(186, 15) > 0.03  # the floor beyond it
    assert share(DASH_LUMA, 10) > 0.005  # centre dashes
