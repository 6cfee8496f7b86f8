"""Writing a calibration back into a car file (`pitlane calibrate`): the `[hardware.steering]`,
`[hardware.throttle]` and `[hardware.speed_table]` keys are set through tomlkit, so the file's comments and
every other table stay as they were; the result is checked as the car runtime reads it before it replaces
the file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import tomlkit

from contracts.errors import CarFileError
from device.config import load_runtime_config
from device.errors import CarRuntimeConfigError, DeviceError


def write_calibration(
    car: Path,
    steering_us: Mapping[str, int],
    throttle_us: Mapping[str, int],
    speed_table: Mapping[str, Sequence[float]],
) -> None:
    """Set the car file's end points and speed table and write it back in place, atomically.

    steering_us: left_us / centre_us / right_us (µs); throttle_us: reverse_us / neutral_us / forward_us (µs);
    speed_table: throttle_us (µs) and speed_mps (m/s), equal-length lists. CarRuntimeConfigError, with the
    file untouched, if the car runtime would refuse the result.
    """
    doc = tomlkit.parse(car.read_text(encoding="utf-8"))
    hardware = doc.setdefault("hardware", tomlkit.table())
    for name, values in (("steering", steering_us), ("throttle", throttle_us), ("speed_table", speed_table)):
        sub = hardware.setdefault(name, tomlkit.table())
        for key, value in values.items():
            sub[key] = value
    _check_and_replace(car, tomlkit.dumps(doc))


def _check_and_replace(car: Path, text: str) -> None:
    """Validate `text` as the car runtime would read it (from a file beside `car`); replace `car` only if valid."""
    tmp = car.with_name(f".{car.name}.calibrate.toml")
    tmp.write_text(text, encoding="utf-8")
    try:
        load_runtime_config(tmp)
    except (DeviceError, CarFileError) as exc:
        tmp.unlink()
        raise CarRuntimeConfigError(f"not written, the calibration is inconsistent: {exc}") from exc
    tmp.replace(car)
