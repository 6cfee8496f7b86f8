"""The league server's exceptions: one root (`LeagueError`); every leaf also subclasses a builtin so callers
that only know the builtin (ValueError, KeyError, PermissionError) still catch it."""

from __future__ import annotations


class LeagueError(Exception):
    """Root of every league_server error."""


class ConfigError(LeagueError, ValueError):
    """A setting (environment variable, .env, CLI option) is unusable; the message names it."""


class NotFoundError(LeagueError, LookupError):
    """A league, race, car, lap ... that does not exist. `entity` and `key` say which."""

    def __init__(self, entity: str, key: object) -> None:
        super().__init__(f"{entity} {key!r} does not exist")
        self.entity = entity
        self.key = key


class ConflictError(LeagueError, ValueError):
    """The request clashes with what is stored (a duplicate slug, car id, MQTT username ...)."""


class RuleError(LeagueError, ValueError):
    """Input that passed the schema but breaks a rule (e.g. race rules contracts.race rejects); names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


class AuthError(LeagueError, PermissionError):
    """Missing or wrong admin bearer token."""


class IngestError(LeagueError, ValueError):
    """A message from the broker that cannot be stored (INGEST raises its leaves from this)."""


class SandboxError(LeagueError, RuntimeError):
    """A sandboxed job could not be run at all (no `resource` module on this platform, the program could not be
    started); a job that runs and fails is a `SandboxResult`, not this."""
