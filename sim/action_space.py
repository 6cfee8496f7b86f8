"""DeepRacer action spaces and `model_metadata.json`, read and written unchanged.

Two forms, degrees and m/s:
- discrete: a list of `{"steering_angle": deg, "speed": m/s}`; the action is the index into the list;
- continuous: `{"steering_angle": {"low", "high"}, "speed": {"low", "high"}}`; the policy outputs two
  numbers in [-1, 1], mapped linearly to [low, high] (clipped first: any output is a legal command).

Positive steering turns left. These are the commands the policy asks for; the simulator later clips them to
the car's own limits (its `[vehicle]` table), as DeepRacer's simulator clips to ±30° and 4 m/s.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from gymnasium import spaces
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts.vocabulary import CAMERA_KINDS, DEEPRACER_SENSORS, LIDAR_KINDS
from sim.errors import ActionSpaceError

logger = logging.getLogger(__name__)

# Wider than any model car's lock: the real limit is the car's `max_steer_deg`, applied by the simulator.
MAX_ABS_STEERING_DEG = 60.0

#: DeepRacer's model_metadata.json `sensor` names of cameras and of lidars
CAMERA_SENSORS = tuple(name for name, kind in DEEPRACER_SENSORS.items() if kind in CAMERA_KINDS)
LIDAR_SENSORS = tuple(name for name, kind in DEEPRACER_SENSORS.items() if kind in LIDAR_KINDS)
NEURAL_NETWORKS = (
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "DEEP_CONVOLUTIONAL_NETWORK",
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP",
)


def _number(value: Any, key: str) -> float:
    # bool is an int in Python, but `"speed": true` in a JSON file is a mistake, not 1 m/s.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ActionSpaceError(f"`{key}`: expected a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ActionSpaceError(f"`{key}`: expected a finite number, got {value!r}")
    return x


def _steering(value: Any, key: str) -> float:
    x = _number(value, key)
    if abs(x) > MAX_ABS_STEERING_DEG:
        raise ActionSpaceError(f"`{key}`: expected a steering angle in degrees within ±60, got {x:g}")
    return x


def _speed(value: Any, key: str) -> float:
    x = _number(value, key)
    if x <= 0:
        raise ActionSpaceError(f"`{key}`: expected a speed in m/s > 0, got {x:g}")
    return x


@dataclass(frozen=True)
class DiscreteActionSpace:
    """A list of (steering_deg, speed_mps) pairs; action i is `actions[i]`. At least 2, no duplicates."""

    actions: tuple[tuple[float, float], ...]
    _steering_deg: np.ndarray = field(init=False, repr=False, compare=False)
    _speed_mps: np.ndarray = field(init=False, repr=False, compare=False)

    kind: ClassVar[str] = "discrete"

    def __post_init__(self) -> None:
        pairs = []
        for i, action in enumerate(self.actions):
            try:
                steer, speed = action
            except (TypeError, ValueError):
                raise ActionSpaceError(f"`action_space[{i}]`: expected (steering_deg, speed_mps)") from None
            pairs.append(
                (
                    _steering(steer, f"action_space[{i}].steering_angle"),
                    _speed(speed, f"action_space[{i}].speed"),
                )
            )
        if len(pairs) < 2:
            raise ActionSpaceError(
                f"`action_space`: a discrete action space needs at least 2 actions, got {len(pairs)}"
            )
        first_seen: dict[tuple[float, float], int] = {}
        for i, pair in enumerate(pairs):
            if pair in first_seen:
                raise ActionSpaceError(
                    f"`action_space[{i}]`: duplicates action_space[{first_seen[pair]}] "
                    f"(steering {pair[0]:g} deg, speed {pair[1]:g} m/s)"
                )
            first_seen[pair] = i
        object.__setattr__(self, "actions", tuple(pairs))
        # Lookup tables for batched decoding; read-only so a frozen space stays frozen.
        for name, column in (("_steering_deg", 0), ("_speed_mps", 1)):
            arr = np.array([p[column] for p in pairs], dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def max_speed_mps(self) -> float:
        """The fastest action's speed, m/s."""
        return float(self._speed_mps.max())

    def gym_space(self) -> spaces.Discrete:
        """`Discrete(n)`: the policy outputs an action index."""
        return spaces.Discrete(len(self.actions))

    def decode(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices (n,) -> (steering_deg (n,), speed_mps (n,)) float64."""
        idx = np.atleast_1d(np.asarray(actions))
        if idx.ndim != 1:
            raise ActionSpaceError(f"discrete actions must have shape (n,), got {idx.shape}")
        if not np.issubdtype(idx.dtype, np.integer):
            # Some policies hand back whole numbers as floats; anything else is a bug upstream.
            if not (
                np.issubdtype(idx.dtype, np.floating)
                and np.all(np.isfinite(idx))
                and np.all(idx == np.round(idx))
            ):
                raise ActionSpaceError(f"discrete actions must be integer indices, got dtype {idx.dtype}")
            idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self.actions)):
            raise ActionSpaceError(
                f"action index out of range 0..{len(self.actions) - 1}: {idx.min()}..{idx.max()}"
            )
        return self._steering_deg[idx], self._speed_mps[idx]

    def encode_nearest(self, steering_deg: np.ndarray, speed_mps: np.ndarray) -> np.ndarray:
        """The index (n,) int64 of the action nearest each (steering_deg, speed_mps) command.

        Distance is measured with each axis scaled by the spread of the action list, so 15° and 1 m/s weigh
        alike in a list spanning ±30° and 1-3 m/s.
        """
        steer = np.atleast_1d(np.asarray(steering_deg, dtype=np.float64))
        speed = np.atleast_1d(np.asarray(speed_mps, dtype=np.float64))
        steer, speed = np.broadcast_arrays(steer, speed)
        steer_scale = np.ptp(self._steering_deg) or 1.0
        speed_scale = np.ptp(self._speed_mps) or 1.0
        d2 = ((steer[:, None] - self._steering_deg[None]) / steer_scale) ** 2 + (
            (speed[:, None] - self._speed_mps[None]) / speed_scale
        ) ** 2
        return np.argmin(d2, axis=1).astype(np.int64)

    def to_json(self) -> list[dict[str, float]]:
        """DeepRacer's `action_space` list."""
        return [{"steering_angle": s, "speed": v} for s, v in self.actions]

    def describe(self) -> str:
        """One line, e.g. `discrete, 10 actions: steering -30 to 30 deg, speed 1 to 2 m/s`."""
        s, v = self._steering_deg, self._speed_mps
        return (
            f"discrete, {len(self.actions)} actions: steering {s.min():g} to {s.max():g} deg, "
            f"speed {v.min():g} to {v.max():g} m/s"
        )


@dataclass(frozen=True)
class ContinuousActionSpace:
    """Steering in [low, high] degrees and speed in [low, high] m/s; low < high."""

    steering_deg_low: float
    steering_deg_high: float
    speed_mps_low: float
    speed_mps_high: float

    kind: ClassVar[str] = "continuous"

    def __post_init__(self) -> None:
        values = {
            "steering_deg_low": _steering(self.steering_deg_low, "action_space.steering_angle.low"),
            "steering_deg_high": _steering(self.steering_deg_high, "action_space.steering_angle.high"),
            "speed_mps_low": _speed(self.speed_mps_low, "action_space.speed.low"),
            "speed_mps_high": _speed(self.speed_mps_high, "action_space.speed.high"),
        }
        for name, low, high in (("steering_angle", "steering_deg_low", "steering_deg_high"),
                                ("speed", "speed_mps_low", "speed_mps_high")):  # fmt: skip
            if not values[low] < values[high]:
                raise ActionSpaceError(
                    f"`action_space.{name}.low` must be below `action_space.{name}.high`, "
                    f"got low {values[low]:g} and high {values[high]:g}"
                )
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def max_speed_mps(self) -> float:
        """The top of the speed range, m/s."""
        return self.speed_mps_high

    def gym_space(self) -> spaces.Box:
        """`Box(-1, 1, (2,), float32)`: normalised (steering, speed) commands."""
        return spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def decode(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised commands (n, 2), clipped to [-1, 1] -> (steering_deg (n,), speed_mps (n,)) float64."""
        u = np.asarray(actions, dtype=np.float64)
        if u.shape == (2,):
            u = u[None]
        if u.ndim != 2 or u.shape[1] != 2:
            raise ActionSpaceError(f"continuous actions must have shape (n, 2), got {u.shape}")
        if np.isnan(u).any():
            raise ActionSpaceError("continuous actions contain NaN (the policy's output diverged)")
        t = (np.clip(u, -1.0, 1.0) + 1.0) * 0.5
        lo = np.array([self.steering_deg_low, self.speed_mps_low])
        hi = np.array([self.steering_deg_high, self.speed_mps_high])
        # The final clip absorbs rounding: lo + 1.0 * (hi - lo) can land an ulp above hi.
        out = np.clip(lo + t * (hi - lo), lo, hi)
        return out[:, 0].copy(), out[:, 1].copy()

    def encode_nearest(self, steering_deg: np.ndarray, speed_mps: np.ndarray) -> np.ndarray:
        """(steering_deg, speed_mps) commands -> normalised actions (n, 2) float32, clipped into the range."""
        steer = np.atleast_1d(np.asarray(steering_deg, dtype=np.float64))
        speed = np.atleast_1d(np.asarray(speed_mps, dtype=np.float64))
        steer, speed = np.broadcast_arrays(steer, speed)
        u_steer = (
            2.0 * (steer - self.steering_deg_low) / (self.steering_deg_high - self.steering_deg_low) - 1.0
        )
        u_speed = 2.0 * (speed - self.speed_mps_low) / (self.speed_mps_high - self.speed_mps_low) - 1.0
        return np.clip(np.stack([u_steer, u_speed], axis=1), -1.0, 1.0).astype(np.float32)

    def to_json(self) -> dict[str, dict[str, float]]:
        """DeepRacer's continuous `action_space` object."""
        return {
            "steering_angle": {"low": self.steering_deg_low, "high": self.steering_deg_high},
            "speed": {"low": self.speed_mps_low, "high": self.speed_mps_high},
        }

    def describe(self) -> str:
        """One line, e.g. `continuous: steering -30 to 30 deg, speed 0.5 to 2.5 m/s`."""
        return (
            f"continuous: steering {self.steering_deg_low:g} to {self.steering_deg_high:g} deg, "
            f"speed {self.speed_mps_low:g} to {self.speed_mps_high:g} m/s"
        )


ActionSpace = DiscreteActionSpace | ContinuousActionSpace

# DeepRacer console's classic default shape: 5 steering angles × 2 speeds, index order steering-major.
DEFAULT_ACTION_SPACE = DiscreteActionSpace(
    tuple((steer, speed) for steer in (-30.0, -15.0, 0.0, 15.0, 30.0) for speed in (1.0, 2.0))
)


def parse_action_space(obj: Any, *, kind: str | None = None, source: str = "action space") -> ActionSpace:
    """An action space from DeepRacer's JSON form (list = discrete, object = continuous).

    `kind` ("discrete" | "continuous", from `action_space_type`) must match the form when given. Errors are
    ActionSpaceError starting with `source` and naming the key.
    """
    try:
        return _parse_space(obj, kind)
    except ActionSpaceError as exc:
        raise ActionSpaceError(f"{source}: {exc}") from None


def _parse_space(obj: Any, kind: str | None) -> ActionSpace:
    if kind is not None and kind not in ("discrete", "continuous"):
        raise ActionSpaceError(f"`action_space_type`: expected 'discrete' or 'continuous', got {kind!r}")
    if isinstance(obj, (DiscreteActionSpace, ContinuousActionSpace)):
        space: ActionSpace = obj
    elif isinstance(obj, (list, tuple)):
        space = _parse_discrete(obj)
    elif isinstance(obj, dict):
        space = _parse_continuous(obj)
    else:
        raise ActionSpaceError(
            "`action_space`: expected a list of {steering_angle, speed} objects (discrete) or "
            f"{{steering_angle: {{low, high}}, speed: {{low, high}}}} (continuous), got {type(obj).__name__}"
        )
    if kind is not None and space.kind != kind:
        raise ActionSpaceError(
            f"`action_space_type` is {kind!r} but `action_space` is written in the {space.kind} form"
        )
    return space


def _parse_discrete(items: list[Any] | tuple[Any, ...]) -> DiscreteActionSpace:
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ActionSpaceError(
                f"`action_space[{i}]`: expected an object {{steering_angle, speed}}, got {item!r}"
            )
        # Other keys ("index", ...) are tolerated: DeepRacer's console writes them; the position is the index.
        for key in ("steering_angle", "speed"):
            if key not in item:
                raise ActionSpaceError(f"`action_space[{i}].{key}`: missing")
        pairs.append((item["steering_angle"], item["speed"]))
    return DiscreteActionSpace(tuple(pairs))


def _parse_continuous(obj: dict[str, Any]) -> ContinuousActionSpace:
    bounds: dict[str, float] = {}
    _check_keys(obj, ("steering_angle", "speed"), "action_space")
    for name in ("steering_angle", "speed"):
        rng = obj[name]
        if not isinstance(rng, dict):
            raise ActionSpaceError(f"`action_space.{name}`: expected an object {{low, high}}, got {rng!r}")
        _check_keys(rng, ("low", "high"), f"action_space.{name}")
        bounds[f"{name}.low"], bounds[f"{name}.high"] = rng["low"], rng["high"]
    return ContinuousActionSpace(
        bounds["steering_angle.low"], bounds["steering_angle.high"], bounds["speed.low"], bounds["speed.high"]
    )


def _check_keys(obj: dict[str, Any], expected: tuple[str, ...], where: str) -> None:
    for key in obj:
        if key not in expected:
            close = difflib.get_close_matches(str(key), expected, n=1, cutoff=0.6)
            hint = f" (did you mean `{close[0]}`?)" if close else f" (expected {', '.join(expected)})"
            raise ActionSpaceError(f"unknown key `{where}.{key}`{hint}")
    for key in expected:
        if key not in obj:
            raise ActionSpaceError(f"`{where}.{key}`: missing")


# --------------------------------------------------------------------------------------- model_metadata.json


class ModelMetadata(BaseModel):
    """DeepRacer's `model_metadata.json`. `action_space` accepts the JSON forms or a parsed space."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # Declared before action_space so its validator can check the form against it.
    action_space_type: Literal["discrete", "continuous"] = "discrete"
    action_space: SkipValidation[ActionSpace]
    training_algorithm: Literal["clipped_ppo", "sac"] = "clipped_ppo"
    neural_network: Literal[
        "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "DEEP_CONVOLUTIONAL_NETWORK", "DEEP_CONVOLUTIONAL_NETWORK_DEEP"
    ] = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    # strict=False: JSON gives a list, the frozen model keeps a tuple.
    sensor: tuple[str, ...] = Field(default=("FRONT_FACING_CAMERA",), strict=False)
    lidar_config: dict[str, Any] | None = None
    version: str | int | float | None = None

    @model_validator(mode="before")
    @classmethod
    def _infer_type(cls, data: Any) -> Any:
        # Files written before continuous spaces existed have no `action_space_type` and a list: "discrete" is
        # right for them. An object-form space without the key can only mean continuous.
        if (
            isinstance(data, dict)
            and "action_space_type" not in data
            and isinstance(data.get("action_space"), dict)
        ):
            data = {**data, "action_space_type": "continuous"}
        return data

    @field_validator("action_space", mode="before")
    @classmethod
    def _parse_space(cls, value: Any, info: Any) -> ActionSpace:
        kind = info.data.get("action_space_type")  # absent when it failed its own validation
        # ActionSpaceError is a ValueError: pydantic reports it under `action_space`, message intact.
        return _parse_space(value, kind)

    @field_validator("sensor")
    @classmethod
    def _check_sensors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = CAMERA_SENSORS + LIDAR_SENSORS
        for name in value:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]}?" if close else f"expected one of {', '.join(known)}"
                raise ValueError(f"unknown sensor {name!r} ({hint})")
        if len(set(value)) != len(value):
            raise ValueError(f"a sensor is listed twice: {list(value)}")
        cameras = [s for s in value if s in CAMERA_SENSORS]
        lidars = [s for s in value if s in LIDAR_SENSORS]
        if len(cameras) != 1:
            raise ValueError(f"expected exactly one camera ({' or '.join(CAMERA_SENSORS)}), got {cameras}")
        if len(lidars) > 1:
            raise ValueError(f"expected at most one of {', '.join(LIDAR_SENSORS)}, got {lidars}")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _check_version(cls, value: Any) -> Any:
        # One clear message instead of one per member of the union (and `true` is not a version).
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
            raise ValueError(f"`version`: expected a string or a number, got {value!r}")
        return value

    @model_validator(mode="after")
    def _sac_needs_continuous(self) -> ModelMetadata:
        if self.training_algorithm == "sac" and self.action_space.kind != "continuous":
            raise ValueError("`training_algorithm`: 'sac' requires a continuous action space")
        return self

    def to_json(self) -> dict[str, Any]:
        """The DeepRacer JSON object (unset optional keys left out)."""
        out: dict[str, Any] = {
            "action_space": self.action_space.to_json(),
            "action_space_type": self.action_space_type,
            "training_algorithm": self.training_algorithm,
            "neural_network": self.neural_network,
            "sensor": list(self.sensor),
        }
        if self.lidar_config is not None:
            out["lidar_config"] = self.lidar_config
        if self.version is not None:
            out["version"] = self.version
        return out


def load_model_metadata(path: str | Path) -> ModelMetadata:
    """Read a DeepRacer `model_metadata.json`.

    Unknown top-level keys are logged and ignored (console files carry extra keys); wrong types or values
    raise ActionSpaceError naming the file and the key.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ActionSpaceError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ActionSpaceError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ActionSpaceError(f"{path}: cannot read ({exc})") from None
    return parse_model_metadata(data, source=str(path))


def parse_model_metadata(data: Any, *, source: str = "model metadata") -> ModelMetadata:
    """Validate an already-parsed `model_metadata.json` object; see `load_model_metadata`."""
    if not isinstance(data, dict):
        raise ActionSpaceError(
            f"{source}: expected a JSON object at the top level, got {type(data).__name__}"
        )
    unknown = sorted(k for k in data if k not in ModelMetadata.model_fields)
    if unknown:
        logger.warning("%s: ignoring unknown key(s) %s", source, ", ".join(unknown))
    known = {k: v for k, v in data.items() if k in ModelMetadata.model_fields}
    try:
        return ModelMetadata.model_validate(known)
    except ValidationError as exc:
        lines = [_describe_error(err) for err in exc.errors()]
        raise ActionSpaceError(f"{source}: invalid model metadata:\n  " + "\n  ".join(lines)) from None


def _describe_error(err: Any) -> str:
    """One line per pydantic error, naming the key (messages from our own checks already name theirs)."""
    msg = err["msg"].removeprefix("Value error, ")
    loc = ".".join(str(p) for p in err["loc"])
    if not loc or msg.startswith(("`", "unknown key `")):
        return msg
    if err["type"] == "missing":
        return f"`{loc}`: missing"
    got = err.get("input")
    return f"`{loc}`: {msg} (got {got!r})" if err["type"] != "value_error" else f"`{loc}`: {msg}"
