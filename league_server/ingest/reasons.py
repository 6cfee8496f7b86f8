"""Why ingest refused a message: the reason codes stored with every dead letter (``<code>: <detail>``) and
counted in `IngestStats.dead_letters`."""

from __future__ import annotations

TOO_LARGE = "too_large"  # a payload over contracts.wire.MAX_PAYLOAD_BYTES (brokers not configured by pitlane)
BAD_TOPIC = "bad_topic"  # not pitlane/<league>/cars/<car_id>/<channel> or .../timers/<id>/crossings
UNKNOWN_LEAGUE = "unknown_league"  # the topic's league is not in the database
WRONG_LEAGUE = "wrong_league"  # the car or timer is registered in another league than the topic's
MALFORMED = "malformed"  # not UTF-8 JSON, or not a JSON object
INVALID_SCHEMA = "invalid_schema"  # JSON, but contracts.wire rejects a field
TOPIC_MISMATCH = "topic_mismatch"  # payload car_id / timer_id differs from the topic's
UNKNOWN_CAR = "unknown_car"  # car_id (of a lap, or read by a timer) not in the registry
UNKNOWN_TIMER = "unknown_timer"  # timer_id not in the registry
UNSIGNED = "unsigned"  # lap report or crossing without sig
BAD_SIGNATURE = "bad_signature"  # sig does not match (forged, or a field changed in a replay)
UNASSIGNED_CAR = "unassigned_car"  # the car is not assigned to a race (for a crossing: to the timer's race)
UNASSIGNED_TIMER = "unassigned_timer"  # the timer is not assigned to a race
RACE_CLOSED = "race_closed"  # the car's (timer's) race is not open
IMPLAUSIBLE_LAP_TIME = "implausible_lap_time"  # below the race's min_lap_time_s (timers: a double reading)
WRONG_TRACK = "wrong_track"  # the lap report names another track than the car's race
OUTSIDE_WINDOW = "outside_race_window"  # lap finished before window_start or after window_end
BAD_SENT_AT = "bad_sent_at"  # sent_at is not ISO 8601, or too far in the future
BAD_CROSSED_AT = "bad_crossed_at"  # a crossing's crossed_at is not ISO 8601, or too far in the future
TIMER_LATE = "timer_crossing_late"  # arrived after the crossings around it were paired into a lap
UNSUPPORTED_CHANNEL = "unsupported_channel"  # e.g. telemetry or command (not subscribed by the server)

ALL = (
    TOO_LARGE,
    BAD_TOPIC,
    UNKNOWN_LEAGUE,
    WRONG_LEAGUE,
    MALFORMED,
    INVALID_SCHEMA,
    TOPIC_MISMATCH,
    UNKNOWN_CAR,
    UNKNOWN_TIMER,
    UNSIGNED,
    BAD_SIGNATURE,
    UNASSIGNED_CAR,
    UNASSIGNED_TIMER,
    RACE_CLOSED,
    IMPLAUSIBLE_LAP_TIME,
    WRONG_TRACK,
    OUTSIDE_WINDOW,
    BAD_SENT_AT,
    BAD_CROSSED_AT,
    TIMER_LATE,
    UNSUPPORTED_CHANNEL,
)
