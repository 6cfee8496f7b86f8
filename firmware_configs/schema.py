"""Car models: one `firmware_configs/<car>.toml` per car, read by the simulator and by the car runtime.

The simulator reads `[car]`, `[vehicle]` and `[camera]`; the car runtime adds `[hardware]`, `[safety]`
and `[league]`, which are accepted here as raw tables (validated by the car runtime, not by this module). Any
other top-level table, and any unknown key inside the validated tables, is an error that names the file, the
dotted key and what was expected.

Frame: the chassis origin is the mid-point between the front and rear axles, at axle height (so the ground is
`wheel_radius_m` below it); x forward, y left, z up; metres. Units are in key names (`wheelbase_m`,
`max_steer_deg`, `actuation_latency_ms`).

This module is shared by the simulator (`sim.car` re-exports it) and the car runtime, so it lives beside the
files it reads and imports only the standard library, numpy and pydantic (never gymnasium or torch).
"""

from __future__ import annotations

import difflib
import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

STANDARD_GRAVITY_MPS2 = 9.81


class FirmwareConfigError(Exception):
    """Root of the errors raised while reading car config files."""


class CarConfigError(FirmwareConfigError, ValueError):
    """A car config file is invalid (names the file, the dotted key and what was expected)."""


# Tables the car runtime owns: kept raw on the model so one file serves both sides.
RUNTIME_TABLES = ("hardware", "safety", "league")

_CONFIGS_PACKAGE = "firmware_configs"


class _Table(BaseModel):
    # strict: a TOML `true` is not a number and `"0.16"` is not a length; allow_inf_nan: TOML has `inf`/`nan`.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class CarInfo(_Table):
    """`[car]`: what the car is called."""

    name: str = Field(min_length=1, description="a short name, e.g. `deepracer`")
    description: str = Field(default="", description="one line of text")
    scale: str = Field(pattern=r"^1/[1-9][0-9]*$", description='the model scale as "1/N", e.g. "1/18"')


class VehicleConfig(_Table):
    """`[vehicle]`: geometry and limits, SI units in the key names (degrees where a human measures them)."""

    wheelbase_m: float = Field(gt=0, le=2.0, description="a distance in metres, 0 < x <= 2 (axle to axle)")
    track_m: float = Field(
        gt=0, le=2.0, description="a distance in metres, 0 < x <= 2 (left to right wheel centre)"
    )
    body_length_m: float = Field(gt=0, le=3.0, description="a length in metres, 0 < x <= 3")
    body_width_m: float = Field(gt=0, le=2.0, description="a width in metres, 0 < x <= 2")
    wheel_radius_m: float | None = Field(
        default=None,
        gt=0,
        le=0.5,
        description="a radius in metres, 0 < x <= 0.5 (camera height above ground)",
    )
    max_steer_deg: float = Field(
        gt=0, lt=60, description="an angle in degrees, 0 < x < 60 (front-wheel lock)"
    )
    max_speed_mps: float = Field(gt=0, le=50, description="a speed in m/s, 0 < x <= 50")
    max_accel_mps2: float = Field(gt=0, le=50, description="an acceleration in m/s², 0 < x <= 50")
    max_brake_mps2: float = Field(gt=0, le=50, description="a deceleration in m/s², 0 < x <= 50")
    max_steer_rate_dps: float = Field(
        gt=0, le=5000, description="a steering rate in degrees/s, 0 < x <= 5000"
    )
    actuation_latency_ms: float = Field(ge=0, le=1000, description="a delay in milliseconds, 0 <= x <= 1000")
    tyre_grip_g: float = Field(
        gt=0, le=3.0, description="lateral grip as a multiple of g, 0 < x <= 3 (most lateral acceleration)"
    )

    @model_validator(mode="after")
    def _body_holds_axles(self) -> VehicleConfig:
        # The body footprint is the car's collision box; axles outside it mean swapped or mistyped values.
        if self.body_length_m < self.wheelbase_m:
            raise ValueError(
                f"body_length_m ({self.body_length_m} m) is shorter than wheelbase_m ({self.wheelbase_m} m)"
            )
        return self


class CameraConfig(_Table):
    """`[camera]`: mount pose relative to the chassis origin, lens and image format."""

    # Bounds of ±2 m catch centimetres typed as metres on a model car.
    x_m: float = Field(ge=-2.0, le=2.0, description="metres forward of the chassis origin, -2 <= x <= 2")
    y_m: float = Field(ge=-2.0, le=2.0, description="metres left of the chassis origin, -2 <= x <= 2")
    z_m: float = Field(gt=0, le=2.0, description="metres above the chassis origin, 0 < x <= 2")
    pitch_deg: float = Field(ge=-30, le=89, description="downward tilt in degrees, -30 <= x <= 89")
    hfov_deg: float = Field(gt=10, lt=170, description="horizontal field of view in degrees, 10 < x < 170")
    width_px: int = Field(ge=8, le=4096, description="an image width in pixels, 8 <= x <= 4096")
    height_px: int = Field(ge=8, le=4096, description="an image height in pixels, 8 <= x <= 4096")
    grayscale: bool = Field(description="true or false")
    stereo_baseline_m: float = Field(
        default=0.0, ge=0, le=1.0, description="metres between stereo lenses, 0 (mono) <= x <= 1"
    )

    @property
    def is_stereo(self) -> bool:
        """Two cameras `stereo_baseline_m` apart along y, centred on (x_m, y_m, z_m)."""
        return self.stereo_baseline_m > 0

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view of a pinhole camera with square pixels, degrees."""
        half = math.radians(self.hfov_deg) / 2
        return math.degrees(2 * math.atan(math.tan(half) * self.height_px / self.width_px))


@dataclass(frozen=True, eq=False)
class VehicleParams:
    """The physics' view of a car: SI units only (m, rad, s). Built by `CarConfig.vehicle_params()`.

    `wheel_positions_m` is a read-only (4, 2) array of wheel centres relative to the chassis origin
    (x forward, y left), ordered front-left, front-right, rear-left, rear-right.
    """

    wheelbase_m: float
    track_m: float
    max_steer_rad: float
    max_speed_mps: float
    max_accel_mps2: float
    max_brake_mps2: float
    max_steer_rate_radps: float
    latency_s: float
    lateral_grip_mps2: float
    wheel_positions_m: np.ndarray = field(repr=False)


class CarConfig(_Table):
    """A whole car file; `hardware`, `safety`, `league` are the car runtime's raw tables (None if absent)."""

    car: CarInfo
    vehicle: VehicleConfig
    camera: CameraConfig
    hardware: dict[str, Any] | None = Field(
        default=None, description="a table (validated by the car runtime)"
    )
    safety: dict[str, Any] | None = Field(default=None, description="a table (validated by the car runtime)")
    league: dict[str, Any] | None = Field(default=None, description="a table (validated by the car runtime)")

    def vehicle_params(self) -> VehicleParams:
        """The vehicle limits in SI units for the dynamics."""
        v = self.vehicle
        half_wb, half_tr = v.wheelbase_m / 2, v.track_m / 2
        wheels = np.array(
            [[half_wb, half_tr], [half_wb, -half_tr], [-half_wb, half_tr], [-half_wb, -half_tr]],
            dtype=np.float64,
        )
        wheels.setflags(write=False)
        return VehicleParams(
            wheelbase_m=v.wheelbase_m,
            track_m=v.track_m,
            max_steer_rad=math.radians(v.max_steer_deg),
            max_speed_mps=v.max_speed_mps,
            max_accel_mps2=v.max_accel_mps2,
            max_brake_mps2=v.max_brake_mps2,
            max_steer_rate_radps=math.radians(v.max_steer_rate_dps),
            latency_s=v.actuation_latency_ms / 1000.0,
            lateral_grip_mps2=v.tyre_grip_g * STANDARD_GRAVITY_MPS2,
            wheel_positions_m=wheels,
        )


# --------------------------------------------------------------------------------------------- loading

_TABLE_MODELS: dict[str, type[BaseModel]] = {"car": CarInfo, "vehicle": VehicleConfig, "camera": CameraConfig}


def list_cars() -> list[str]:
    """Names of the car files shipped in `firmware_configs` (without `.toml`), sorted."""
    root = resources.files(_CONFIGS_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


def load_car(spec: str | Path) -> CarConfig:
    """Load a car: `spec` is a shipped car name (`deepracer`) or a path to a `.toml` file.

    Raises CarConfigError naming the file, the key and what was expected.
    """
    text, source = _read_spec(spec)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message carries "(at line L, column C)".
        raise CarConfigError(f"{source}: TOML syntax error: {exc}") from None
    return car_config_from_dict(data, source=source)


def car_config_from_dict(data: dict[str, Any], *, source: str = "<car config>") -> CarConfig:
    """Validate an already-parsed car config (e.g. embedded in another file); errors name `source`."""
    try:
        return CarConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(err, data) for err in exc.errors()]
        raise CarConfigError(f"{source}: invalid car config:\n  " + "\n  ".join(lines)) from None


def _read_spec(spec: str | Path) -> tuple[str, str]:
    """(file text, file name for messages) of a car name or path."""
    as_text = str(spec)
    is_path = isinstance(spec, Path) or as_text.endswith(".toml") or "/" in as_text or "\\" in as_text
    if is_path:
        path = Path(spec)
        if not path.is_file():
            raise CarConfigError(f"{path}: no such car config file")
        source, raw = str(path), path.read_bytes()
    else:
        resource = resources.files(_CONFIGS_PACKAGE) / f"{as_text}.toml"
        if not resource.is_file():
            choices = ", ".join(list_cars())
            raise CarConfigError(
                f"unknown car `{as_text}`: choose one of {choices}, or give a path to a .toml file"
            )
        source, raw = str(resource), resource.read_bytes()
    try:
        return raw.decode("utf-8"), source
    except UnicodeDecodeError as exc:
        raise CarConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None


def _describe_error(err: Any, data: dict[str, Any]) -> str:
    """One line for one pydantic error: the dotted key, what is wrong and what was expected."""
    loc = tuple(str(part) for part in err["loc"])
    key = ".".join(loc) if loc else "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _TABLE_MODELS.get(loc[0]) if len(loc) == 2 else CarConfig if len(loc) == 1 else None
        known = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else f" (expected one of {', '.join(known)})"
        what = "table" if len(loc) == 1 and isinstance(err.get("input"), dict) else "key"
        return f"unknown {what} `{key}`{hint}"
    # A cross-field check inside a table has the table as its location: its message says what to fix.
    expected = "" if kind == "value_error" else _expected(loc)
    if kind == "missing":
        return f"missing key `{key}`" + (f": expected {expected}" if expected else "")
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict) else ""
    msg = err["msg"].removeprefix("Value error, ")
    return f"`{key}`: {msg}{shown}" + (f"; expected {expected}" if expected else "")


def _expected(loc: tuple[str, ...]) -> str:
    """The field's description (what a valid value looks like), or '' for nested/unknown locations."""
    if len(loc) == 1 and loc[0] in _TABLE_MODELS:
        return "a table"
    model = _TABLE_MODELS.get(loc[0]) if len(loc) == 2 else CarConfig if len(loc) == 1 else None
    info = model.model_fields.get(loc[-1]) if model else None
    return (info.description or "") if info else ""
