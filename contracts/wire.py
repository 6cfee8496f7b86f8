"""Wire formats between cars, trackside timers and the league server: MQTT topics, payloads and signing.

The league server and the car share this module (DESIGN.md, "MQTT"); it imports only the
standard library and pydantic.

Topics (``league`` and ids: letters, digits, ``-`` and ``_``; no MQTT wildcards):

==============================================  =====  ========  ==========================================
topic                                           QoS    retained  payload
==============================================  =====  ========  ==========================================
``pitlane/<league>/cars/<car_id>/laps``         1      no        `LapReport`, signed
``pitlane/<league>/cars/<car_id>/status``       1      yes       `CarStatus` (last will: ``offline``)
``pitlane/<league>/cars/<car_id>/telemetry``    0      no        `Telemetry`
``pitlane/<league>/cars/<car_id>/command``      1      no        `CarCommand` (e-stop / re-arm)
``pitlane/<league>/timers/<timer_id>/crossings``  1    no        `TimerCrossing`, signed with the timer's secret
==============================================  =====  ========  ==========================================

Signing: ``sig`` is the hex HMAC-SHA256, keyed with the sender's secret (UTF-8), of the UTF-8 bytes of
``json.dumps(payload_without_sig, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``. The server
verifies it over the payload *as received* (every key but ``sig``), so a sender on a newer schema that adds a
key still verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.errors import ProtocolError, SignatureError, validation_problems
from contracts.vocabulary import LapSource

SCHEMA_VERSION = 1
# Lap reports: schema 2 adds `track`; receivers take 1 and 2 (a car on older software still reports).
LAP_SCHEMA_VERSION = 2
TOPIC_ROOT = "pitlane"
# Largest payload a receiver takes (bytes); a signed lap report is about 0.4 KiB.
MAX_PAYLOAD_BYTES = 8 * 1024
LAP_QOS = 1
STATUS_QOS = 1
TELEMETRY_QOS = 0
COMMAND_QOS = 1
CROSSING_QOS = 1

_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID = re.compile(_ID_PATTERN)


# ------------------------------------------------------------------------------------------------ topics


def _check_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ProtocolError(f"{kind}: expected 1-64 letters, digits, '-' or '_', got {value!r}")
    return value


def car_topic(league: str, car_id: str, channel: Literal["laps", "status", "telemetry", "command"]) -> str:
    """``pitlane/<league>/cars/<car_id>/<channel>``."""
    return f"{TOPIC_ROOT}/{_check_id('league', league)}/cars/{_check_id('car_id', car_id)}/{channel}"


def timer_topic(league: str, timer_id: str) -> str:
    """``pitlane/<league>/timers/<timer_id>/crossings``."""
    return f"{TOPIC_ROOT}/{_check_id('league', league)}/timers/{_check_id('timer_id', timer_id)}/crossings"


def subscriptions() -> list[tuple[str, int]]:
    """(topic filter, QoS) pairs a league server subscribes to: every league's car laps and status, and
    every timer (one server ingests every league in its database; the league is read off the topic)."""
    return [
        (f"{TOPIC_ROOT}/+/cars/+/laps", LAP_QOS),
        (f"{TOPIC_ROOT}/+/cars/+/status", STATUS_QOS),
        (f"{TOPIC_ROOT}/+/timers/+/crossings", CROSSING_QOS),
    ]


def parse_topic(topic: str) -> tuple[str, str, str, str]:
    """(league, "cars" | "timers", id, channel) of a pitlane topic; ProtocolError for anything else."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != TOPIC_ROOT or parts[2] not in ("cars", "timers"):
        raise ProtocolError(
            f"topic {topic!r}: expected pitlane/<league>/cars/<car_id>/<channel> "
            "or pitlane/<league>/timers/<timer_id>/crossings"
        )
    _, league, kind, ident, channel = parts
    _check_id("league", league)
    _check_id("car_id" if kind == "cars" else "timer_id", ident)
    allowed = ("laps", "status", "telemetry", "command") if kind == "cars" else ("crossings",)
    if channel not in allowed:
        raise ProtocolError(f"topic {topic!r}: channel {channel!r} is not one of {allowed}")
    return league, kind, ident, channel


# ---------------------------------------------------------------------------------------------- signing


def canonical_bytes(payload: dict[str, Any]) -> bytes:
    """The bytes that are signed: every key but ``sig``, sorted, compact, UTF-8 (not ASCII-escaped)."""
    unsigned = {k: v for k, v in payload.items() if k != "sig"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(payload: dict[str, Any], secret: str | bytes) -> str:
    """Hex HMAC-SHA256 of `canonical_bytes(payload)` keyed with `secret`."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, canonical_bytes(payload), hashlib.sha256).hexdigest()


def signed(payload: dict[str, Any], secret: str | bytes) -> dict[str, Any]:
    """A copy of `payload` with its ``sig``."""
    out = {k: v for k, v in payload.items() if k != "sig"}
    out["sig"] = sign(out, secret)
    return out


def verify(payload: dict[str, Any], secret: str | bytes) -> None:
    """SignatureError unless ``payload["sig"]`` is the HMAC of the rest (constant-time comparison)."""
    sig = payload.get("sig")
    if not isinstance(sig, str) or not sig:
        raise SignatureError("sig: missing; every lap report must be signed with the car's secret")
    if not hmac.compare_digest(sig.lower(), sign(payload, secret)):
        raise SignatureError("sig: does not match the payload and the sender's secret (forged or altered)")


# --------------------------------------------------------------------------------------------- payloads


class _Payload(BaseModel):
    # extra="ignore": a newer sender may add keys; they still count for the signature (verify() is run
    # over the dict as received, before this model drops them).
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)


def utc_now_iso() -> str:
    """Now, as ``2026-11-27T21:40:00.123Z`` (UTC, milliseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LapReport(_Payload):
    """One lap, as a car (or its sim backend, a trackside timer, a marshal) reports it.

    run_id: a new uuid4 per drive session; seq: 0, 1, 2, ... within a run (one per report); lap: the car's
    lap number in the run (1-based); lap_time_ms: the lap's clock time in milliseconds, penalties *not*
    included (the server applies the race's rules); offtrack_count / reset_count: in this lap.
    sent_at: ISO 8601 UTC of the moment the lap finished (not of a replay). track (schema 2): the name of the
    track the lap was driven on when the sender knows it (the simulator does; a real car usually does not),
    so a league can refuse laps of a race on another track.
    """

    schema_: Literal[1, 2] = Field(default=LAP_SCHEMA_VERSION, alias="schema")
    car_id: str = Field(pattern=_ID_PATTERN)
    run_id: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0, le=2**31 - 1)
    lap: int = Field(ge=1, le=2**31 - 1)
    lap_time_ms: int = Field(gt=0, le=24 * 3600 * 1000)
    offtrack_count: int = Field(default=0, ge=0, le=10_000)
    reset_count: int = Field(default=0, ge=0, le=10_000)
    model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    source: LapSource
    sent_at: str = Field(min_length=1, max_length=40)
    track: str | None = Field(default=None, pattern=_ID_PATTERN)
    sig: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    model_config = ConfigDict(populate_by_name=True)

    def unsigned_dict(self) -> dict[str, Any]:
        """The payload without ``sig``, with the wire's key names (``schema``)."""
        return self.model_dump(by_alias=True, exclude={"sig"})

    def to_wire(self, secret: str | bytes) -> bytes:
        """The signed JSON bytes to publish."""
        return json.dumps(signed(self.unsigned_dict(), secret), ensure_ascii=False).encode("utf-8")


class TimerCrossing(_Payload):
    """A trackside timer (beam break, pressure strip) saw a car cross the line at ``crossed_at`` (ISO UTC).

    car_id is the timer's identification of the car (transponder / manual entry), or None if unknown.
    """

    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    timer_id: str = Field(pattern=_ID_PATTERN)
    run_id: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0, le=2**31 - 1)
    car_id: str | None = Field(default=None, pattern=_ID_PATTERN)
    crossed_at: str = Field(min_length=1, max_length=40)
    sig: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    model_config = ConfigDict(populate_by_name=True)


class CarStatus(_Payload):
    """Retained presence message; the last will publishes ``{"schema": 1, "state": "offline"}``."""

    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    state: Literal["online", "offline", "driving", "stopped", "estop"]
    car_id: str | None = Field(default=None, pattern=_ID_PATTERN)
    run_id: str | None = None
    model_sha256: str | None = None
    sent_at: str | None = None

    model_config = ConfigDict(populate_by_name=True)


class Telemetry(_Payload):
    """Best-effort (QoS 0) live numbers: steering deg, speed m/s, loop timings ms."""

    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    car_id: str = Field(pattern=_ID_PATTERN)
    run_id: str
    steering_deg: float
    speed_mps: float
    loop_ms: float | None = None
    latency_ms: float | None = None
    overruns: int = 0
    sent_at: str

    model_config = ConfigDict(populate_by_name=True)


class CarCommand(_Payload):
    """A command to a car: ``estop`` stops it and latches; ``rearm`` needs a person at the car's side too
    (the car runtime decides whether a remote re-arm is allowed)."""

    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    command: Literal["estop", "rearm"]
    reason: str = Field(default="", max_length=200)
    sent_at: str | None = None

    model_config = ConfigDict(populate_by_name=True)


class CarCredentialsFile(BaseModel):
    """A car's credentials: what the league server returns when it provisions a car or rotates its credentials
    (the admin API and every `pitlane league` command alike), and what `pitlane drive --credentials FILE`
    reads. Saving the server's JSON as FILE is the whole hand-over; a hand-written file may hold the three
    secrets only. The password and the HMAC secret are shown this once (the server keeps a hash and the key).
    Unknown keys are refused, so a server and a car that disagree on this document fail loudly.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    league: str | None = Field(default=None, pattern=_ID_PATTERN, description="the league slug")
    car_id: str | None = Field(default=None, pattern=_ID_PATTERN, description="the car's id")
    mqtt_username: str | None = Field(default=None, min_length=1, description="a string")
    mqtt_password: str | None = Field(default=None, description="a string")
    hmac_secret: str = Field(min_length=16, description="the car's signing secret, at least 16 characters")
    lap_topic: str | None = Field(default=None, description="the topic its laps go to")
    race_id: int | None = Field(default=None, description="the race its laps count for")
    racer_id: int | None = Field(default=None, description="who drives it")
    number: int | None = Field(default=None, description="its racing number")
    name: str | None = Field(default=None, description="its name")
    leaderboard_url: str | None = Field(default=None, description="the race's live leaderboard (JSON)")


def offline_status_bytes() -> bytes:
    """The last-will payload of a car's status topic."""
    return json.dumps({"schema": SCHEMA_VERSION, "state": "offline"}).encode("utf-8")


def decode_json(data: bytes | str, what: str) -> dict[str, Any]:
    """The JSON object in `data`; ProtocolError (naming `what`) for non-UTF-8, non-JSON, non-objects, JSON nested
    deeper than the interpreter can parse, and text no database stores alike: NUL characters, and unpaired
    surrogates (``"\\ud800"`` is valid JSON but no UTF-8 text)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"{what}: not UTF-8 JSON ({exc})") from None
    except RecursionError:
        raise ProtocolError(f"{what}: not UTF-8 JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what}: expected a JSON object, got {type(value).__name__}")
    where = _unstorable_at(value)
    if where is not None:
        raise ProtocolError(
            f"{what}: {where or '(payload)'}: must not contain NUL characters or unpaired surrogates"
        )
    return value


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unstorable_at(value: Any, path: str = "") -> str | None:
    """The dotted key of the first string (or key) a database cannot store as text, or None."""
    if isinstance(value, str):
        return path if _unstorable(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        child = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _unstorable(key):
            return child
        found = _unstorable_at(item, child)
        if found is not None:
            return found
    return None


def _parse(model: type[_Payload], payload: dict[str, Any], what: str) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ProtocolError(f"{what}: {validation_problems(exc, top='(payload)')}") from None


def parse_lap_report(data: bytes | str | dict[str, Any]) -> tuple[LapReport, dict[str, Any]]:
    """(the validated report, the raw dict as received — verify the signature over the raw dict)."""
    raw = data if isinstance(data, dict) else decode_json(data, "lap report")
    return _parse(LapReport, raw, "lap report"), raw


def parse_timer_crossing(data: bytes | str | dict[str, Any]) -> tuple[TimerCrossing, dict[str, Any]]:
    """(the validated crossing, the raw dict as received)."""
    raw = data if isinstance(data, dict) else decode_json(data, "timer crossing")
    return _parse(TimerCrossing, raw, "timer crossing"), raw


def parse_status(data: bytes | str | dict[str, Any]) -> CarStatus:
    """A car's status payload."""
    raw = data if isinstance(data, dict) else decode_json(data, "car status")
    return _parse(CarStatus, raw, "car status")


def parse_command(data: bytes | str | dict[str, Any]) -> CarCommand:
    """A command to a car."""
    raw = data if isinstance(data, dict) else decode_json(data, "car command")
    return _parse(CarCommand, raw, "car command")


__all__ = [
    "LAP_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "CarCommand",
    "CarCredentialsFile",
    "CarStatus",
    "LapReport",
    "ProtocolError",
    "SignatureError",
    "Telemetry",
    "TimerCrossing",
    "canonical_bytes",
    "car_topic",
    "decode_json",
    "offline_status_bytes",
    "parse_command",
    "parse_lap_report",
    "parse_status",
    "parse_timer_crossing",
    "parse_topic",
    "sign",
    "signed",
    "subscriptions",
    "timer_topic",
    "utc_now_iso",
    "verify",
]
