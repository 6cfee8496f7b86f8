"""The car runtime's exceptions: one root, leaves that also subclass the builtin a caller would expect."""


class DeviceError(Exception):
    """Root of every error the car runtime (`device/`) raises on purpose."""


class CarRuntimeConfigError(DeviceError, ValueError):
    """The car file's `[hardware]`, `[safety]` or `[league]` table (or the credentials file) is invalid; the
    message names the file and the dotted key."""


class HardwareError(DeviceError, RuntimeError):
    """A hardware backend could not start or talk to its device (camera, PWM board, GPIO)."""


class BackendUnavailableError(HardwareError, ImportError):
    """A backend's vendor library is not installed; the message carries the pip/apt line that fixes it."""


class ObservationMismatchError(DeviceError, ValueError):
    """A captured frame is not exactly the model's input (shape or dtype)."""


class OutboxError(DeviceError, OSError):
    """The on-disk lap outbox could not be opened or written."""


class ModelError(DeviceError, ValueError):
    """An ONNX model or its model card cannot be used (missing, corrupt, changed since export); names the file."""


class ModelMismatchError(ModelError):
    """A model trained for another sensor (kind, shape, camera geometry) than the car's; says what differs."""
