"""Importing a backend's vendor library, with the install line when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from device.errors import BackendUnavailableError

#: module -> the line that installs it on a car
INSTALL_HINTS = {
    "picamera2": "sudo apt install -y python3-picamera2  (Raspberry Pi OS; create the venv with --system-site-packages)",
    "adafruit_pca9685": "pip install adafruit-circuitpython-pca9685",
    "board": "pip install adafruit-blinka",
    "busio": "pip install adafruit-blinka",
    "gpiozero": "pip install gpiozero  (Raspberry Pi OS: sudo apt install -y python3-gpiozero)",
    "cv2": "pip install opencv-python-headless  (Jetson: sudo apt install -y python3-opencv, built with GStreamer)",
}


def import_vendor(module: str, backend: str) -> ModuleType:
    """`importlib.import_module(module)`, or BackendUnavailableError naming the backend and the fix."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = INSTALL_HINTS.get(module, f"pip install {module}")
        raise BackendUnavailableError(
            f"the `{backend}` backend needs the Python module `{module}` ({exc}); install it with: {hint}"
        ) from None
