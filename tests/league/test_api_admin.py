"""Admin API over HTTP on SQLite and PostgreSQL: auth, CRUD, provisioning once, audited lap edits, exports."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from device.config import load_credentials
from league_server.core.security import verify_mqtt_password
from league_server.models import Car


def _setup(client: Any, headers: dict[str, str], **race: Any) -> dict[str, Any]:
    league = client.post("/api/admin/leagues", json={"slug": "acme", "name": "ACME"}, headers=headers)
    assert league.status_code == 201, league.text
    lid = league.json()["id"]
    team = client.post(f"/api/admin/leagues/{lid}/teams", json={"name": "Red"}, headers=headers).json()
    racer = client.post(
        f"/api/admin/leagues/{lid}/racers", json={"name": "Ada", "team_id": team["id"]}, headers=headers
    ).json()
    racer2 = client.post(f"/api/admin/leagues/{lid}/racers", json={"name": "Bo"}, headers=headers).json()
    event = client.post(f"/api/admin/leagues/{lid}/events", json={"name": "Friday"}, headers=headers).json()
    body = {"name": "Time trial", "ranking": "best_lap", "offtrack_penalty_s": 2.0, **race}
    created = client.post(f"/api/admin/events/{event['id']}/races", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return {"league": lid, "racer": racer["id"], "racer2": racer2["id"], "race": created.json()["id"]}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/admin/leagues"),
        ("get", "/api/admin/cars"),
        ("post", "/api/admin/laps/1/invalidate"),
        ("get", "/api/admin/audit"),
    ],
)
def test_admin_routes_need_the_token(client: Any, method: str, path: str) -> None:
    no_token = getattr(client, method)(path)
    assert no_token.status_code == 401
    assert no_token.headers["www-authenticate"] == "Bearer"
    wrong = getattr(client, method)(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert "wrong token" in wrong.json()["detail"]


def test_admin_api_is_disabled_without_a_configured_token(settings: Any) -> None:
    from fastapi.testclient import TestClient

    from league_server.main import create_app

    with TestClient(create_app(settings.model_copy(update={"admin_token": None}))) as client:
        response = client.get("/api/admin/cars", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403 and "PITLANE_ADMIN_TOKEN" in response.json()["detail"]


def test_provisioning_returns_credentials_once(
    client: Any, admin_headers: dict[str, str], app: Any, tmp_path: Path
) -> None:
    ids = _setup(client, admin_headers)
    response = client.post(
        f"/api/admin/leagues/{ids['league']}/cars",
        json={"car_id": "car-7", "racer_id": ids["racer"], "race_id": ids["race"]},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    creds = response.json()
    assert creds["mqtt_username"] == "car-7" and len(creds["hmac_secret"]) == 64
    assert creds["lap_topic"] == "pitlane/acme/cars/car-7/laps" and creds["league"] == "acme"
    assert creds["leaderboard_url"].endswith(f"/api/races/{ids['race']}/leaderboard")
    # the response, saved as it is, is the credentials file the car reads
    saved = tmp_path / "car-7.json"
    saved.write_text(response.text, encoding="utf-8")
    assert load_credentials(saved).model_dump(mode="json") == creds
    with app.state.sessionmaker() as session:
        car = session.query(Car).filter_by(car_id="car-7").one()
        assert verify_mqtt_password(creds["mqtt_password"], car.password_hash)
        assert creds["mqtt_password"] not in car.password_hash
    listed = client.get("/api/admin/cars", headers=admin_headers).json()
    assert [c["car_id"] for c in listed] == ["car-7"]
    assert (
        "mqtt_password" not in listed[0]
        and "hmac_secret" not in listed[0]
        and "password_hash" not in listed[0]
    )
    again = client.post(
        f"/api/admin/leagues/{ids['league']}/cars", json={"car_id": "car-7"}, headers=admin_headers
    )
    assert again.status_code == 409 and "car-7" in again.json()["detail"]
    rotated = client.post("/api/admin/cars/car-7/rotate-credentials", headers=admin_headers).json()
    assert (
        rotated["mqtt_password"] != creds["mqtt_password"] and rotated["hmac_secret"] != creds["hmac_secret"]
    )


def _lap(client: Any, headers: dict[str, str], race: int, car: str, ms: int, **kw: Any) -> dict[str, Any]:
    response = client.post(
        f"/api/admin/races/{race}/laps",
        json={"car_id": car, "lap_time_ms": ms, "reason": "timer", **kw},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_invalidate_restore_audited_and_changes_the_leaderboard(
    client: Any, admin_headers: dict[str, str]
) -> None:
    ids = _setup(client, admin_headers)
    for car, racer in (("c1", ids["racer"]), ("c2", ids["racer2"])):
        client.post(
            f"/api/admin/leagues/{ids['league']}/cars",
            json={"car_id": car, "racer_id": racer, "race_id": ids["race"]},
            headers=admin_headers,
        )
    fast = _lap(client, admin_headers, ids["race"], "c1", 9_000)
    _lap(client, admin_headers, ids["race"], "c2", 9_500, offtrack_count=1)  # 11.5 s
    _lap(client, admin_headers, ids["race"], "c2", 10_000)
    board = client.get(f"/api/races/{ids['race']}/leaderboard").json()
    assert [(e["racer"], e["team"], e["ranking_value_s"], e["gap_s"]) for e in board["entries"]] == [
        ("Ada", "Red", 9.0, 0.0),
        ("Bo", None, 10.0, 1.0),
    ]
    bad = client.post(f"/api/admin/laps/{fast['id']}/invalidate", json={}, headers=admin_headers)
    assert bad.status_code == 422 and "body.reason" in bad.text
    inv = client.post(
        f"/api/admin/laps/{fast['id']}/invalidate",
        json={"reason": "cut the chicane"},
        headers=admin_headers,
    )
    assert inv.status_code == 200 and inv.json()["valid"] is False
    board = client.get(f"/api/races/{ids['race']}/leaderboard").json()
    assert [(e["racer"], e["position"]) for e in board["entries"]] == [("Bo", 1), ("Ada", None)]
    client.post(f"/api/admin/laps/{fast['id']}/restore", json={"reason": "video ok"}, headers=admin_headers)
    board = client.get(f"/api/races/{ids['race']}/leaderboard").json()
    assert board["entries"][0]["racer"] == "Ada"
    audit = client.get(
        "/api/admin/audit", params={"entity": "lap", "entity_id": fast["id"]}, headers=admin_headers
    ).json()
    assert [(a["action"], a["reason"], a["actor"]) for a in audit] == [
        ("restore", "video ok", "admin"),
        ("invalidate", "cut the chicane", "admin"),
        ("manual_entry", "timer", "admin"),
    ]
    assert audit[1]["before"]["valid"] is True and audit[1]["after"]["valid"] is False
    missing = client.post("/api/admin/laps/99999/invalidate", json={"reason": "x"}, headers=admin_headers)
    assert missing.status_code == 404 and "lap 99999" in missing.json()["detail"]


def test_exports(client: Any, admin_headers: dict[str, str]) -> None:
    ids = _setup(client, admin_headers)
    client.post(
        f"/api/admin/leagues/{ids['league']}/cars",
        json={"car_id": "c1", "racer_id": ids["racer"], "race_id": ids["race"]},
        headers=admin_headers,
    )
    first = _lap(client, admin_headers, ids["race"], "c1", 9_000, offtrack_count=1)  # 11 s
    _lap(client, admin_headers, ids["race"], "c1", 10_250)
    deleted = _lap(client, admin_headers, ids["race"], "c1", 5_000)
    client.post(f"/api/admin/laps/{deleted['id']}/delete", json={"reason": "test"}, headers=admin_headers)
    client.post(
        f"/api/admin/laps/{first['id']}/penalty",
        json={"penalty_ms": 500, "reason": "cone"},
        headers=admin_headers,
    )
    laps_csv = client.get(f"/api/races/{ids['race']}/export/laps.csv")
    assert laps_csv.status_code == 200 and laps_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(laps_csv.text)))
    assert [
        (r["lap_time_s"], r["penalty_s"], r["ranked_time_s"], r["counts"], r["deleted"]) for r in rows
    ] == [
        ("9.000", "2.500", "11.500", "yes", "no"),
        ("10.250", "0.000", "10.250", "yes", "no"),
        ("5.000", "0.000", "5.000", "no", "yes"),
    ]
    assert rows[0]["racer"] == "Ada"
    standings = list(
        csv.DictReader(io.StringIO(client.get(f"/api/races/{ids['race']}/export/standings.csv").text))
    )
    assert [(s["position"], s["racer"], s["team"], s["ranking_value_s"], s["laps"]) for s in standings] == [
        ("1", "Ada", "Red", "10.25", "2")
    ]
    assert (
        standings[0]["status"] == "ranked" and "car_number" in standings[0] and "gap_ahead_s" in standings[0]
    )
    full = client.get(f"/api/races/{ids['race']}/export/full.json").json()
    assert full["race"]["id"] == ids["race"] and len(full["laps"]) == 3
    assert full["leaderboard"]["entries"][0]["ranking_value_s"] == 10.25
    assert [c["car_id"] for c in full["cars"]] == ["c1"] and "hmac_secret" not in full["cars"][0]
    assert "audit" not in full  # who edited what is for admins: GET /api/admin/races/{id}/audit


def test_csv_cells_cannot_become_formulas(client: Any, admin_headers: dict[str, str]) -> None:
    ids = _setup(client, admin_headers)
    evil = client.post(
        f"/api/admin/leagues/{ids['league']}/racers", json={"name": "=HYPERLINK(1)"}, headers=admin_headers
    ).json()
    client.post(
        f"/api/admin/leagues/{ids['league']}/cars",
        json={"car_id": "c9", "racer_id": evil["id"], "race_id": ids["race"]},
        headers=admin_headers,
    )
    _lap(client, admin_headers, ids["race"], "c9", 9_000)
    text = client.get(f"/api/races/{ids['race']}/export/standings.csv").text
    assert "'=HYPERLINK(1)" in text


def test_public_reads(client: Any, admin_headers: dict[str, str]) -> None:
    ids = _setup(client, admin_headers, ranking="best_average_of", ranked_laps=2)
    races = client.get("/api/races").json()
    assert [r["id"] for r in races] == [ids["race"]] and races[0]["ranking"] == "best_average_of"
    assert client.get(f"/api/races/{ids['race']}").json()["ranked_laps"] == 2
    assert client.get("/api/races/424242").status_code == 404
    results = client.get(f"/api/races/{ids['race']}/results").json()
    assert results["leaderboard"]["entries"] == [] and results["laps"] == []
    assert client.get("/api/leagues").json()[0]["slug"] == "acme"
    assert client.get("/api/health").json()["status"] == "ok"
