"""The simulator's exceptions: one root, leaves that also subclass the builtin a caller would expect."""


class SimError(Exception):
    """Root of every error the simulator raises on purpose."""


class TrackError(SimError, ValueError):
    """A track file or track name is unusable (names the file or name, and what was expected)."""


class ActionSpaceError(SimError, ValueError):
    """An action space (inline or model_metadata.json) is invalid."""


class EnvConfigError(SimError, ValueError):
    """An environment option is invalid."""


class RewardFunctionError(SimError, RuntimeError):
    """A user reward function failed to load, raised, or returned a value that is not a finite number."""


class SimTraceError(SimError, ValueError):
    """A simtrace file cannot be read (names the file and line)."""
