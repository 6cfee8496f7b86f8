"""The car runtime's view of a car file (`contracts.car_file` holds the schema and the loader) and its
credentials file, with the runtime's own error (CarRuntimeConfigError) for an invalid runtime table.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contracts import car_file
from contracts.car_file import CarFile
from contracts.errors import CarTableError
from contracts.wire import CarCredentialsFile
from device.errors import CarRuntimeConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

# The credentials file is the league server's provisioning document: one model, shared through the protocol.
Credentials = CarCredentialsFile


@contextmanager
def _runtime_errors() -> Iterator[None]:
    # the car runtime's callers catch DeviceError: an invalid runtime table is one (the contract's message)
    try:
        yield
    except CarTableError as exc:
        raise CarRuntimeConfigError(str(exc)) from None


def load_runtime_config(path: str | Path) -> CarFile:
    """Read and validate a whole car file (`contracts.car_file.load_car_file`). An invalid `[hardware]`,
    `[safety]` or `[league]` is a CarRuntimeConfigError naming the file and the dotted key; `[car]`,
    `[vehicle]`, `[camera]` errors are the contract's CarFileError."""
    with _runtime_errors():
        return car_file.load_car_file(path)


def validate_table(model: type[BaseModel], raw: dict[str, Any], table: str, source: str) -> Any:
    """`model` from a raw table; CarRuntimeConfigError names `source` and the dotted key."""
    with _runtime_errors():
        return car_file.validate_table(model, raw, table, source)


def load_credentials(path: str | Path) -> Credentials:
    """A credentials file (TOML, or JSON if it ends in .json): mqtt_username, mqtt_password, hmac_secret."""
    path = Path(path)
    if not path.is_file():
        raise CarRuntimeConfigError(f"{path}: no such credentials file (the league's provisioning writes it)")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CarRuntimeConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise CarRuntimeConfigError(
            f"{path}: expected an object with mqtt_username, mqtt_password, hmac_secret"
        )
    return validate_table(Credentials, data, "credentials", str(path))
