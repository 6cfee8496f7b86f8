"""Opening a hardware backend by name from a car file: `mock`, `pi`, `jetson`, `usb`.

(`sim` is opened by the composition root from `sim.hal_backend`, see `device.hal`.) Real cameras give
grayscale camera frames only; a model reading another observation kind (`state`, lidar) can only be driven
on the `sim` backend, and is refused here with that message.
"""

from __future__ import annotations

from contracts.car_file import CarFile
from contracts.hal import Camera, Hal, LapTimer
from contracts.vocabulary import HARDWARE_BACKENDS
from device.calibration import Pulses
from device.errors import HardwareError
from device.hal.clock import MonotonicClock
from device.hal.gpio import GpioGateTimer


def open_hardware(
    name: str,
    config: CarFile,
    observation_kind: str,
    shape: tuple[int, ...],
    dtype: str,
    *,
    deadman: bool = True,
) -> Hal:
    """The Hal of a real car (or `mock`) for a model whose input is `observation_kind` of `shape`/`dtype`.

    deadman: also start `device.deadman` (a process that stops the car if this one dies)."""
    if name == "mock":
        from device.hal.mock import open_mock

        return open_mock(shape, dtype, realtime=True)
    if name not in HARDWARE_BACKENDS:
        raise HardwareError(f"backend {name!r}: expected one of mock, sim, {', '.join(HARDWARE_BACKENDS)}")
    cam_cfg = config.car.camera
    expected = (cam_cfg.height_px, cam_cfg.width_px)
    per_frame = tuple(d for d in shape if d != 1)  # the model's input without its batch / channel axes of 1
    if observation_kind != "camera" or per_frame != expected or str(dtype) != "uint8":
        raise HardwareError(
            f"the {name} backend gives grayscale camera frames uint8 {expected} (the car's [camera]); this model "
            f"reads {observation_kind} {tuple(shape)} {dtype}: drive it on --hal sim, or export a camera model"
        )
    clock = MonotonicClock()
    from device.hal.pca9685 import Pca9685Drive

    # every backend drives the servo and the ESC through a PCA9685 (a USB-camera car too)
    drive = Pca9685Drive(config.hardware.pca9685, name)
    camera = _camera(name, config)
    timers: list[LapTimer] = []
    if config.hardware.lap_gate is not None:
        timers.append(GpioGateTimer(config.hardware.lap_gate, clock, backend=name))
    hal = Hal(name, camera, drive, clock, timers)
    if deadman:
        from device.deadman import DeadManSwitch

        hw = config.hardware
        switch = DeadManSwitch(hw.pca9685, Pulses(hw.steering.centre_us, hw.throttle.neutral_us), name)
        hal.on_close.append(switch.close)
    return hal


def _camera(name: str, config: CarFile) -> Camera:
    cam, dev = config.car.camera, config.hardware.camera
    if name == "pi":
        from device.hal.picamera import PiCamera

        return PiCamera(dev, cam.width_px, cam.height_px)
    from device.hal.opencv_camera import OpenCvCamera

    if name == "jetson":
        return OpenCvCamera.jetson(dev, cam.width_px, cam.height_px)
    return OpenCvCamera.usb(dev, cam.width_px, cam.height_px)
