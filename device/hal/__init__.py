"""Hardware backends behind small interfaces (`contracts.hal`): camera, drive, lap timer, clock.

A backend is chosen explicitly by name (`device.drive.open_hal`, which opens hardware through
`device.hal.backends.open_hardware`) or built directly and passed in; there is no global default. Vendor libraries (picamera2, adafruit_pca9685, gpiozero, cv2) are imported inside their backend
module, when it opens; a missing one raises `BackendUnavailableError` with the pip/apt line.

The `sim` backend lives in `sim/hal_backend.py`, outside this package: `import sim` loads gymnasium, which
the car (`device`) must never import (import-linter follows indirect imports). It implements these
interfaces structurally (they are `typing.Protocol`s) and returns `contracts.hal`'s `Frame` / `LapEvent`
records; it imports nothing from `device`.
"""
