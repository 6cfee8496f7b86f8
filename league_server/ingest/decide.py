"""What to do with one broker message: store a lap, update presence, or refuse it with a reason.

Pure functions over the message and the `Directory` (no database access, no broker): the worker runs them
for a whole batch and then writes the outcomes in one transaction. Every failure of the input becomes a
`Rejected` outcome; nothing here raises on bad input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from device import protocol
from device.errors import ProtocolError, SignatureError
from league_server.ingest import reasons
from league_server.ingest.directory import Directory

# A car's clock may run a little ahead of the server's; more than this is refused as bad_sent_at.
MAX_CLOCK_AHEAD_S = 300.0


@dataclass(frozen=True)
class Message:
    """One message as the broker delivered it. mid/qos: what to acknowledge once it is committed."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_at: datetime


@dataclass(frozen=True)
class LapRow:
    """A lap to insert (`crud.laps.insert_laps_idempotent` fields)."""

    row: dict[str, Any]

    @property
    def race_id(self) -> int:
        return int(self.row["race_id"])


@dataclass(frozen=True)
class PresenceUpdate:
    car_id: str
    state: str
    run_id: str | None
    at: datetime


@dataclass(frozen=True)
class Rejected:
    """A refusal: reason is one of `reasons.ALL`; detail says what exactly (field, expected, got)."""

    reason: str
    detail: str

    @property
    def text(self) -> str:
        return f"{self.reason}: {self.detail}"


Outcome = LapRow | PresenceUpdate | Rejected


def parse_iso_utc(value: str) -> datetime:
    """An ISO 8601 timestamp as aware UTC (naive is taken as UTC); ValueError if unparsable."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def decide(message: Message, league: str, directory: Directory) -> Outcome:
    """The outcome of one message of `league` (see module doc)."""
    try:
        topic_league, kind, ident, channel = protocol.parse_topic(message.topic)
    except ProtocolError as exc:
        return Rejected(reasons.BAD_TOPIC, str(exc))
    if topic_league != league:
        return Rejected(
            reasons.WRONG_LEAGUE, f"topic league {topic_league!r}; this server ingests {league!r}"
        )
    if kind == "timers":
        return _timer_crossing(message, ident)
    if channel == "laps":
        return _lap(message, ident, directory)
    if channel == "status":
        return _status(message, ident)
    return Rejected(reasons.UNSUPPORTED_CHANNEL, f"channel {channel!r} is not ingested")


def _schema_error(exc: ProtocolError) -> Rejected:
    text = str(exc)
    return Rejected(
        reasons.MALFORMED
        if "not UTF-8 JSON" in text or "expected a JSON object" in text
        else reasons.INVALID_SCHEMA,
        text,
    )


def _lap(message: Message, topic_car_id: str, directory: Directory) -> Outcome:
    try:
        report, raw = protocol.parse_lap_report(message.payload)
    except ProtocolError as exc:
        return _schema_error(exc)
    try:
        # raw_payload is stored as JSON: NaN/Infinity (which json.loads accepts) would be refused by PostgreSQL.
        json.dumps(raw, allow_nan=False)
    except ValueError:
        return Rejected(reasons.MALFORMED, "lap report: NaN or Infinity is not valid JSON")
    if report.car_id != topic_car_id:
        return Rejected(
            reasons.TOPIC_MISMATCH, f"car_id: payload says {report.car_id!r}, topic is car {topic_car_id!r}"
        )
    car = directory.cars.get(report.car_id)
    if car is None:
        return Rejected(reasons.UNKNOWN_CAR, f"car_id {report.car_id!r} is not registered")
    if not raw.get("sig"):
        return Rejected(reasons.UNSIGNED, "sig: missing; lap reports must be signed with the car's secret")
    try:
        protocol.verify(raw, car.hmac_secret)
    except SignatureError as exc:
        return Rejected(reasons.BAD_SIGNATURE, str(exc))
    if car.race_id is None:
        return Rejected(reasons.UNASSIGNED_CAR, f"car {car.car_id!r} is not assigned to a race")
    race = directory.races.get(car.race_id)
    if race is None or race.status != "open":
        status = "missing" if race is None else race.status
        return Rejected(reasons.RACE_CLOSED, f"race {car.race_id} of car {car.car_id!r} is {status}")
    try:
        sent_at = parse_iso_utc(report.sent_at)
    except ValueError:
        return Rejected(reasons.BAD_SENT_AT, f"sent_at: expected ISO 8601 UTC, got {report.sent_at!r}")
    if sent_at > message.received_at + timedelta(seconds=MAX_CLOCK_AHEAD_S):
        return Rejected(reasons.BAD_SENT_AT, f"sent_at {report.sent_at} is in the future (car clock wrong?)")
    if report.lap_time_ms < race.min_lap_time_s * 1000.0:
        return Rejected(
            reasons.IMPLAUSIBLE_LAP_TIME,
            f"lap_time_ms {report.lap_time_ms} is below race {race.race_id}'s minimum "
            f"{race.min_lap_time_s * 1000.0:.0f} ms",
        )
    if (race.window_start is not None and sent_at < race.window_start) or (
        race.window_end is not None and sent_at > race.window_end
    ):
        return Rejected(
            reasons.OUTSIDE_WINDOW,
            f"sent_at {report.sent_at} is outside race {race.race_id}'s window "
            f"{race.window_start} .. {race.window_end}",
        )
    return LapRow(
        {
            "race_id": race.race_id,
            "car_id": report.car_id,
            "racer_id": car.racer_id,
            "run_id": report.run_id,
            "seq": report.seq,
            "lap_number": report.lap,
            "lap_time_ms": report.lap_time_ms,
            "offtrack_count": report.offtrack_count,
            "reset_count": report.reset_count,
            "source": report.source,
            "model_sha256": report.model_sha256,
            "raw_payload": raw,
            "sent_at": sent_at,
            "received_at": message.received_at,
        }
    )


def _status(message: Message, topic_car_id: str) -> Outcome:
    try:
        status = protocol.parse_status(message.payload)
    except ProtocolError as exc:
        return _schema_error(exc)
    if status.car_id is not None and status.car_id != topic_car_id:
        return Rejected(
            reasons.TOPIC_MISMATCH, f"car_id: status says {status.car_id!r}, topic is car {topic_car_id!r}"
        )
    # Status is not signed (the last will is composed at connect time); the broker's ACL is what stops a
    # car from writing another car's status. Unknown cars' presence is kept too (an operator wants to see it).
    return PresenceUpdate(topic_car_id, status.state, status.run_id, message.received_at)


def _timer_crossing(message: Message, timer_id: str) -> Outcome:
    try:
        crossing, _ = protocol.parse_timer_crossing(message.payload)
    except ProtocolError as exc:
        return _schema_error(exc)
    if crossing.timer_id != timer_id:
        return Rejected(
            reasons.TOPIC_MISMATCH, f"timer_id: payload says {crossing.timer_id!r}, topic is {timer_id!r}"
        )
    # Kept verbatim (a dead letter with this reason) until timers have a registry (secret, track) and
    # crossings are paired into laps: a documented follow-up, not silently dropped.
    return Rejected(
        reasons.TIMER_UNPAIRED,
        f"valid crossing from timer {timer_id!r} (car {crossing.car_id!r}); pairing crossings into laps "
        "is not implemented yet",
    )
