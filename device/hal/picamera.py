"""Raspberry Pi camera through picamera2: the ISP scales the sensor image to the model's size, and the Y
(luma) plane of a YUV420 frame is the grayscale frame — no resize or colour conversion on the CPU."""

from __future__ import annotations

import time

import numpy as np

from contracts.car_file import CameraDeviceConfig
from contracts.hal import Frame
from device.hal.vendor import import_vendor


class PiCamera:
    """A picamera2 video stream of (height_px, width_px) luma, uint8."""

    def __init__(self, cam: CameraDeviceConfig, width_px: int, height_px: int) -> None:
        picamera2 = import_vendor("picamera2", "pi")
        self._height_px, self._width_px = height_px, width_px
        self._cam = picamera2.Picamera2(cam.sensor_id)
        config = self._cam.create_video_configuration(
            main={"size": (width_px, height_px), "format": "YUV420"},
            controls={"FrameRate": float(cam.capture_fps)},
            buffer_count=2,  # few buffers: the newest light, low latency
        )
        self._cam.configure(config)
        self._cam.start()

    def capture(self) -> Frame:
        yuv = self._cam.capture_array("main")
        captured_s = time.monotonic()
        # YUV420 is (height * 3/2, stride): the first `height` rows are Y; the stride may be padded
        luma = np.ascontiguousarray(yuv[: self._height_px, : self._width_px], dtype=np.uint8)
        return Frame(luma, captured_s)

    def close(self) -> None:
        self._cam.stop()
        self._cam.close()
