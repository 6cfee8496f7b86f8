"""The audit log over HTTP, on SQLite and PostgreSQL: its actor is the authenticated admin (a body `actor` is
refused by name), it is read by admins (`/api/admin/races/{id}/audit`), and the public export carries
neither it nor any secret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from league_server.models import Car
from tests.league.conftest import ADMIN_TOKEN
from tests.league.test_api_admin import _lap, _setup

LAP_EDITS = ("invalidate", "restore", "delete", "penalty")


def _body(action: str, **extra: Any) -> dict[str, Any]:
    return {
        "reason": f"{action} by the test",
        **({"penalty_ms": 500} if action == "penalty" else {}),
        **extra,
    }


@pytest.fixture
def race(client: Any, admin_headers: dict[str, str]) -> dict[str, Any]:
    """A race with car c1 (its credentials as provisioned) and one lap entered by hand."""
    ids = _setup(client, admin_headers)
    provisioned = client.post(
        f"/api/admin/leagues/{ids['league']}/cars",
        json={"car_id": "c1", "racer_id": ids["racer"], "race_id": ids["race"], "number": 7},
        headers=admin_headers,
    )
    assert provisioned.status_code == 201, provisioned.text
    lap = _lap(client, admin_headers, ids["race"], "c1", 9_000)
    return {**ids, "lap": lap["id"], "credentials": provisioned.json()}


def _audit(client: Any, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/admin/audit", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("action", LAP_EDITS)
def test_a_body_actor_is_refused_by_name(
    client: Any, admin_headers: dict[str, str], race: dict[str, Any], action: str
) -> None:
    before = _audit(client, admin_headers)
    response = client.post(
        f"/api/admin/laps/{race['lap']}/{action}",
        json=_body(action, actor="marshal Kim"),
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.actor"]
    assert _audit(client, admin_headers) == before  # nothing was done
    lap = client.get(f"/api/races/{race['race']}/laps").json()
    assert lap[0]["valid"] is True and lap[0]["penalty_ms"] == 0


def test_a_manual_lap_with_a_body_actor_is_refused(
    client: Any, admin_headers: dict[str, str], race: dict[str, Any]
) -> None:
    response = client.post(
        f"/api/admin/races/{race['race']}/laps",
        json={"car_id": "c1", "lap_time_ms": 9_500, "reason": "timer", "actor": "someone else"},
        headers=admin_headers,
    )
    assert response.status_code == 422 and "body.actor" in response.json()["detail"]
    assert len(client.get(f"/api/races/{race['race']}/laps").json()) == 1


def test_every_audited_edit_names_the_authenticated_admin(
    client: Any, admin_headers: dict[str, str], race: dict[str, Any]
) -> None:
    for action in LAP_EDITS:
        response = client.post(
            f"/api/admin/laps/{race['lap']}/{action}", json=_body(action), headers=admin_headers
        )
        assert response.status_code == 200, response.text
    client.patch(f"/api/admin/races/{race['race']}", json={"status": "closed"}, headers=admin_headers)
    client.patch("/api/admin/cars/c1", json={"number": 8}, headers=admin_headers)
    client.post("/api/admin/cars/c1/rotate-credentials", headers=admin_headers)
    entries = _audit(client, admin_headers)
    assert [(e["entity"], e["action"]) for e in entries] == [
        ("car", "rotate_credentials"),
        ("car", "assign"),
        ("race", "update"),
        ("lap", "penalty"),
        ("lap", "delete"),
        ("lap", "restore"),
        ("lap", "invalidate"),
        ("lap", "manual_entry"),
        ("car", "provision"),
    ]
    assert {e["actor"] for e in entries} == {"admin"}


def test_admins_read_a_races_audit_log(
    client: Any, admin_headers: dict[str, str], race: dict[str, Any]
) -> None:
    path = f"/api/admin/races/{race['race']}/audit"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 403
    client.post(f"/api/admin/laps/{race['lap']}/invalidate", json=_body("invalidate"), headers=admin_headers)
    client.patch(f"/api/admin/races/{race['race']}", json={"offtrack_penalty_s": 1.0}, headers=admin_headers)
    deleted = _lap(client, admin_headers, race["race"], "c1", 5_000)
    client.post(f"/api/admin/laps/{deleted['id']}/delete", json=_body("delete"), headers=admin_headers)
    # another race's edits are not this race's
    event = client.get(f"/api/races/{race['race']}").json()["event_id"]
    other = client.post(
        f"/api/admin/events/{event}/races", json={"name": "Other"}, headers=admin_headers
    ).json()
    client.patch(f"/api/admin/races/{other['id']}", json={"status": "closed"}, headers=admin_headers)
    entries = client.get(path, headers=admin_headers).json()
    assert [(e["entity"], e["entity_id"], e["action"]) for e in entries] == [
        ("lap", str(deleted["id"]), "delete"),  # deleted laps keep their history
        ("lap", str(deleted["id"]), "manual_entry"),
        ("race", str(race["race"]), "update"),
        ("lap", str(race["lap"]), "invalidate"),
        ("lap", str(race["lap"]), "manual_entry"),
    ]
    assert entries[3]["reason"] == "invalidate by the test" and entries[3]["actor"] == "admin"
    assert len(client.get(path, params={"limit": 2}, headers=admin_headers).json()) == 2
    assert client.get("/api/admin/races/424242/audit", headers=admin_headers).status_code == 404


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a JSON document, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_the_public_export_has_no_audit_and_no_secret(
    client: Any, admin_headers: dict[str, str], race: dict[str, Any], app: Any
) -> None:
    client.post(
        f"/api/admin/laps/{race['lap']}/penalty",
        json={"reason": "pushed a cone, says marshal Kim", "penalty_ms": 500},
        headers=admin_headers,
    )
    with app.state.sessionmaker() as session:
        password_hash = session.query(Car).filter_by(car_id="c1").one().password_hash
    creds = race["credentials"]
    secrets = (creds["mqtt_password"], creds["hmac_secret"], password_hash, ADMIN_TOKEN)
    full = client.get(f"/api/races/{race['race']}/export/full.json")
    assert full.status_code == 200
    document = full.json()
    assert set(document) == {"race", "leaderboard", "laps", "cars"}
    keys = {key for key, _ in _walk(document)}
    assert not keys & {"audit", "actor", "before", "after", "hmac_secret", "mqtt_password", "password_hash"}
    assert "marshal Kim" not in full.text  # the edit's reason is the audit's, not the lap's
    assert document["cars"][0]["number"] == 7 and document["laps"][0]["penalty_ms"] == 500
    for export in ("laps.csv", "standings.csv"):
        text = client.get(f"/api/races/{race['race']}/export/{export}").text
        assert all(secret not in text for secret in secrets)
    assert all(secret not in full.text for secret in secrets)
