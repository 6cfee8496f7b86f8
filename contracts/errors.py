"""The contracts' exceptions: one root, leaves that also subclass the builtin a caller would expect."""

from __future__ import annotations

from pydantic import ValidationError


class ContractError(Exception):
    """Root of every error the shared contracts (`contracts/`) raise on purpose."""


class ProtocolError(ContractError, ValueError):
    """A wire payload (lap report, status, command) that is not valid; the message names the field."""


class SignatureError(ProtocolError):
    """A lap report whose `sig` is missing or does not match the car's secret."""


class CarFileError(ContractError, ValueError):
    """A car file that cannot be read or is invalid; the message names the file, the dotted key and what was
    expected."""


class CarTableError(CarFileError):
    """An invalid car runtime table (`[hardware]`, `[safety]`, `[league]`, or a credentials file's table)."""


class VirtualRaceError(ContractError, ValueError):
    """A virtual race spec or evaluation job file that is not valid; the message names the file and field."""


class RaceRulesError(ContractError, ValueError):
    """Race rules are inconsistent (names the field and what was expected)."""


class ModelCardError(ContractError, ValueError):
    """A model card (`model.json`) that is missing, unreadable or invalid; the message names the file and field."""


def validation_problems(exc: ValidationError, *, top: str = "(top level)", quote: bool = False) -> str:
    """pydantic's errors as one line, each `dotted.key: message` (`top` when the error is about the whole
    value), joined by "; "; `quote` puts the key in backticks."""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or top
        parts.append(f"`{key}`: {err['msg']}" if quote else f"{key}: {err['msg']}")
    return "; ".join(parts)


class RecipeError(ContractError, ValueError):
    """A recipe (TOML) or training job file that is not valid; the message names the file and each key."""
