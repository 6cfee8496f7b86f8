"""decide() on hostile and misdirected messages (a pure function: no broker, no database): every refusal is a
named reason, never an exception, the same on every database."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from contracts import wire as protocol
from league_server.ingest import reasons
from league_server.ingest.decide import LapRow, Message, Rejected, decide
from league_server.ingest.directory import CarInfo, Directory, RaceInfo, TimerInfo
from tests.league.ingest_support import lap_payload

SECRET = "s" * 32


@pytest.fixture
def directory() -> Directory:
    d = Directory()
    d.leagues = {"acme", "other"}
    d.cars = {
        "car-1": CarInfo("car-1", SECRET, 1, None, "acme"),
        "car-9": CarInfo("car-9", SECRET, 2, None, "other"),
    }
    d.timers = {"gate-1": TimerInfo("gate-1", SECRET, 1, "acme")}
    d.races = {
        1: RaceInfo(1, "open", 1.0, None, None, "reinvent_base"),
        2: RaceInfo(2, "open", 1.0, None, None),
    }
    return d


def message(topic: str, payload: bytes) -> Message:
    return Message(topic, payload, mid=1, qos=1, retain=False, received_at=datetime.now(timezone.utc))


def test_laps_of_every_league_in_the_database_are_stored(directory: Directory) -> None:
    for league, car in (("acme", "car-1"), ("other", "car-9")):
        outcome = decide(message(f"pitlane/{league}/cars/{car}/laps", lap_payload(car, SECRET)), directory)
        assert isinstance(outcome, LapRow) and outcome.row["car_id"] == car


@pytest.mark.parametrize(
    ("topic", "car", "reason", "detail"),
    [
        (
            "pitlane/nope/cars/car-1/laps",
            "car-1",
            reasons.UNKNOWN_LEAGUE,
            "league 'nope' is not in the database",
        ),
        ("pitlane/other/cars/car-1/laps", "car-1", reasons.WRONG_LEAGUE, "registered in league 'acme'"),
    ],
)
def test_laps_on_an_unknown_or_another_leagues_topic_are_refused(
    directory: Directory, topic: str, car: str, reason: str, detail: str
) -> None:
    outcome = decide(message(topic, lap_payload(car, SECRET)), directory)
    assert isinstance(outcome, Rejected) and outcome.reason == reason and detail in outcome.detail


def test_a_timer_on_another_leagues_topic_is_refused(directory: Directory) -> None:
    crossing = protocol.signed(
        {"schema": 1, "timer_id": "gate-1", "run_id": "r", "seq": 0, "crossed_at": protocol.utc_now_iso()},
        SECRET,
    )
    outcome = decide(
        message("pitlane/other/timers/gate-1/crossings", json.dumps(crossing).encode()), directory
    )
    assert isinstance(outcome, Rejected) and outcome.reason == reasons.WRONG_LEAGUE


def test_a_padded_report_is_refused_by_its_size(directory: Directory) -> None:
    padded = lap_payload("car-1", SECRET, padding="x" * 1_000_000)
    outcome = decide(message("pitlane/acme/cars/car-1/laps", padded), directory)
    assert isinstance(outcome, Rejected) and outcome.reason == reasons.TOO_LARGE
    assert f"at most {protocol.MAX_PAYLOAD_BYTES:,}" in outcome.detail


def test_deeply_nested_json_is_a_named_refusal_not_a_traceback(directory: Directory) -> None:
    nested = b"[" * 3000 + b"]" * 3000  # 6 KB, under the size limit; json.loads recurses past Python's limit
    outcome = decide(message("pitlane/acme/cars/car-1/laps", nested), directory)
    assert isinstance(outcome, Rejected) and outcome.reason == reasons.MALFORMED
    assert "nested too deeply" in outcome.detail


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
@pytest.mark.parametrize("field", ["run_id", "sent_at", "extra"])
def test_text_no_database_stores_is_refused_before_any_database(
    directory: Directory, field: str, bad: str
) -> None:
    report = json.loads(lap_payload("car-1", None))
    report[field] = "r" + bad if field != "sent_at" else report["sent_at"] + bad
    report["sig"] = "0" * 64  # no signature can cover text that is not UTF-8; it is refused before the check
    payload = json.dumps(report).encode()  # \u0000 / \ud800: valid JSON escapes
    outcome = decide(message("pitlane/acme/cars/car-1/laps", payload), directory)
    assert isinstance(outcome, Rejected) and outcome.reason == reasons.INVALID_SCHEMA
    assert f"{field}: must not contain NUL characters or unpaired surrogates" in outcome.detail


def test_a_lap_driven_on_another_track_than_the_races_is_refused(directory: Directory) -> None:
    topic = "pitlane/acme/cars/car-1/laps"
    wrong = decide(message(topic, lap_payload("car-1", SECRET, schema=2, track="oval")), directory)
    assert isinstance(wrong, Rejected) and wrong.reason == reasons.WRONG_TRACK
    assert "driven on 'oval'; race 1 is on 'reinvent_base'" in wrong.detail
    for fields in ({"schema": 2, "track": "reinvent_base"}, {"schema": 1}):  # right track, or not said
        assert isinstance(decide(message(topic, lap_payload("car-1", SECRET, **fields)), directory), LapRow)
    other = decide(
        message("pitlane/other/cars/car-9/laps", lap_payload("car-9", SECRET, track="oval")), directory
    )
    assert isinstance(other, LapRow)  # race 2 names no track: any track counts
