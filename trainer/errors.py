"""The trainer's exceptions: one root, leaves that also subclass the builtin a caller would expect."""


class TrainerError(Exception):
    """Root of every error the trainer raises on purpose."""


class RunConfigError(TrainerError, ValueError):
    """A run configuration that cannot be used; the message names the file and the key."""


class EvaluateError(TrainerError, ValueError):
    """A run or model that cannot be evaluated; the message names the path."""
