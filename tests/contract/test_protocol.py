"""The wire format the car and the league server share (contracts/wire.py): topics, payloads, signing.

The signing rule is checked against an independent spelling of DESIGN.md's rule (hmac + json here), so a change
to `canonical_bytes` that still round-trips with itself would fail.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from contracts import wire as protocol
from contracts.errors import ProtocolError, SignatureError

SECRET = "s3cret-ü"


def _report(**overrides: object) -> protocol.LapReport:
    fields: dict[str, object] = {
        "car_id": "car-7",
        "run_id": "0f8e6c1e-3b7a-4e0e-9a51-5f4f2b7f0d11",
        "seq": 12,
        "lap": 3,
        "lap_time_ms": 9412,
        "source": "car",
        "sent_at": "2026-11-27T21:40:00.123Z",
    }
    fields.update(overrides)
    return protocol.LapReport(**fields)


def _design_sig(payload: dict, secret: str) -> str:
    body = {k: v for k, v in payload.items() if k != "sig"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def test_wire_payload_has_design_keys_and_design_signature() -> None:
    wire = json.loads(_report(model_sha256="ab" * 32).to_wire(SECRET))
    assert set(wire) == {
        "schema",
        "car_id",
        "run_id",
        "seq",
        "lap",
        "lap_time_ms",
        "offtrack_count",
        "reset_count",
        "model_sha256",
        "source",
        "sent_at",
        "track",
        "sig",
    }
    assert wire["schema"] == 2
    assert wire["sig"] == _design_sig(wire, SECRET)


def test_lap_reports_of_schema_1_still_parse_and_schema_2_names_the_track() -> None:
    old = {k: v for k, v in _report().unsigned_dict().items() if k != "track"}
    report, _ = protocol.parse_lap_report(json.dumps(dict(old, schema=1)).encode())
    assert report.schema_ == 1 and report.track is None
    report, _ = protocol.parse_lap_report(_report(track="reInvent2019_track").to_wire(SECRET))
    assert report.schema_ == 2 and report.track == "reInvent2019_track"
    with pytest.raises(ProtocolError, match="track"):
        protocol.parse_lap_report(json.dumps(dict(old, track="../etc")).encode())


def test_non_ascii_is_signed_as_utf8_not_escaped() -> None:
    payload = {"schema": 1, "car_id": "car-7", "note": "Zürich"}
    assert protocol.canonical_bytes(payload) == '{"car_id":"car-7","note":"Zürich","schema":1}'.encode()
    assert protocol.sign(payload, SECRET) == _design_sig(payload, SECRET)


def test_round_trip_verifies_and_any_change_is_refused() -> None:
    report, raw = protocol.parse_lap_report(_report().to_wire(SECRET))
    protocol.verify(raw, SECRET)
    assert report.lap_time_ms == 9412 and report.seq == 12
    with pytest.raises(SignatureError, match="does not match"):
        protocol.verify(raw, "another car's secret")
    tampered = dict(raw, lap_time_ms=1000)
    with pytest.raises(SignatureError, match="does not match"):
        protocol.verify(tampered, SECRET)
    unsigned = {k: v for k, v in raw.items() if k != "sig"}
    with pytest.raises(SignatureError, match="missing"):
        protocol.verify(unsigned, SECRET)


def test_unknown_keys_from_a_newer_sender_still_verify() -> None:
    raw = protocol.signed(dict(_report().unsigned_dict(), battery_v=7.4), SECRET)
    report, received = protocol.parse_lap_report(json.dumps(raw))
    protocol.verify(received, SECRET)
    assert report.car_id == "car-7"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"schema": 1}', "car_id"),
        (json.dumps(dict(_report().unsigned_dict(), lap_time_ms=-5)).encode(), "lap_time_ms"),
        (json.dumps(dict(_report().unsigned_dict(), lap_time_ms="9412")).encode(), "lap_time_ms"),
        (json.dumps(dict(_report().unsigned_dict(), source="drone")).encode(), "source"),
        (json.dumps(dict(_report().unsigned_dict(), schema=3)).encode(), "schema"),
        (json.dumps(dict(_report().unsigned_dict(), car_id="car/7")).encode(), "car_id"),
    ],
)
def test_malformed_reports_name_the_field(data: bytes, field: str) -> None:
    with pytest.raises(ProtocolError, match=field):
        protocol.parse_lap_report(data)


def test_topics_round_trip_and_refuse_wildcards() -> None:
    topic = protocol.car_topic("office-league", "car-7", "laps")
    assert topic == "pitlane/office-league/cars/car-7/laps"
    assert protocol.parse_topic(topic) == ("office-league", "cars", "car-7", "laps")
    assert protocol.parse_topic(protocol.timer_topic("l", "gate-1")) == ("l", "timers", "gate-1", "crossings")
    for bad in ("pitlane/l/cars/+/laps", "pitlane/l/cars/car-7/secrets", "other/l/cars/c/laps", "pitlane/l"):
        with pytest.raises(ProtocolError):
            protocol.parse_topic(bad)
    with pytest.raises(ProtocolError, match="car_id"):
        protocol.car_topic("l", "#", "laps")
    assert ("pitlane/+/cars/+/laps", 1) in protocol.subscriptions()


def test_status_command_and_last_will() -> None:
    assert protocol.parse_status(protocol.offline_status_bytes()).state == "offline"
    assert protocol.parse_command(b'{"schema": 1, "command": "estop"}').command == "estop"
    with pytest.raises(ProtocolError, match="command"):
        protocol.parse_command(b'{"schema": 1, "command": "go-faster"}')
    assert protocol.utc_now_iso().endswith("Z")
