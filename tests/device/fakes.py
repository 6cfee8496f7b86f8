"""Stand-ins for the car boards' vendor libraries (adafruit_pca9685/board/busio, gpiozero, picamera2, cv2),
installed at the import boundary (sys.modules) by the fixtures in conftest.py."""

from __future__ import annotations

import types
from typing import ClassVar

import numpy as np


class FakeChannel:
    def __init__(self) -> None:
        self.duty_cycle = 0
        self.history: list[int] = []

    def __setattr__(self, name, value):
        if name == "duty_cycle" and hasattr(self, "history"):
            self.history.append(value)
        object.__setattr__(self, name, value)


class FakePCA9685:
    instances: ClassVar[list] = []

    def __init__(self, i2c, address=0x40):
        self.i2c, self.address = i2c, address
        self.frequency = None
        self.channels = [FakeChannel() for _ in range(16)]
        FakePCA9685.instances.append(self)


class FakeI2C:
    def __init__(self, scl, sda):
        self.pins = (scl, sda)
        self.deinited = False

    def deinit(self):
        self.deinited = True


class FakeButton:
    instances: ClassVar[list] = []

    def __init__(self, pin, pull_up=True):
        self.pin, self.pull_up = pin, pull_up
        self.when_pressed = None
        self.closed = False
        FakeButton.instances.append(self)

    def press(self):
        self.when_pressed()

    def close(self):
        self.closed = True


class FakePicamera2:
    instances: ClassVar[list] = []

    def __init__(self, num=0):
        self.num = num
        self.config_args = None
        self.started = self.closed = False
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, **kwargs):
        self.config_args = kwargs
        return {"cfg": kwargs}

    def configure(self, cfg):
        self.configured = cfg

    def start(self):
        self.started = True

    def capture_array(self, stream):
        w, h = self.config_args["main"]["size"]
        stride = w + 32  # the ISP pads rows
        yuv = np.full((h * 3 // 2, stride), 7, np.uint8)
        yuv[:h, :w] = np.arange(w, dtype=np.uint8)[None, :]
        return yuv

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True


class FakeVideoCapture:
    instances: ClassVar[list] = []

    def __init__(self, source, api):
        self.source, self.api = source, api
        self.props: dict = {}
        self.released = False
        FakeVideoCapture.instances.append(self)

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return self.source != "broken"

    def set(self, prop, value):
        self.props[prop] = value

    def read(self):
        return True, np.full((480, 640, 3), 100, np.uint8)

    def release(self):
        self.released = True


def fake_cv2():
    calls: dict = {"cvtColor": 0, "resize": []}

    def cvt(img, code):
        calls["cvtColor"] += 1
        return img[:, :, 0]

    def resize(img, size, interpolation=None):
        calls["resize"].append((size, interpolation))
        return np.zeros((size[1], size[0]), img.dtype)

    return types.SimpleNamespace(
        VideoCapture=FakeVideoCapture,
        CAP_V4L2=200,
        CAP_GSTREAMER=1800,
        CAP_PROP_FRAME_WIDTH=3,
        CAP_PROP_FRAME_HEIGHT=4,
        CAP_PROP_FPS=5,
        CAP_PROP_BUFFERSIZE=38,
        COLOR_BGR2GRAY=6,
        INTER_AREA=3,
        cvtColor=cvt,
        resize=resize,
        calls=calls,
    )
