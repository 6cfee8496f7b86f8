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


class RecipeError(ContractError, ValueError):
    """A recipe (TOML) or training job file that is not valid; the message names the file and each key, and
    `problems` holds each (dotted key, message) when the recipe's fields were the cause."""

    def __init__(self, message: str, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


def validation_items(exc: ValidationError, *, top: str = "(top level)") -> list[tuple[str, str]]:
    """pydantic's errors as (dotted key, message) pairs; `top` when an error is about the whole value."""
    return [(".".join(str(p) for p in err["loc"]) or top, err["msg"]) for err in exc.errors()]


def validation_problems(exc: ValidationError, *, top: str = "(top level)", quote: bool = False) -> str:
    """pydantic's errors as one line, each `dotted.key: message` (`top` when the error is about the whole
    value), joined by "; "; `quote` puts the key in backticks."""
    return "; ".join(
        f"`{key}`: {message}" if quote else f"{key}: {message}"
        for key, message in validation_items(exc, top=top)
    )
