"""`pitlane calibrate --car F.toml`: steering and throttle end points (µs) and the speed-per-throttle table,
written back into the car file (tomlkit keeps its comments and every other table as they were).

With `--hal pi|jetson|usb|mock` each pulse you type is sent to the servo / ESC so you can watch the wheels
(put the car on a stand for the throttle); `--hal none` (the default) only records the numbers you type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from contracts.vocabulary import HARDWARE_BACKENDS
from pitlane.commands.common import SingleCommandGroup, fail

app = typer.Typer(
    help="Calibrate a car: steering and throttle pulse widths (µs) and measured speed per throttle pulse.",
    invoke_without_command=True,
    cls=SingleCommandGroup,
)

_STEERING = (("left_us", "full LEFT lock"), ("centre_us", "straight ahead"), ("right_us", "full RIGHT lock"))
_THROTTLE = (
    ("reverse_us", "full reverse"),
    ("neutral_us", "neutral (wheels stopped)"),
    ("forward_us", "full forward"),
)


@app.callback()
def calibrate_command(
    car: Annotated[Path, typer.Option("--car", help="The car file to calibrate (written back in place).")],
    hal: Annotated[
        str,
        typer.Option(
            "--hal",
            help=f"none (type numbers only), mock, {', '.join(HARDWARE_BACKENDS)} (send each pulse).",
        ),
    ] = "none",
) -> None:
    """Ask for each end point in microseconds (Enter keeps the current value), then the speed table: pairs of
    throttle pulse (µs) and the speed you measured (m/s), ending with an empty pulse."""
    from contracts.errors import CarFileError
    from device.calibration_file import write_calibration
    from device.config import load_runtime_config
    from device.errors import DeviceError

    console = Console()
    try:
        config = load_runtime_config(car)
    except (DeviceError, CarFileError) as exc:
        fail(exc)
    drive = _open_drive(hal, config)
    hw = config.hardware
    try:
        steering = _end_points(console, "steering servo", _STEERING, hw.steering, drive, "steering", hw)
        throttle = _end_points(console, "throttle (ESC)", _THROTTLE, hw.throttle, drive, "throttle", hw)
        table = _speed_table(console, throttle, hw.speed_table)
    finally:
        if drive is not None:
            drive.set_pulses(steering_us=hw.steering.centre_us, throttle_us=hw.throttle.neutral_us)
            drive.close()
    try:
        write_calibration(car, steering, throttle, table)
    except (DeviceError, CarFileError) as exc:
        fail(exc)
    console.print(f"[green]wrote[/green] {car}: steering {steering}, throttle {throttle}", highlight=False)


def _open_drive(hal: str, config: Any) -> Any:
    if hal == "none":
        return None
    from device.errors import DeviceError

    try:
        if hal == "mock":
            from device.hal.mock import MockDrive

            return MockDrive()
        if hal in HARDWARE_BACKENDS:
            from device.hal.pca9685 import Pca9685Drive

            return Pca9685Drive(config.hardware.pca9685, hal)
    except DeviceError as exc:
        fail(exc)
    *first, last = HARDWARE_BACKENDS
    fail(f"--hal {hal!r}: expected none, mock, {', '.join(first)} or {last}")


def _end_points(
    console: Console, what: str, points: tuple, current: Any, drive: Any, which: str, hw: Any
) -> dict[str, int]:
    """Prompt each end point (µs, 500..2500); with a drive, send it and ask whether it is right."""
    console.print(f"[bold]{what}[/bold]: pulse widths in microseconds (500..2500)")
    out: dict[str, int] = {}
    for key, label in points:
        value = int(getattr(current, key))
        while True:
            value = typer.prompt(f"  {label} ({key})", default=value, type=int)
            if not 500 <= value <= 2500:
                console.print("  [red]expected 500..2500 µs[/red]")
                continue
            if drive is None:
                break
            if which == "steering":
                drive.set_pulses(steering_us=value, throttle_us=hw.throttle.neutral_us)
            else:
                drive.set_pulses(steering_us=hw.steering.centre_us, throttle_us=value)
            if typer.confirm(f"  sent {value} µs: is that {label}?", default=True):
                break
        out[key] = value
    return out


def _speed_table(console: Console, throttle: dict[str, int], current: Any) -> dict[str, list]:
    """Rows of (throttle µs, measured m/s); Enter on an empty pulse keeps the current table / ends it."""
    console.print(
        "[bold]speed table[/bold]: forward throttle pulses (µs) from neutral and the speed you measured (m/s); "
        "an empty pulse ends the table (none at all keeps the current one)"
    )
    pulses: list[int] = []
    speeds: list[float] = []
    while True:
        raw = typer.prompt(
            f"  throttle pulse #{len(pulses) + 1} (µs, empty to finish)", default="", show_default=False
        )
        if not raw.strip():
            break
        try:
            pulse = int(raw)
        except ValueError:
            console.print(f"  [red]{raw!r} is not a whole number of microseconds[/red]")
            continue
        speed = typer.prompt(f"  measured speed at {pulse} µs (m/s)", type=float)
        pulses.append(pulse)
        speeds.append(speed)
    if not pulses:
        return {"throttle_us": list(current.throttle_us), "speed_mps": list(current.speed_mps)}
    return {"throttle_us": pulses, "speed_mps": speeds}
