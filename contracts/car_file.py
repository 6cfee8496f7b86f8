"""The car file: one `<car>.toml` per car, read by the simulator, the trainer and the car runtime.

`[car]`, `[vehicle]` and `[camera]` describe the car (the simulator reads only these: `load_car_config`); the
car runtime adds `[hardware]`, `[safety]` and `[league]` (`load_car_file` validates the whole file). Any other
top-level table, and any unknown key, is an error that names the file, the dotted key and what was expected.

Frame: the chassis origin is the mid-point between the front and rear axles, at axle height (so the ground is
`wheel_radius_m` below it); x forward, y left, z up; metres. Units are in key names (`wheelbase_m`,
`max_steer_deg`, `actuation_latency_ms`); pulse widths are microseconds (`*_us`), rates Hz, times ms or s as
named. The runtime tables:

```toml
[hardware]
backend = "pi"                 # one of contracts.vocabulary.HAL_BACKENDS
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

import difflib
import math
import sys
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.errors import CarFileError, CarTableError
from contracts.vocabulary import HAL_BACKENDS, HalBackend

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

STANDARD_GRAVITY_MPS2 = 9.81


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


#: Lens models of `[camera] lens`.
LENSES = ("pinhole", "fisheye")
#: Widest pinhole lens: beyond this the image edge is stretched out of use (tan grows without bound), degrees.
MAX_PINHOLE_HFOV_DEG = 170.0


def fisheye_distorted_angle(theta_rad: Any, k: tuple[float, float, float, float]) -> Any:
    """OpenCV's fisheye (equidistant, Kannala-Brandt) distortion: the distorted angle
    theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8), radians; a pixel sits
    f * theta_d from the principal point (float or numpy array)."""
    t2 = theta_rad * theta_rad
    return theta_rad * (1 + t2 * (k[0] + t2 * (k[1] + t2 * (k[2] + t2 * k[3]))))


class CameraConfig(_Table):
    """`[camera]`: mount pose relative to the chassis origin, lens and image format.

    `lens = "pinhole"` (the default) or `"fisheye"`: OpenCV's fisheye model (`cv2.fisheye`: equidistant with
    the distortion `fisheye_k = [k1, k2, k3, k4]`, square pixels, the principal point at the image centre),
    its focal length set by `hfov_deg` (the angle between the left and right edge of the centre row).
    """

    lens: str = Field(default="pinhole", description='the lens model, "pinhole" (default) or "fisheye"')
    # Bounds of ±2 m catch centimetres typed as metres on a model car.
    x_m: float = Field(ge=-2.0, le=2.0, description="metres forward of the chassis origin, -2 <= x <= 2")
    y_m: float = Field(ge=-2.0, le=2.0, description="metres left of the chassis origin, -2 <= x <= 2")
    z_m: float = Field(gt=0, le=2.0, description="metres above the chassis origin, 0 < x <= 2")
    pitch_deg: float = Field(ge=-30, le=89, description="downward tilt in degrees, -30 <= x <= 89")
    hfov_deg: float = Field(
        gt=10,
        lt=240,
        description="horizontal field of view in degrees, 10 < x < 170 (pinhole) or < 240 (fisheye)",
    )
    fisheye_k: tuple[float, float, float, float] | None = Field(
        default=None,
        description='OpenCV fisheye distortion [k1, k2, k3, k4] (only with lens = "fisheye"; '
        "[0, 0, 0, 0] is an ideal equidistant lens)",
    )
    width_px: int = Field(ge=8, le=4096, description="an image width in pixels, 8 <= x <= 4096")
    height_px: int = Field(ge=8, le=4096, description="an image height in pixels, 8 <= x <= 4096")
    grayscale: bool = Field(description="true or false")
    stereo_baseline_m: float = Field(
        default=0.0, ge=0, le=1.0, description="metres between stereo lenses, 0 (mono) <= x <= 1"
    )

    @field_validator("lens")
    @classmethod
    def _known_lens(cls, value: str) -> str:
        if value not in LENSES:
            raise ValueError('expected "pinhole" or "fisheye"')
        return value

    @field_validator("fisheye_k", mode="before")
    @classmethod
    def _array_is_a_tuple(cls, value: Any) -> Any:
        # TOML arrays arrive as lists; a tuple keeps the (frozen) table hashable
        if isinstance(value, (list, tuple)):
            if len(value) != 4:
                raise ValueError(f"has {len(value)} numbers, OpenCV's fisheye model takes four")
            return tuple(value)
        return value

    @field_validator("hfov_deg")
    @classmethod
    def _pinhole_fov(cls, value: float, info: Any) -> float:
        if info.data.get("lens", "pinhole") == "pinhole" and value >= MAX_PINHOLE_HFOV_DEG:
            raise ValueError(
                f"a pinhole lens sees less than {MAX_PINHOLE_HFOV_DEG:g}°; for a wider lens set "
                '`[camera] lens = "fisheye"` and its fisheye_k'
            )
        return value

    @model_validator(mode="after")
    def _lens_and_coefficients(self) -> CameraConfig:
        if self.lens == "pinhole":
            if self.fisheye_k is not None:
                raise ValueError(
                    '`[camera] lens` is "pinhole" (the default) but fisheye_k is set; expected '
                    'lens = "fisheye" with fisheye_k, or no fisheye_k'
                )
            return self
        if self.fisheye_k is None:
            raise ValueError(
                '`[camera] lens = "fisheye"` needs fisheye_k = [k1, k2, k3, k4] (OpenCV fisheye '
                "distortion; [0, 0, 0, 0] for an ideal equidistant lens)"
            )
        self._check_fisheye_monotonic()
        return self

    def _check_fisheye_monotonic(self) -> None:
        """Every pixel out to the image corners must see exactly one ray: theta_d increasing with theta up
        to the corner, and the corner's ray less than 180° off the axis."""
        assert self.fisheye_k is not None
        theta = np.linspace(0.0, math.pi, 4097)
        theta_d = fisheye_distorted_angle(theta, self.fisheye_k)
        rising = np.diff(theta_d) > 0
        limit = len(rising) if rising.all() else int(np.argmin(rising))  # first sample where it stops rising
        half = math.radians(self.hfov_deg) / 2
        edge_d = fisheye_distorted_angle(half, self.fisheye_k)
        corner_d = edge_d * math.hypot(self.width_px, self.height_px) / self.width_px
        if half < theta[limit] and edge_d > 0 and corner_d < theta_d[limit]:
            return
        setting = (
            f'`[camera] lens = "fisheye"` with fisheye_k = {list(self.fisheye_k)} and hfov_deg = '
            f"{self.hfov_deg:g}"
        )
        if limit == len(rising):
            problem = "the image corners would look more than 180° off the axis"
        else:
            problem = (
                "the distortion stops growing with the angle before the image corner (theta_d peaks at "
                f"{math.degrees(theta[limit]):.0f}° off the axis), so pixels there would see two rays"
            )
        raise ValueError(
            f"{setting}: {problem}; expected a calibrated lens's coefficients (in the order k1, k2, k3, k4) "
            "and an hfov_deg they map one to one out to the image corners"
        )

    @property
    def is_stereo(self) -> bool:
        """Two cameras `stereo_baseline_m` apart along y, centred on (x_m, y_m, z_m)."""
        return self.stereo_baseline_m > 0

    @property
    def focal_px(self) -> float:
        """Focal length (pixels) that puts the left and right image edges `hfov_deg` apart."""
        half_width_px, half = self.width_px / 2, math.radians(self.hfov_deg) / 2
        if self.lens == "fisheye":
            assert self.fisheye_k is not None
            return half_width_px / fisheye_distorted_angle(half, self.fisheye_k)
        return half_width_px / math.tan(half)

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view (square pixels, principal point at the centre), degrees."""
        if self.lens == "fisheye":
            assert self.fisheye_k is not None
            # invert theta_d on a fine grid (it rises up to the corners: `_check_fisheye_monotonic`)
            theta = np.linspace(0.0, math.pi, 1 << 16)
            theta_d = fisheye_distorted_angle(theta, self.fisheye_k)
            top = int(np.argmax(np.r_[np.diff(theta_d) <= 0, True]))
            half_d = self.height_px / 2 / self.focal_px
            return math.degrees(2 * float(np.interp(half_d, theta_d[: top + 1], theta[: top + 1])))
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
    """A car file as the simulator reads it; `hardware`, `safety`, `league` are the car runtime's raw
    tables (None if absent; `load_car_file` validates them)."""

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


# --------------------------------------------------------------------------------------------- runtime tables

#: hobby servos and ESCs take 500-2500 µs pulses; outside that a value is a typo (ms, or a duty count)
_PULSE = {"ge": 500, "le": 2500}


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

    backend: HalBackend = Field(default="sim", description=f"one of {', '.join(HAL_BACKENDS)}")
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


class CarFile(BaseModel):
    """A whole car file, every table validated (`load_car_file`); `car` keeps the runtime tables raw."""

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


_RUNTIME_MODELS: dict[str, type[BaseModel]] = {
    "hardware": HardwareConfig,
    "safety": SafetyConfig,
    "league": LeagueConfig,
}
_TABLE_MODELS: dict[str, type[BaseModel]] = {"car": CarInfo, "vehicle": VehicleConfig, "camera": CameraConfig}


def load_car_file(path: str | Path) -> CarFile:
    """Read and validate a whole car file (every table; absent runtime tables take their defaults, an absent
    `[league]` is None). CarFileError names the file and the dotted key; an invalid runtime table, or a
    throttle cap that does not fit the throttle pulses, is a CarTableError."""
    car = load_car_config(path)
    source = str(path)
    tables = {}
    for name, model in _RUNTIME_MODELS.items():
        raw = getattr(car, name)
        if raw is None:
            tables[name] = None if name == "league" else model()
            continue
        tables[name] = validate_table(model, raw, name, source)
    check_throttle_cap(tables["hardware"], tables["safety"], source)
    return CarFile(path=Path(path), car=car, **tables)


def load_car_config(path: str | Path) -> CarConfig:
    """Read a car file's `[car]`, `[vehicle]` and `[camera]` (the runtime tables are kept raw).

    CarFileError names the file, the key and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise CarFileError(f"{path}: no such car config file")
    return parse_car_config(path.read_bytes(), source=str(path))


def parse_car_config(raw: bytes, *, source: str) -> CarConfig:
    """`load_car_config` of a car file's bytes (UTF-8 TOML); errors name `source`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CarFileError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message carries "(at line L, column C)".
        raise CarFileError(f"{source}: TOML syntax error: {exc}") from None
    return car_config_from_dict(data, source=source)


def car_config_from_dict(data: dict[str, Any], *, source: str = "<car config>") -> CarConfig:
    """Validate an already-parsed car config (e.g. embedded in another file); errors name `source`."""
    try:
        return CarConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(err, data) for err in exc.errors()]
        raise CarFileError(f"{source}: invalid car config:\n  " + "\n  ".join(lines)) from None


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


def check_throttle_cap(hardware: HardwareConfig, safety: SafetyConfig, source: str) -> None:
    """CarTableError (naming `source`, both keys and their values) unless `[safety]`'s
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
    raise CarTableError(
        f"{source}: `safety.throttle_cap_us` ({cap} µs) {problem}; expected a pulse between neutral_us "
        f"({t.neutral_us} µs, excluded) and forward_us ({t.forward_us} µs, included)"
    )


def validate_table(model: type[BaseModel], raw: dict[str, Any], table: str, source: str) -> Any:
    """`model` from a raw table; errors name `source` and the dotted key (`hardware.steering.left_us`)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(err, table) for err in exc.errors()]
        raise CarTableError(f"{source}: invalid [{table}]:\n  " + "\n  ".join(lines)) from None


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
