"""Cameras read through OpenCV: a USB camera (V4L2) and a Jetson CSI camera (GStreamer `nvarguscamerasrc`).

Both give the model's frame: grayscale uint8 (H, W) at the car's `[camera]` size (scaled by the GStreamer
pipeline on a Jetson, by `cv2.resize` with area averaging for USB).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from contracts.car_file import CameraDeviceConfig
from contracts.hal import Frame
from device.errors import HardwareError
from device.hal.vendor import import_vendor


def jetson_pipeline(cam: CameraDeviceConfig, width_px: int, height_px: int) -> str:
    """A GStreamer pipeline: CSI sensor -> NVMM NV12 -> nvvidconv scales to the model size, GRAY8 -> appsink
    that keeps only the newest frame (a control loop wants the freshest light, not a queue)."""
    return (
        f"nvarguscamerasrc sensor-id={cam.sensor_id} ! "
        f"video/x-raw(memory:NVMM), width={cam.capture_width_px}, height={cam.capture_height_px}, "
        f"framerate={cam.capture_fps}/1, format=NV12 ! "
        f"nvvidconv ! video/x-raw, width={width_px}, height={height_px}, format=GRAY8 ! "
        "appsink drop=true max-buffers=1 sync=false"
    )


class OpenCvCamera:
    """`cv2.VideoCapture` of a device index/path (V4L2) or a GStreamer pipeline; frames (H, W) uint8."""

    def __init__(self, source: int | str, api: str, width_px: int, height_px: int, backend: str) -> None:
        self._cv2 = import_vendor("cv2", backend)
        cv2 = self._cv2
        self._size = (width_px, height_px)
        self._cap = cv2.VideoCapture(source, getattr(cv2, api))
        if not self._cap.isOpened():
            raise HardwareError(f"{backend} camera: OpenCV could not open {source!r} with {api}")
        self._backend = backend

    @classmethod
    def usb(cls, cam: CameraDeviceConfig, width_px: int, height_px: int) -> OpenCvCamera:
        self = cls(cam.device, "CAP_V4L2", width_px, height_px, "usb")
        cv2 = self._cv2
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, cam.capture_width_px)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cam.capture_height_px)
        self._cap.set(cv2.CAP_PROP_FPS, cam.capture_fps)
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a stale queue
        return self

    @classmethod
    def jetson(cls, cam: CameraDeviceConfig, width_px: int, height_px: int) -> OpenCvCamera:
        return cls(jetson_pipeline(cam, width_px, height_px), "CAP_GSTREAMER", width_px, height_px, "jetson")

    def capture(self) -> Frame:
        ok, image = self._cap.read()
        captured_s = time.monotonic()
        if not ok or image is None:
            raise HardwareError(f"{self._backend} camera: no frame (cable, driver or pipeline stopped)")
        return Frame(self._to_model(image), captured_s)

    def _to_model(self, image: Any) -> np.ndarray:
        cv2 = self._cv2
        if image.ndim == 3 and image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        elif image.ndim == 3:
            image = image[:, :, 0]
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(image, dtype=np.uint8)

    def close(self) -> None:
        self._cap.release()
