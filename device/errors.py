"""The car runtime's exceptions: one root, leaves that also subclass the builtin a caller would expect."""


class DeviceError(Exception):
    """Root of every error the car runtime (`device/`) raises on purpose."""


class ProtocolError(DeviceError, ValueError):
    """A wire payload (lap report, status, command) that is not valid; the message names the field."""


class SignatureError(ProtocolError):
    """A lap report whose `sig` is missing or does not match the car's secret."""


class ModelError(DeviceError, ValueError):
    """An ONNX model or its model card cannot be used (missing, corrupt, changed since export); names the file."""


class ModelMismatchError(ModelError):
    """A model trained for another sensor (kind, shape, camera geometry) than the car's; says what differs."""
