"""What to do with one broker message: store a lap or a timer crossing, update presence, or refuse it with a
reason.

Pure functions over the message and the `Directory` (no database access, no broker): the worker runs them
for a whole batch and then writes the outcomes in one transaction. Every failure of the input becomes a
`Rejected` outcome; nothing here raises on bad input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from contracts import wire as protocol
from contracts.errors import ProtocolError, SignatureError
from league_server.ingest import reasons
from league_server.ingest.directory import CarInfo, Directory, RaceInfo

# Run ids of laps made from timer crossings (pairing.timer_run_id); refused on car lap reports.
TIMER_RUN_PREFIXES = ("timer:", "timer#")

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


@dataclass(frozen=True)
class CrossingRow:
    """A valid timer crossing to store and pair (ingest/pairing.py). car: None when the timer could not
    identify the car; race: the timer's race (open, crossing inside its window)."""

    timer_id: str
    run_id: str
    seq: int
    car: CarInfo | None
    race: RaceInfo
    crossed_at: datetime
    received_at: datetime


Outcome = LapRow | PresenceUpdate | CrossingRow | Rejected


def parse_iso_utc(value: str) -> datetime:
    """An ISO 8601 timestamp as aware UTC (naive is taken as UTC); ValueError if unparsable."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def decide(message: Message, directory: Directory) -> Outcome:
    """The outcome of one message of any league in the directory (see module doc)."""
    if len(message.payload) > protocol.MAX_PAYLOAD_BYTES:
        return Rejected(
            reasons.TOO_LARGE,
            f"payload of {len(message.payload):,} bytes; at most {protocol.MAX_PAYLOAD_BYTES:,} are accepted",
        )
    try:
        league, kind, ident, channel = protocol.parse_topic(message.topic)
    except ProtocolError as exc:
        return Rejected(reasons.BAD_TOPIC, str(exc))
    if league not in directory.leagues:
        return Rejected(reasons.UNKNOWN_LEAGUE, f"league {league!r} is not in the database")
    if kind == "timers":
        return _timer_crossing(message, league, ident, directory)
    if channel == "laps":
        return _lap(message, league, ident, directory)
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


def _verify(raw: dict[str, Any], secret: str, what: str) -> Rejected | None:
    """UNSIGNED / BAD_SIGNATURE, or None when `raw` is signed with `secret`."""
    if not raw.get("sig"):
        return Rejected(reasons.UNSIGNED, f"sig: missing; {what} must be signed with the sender's secret")
    try:
        protocol.verify(raw, secret)
    except SignatureError as exc:
        return Rejected(reasons.BAD_SIGNATURE, str(exc))
    return None


def _open_race(directory: Directory, race_id: int, whose: str) -> RaceInfo | Rejected:
    """The race `race_id` (of `whose`, e.g. "car 'car-1'") if it is open, else RACE_CLOSED."""
    race = directory.races.get(race_id)
    if race is None or race.status != "open":
        status = "missing" if race is None else race.status
        return Rejected(reasons.RACE_CLOSED, f"race {race_id} of {whose} is {status}")
    return race


def _timestamp(value: str, field: str, received_at: datetime, reason: str, who: str) -> datetime | Rejected:
    """`value` as aware UTC, or `reason` if unparsable or more than MAX_CLOCK_AHEAD_S ahead of the server."""
    try:
        at = parse_iso_utc(value)
    except ValueError:
        return Rejected(reason, f"{field}: expected ISO 8601 UTC, got {value!r}")
    if at > received_at + timedelta(seconds=MAX_CLOCK_AHEAD_S):
        return Rejected(reason, f"{field} {value} is in the future ({who} clock wrong?)")
    return at


def outside_window(race: RaceInfo, at: datetime, shown: str) -> Rejected | None:
    """OUTSIDE_WINDOW when `at` is before the race's window_start or after its window_end."""
    if (race.window_start is not None and at < race.window_start) or (
        race.window_end is not None and at > race.window_end
    ):
        return Rejected(
            reasons.OUTSIDE_WINDOW,
            f"{shown} is outside race {race.race_id}'s window {race.window_start} .. {race.window_end}",
        )
    return None


def check_lap(race: RaceInfo, lap_time_ms: int, finished_at: datetime, shown_finish: str) -> Rejected | None:
    """The race's plausibility rules for one lap, whatever its source (car report or paired timer
    crossings): at least min_lap_time_s (and > 0 ms), finished inside the race window. None = plausible."""
    if lap_time_ms <= 0 or lap_time_ms < race.min_lap_time_s * 1000.0:
        return Rejected(
            reasons.IMPLAUSIBLE_LAP_TIME,
            f"lap_time_ms {lap_time_ms} is below race {race.race_id}'s minimum "
            f"{race.min_lap_time_s * 1000.0:.0f} ms",
        )
    return outside_window(race, finished_at, shown_finish)


def _in_league(league: str, registered: str, who: str) -> Rejected | None:
    """WRONG_LEAGUE when a car or timer of one league reports on another league's topic."""
    if registered == league:
        return None
    return Rejected(
        reasons.WRONG_LEAGUE, f"{who} is registered in league {registered!r}, topic is {league!r}"
    )


def _lap(message: Message, league: str, topic_car_id: str, directory: Directory) -> Outcome:
    try:
        report, raw = protocol.parse_lap_report(message.payload)
    except ProtocolError as exc:
        return _schema_error(exc)
    try:
        # raw_payload is stored as JSON: NaN/Infinity (which json.loads accepts) would be refused by PostgreSQL.
        json.dumps(raw, allow_nan=False)
    except ValueError:
        return Rejected(reasons.MALFORMED, "lap report: NaN or Infinity is not valid JSON")
    if report.run_id.startswith(TIMER_RUN_PREFIXES):
        # Reserved: a car's lap under a timer run's id would make that timer's laps look like duplicates.
        return Rejected(
            reasons.INVALID_SCHEMA,
            f"run_id: {report.run_id!r} starts with {' or '.join(TIMER_RUN_PREFIXES)}, "
            "reserved for laps made from trackside timers",
        )
    if report.car_id != topic_car_id:
        return Rejected(
            reasons.TOPIC_MISMATCH, f"car_id: payload says {report.car_id!r}, topic is car {topic_car_id!r}"
        )
    car = directory.cars.get(report.car_id)
    if car is None:
        return Rejected(reasons.UNKNOWN_CAR, f"car_id {report.car_id!r} is not registered")
    refused = _in_league(league, car.league, f"car {car.car_id!r}") or _verify(
        raw, car.hmac_secret, "lap reports"
    )
    if refused is not None:
        return refused
    if car.race_id is None:
        return Rejected(reasons.UNASSIGNED_CAR, f"car {car.car_id!r} is not assigned to a race")
    race = _open_race(directory, car.race_id, f"car {car.car_id!r}")
    if isinstance(race, Rejected):
        return race
    if race.track is not None and report.track is not None and report.track != race.track:
        return Rejected(
            reasons.WRONG_TRACK,
            f"track: the lap was driven on {report.track!r}; race {race.race_id} is on {race.track!r}",
        )
    sent_at = _timestamp(report.sent_at, "sent_at", message.received_at, reasons.BAD_SENT_AT, "car")
    if isinstance(sent_at, Rejected):
        return sent_at
    refused = check_lap(race, report.lap_time_ms, sent_at, f"sent_at {report.sent_at}")
    if refused is not None:
        return refused
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


def _timer_crossing(message: Message, league: str, topic_timer_id: str, directory: Directory) -> Outcome:
    """A signed crossing of a registered timer, assigned to an open race, inside its window, of no car or
    of a car in that race: a `CrossingRow` (pairing into laps needs the stored crossings: pairing.py)."""
    try:
        crossing, raw = protocol.parse_timer_crossing(message.payload)
    except ProtocolError as exc:
        return _schema_error(exc)
    if crossing.timer_id != topic_timer_id:
        return Rejected(
            reasons.TOPIC_MISMATCH,
            f"timer_id: payload says {crossing.timer_id!r}, topic is timer {topic_timer_id!r}",
        )
    timer = directory.timers.get(crossing.timer_id)
    if timer is None:
        return Rejected(reasons.UNKNOWN_TIMER, f"timer_id {crossing.timer_id!r} is not registered")
    refused = _in_league(league, timer.league, f"timer {timer.timer_id!r}") or _verify(
        raw, timer.hmac_secret, "timer crossings"
    )
    if refused is not None:
        return refused
    if timer.race_id is None:
        return Rejected(reasons.UNASSIGNED_TIMER, f"timer {timer.timer_id!r} is not assigned to a race")
    race = _open_race(directory, timer.race_id, f"timer {timer.timer_id!r}")
    if isinstance(race, Rejected):
        return race
    crossed_at = _timestamp(
        crossing.crossed_at, "crossed_at", message.received_at, reasons.BAD_CROSSED_AT, "timer"
    )
    if isinstance(crossed_at, Rejected):
        return crossed_at
    # The whole lap must lie inside the window: a crossing outside it is refused, so it never starts a lap.
    refused = outside_window(race, crossed_at, f"crossed_at {crossing.crossed_at}")
    if refused is not None:
        return refused
    car: CarInfo | None = None
    if crossing.car_id is not None:
        car = directory.cars.get(crossing.car_id)
        if car is None:
            return Rejected(
                reasons.UNKNOWN_CAR,
                f"car_id {crossing.car_id!r} (read by timer {timer.timer_id!r}) is not registered",
            )
        if car.race_id != race.race_id:
            return Rejected(
                reasons.UNASSIGNED_CAR,
                f"car {car.car_id!r} is assigned to race {car.race_id}, timer {timer.timer_id!r} times race "
                f"{race.race_id}",
            )
    return CrossingRow(
        timer_id=crossing.timer_id,
        run_id=crossing.run_id,
        seq=crossing.seq,
        car=car,
        race=race,
        crossed_at=crossed_at,
        received_at=message.received_at,
    )
