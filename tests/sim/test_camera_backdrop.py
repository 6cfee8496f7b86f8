"""What the camera sees above the floor: backdrop variants, their dependence on heading, determinism, the
presets' draws (eval-shift's backdrop held out), and the grey wall kept for the `none` preset."""

from __future__ import annotations

import math

import numpy as np
import pytest

from firmware_configs import load_car
from sim.randomization import (
    EVAL_BACKDROP,
    PRESETS,
    TRAINING_BACKDROPS,
    TRAINING_PRESETS,
    EpisodeRandomization,
    RandomizationPreset,
)
from sim.sensors.backdrop import BACKDROP_NAMES, N_BACKDROPS, PanoramaLayout, backdrop, paint
from sim.sensors.base import Poses
from sim.sensors.camera import CameraSensor
from sim.sensors.ground import SKY_LUMA
from sim.tracks import load_track

CAR = load_car("deepracer")
LAYOUT = PanoramaLayout.for_view(720, np.radians(np.array([-3.0, 20.0])), 0.4)


@pytest.fixture(scope="module")
def track():
    return load_track("tiny_loop")  # small rasters: ground variants build in a second


def sensor_with(track, variant: int, n: int = 1, brightness: float = 1.0) -> CameraSensor:
    preset = RandomizationPreset(
        f"backdrop-{variant}", backdrop=(variant, variant), backdrop_brightness=(brightness, brightness)
    )
    rz = EpisodeRandomization(n, preset)
    rz.draw(np.arange(n), [np.random.default_rng(i) for i in range(n)])
    return CameraSensor(track, CAR, randomization=rz)


def poses(track, yaw_deg: list[float]) -> Poses:
    x, y, _ = track.poses_at(np.zeros(1))
    yaw = np.radians(yaw_deg)
    return Poses(np.repeat(x, len(yaw)), np.repeat(y, len(yaw)), np.cos(yaw), np.sin(yaw))


def test_variants_are_named_and_the_held_out_one_is_last() -> None:
    assert len(BACKDROP_NAMES) == N_BACKDROPS == EVAL_BACKDROP + 1 == TRAINING_BACKDROPS + 1
    assert BACKDROP_NAMES[0] == "grey wall"


def test_the_grey_wall_is_uniform_and_panoramas_are_not() -> None:
    wall = backdrop(0, 1.0, LAYOUT)
    assert wall.flat == SKY_LUMA and wall.data is None
    for variant in range(1, N_BACKDROPS):
        scene = backdrop(variant, 1.0, LAYOUT, 12)
        assert scene.data is not None and scene.data.dtype == np.uint8
        assert scene.data.std() > 15, BACKDROP_NAMES[variant]  # walls, windows, people: structure
        assert scene.data.min() >= 12 and scene.data.max() <= 255 - 12  # room for the pixel noise


def test_panoramas_differ_between_variants_and_repeat_per_variant() -> None:
    pictures = [paint(v, LAYOUT) for v in range(1, N_BACKDROPS)]
    for i in range(len(pictures)):
        for j in range(i + 1, len(pictures)):
            assert np.mean(np.abs(pictures[i] - pictures[j])) > 10, (i + 1, j + 1)
    np.testing.assert_array_equal(paint(3, LAYOUT), pictures[2])


def test_brighter_backdrop_gain_brightens_the_panorama() -> None:
    dim, bright = backdrop(2, 0.8, LAYOUT).data, backdrop(2, 1.2, LAYOUT).data
    assert bright.mean() > 1.3 * dim.mean()


def test_none_keeps_the_grey_wall(track) -> None:
    frames = CameraSensor(track, CAR).render(poses(track, [0.0, 90.0, 200.0]))
    sensor = CameraSensor(track, CAR)
    assert (frames[:, : sensor.first_ground_row] == SKY_LUMA).all()


def test_the_backdrop_turns_with_the_car(track) -> None:
    sensor = sensor_with(track, 1, n=3)
    frames = sensor.render(poses(track, [0.0, 5.0, 120.0]), np.arange(3))
    sky = frames[:, : sensor.first_ground_row].astype(float)
    assert sky.std() > 10
    assert np.mean(np.abs(sky[0] - sky[2])) > 10  # another heading, another part of the room
    # a 5° turn to the left moves the backdrop right by f tan(5°) (~11 px): no parallax, pure rotation
    rows = slice(0, sensor.first_ground_row - 2)
    a, b = sky[0, rows], sky[1, rows]
    expected = round(sensor.camera.focal_px * math.tan(math.radians(5.0)))
    costs = {k: np.mean((b[:, k:] - a[:, : a.shape[1] - k]) ** 2) for k in range(0, 25)}
    assert abs(min(costs, key=costs.get) - expected) <= 1


def test_variants_differ_in_the_frame_and_frames_repeat(track) -> None:
    pose = poses(track, [30.0])
    skies = []
    for variant in range(N_BACKDROPS):
        sensor = sensor_with(track, variant)
        frame = sensor.render(pose, np.array([0]))[0]
        np.testing.assert_array_equal(frame, sensor_with(track, variant).render(pose, np.array([0]))[0])
        skies.append(frame[: sensor.first_ground_row].astype(float))
    for i in range(N_BACKDROPS):
        for j in range(i + 1, N_BACKDROPS):
            assert np.mean(np.abs(skies[i] - skies[j])) > 3, (i, j)


def test_backdrop_draws_repeat_with_the_seed_and_eval_shift_is_held_out() -> None:
    n = 200
    drawn = {}
    for name in PRESETS:
        runs = []
        for _ in range(2):
            rz = EpisodeRandomization(n, name)
            rz.draw(np.arange(n), [np.random.default_rng(1000 + i) for i in range(n)])
            runs.append(rz)
        np.testing.assert_array_equal(runs[0].backdrop, runs[1].backdrop)
        np.testing.assert_array_equal(runs[0].backdrop_brightness, runs[1].backdrop_brightness)
        drawn[name] = runs[0]
    assert (drawn["none"].backdrop == 0).all() and (drawn["none"].backdrop_brightness == 1.0).all()
    for name in ("light", "strong"):
        assert set(drawn[name].backdrop.tolist()) == set(range(TRAINING_BACKDROPS)), name
    assert (drawn["eval-shift"].backdrop == EVAL_BACKDROP).all()
    for name in TRAINING_PRESETS:
        assert EVAL_BACKDROP not in drawn[name].backdrop
        # eval-shift's backdrop is brighter than training ever draws it
        assert PRESETS[name].backdrop_brightness[1] < PRESETS["eval-shift"].backdrop_brightness[0]


def test_light_frames_with_backdrops_batch_like_single_cars(track) -> None:
    n = 6
    rz = EpisodeRandomization(n, "light")
    rz.draw(np.arange(n), [np.random.default_rng(i) for i in range(n)])
    sensor = CameraSensor(track, CAR, randomization=rz)
    rng = np.random.default_rng(4)
    x, y, yaw = track.poses_at(rng.uniform(0, track.length_m, n))
    batch_poses = Poses(x, y, np.cos(yaw), np.sin(yaw))
    batch = sensor.render(batch_poses, np.arange(n))
    for i in range(n):
        one = Poses(x[i : i + 1], y[i : i + 1], np.cos(yaw[i : i + 1]), np.sin(yaw[i : i + 1]))
        np.testing.assert_array_equal(batch[i], sensor.render(one, np.array([i]))[0])
