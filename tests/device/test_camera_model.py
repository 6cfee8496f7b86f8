"""A real exported camera model (uint8 (1, 1, 120, 160) input) through the car's camera paths: the sim
backend's rendered camera, and the `pi` backend with picamera2 and the PCA9685 faked at the import boundary.
(A car whose camera differs from the model's is refused by OnnxPolicy: EXPORT's tests cover that.)"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from device.config import load_runtime_config
from device.drive import DriveSession
from device.hal.backends import open_hardware
from device.policy import OnnxPolicy
from tests.device.fakes import FakePCA9685, FakePicamera2

# One xdist worker runs these tests (--dist loadgroup), so that
# the session's exported car models (tests/device/conftest.py) are built once.
pytestmark = pytest.mark.xdist_group("device-models")


def test_camera_model_drives_the_sim_backend(write_car, camera_model: Path) -> None:
    from pitlane.cli import app

    car = write_car("")
    args = [
        "drive",
        "--car",
        str(car),
        "--model",
        str(camera_model),
        "--hal",
        "sim",
        "--fast",
        "--steps",
        "30",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["loop"]["steps"] == 30 and summary["loop"]["overruns"] == 0
    assert summary["loop"]["capture_ms_mean"] > 0 and summary["loop"]["policy_ms_mean"] > 0


def test_camera_model_on_the_pi_backend(write_car, camera_model: Path, fake_pca, monkeypatch) -> None:
    FakePicamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    config = load_runtime_config(write_car(""))  # a DeepRacer chassis rebuilt with a Pi and a PCA9685
    policy = OnnxPolicy(camera_model, config.car)
    assert policy.input_shape == (1, 1, 120, 160)
    hal = open_hardware(
        "pi", config, policy.card.observation.kind, policy.input_shape, str(policy.input_dtype)
    )
    session = DriveSession(
        config, policy, hal, policy.input_shape, policy.input_dtype, model_sha256=policy.sha256
    )
    result = session.run(max_steps=10)
    assert result.stats.steps == 10
    pca = FakePCA9685.instances[0]
    steering, throttle = pca.channels[0].history, pca.channels[1].history
    assert len(steering) == len(throttle) == 12  # neutral, 10 steps, neutral (warm-up does not actuate)
    period_us = 1e6 / 60
    pulses_us = [round(d * period_us / 0xFFFF) for d in throttle[1:-1]]
    assert all(1500 <= p <= 1700 for p in pulses_us)  # forward, never above the cap
    assert throttle[-1] == round(1500 / period_us * 0xFFFF)
