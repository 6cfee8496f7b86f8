"""The shipped car files: one `<car>.toml` per car (schema and loader: `contracts.car_file`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from contracts.car_file import CarConfig, load_car_config, parse_car_config
from contracts.errors import CarFileError


def list_cars() -> list[str]:
    """Names of the car files shipped here (without `.toml`), sorted."""
    root = resources.files(__name__)
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


def load_car(spec: str | Path) -> CarConfig:
    """A car's `[car]`, `[vehicle]` and `[camera]`: `spec` is a shipped car name (`deepracer`) or a path to a
    `.toml` file. CarFileError names the file, the key and what was expected."""
    as_text = str(spec)
    if isinstance(spec, Path) or as_text.endswith(".toml") or "/" in as_text or "\\" in as_text:
        return load_car_config(spec)
    resource = resources.files(__name__) / f"{as_text}.toml"
    if not resource.is_file():
        raise CarFileError(
            f"unknown car `{as_text}`: choose one of {', '.join(list_cars())}, or give a path to a .toml file"
        )
    return parse_car_config(resource.read_bytes(), source=str(resource))
