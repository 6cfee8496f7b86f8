"""The car runtime's tables of a car file: `[hardware]`, `[safety]`, `[league]`, and the credentials file.

`firmware_configs.schema` validates `[car]`/`[vehicle]`/`[camera]` and keeps the runtime tables raw; this module
validates them with pydantic (`extra="forbid"`): an unknown key is an error naming the file and the dotted key.
Pulse widths are microseconds (`*_us`), rates Hz, times ms or s as named.

```toml
[hardware]
backend = "pi"                 # sim | mock | pi | jetson | usb
control_rate_hz = 15.0
[hardware.pca9685]
i2c_address = 0x40
frequency_hz = 60
steering_channel = 0
throttle_channel = 1
[hardware.steering]            # servo pulse at full left lock, centre, full right lock
left_us = 1900
centre_us = 1500
right_us = 1100
[hardware.throttle]            # ESC pulse at full reverse, neutral (stopped), full forward
reverse_us = 1000
neutral_us = 1500
forward_us = 2000
[hardware.speed_table]         # measured speed at each throttle pulse; both strictly monotonic
throttle_us = [1500, 1560, 1620, 1700]
speed_mps = [0.0, 1.0, 2.0, 3.5]

[safety]
watchdog_ms = 200
throttle_cap_us = 1650
estop_key = " "
estop_pin = 27                 # optional GPIO (BCM) push button

[league]
broker_url = "mqtts://league.example:8883"
league = "office-cup"
car_id = "car-7"
credentials_file = "car-7.credentials.toml"   # relative to the car file
[league.tls]
ca_file = "ca.pem"
```
"""

from __future__ import annotations

import json
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from device.errors import CarRuntimeConfigError
from device.protocol import CarCredentialsFile
from firmware_configs.schema import CarConfig, load_car

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

BACKENDS = ("sim", "mock", "pi", "jetson", "usb")
Backend = Literal["sim", "mock", "pi", "jetson", "usb"]
#: hobby servos and ESCs take 500-2500 µs pulses; outside that a value is a typo (ms, or a duty count)
_PULSE = {"ge": 500, "le": 2500}


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Pca9685Config(_Table):
    """`[hardware.pca9685]`: the PWM board driving the servo and the ESC."""

    i2c_address: int = Field(default=0x40, ge=0x03, le=0x77, description="a 7-bit I2C address, e.g. 0x40")
    frequency_hz: int = Field(default=60, ge=24, le=1526, description="PWM frequency in Hz, 24..1526")
    steering_channel: int = Field(default=0, ge=0, le=15, description="a channel 0..15")
    throttle_channel: int = Field(default=1, ge=0, le=15, description="a channel 0..15")

    @model_validator(mode="after")
    def _distinct(self) -> Pca9685Config:
        if self.steering_channel == self.throttle_channel:
            raise ValueError(f"steering_channel and throttle_channel are both {self.steering_channel}")
        return self


class SteeringConfig(_Table):
    """`[hardware.steering]`: servo pulse widths (µs) at full left lock, centre and full right lock."""

    left_us: int = Field(default=1900, **_PULSE, description="a pulse width in µs, 500..2500")
    centre_us: int = Field(default=1500, **_PULSE, description="a pulse width in µs, 500..2500")
    right_us: int = Field(default=1100, **_PULSE, description="a pulse width in µs, 500..2500")

    @model_validator(mode="after")
    def _centre_between(self) -> SteeringConfig:
        lo, hi = sorted((self.left_us, self.right_us))
        if not lo < self.centre_us < hi:
            raise ValueError(
                f"centre_us ({self.centre_us} µs) must lie strictly between left_us ({self.left_us} µs) "
                f"and right_us ({self.right_us} µs)"
            )
        return self


class ThrottleConfig(_Table):
    """`[hardware.throttle]`: ESC pulse widths (µs) at full reverse, neutral (stopped) and full forward."""

    reverse_us: int = Field(default=1000, **_PULSE, description="a pulse width in µs, 500..2500")
    neutral_us: int = Field(default=1500, **_PULSE, description="a pulse width in µs, 500..2500")
    forward_us: int = Field(default=2000, **_PULSE, description="a pulse width in µs, 500..2500")

    @model_validator(mode="after")
    def _neutral_between(self) -> ThrottleConfig:
        lo, hi = sorted((self.reverse_us, self.forward_us))
        if not lo < self.neutral_us < hi:
            raise ValueError(
                f"neutral_us ({self.neutral_us} µs) must lie strictly between reverse_us "
                f"({self.reverse_us} µs) and forward_us ({self.forward_us} µs)"
            )
        return self

    @property
    def forward_sign(self) -> int:
        """+1 when forward pulses are longer than neutral (most ESCs), -1 when reversed."""
        return 1 if self.forward_us > self.neutral_us else -1


class SpeedTable(_Table):
    """`[hardware.speed_table]`: the car's measured speed (m/s) at each forward throttle pulse (µs).

    Both lists strictly monotonic, same length >= 2; the first entry is usually (neutral_us, 0.0).
    """

    throttle_us: list[int] = Field(min_length=2, max_length=64, description="a list of pulse widths in µs")
    speed_mps: list[float] = Field(min_length=2, max_length=64, description="a list of speeds in m/s")

    @model_validator(mode="after")
    def _monotonic(self) -> SpeedTable:
        if len(self.throttle_us) != len(self.speed_mps):
            raise ValueError(
                f"throttle_us has {len(self.throttle_us)} entries but speed_mps has {len(self.speed_mps)}"
            )
        speeds = self.speed_mps
        if any(b <= a for a, b in pairwise(speeds)) or speeds[0] < 0:
            raise ValueError(f"speed_mps must be >= 0 and strictly increasing, got {speeds}")
        pulses = self.throttle_us
        up = all(b > a for a, b in pairwise(pulses))
        down = all(b < a for a, b in pairwise(pulses))
        if not (up or down):
            raise ValueError(f"throttle_us must be strictly monotonic, got {pulses}")
        return self


def _default_speed_table() -> SpeedTable:
    return SpeedTable(throttle_us=[1500, 1600, 1700], speed_mps=[0.0, 1.5, 3.0])


class CameraDeviceConfig(_Table):
    """`[hardware.camera]`: which physical camera (the image geometry comes from the car's `[camera]`)."""

    device: int | str = Field(default=0, description="USB: a V4L2 index or /dev/videoN path")
    sensor_id: int = Field(default=0, ge=0, le=7, description="Jetson CSI sensor-id / Pi camera number")
    capture_width_px: int = Field(default=1280, ge=8, le=8192, description="sensor mode width in pixels")
    capture_height_px: int = Field(default=720, ge=8, le=8192, description="sensor mode height in pixels")
    capture_fps: int = Field(default=30, ge=1, le=240, description="sensor frame rate in frames/s")


class LapGateConfig(_Table):
    """`[hardware.lap_gate]`: a beam break or pressure strip on a GPIO pin (BCM numbering)."""

    pin: int = Field(ge=0, le=40, description="a BCM GPIO number, 0..40")
    active_high: bool = Field(default=False, description="true if the input reads high while triggered")
    debounce_ms: float = Field(default=20.0, ge=0, le=1000, description="contact debounce in ms, 0..1000")
    min_lap_s: float = Field(default=2.0, gt=0, le=600, description="crossings closer than this are ignored")


class HardwareConfig(_Table):
    """`[hardware]`."""

    backend: Backend = Field(default="sim", description=f"one of {', '.join(BACKENDS)}")
    control_rate_hz: float = Field(default=15.0, ge=1, le=200, description="loop rate in Hz, 1..200")
    pca9685: Pca9685Config = Field(default_factory=Pca9685Config, description="a table")
    steering: SteeringConfig = Field(default_factory=SteeringConfig, description="a table")
    throttle: ThrottleConfig = Field(default_factory=ThrottleConfig, description="a table")
    speed_table: SpeedTable = Field(default_factory=_default_speed_table, description="a table")
    camera: CameraDeviceConfig = Field(default_factory=CameraDeviceConfig, description="a table")
    lap_gate: LapGateConfig | None = Field(default=None, description="a table")

    @model_validator(mode="after")
    def _table_is_forward(self) -> HardwareConfig:
        t = self.throttle
        lo, hi = sorted((t.neutral_us, t.forward_us))
        pulses = self.speed_table.throttle_us
        outside = [p for p in pulses if not lo <= p <= hi]
        if outside:
            raise ValueError(
                f"speed_table.throttle_us {outside} lie outside neutral_us..forward_us ({lo}..{hi} µs)"
            )
        # speeds increase along the table, so its pulses must move from neutral toward forward
        if (pulses[-1] - pulses[0]) * t.forward_sign < 0:
            raise ValueError(
                f"speed_table.throttle_us {pulses} runs from forward_us ({t.forward_us} µs) toward "
                f"neutral_us ({t.neutral_us} µs); expected it to run from neutral toward forward, as "
                "speed_mps increases"
            )
        return self

    @model_validator(mode="after")
    def _pulses_fit_the_pwm_period(self) -> HardwareConfig:
        # a pulse as long as the PWM period is a constant high level: the servo or ESC sees no pulse at all
        period_us = 1_000_000 / self.pca9685.frequency_hz
        pulses = {
            f"{table}.{name}": getattr(getattr(self, table), name)
            for table, names in (
                ("steering", SteeringConfig.model_fields),
                ("throttle", ThrottleConfig.model_fields),
            )
            for name in names
        }
        key, longest = max(pulses.items(), key=lambda item: item[1])
        if longest >= period_us:
            raise ValueError(
                f"{key} ({longest} µs) does not fit in one period of pca9685.frequency_hz "
                f"({self.pca9685.frequency_hz} Hz = {period_us:.0f} µs); expected every pulse shorter "
                "than the period (servos and ESCs take 50-60 Hz)"
            )
        return self


class SafetyConfig(_Table):
    """`[safety]`."""

    watchdog_ms: float = Field(
        default=200.0, ge=20, le=2000, description="stale-command limit in ms, 20..2000 (default 200)"
    )
    throttle_cap_us: int | None = Field(
        default=None, **_PULSE, description="the most forward throttle pulse allowed, µs (500..2500)"
    )
    estop_key: str | None = Field(
        default=" ", min_length=1, max_length=1, description="one key that stops the car (default: space)"
    )
    rearm_key: str = Field(default="r", min_length=1, max_length=1, description="one key that re-arms")
    estop_pin: int | None = Field(default=None, ge=0, le=40, description="a BCM GPIO push button, 0..40")
    estop_pin_pull_up: bool = Field(default=True, description="true: the button pulls the pin to ground")
    allow_remote_rearm: bool = Field(
        default=False, description="true lets an MQTT `rearm` command re-arm (a person must be at the car)"
    )

    @model_validator(mode="after")
    def _keys_differ(self) -> SafetyConfig:
        if self.estop_key is not None and self.estop_key == self.rearm_key:
            raise ValueError(
                f"estop_key and rearm_key are both {self.estop_key!r}: the key that stops the car must not "
                "also re-arm it"
            )
        return self


class TlsConfig(_Table):
    """`[league.tls]`: for an `mqtts://` broker (paths relative to the car file)."""

    ca_file: str | None = Field(default=None, description="a CA bundle path (PEM)")
    cert_file: str | None = Field(default=None, description="a client certificate path (PEM)")
    key_file: str | None = Field(default=None, description="a client key path (PEM)")
    insecure: bool = Field(default=False, description="true skips the broker hostname check (testing only)")


class LeagueConfig(_Table):
    """`[league]`."""

    broker_url: str = Field(description="mqtt://host[:port] or mqtts://host[:port]")
    league: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the league id (letters, digits, - _)")
    car_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="this car's id (letters, digits, - _)")
    credentials_file: str | None = Field(
        default=None, description="a TOML/JSON file with mqtt_username, mqtt_password, hmac_secret"
    )
    tls: TlsConfig | None = Field(default=None, description="a table")
    telemetry_hz: float = Field(default=2.0, ge=0, le=50, description="telemetry messages per second, 0..50")
    outbox_path: str | None = Field(
        default=None, description="the SQLite lap outbox (default: beside the car file)"
    )

    @field_validator("broker_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_broker_url(value)
        return value


# The credentials file is the league server's provisioning document: one model, shared through the protocol.
Credentials = CarCredentialsFile


def parse_broker_url(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of ``mqtt://host[:port]`` / ``mqtts://host[:port]`` (ports 1883 / 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"expected mqtt://host[:port] or mqtts://host[:port], got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    tls = parts.scheme == "mqtts"
    return parts.hostname, port or (8883 if tls else 1883), tls


class RuntimeConfig(BaseModel):
    """A whole car file as the car runtime sees it."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    car: CarConfig
    hardware: HardwareConfig
    safety: SafetyConfig
    league: LeagueConfig | None

    def resolve(self, relative: str) -> Path:
        """A path from the car file, relative to the car file's folder (``~`` expanded)."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.path.parent / p


_TABLE_MODELS: dict[str, type[BaseModel]] = {
    "hardware": HardwareConfig,
    "safety": SafetyConfig,
    "league": LeagueConfig,
}


def load_runtime_config(path: str | Path) -> RuntimeConfig:
    """Read and validate a car file (all tables). CarRuntimeConfigError names the file and the dotted key.

    The `[car]`/`[vehicle]`/`[camera]` errors come from `firmware_configs.schema` (CarConfigError).
    """
    car = load_car(Path(path))
    source = str(path)
    tables = {}
    for name, model in _TABLE_MODELS.items():
        raw = getattr(car, name)
        if raw is None:
            tables[name] = None if name == "league" else model()
            continue
        tables[name] = validate_table(model, raw, name, source)
    check_throttle_cap(tables["hardware"], tables["safety"], source)
    return RuntimeConfig(path=Path(path), car=car, **tables)


def check_throttle_cap(hardware: HardwareConfig, safety: SafetyConfig, source: str) -> None:
    """CarRuntimeConfigError (naming `source`, both keys and their values) unless `[safety]`'s
    throttle_cap_us lies past neutral_us and at most at forward_us, in the ESC's forward direction (µs).

    A cap beyond the full-forward pulse caps nothing; a cap at or behind neutral would turn every forward
    command, and neutral itself, into that pulse: the car could not drive, or would reverse.
    """
    cap, t = safety.throttle_cap_us, hardware.throttle
    if cap is None:
        return
    beyond_forward = (cap - t.forward_us) * t.forward_sign > 0
    past_neutral = (cap - t.neutral_us) * t.forward_sign > 0
    if past_neutral and not beyond_forward:
        return
    if beyond_forward:
        problem = (
            f"is beyond `hardware.throttle.forward_us` ({t.forward_us} µs), the ESC's full-forward pulse, "
            "so it caps nothing"
        )
    else:
        problem = (
            f"is not past `hardware.throttle.neutral_us` ({t.neutral_us} µs) toward forward, so the car "
            "could not drive forward"
        )
    raise CarRuntimeConfigError(
        f"{source}: `safety.throttle_cap_us` ({cap} µs) {problem}; expected a pulse between neutral_us "
        f"({t.neutral_us} µs, excluded) and forward_us ({t.forward_us} µs, included)"
    )


def validate_table(model: type[BaseModel], raw: dict[str, Any], table: str, source: str) -> Any:
    """`model` from a raw table; errors name `source` and the dotted key (`hardware.steering.left_us`)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(err, table) for err in exc.errors()]
        raise CarRuntimeConfigError(f"{source}: invalid [{table}]:\n  " + "\n  ".join(lines)) from None


def _describe(err: Any, table: str) -> str:
    # pydantic puts tagged/union members in loc (e.g. 'int'); keep only the keys a person wrote
    loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and p in ("int", "str", "float"))]
    key = ".".join([table, *loc])
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown key `{key}`"
    if kind == "missing":
        return f"missing key `{key}`"
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"`{key}`: {err['msg'].removeprefix('Value error, ')}{shown}"


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
