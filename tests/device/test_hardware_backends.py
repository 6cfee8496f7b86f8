"""Hardware backends with their vendor libraries faked at the import boundary (sys.modules): the calls they
make and the pulses they send. The real-board versions are in test_real_boards.py (marked `hardware`)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from device.config import load_runtime_config
from device.errors import BackendUnavailableError, HardwareError
from tests.device.fakes import FakePicamera2, FakeVideoCapture, fake_cv2


@pytest.fixture
def config(write_car):
    return load_runtime_config(write_car(""))


CAMERA_INPUT = ("camera", (1, 1, 120, 160), "uint8")


def test_pca9685_pulses_become_duty_cycles(config, fake_pca) -> None:
    from device.hal.pca9685 import Pca9685Drive

    drive = Pca9685Drive(config.hardware.pca9685, "pi")
    pca = fake_pca.instances[0]
    assert pca.address == 0x40 and pca.frequency == 60 and pca.i2c.pins == ("SCL", "SDA")
    drive.set_pulses(1500, 1700)
    period_us = 1e6 / 60
    assert pca.channels[0].duty_cycle == round(1500 / period_us * 0xFFFF)  # steering channel 0
    assert pca.channels[1].duty_cycle == round(1700 / period_us * 0xFFFF)  # throttle channel 1
    drive.close()
    assert pca.i2c.deinited


def test_pi_backend_end_to_end_with_cap_and_gate(write_car, fake_pca, fake_gpiozero, monkeypatch) -> None:
    """The pi backend: picamera2 frames at the model size, PCA9685 pulses capped, a gpiozero lap gate."""
    FakePicamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    car = write_car("\n[hardware.lap_gate]\npin = 17\ndebounce_ms = 20\nmin_lap_s = 1.0\n", base="donkey-pi")
    config = load_runtime_config(car)
    from device.drive import DriveSession
    from device.hal.backends import open_hardware

    hal = open_hardware("pi", config, *CAMERA_INPUT, deadman=False)
    cam = FakePicamera2.instances[0]
    assert cam.config_args["main"] == {"size": (160, 120), "format": "YUV420"}  # the ISP scales
    frame = hal.camera.capture()
    assert frame.data.shape == (120, 160) and frame.data.dtype == np.uint8
    assert frame.data[0, 5] == 5 and frame.data.flags.c_contiguous  # the Y plane without the row padding

    class Fast:
        def act(self, obs):
            assert obs.shape == (1, 1, 120, 160)
            return (-25.0, 9.0)  # full right, faster than the table

    session = DriveSession(config, Fast(), hal, (1, 1, 120, 160), "uint8")
    gate = fake_gpiozero.instances[0]
    assert gate.pin == 17 and gate.pull_up is True
    session.run(max_steps=3)
    pca = fake_pca.instances[0]
    period_us = 1e6 / 60
    steering, throttle = pca.channels[1].history, pca.channels[0].history  # donkey: steering 1, throttle 0
    assert round(1040 / period_us * 0xFFFF) in steering  # right_us
    assert max(throttle) == round(1720 / period_us * 0xFFFF)  # capped at throttle_cap_us, not 1820
    assert throttle[-1] == round(1500 / period_us * 0xFFFF) and steering[-1] == round(
        1500 / period_us * 0xFFFF
    )
    assert not cam.started and cam.closed and gate.closed


def test_gpio_gate_debounce_and_min_lap(fake_gpiozero) -> None:
    from contracts.car_file import LapGateConfig
    from device.hal.gpio import GpioGateTimer
    from device.hal.mock import SteppedClock

    gate = GpioGateTimer(LapGateConfig(pin=5, debounce_ms=20, min_lap_s=2.0), SteppedClock())
    for t_s in (
        10.0,
        10.005,
        10.012,  # first crossing + contact bounce
        10.5,  # the rear wheels, same car: ignored
        22.25,
        22.26,  # lap 1 (+ bounce)
        31.0,
    ):  # lap 2
        gate.crossing(t_s)
    laps = gate.poll()
    assert [lap.lap_time_s for lap in laps] == pytest.approx([12.25, 8.75])
    assert {lap.source for lap in laps} == {"timer"} and gate.poll() == []


def test_gpio_estop_button_latches(config, fake_gpiozero) -> None:
    from device.estop import GpioEStop, SafetyLatch

    latch = SafetyLatch()
    button = GpioEStop(latch, 27, pull_up=True)
    fake_gpiozero.instances[0].press()
    assert latch.tripped and "pin 27" in latch.reason
    button.close()
    assert fake_gpiozero.instances[0].closed


def test_usb_and_jetson_cameras(config, fake_pca, monkeypatch) -> None:
    cv2 = fake_cv2()
    FakeVideoCapture.instances = []
    monkeypatch.setitem(sys.modules, "cv2", cv2)
    from device.hal.backends import open_hardware

    usb = open_hardware("usb", config, *CAMERA_INPUT, deadman=False)
    cap = FakeVideoCapture.instances[-1]
    assert cap.source == 0 and cap.api == 200 and cap.props[38] == 1  # V4L2, one buffer
    frame = usb.camera.capture()
    assert frame.data.shape == (120, 160) and frame.data.dtype == np.uint8
    assert cv2.calls["cvtColor"] == 1 and cv2.calls["resize"] == [((160, 120), 3)]
    usb.close()
    assert cap.released

    jetson = open_hardware(
        "jetson", load_runtime_config(config.path.with_name("car.toml")), *CAMERA_INPUT, deadman=False
    )
    pipeline = FakeVideoCapture.instances[-1].source
    assert FakeVideoCapture.instances[-1].api == 1800
    assert pipeline.startswith("nvarguscamerasrc sensor-id=0 ! ")
    assert "width=160, height=120, format=GRAY8" in pipeline and "appsink drop=true max-buffers=1" in pipeline
    jetson.close()


def test_camera_that_does_not_open_is_a_clear_error(config, fake_pca, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", fake_cv2())
    from device.hal.opencv_camera import OpenCvCamera

    with pytest.raises(HardwareError, match="could not open 'broken'"):
        OpenCvCamera("broken", "CAP_V4L2", 160, 120, "usb")


@pytest.mark.parametrize(
    ("backend", "module", "hint"),
    [
        ("pi", "picamera2", "sudo apt install -y python3-picamera2"),
        ("pi", "adafruit_pca9685", "pip install adafruit-circuitpython-pca9685"),
        ("usb", "cv2", "pip install opencv-python-headless"),
    ],
)
def test_missing_vendor_library_gives_the_install_line(config, fake_pca, monkeypatch, backend, module, hint):
    monkeypatch.setitem(sys.modules, module, None)  # None in sys.modules: `import` raises ImportError
    from device.hal.backends import open_hardware

    with pytest.raises(BackendUnavailableError) as info:
        open_hardware(backend, config, *CAMERA_INPUT, deadman=False)
    assert hint in str(info.value) and module in str(info.value)
    assert isinstance(info.value, ImportError)


def test_a_real_car_refuses_a_simulator_only_model(config) -> None:
    from device.hal.backends import open_hardware

    with pytest.raises(HardwareError, match="drive it on --hal sim"):
        open_hardware("pi", config, "state", (1, 11), "float32")
