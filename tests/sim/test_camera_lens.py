"""The camera's lens model: OpenCV's fisheye projection by hand, its inverse, what a fisheye sees of the floor
compared with a pinhole of the same width, fisheye frames, and the car file's `[camera] lens` checks."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from contracts.car_file import CarConfig, fisheye_distorted_angle
from contracts.errors import CarFileError
from firmware_configs import load_car
from sim.sensors.base import Poses
from sim.sensors.camera import CameraSensor
from sim.sensors.ground import SKY_LUMA
from sim.sensors.ipm import MountedCamera
from sim.sensors.lens import Lens, fisheye_angle, fisheye_project
from sim.tracks import load_track

CAR = load_car("deepracer")
K = (0.1, -0.05, 0.01, -0.002)


def with_camera(car: CarConfig, **changes: object) -> CarConfig:
    """`car` with its `[camera]` changed (validated again, as a car file would be)."""
    camera = car.camera.model_dump() | changes
    return CarConfig.model_validate(car.model_dump() | {"camera": camera})


FISHEYE = with_camera(CAR, lens="fisheye", hfov_deg=120.0, fisheye_k=[0.0, 0.0, 0.0, 0.0])
WIDE_PINHOLE = with_camera(CAR, hfov_deg=120.0)


# --------------------------------------------------------------------------- the projection


def test_fisheye_projection_matches_opencv_by_hand() -> None:
    # cv2.fisheye.projectPoints of (0.3, -0.2, 1.0), K = [[100, 0, 80], [0, 100, 60], [0, 0, 1]], D = K:
    #   a, b = 0.3, -0.2; r = sqrt(0.13) = 0.3605551; theta = atan(r) = 0.3460469
    #   theta_d = theta (1 + 0.1 theta^2 - 0.05 theta^4 + 0.01 theta^6 - 0.002 theta^8) = 0.3499485
    #   x' = a theta_d / r = 0.2911747, y' = b theta_d / r = -0.1941165
    #   u = 100 x' + 80 = 109.11747, v = 100 y' + 60 = 40.58835
    uv = fisheye_project(np.array([0.3, -0.2, 1.0]), (100.0, 100.0), (80.0, 60.0), K)
    np.testing.assert_allclose(uv, [109.11747, 40.58835], atol=1e-5)
    # the optical axis lands on the principal point, whatever the depth
    np.testing.assert_allclose(
        fisheye_project(np.array([0.0, 0.0, 5.0]), (90.0, 90.0), (80.0, 60.0), K), [80, 60]
    )


def test_fisheye_angle_inverts_the_distortion() -> None:
    theta = np.linspace(0.0, 1.4, 50)
    np.testing.assert_allclose(fisheye_angle(fisheye_distorted_angle(theta, K), K), theta, atol=1e-10)


def test_a_pixel_ray_projects_back_to_the_pixel() -> None:
    lens = Lens("fisheye", 70.0, K)
    dx, dy = np.meshgrid(np.linspace(-80, 80, 9), np.linspace(-60, 60, 7))
    right, down, forward = lens.rays(dx, dy)
    assert np.allclose(right**2 + down**2 + forward**2, 1.0)
    uv = fisheye_project(np.stack([right, down, forward], axis=-1), (70.0, 70.0), (0.0, 0.0), K)
    np.testing.assert_allclose(uv[..., 0], dx, atol=1e-6)
    np.testing.assert_allclose(uv[..., 1], dy, atol=1e-6)


def test_pinhole_lens_is_the_pinhole_formula() -> None:
    lens = Lens.from_config(CAR.camera)
    assert lens.kind == "pinhole"
    assert lens.focal_px == pytest.approx(80 / math.tan(math.radians(64.74 / 2)))
    d = np.array([-30.0, 0.0, 45.0])
    np.testing.assert_allclose(lens.angle_of_offset(d), np.arctan(d / lens.focal_px))
    np.testing.assert_allclose(lens.offset_of_angle(lens.angle_of_offset(d)), d)


# --------------------------------------------------------------------------- what the lens sees


def test_fisheye_with_the_same_edges_magnifies_the_road_ahead_and_sees_farther_round_the_corners() -> None:
    fish, pin = MountedCamera.from_config(FISHEYE), MountedCamera.from_config(WIDE_PINHOLE)
    assert fish.focal_px == pytest.approx(80 / math.radians(60))

    def off_axis_deg(cam: MountedCamera, dx: float, dy: float) -> float:
        right, down, forward = cam.lens.rays(np.array([dx]), np.array([dy]))
        return float(np.degrees(np.arctan2(np.hypot(right, down), forward))[0])

    # the centre row's edges look the same way (that is what hfov_deg means for both)
    assert off_axis_deg(fish, 80, 0) == pytest.approx(60.0) and off_axis_deg(pin, 80, 0) == pytest.approx(
        60.0
    )
    # the corners reach farther off the axis (75° against 65°: equidistant, not tan) ...
    assert off_axis_deg(fish, 80, 60) == pytest.approx(75.0)
    assert off_axis_deg(pin, 80, 60) == pytest.approx(65.2, abs=0.1)
    # ... and the bottom corners see the floor farther out to the side
    _, fish_side, _ = fish.ground(np.array([0.5]), np.array([119.5]))
    _, pin_side, _ = pin.ground(np.array([0.5]), np.array([119.5]))
    assert fish_side[0] > pin_side[0] + 0.005
    # the centre is magnified: a pixel row near the horizon sees the road 17 m ahead, where the pinhole's
    # same row sees nothing but the wall
    _, _, fish_far = fish.ground(np.array([80.0]), np.array([40.5]))
    _, _, pin_far = pin.ground(np.array([80.0]), np.array([40.5]))
    assert 10 < fish_far[0] < 30 and np.isinf(pin_far[0])
    assert FISHEYE.camera.vfov_deg == pytest.approx(90.0)


@pytest.fixture(scope="module")
def straight():
    return load_track("long_straight")


def test_fisheye_frames_curve_the_horizon_and_show_the_backdrop_in_the_top_corners(straight) -> None:
    pinhole = CameraSensor(straight, CAR)
    fisheye = CameraSensor(straight, FISHEYE)
    assert pinhole.tables.sky is None  # a pinhole's ground rows see floor everywhere
    assert fisheye.tables.sky is not None
    x, y, _ = straight.poses_at(np.array([straight.length_m - 3.0]))
    frame = fisheye.render(Poses(x, y, np.ones(1), np.zeros(1)))[0]
    first = fisheye.first_ground_row
    assert (frame[:first] == SKY_LUMA).all()
    # below the first ground row the centre sees floor while the corners still see the wall
    band = frame[first + 1 : first + 6]
    assert (band[:, :4] == SKY_LUMA).all() and (band[:, -4:] == SKY_LUMA).all()
    assert (band[:, 70:90] != SKY_LUMA).mean() > 0.9
    # the horizon is lowest at the edges: the first non-wall row of each column sags away from the centre
    ground_starts = np.argmax(frame != SKY_LUMA, axis=0)
    assert ground_starts[2] > ground_starts[80] + 3 and ground_starts[-3] > ground_starts[80] + 3


def test_fisheye_renders_as_fast_as_its_tables_allow(straight) -> None:
    # the same gathers: only the tables differ (a fisheye adds a few wall pixels in its ground rows)
    sensor = CameraSensor(straight, FISHEYE)
    assert sensor.tables.far.dtype == np.intp and sensor.tables.near.dtype == np.intp
    assert sensor._nominal.far_runs == ((0, sensor.tables.split_row - sensor.first_ground_row, 0),)
    assert 0 < len(sensor._nominal.fix_at) < 0.05 * 160 * 120


# --------------------------------------------------------------------------- the car file


def deepracer_text() -> str:
    text = (resources.files("firmware_configs") / "deepracer.toml").read_text(encoding="utf-8")
    return text.split("# ---- car runtime", 1)[0]


def load_error(tmp_path: Path, old: str, new: str) -> str:
    text = deepracer_text()
    assert old in text
    path = tmp_path / "lens.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(CarFileError) as info:
        load_car(path)
    return str(info.value)


def test_the_default_lens_is_a_pinhole() -> None:
    assert CAR.camera.lens == "pinhole" and CAR.camera.fisheye_k is None


def test_a_fisheye_car_file_loads(tmp_path: Path) -> None:
    text = deepracer_text().replace(
        "hfov_deg = 64.74", 'lens = "fisheye"\nhfov_deg = 185\nfisheye_k = [0.02, -0.001, 0, 0]'
    )
    path = tmp_path / "fisheye.toml"
    path.write_text(text, encoding="utf-8")
    camera = load_car(path).camera
    assert camera.lens == "fisheye" and camera.fisheye_k == (0.02, -0.001, 0.0, 0.0)
    assert hash(camera)  # a frozen table stays hashable


def test_an_unknown_lens_names_the_key(tmp_path: Path) -> None:
    msg = load_error(tmp_path, "hfov_deg = 64.74", 'lens = "fish-eye"\nhfov_deg = 64.74')
    assert "`camera.lens`" in msg and "fish-eye" in msg and '"pinhole" or "fisheye"' in msg


def test_a_fisheye_without_coefficients_says_what_to_add(tmp_path: Path) -> None:
    msg = load_error(tmp_path, "hfov_deg = 64.74", 'lens = "fisheye"\nhfov_deg = 120')
    assert "[camera] lens" in msg and "fisheye_k = [k1, k2, k3, k4]" in msg


def test_coefficients_on_a_pinhole_are_refused(tmp_path: Path) -> None:
    msg = load_error(tmp_path, "hfov_deg = 64.74", "hfov_deg = 64.74\nfisheye_k = [0, 0, 0, 0]")
    assert "[camera] lens" in msg and "pinhole" in msg and "fisheye_k" in msg


def test_coefficients_that_fold_the_image_are_refused(tmp_path: Path) -> None:
    # k1 = -0.3: theta_d stops rising at ~61° off the axis, inside a 120° lens's corners
    msg = load_error(
        tmp_path, "hfov_deg = 64.74", 'lens = "fisheye"\nhfov_deg = 120\nfisheye_k = [-0.3, 0, 0, 0]'
    )
    assert "[camera] lens" in msg and "fisheye_k" in msg and "corner" in msg


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ("hfov_deg = 170", "camera.hfov_deg"),  # too wide for a pinhole
        ('lens = "fisheye"\nhfov_deg = 120\nfisheye_k = [0, 0, 0]', "camera.fisheye_k"),
        ('lens = "fisheye"\nhfov_deg = 240\nfisheye_k = [0, 0, 0, 0]', "camera.hfov_deg"),
    ],
)
def test_bad_lens_values_name_the_key(tmp_path: Path, edit: str, key: str) -> None:
    assert f"`{key}`" in load_error(tmp_path, "hfov_deg = 64.74", edit)
