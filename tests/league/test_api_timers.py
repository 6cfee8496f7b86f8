"""Admin API for trackside timers on SQLite and PostgreSQL: provisioning (credentials once), listing without
secrets, assignment to a race (audited), rotation, stored crossings; errors name what is wrong."""

from __future__ import annotations

from typing import Any

from league_server.core.security import verify_mqtt_password
from league_server.models import Timer


def _race(client: Any, headers: dict[str, str]) -> tuple[int, int]:
    league = client.post("/api/admin/leagues", json={"slug": "acme", "name": "ACME"}, headers=headers).json()
    event = client.post(f"/api/admin/leagues/{league['id']}/events", json={"name": "Fri"}, headers=headers)
    race = client.post(f"/api/admin/events/{event.json()['id']}/races", json={"name": "TT"}, headers=headers)
    return league["id"], race.json()["id"]


def test_timer_admin_api(client: Any, admin_headers: dict[str, str], app: Any) -> None:
    league_id, race_id = _race(client, admin_headers)
    url = f"/api/admin/leagues/{league_id}/timers"
    assert client.post(url, json={"timer_id": "gate-1"}).status_code == 401
    created = client.post(url, json={"timer_id": "gate-1", "name": "Start"}, headers=admin_headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["mqtt_username"] == "timer-gate-1" and body["race_id"] is None and body["league"] == "acme"
    assert body["crossing_topic"] == "pitlane/acme/timers/gate-1/crossings"
    with app.state.sessionmaker() as s:
        stored = s.query(Timer).one()
        assert verify_mqtt_password(body["mqtt_password"], stored.password_hash)
        assert stored.hmac_secret == body["hmac_secret"]
    again = client.post(url, json={"timer_id": "gate-1"}, headers=admin_headers)
    assert again.status_code == 409 and "gate-1" in again.json()["detail"]
    bad = client.post(url, json={"timer_id": "bad/id"}, headers=admin_headers)
    assert bad.status_code == 422 and "timer_id" in bad.text

    listed = client.get("/api/admin/timers", headers=admin_headers).json()
    assert [t["timer_id"] for t in listed] == ["gate-1"]
    assert "hmac_secret" not in listed[0] and "mqtt_password" not in listed[0]

    assigned = client.patch("/api/admin/timers/gate-1", json={"race_id": race_id}, headers=admin_headers)
    assert assigned.status_code == 200 and assigned.json()["race_id"] == race_id
    assert (
        client.get(f"/api/admin/timers?race_id={race_id}", headers=admin_headers).json()[0]["timer_id"]
        == "gate-1"
    )
    missing = client.patch("/api/admin/timers/gate-1", json={"race_id": 999}, headers=admin_headers)
    assert missing.status_code == 404
    assert (
        client.patch("/api/admin/timers/nope", json={"race_id": None}, headers=admin_headers).status_code
        == 404
    )

    rotated = client.post("/api/admin/timers/gate-1/rotate-credentials", headers=admin_headers).json()
    assert rotated["hmac_secret"] != body["hmac_secret"] and rotated["race_id"] == race_id
    audit = client.get("/api/admin/audit?entity=timer&entity_id=gate-1", headers=admin_headers).json()
    assert [e["action"] for e in audit] == ["rotate_credentials", "assign", "provision"]
    assert client.get("/api/admin/crossings?timer_id=gate-1", headers=admin_headers).json() == []
    assert client.get("/api/admin/ingest", headers=admin_headers).json()["crossings"] == 0
