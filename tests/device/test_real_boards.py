"""On a real car only (`pytest -m hardware tests/device/test_real_boards.py` with PITLANE_CAR=<car file>):
the camera gives frames of the model's size, the PCA9685 takes pulses, the car ends at neutral.
Put the car on a stand: the throttle test spins the wheels slowly."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from device.config import load_runtime_config

pytestmark = pytest.mark.hardware


@pytest.fixture
def car_config():
    path = os.environ.get("PITLANE_CAR")
    if not path:
        pytest.skip("set PITLANE_CAR to the car file of the car this runs on")
    return load_runtime_config(Path(path))


def test_camera_frames_have_the_model_size(car_config) -> None:
    from device.hal.backends import open_hardware

    cam = car_config.car.camera
    hal = open_hardware(
        car_config.hardware.backend, car_config, "camera", (1, 1, cam.height_px, cam.width_px), "uint8"
    )
    try:
        frames = [hal.camera.capture() for _ in range(10)]
    finally:
        hal.drive.set_pulses(car_config.hardware.steering.centre_us, car_config.hardware.throttle.neutral_us)
        hal.close()
    assert all(f.data.shape == (cam.height_px, cam.width_px) for f in frames)
    assert frames[-1].captured_s > frames[0].captured_s


def test_pca9685_steers_and_stops(car_config) -> None:
    from device.hal.pca9685 import Pca9685Drive

    hw = car_config.hardware
    drive = Pca9685Drive(hw.pca9685, hw.backend)
    try:
        for steering_us in (hw.steering.left_us, hw.steering.right_us, hw.steering.centre_us):
            drive.set_pulses(steering_us, hw.throttle.neutral_us)
            time.sleep(0.5)
        drive.set_pulses(hw.steering.centre_us, hw.speed_table.throttle_us[1])
        time.sleep(0.5)
    finally:
        drive.set_pulses(hw.steering.centre_us, hw.throttle.neutral_us)
        drive.close()
