"""Bad HTTP input gets a 4xx naming the field, never a 500; public routes are rate-limited.

Validation happens before the database, so these run on SQLite only; the PostgreSQL-specific hazards (NUL in
text, integers beyond 32 bits) have their own test on PostgreSQL below, and schemathesis covers both.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def _league(client: Any, headers: dict[str, str]) -> int:
    return client.post("/api/admin/leagues", json={"slug": "l", "name": "L"}, headers=headers).json()["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "R", "ranked_laps": 0}, "body.ranked_laps"),
        ({"name": "R", "ranking": "fastest"}, "body.ranking"),
        ({"name": "R", "offtrack_penalty_s": -1}, "body.offtrack_penalty_s"),
        ({"name": "R", "offtrack_penalty_s": "NaN"}, "body.offtrack_penalty_s"),
        ({"name": "R", "laps": "three"}, "body.laps"),
        ({"name": "R", "colour": "red"}, "body.colour"),
        ({}, "body.name"),
        ({"name": "R\x00"}, "body.name"),
        ({"name": "R", "window_start": "not a date"}, "body.window_start"),
    ],
)
def test_bad_race_fields_are_named(
    client: Any, admin_headers: dict[str, str], body: dict, field: str
) -> None:
    league = _league(client, admin_headers)
    event = client.post(
        f"/api/admin/leagues/{league}/events", json={"name": "E"}, headers=admin_headers
    ).json()
    response = client.post(f"/api/admin/events/{event['id']}/races", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert field in [e["field"] for e in payload["errors"]]
    assert field in payload["detail"]


def test_rules_sim_race_rejects_are_named(client: Any, admin_headers: dict[str, str]) -> None:
    league = _league(client, admin_headers)
    event = client.post(
        f"/api/admin/leagues/{league}/events", json={"name": "E"}, headers=admin_headers
    ).json()
    response = client.post(
        f"/api/admin/events/{event['id']}/races",
        json={"name": "R", "ranking": "most_laps_in"},
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert response.json()["field"] == "time_window_s" and "window" in response.json()["detail"]
    response = client.post(
        f"/api/admin/events/{event['id']}/races",
        json={"name": "R", "window_start": "2026-12-01T20:00:00Z", "window_end": "2026-12-01T19:00:00Z"},
        headers=admin_headers,
    )
    assert response.status_code == 422 and response.json()["field"] == "window_end"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/races/0", "path.race_id"),
        ("/api/races/99999999999999999999", "path.race_id"),
        ("/api/races/abc/leaderboard", "path.race_id"),
        ("/api/races/1/laps?limit=0", "query.limit"),
        ("/api/races/1/laps?car_id=a%20b", "query.car_id"),
        ("/api/races?status=running", "query.status"),
    ],
)
def test_bad_path_and_query_values_are_named(client: Any, path: str, field: str) -> None:
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_malformed_json_and_wrong_types(client: Any, admin_headers: dict[str, str]) -> None:
    response = client.post(
        "/api/admin/leagues",
        content=b"{not json",
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"].startswith("body")
    response = client.post("/api/admin/leagues", json=["a", "list"], headers=admin_headers)
    assert response.status_code == 422
    response = client.post(
        "/api/admin/leagues", json={"slug": "bad slug!", "name": "x"}, headers=admin_headers
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.slug"


def test_conflicts_and_unknown_references(client: Any, admin_headers: dict[str, str]) -> None:
    _league(client, admin_headers)
    again = client.post("/api/admin/leagues", json={"slug": "l", "name": "L2"}, headers=admin_headers)
    assert again.status_code == 409 and "'l'" in again.json()["detail"]
    missing = client.post("/api/admin/leagues/777/events", json={"name": "E"}, headers=admin_headers)
    assert missing.status_code == 404 and missing.json()["detail"] == "league 777 does not exist"
    unknown_car = client.patch("/api/admin/cars/ghost", json={"race_id": None}, headers=admin_headers)
    assert unknown_car.status_code == 404


def test_race_update_rechecks_rules(client: Any, admin_headers: dict[str, str]) -> None:
    league = _league(client, admin_headers)
    event = client.post(
        f"/api/admin/leagues/{league}/events", json={"name": "E"}, headers=admin_headers
    ).json()
    race = client.post(
        f"/api/admin/events/{event['id']}/races", json={"name": "R"}, headers=admin_headers
    ).json()
    null_name = client.patch(f"/api/admin/races/{race['id']}", json={"name": None}, headers=admin_headers)
    assert null_name.status_code == 422 and null_name.json()["field"] == "name"
    no_window = client.patch(
        f"/api/admin/races/{race['id']}", json={"ranking": "most_laps_in"}, headers=admin_headers
    )
    assert no_window.status_code == 422 and no_window.json()["field"] == "time_window_s"
    ok = client.patch(
        f"/api/admin/races/{race['id']}",
        json={"ranking": "most_laps_in", "time_window_s": 300, "status": "closed"},
        headers=admin_headers,
    )
    assert ok.status_code == 200 and ok.json()["status"] == "closed"
    assert client.get(f"/api/races/{race['id']}").json()["ranking"] == "most_laps_in"


def test_public_routes_are_rate_limited(settings: Any) -> None:
    from league_server.main import create_app

    app = create_app(settings.model_copy(update={"public_rate_limit_per_minute": 5}))
    with TestClient(app) as client:
        codes = [client.get("/api/races").status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        limited = client.get("/api/races/1/export/laps.csv")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "5 requests per minute" in limited.json()["detail"]
        # admin routes are not rate-limited
        assert (
            client.get("/api/admin/cars", headers={"Authorization": "Bearer test-admin-token"}).status_code
            == 200
        )


def test_openapi_documents_responses_and_auth(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    leaderboard = spec["paths"]["/api/races/{race_id}/leaderboard"]["get"]
    assert leaderboard["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Leaderboard"
    )
    assert {"404", "422", "429"} <= set(leaderboard["responses"])
    provision = spec["paths"]["/api/admin/leagues/{league_id}/cars"]["post"]
    assert {"201", "401", "403", "409", "422"} <= set(provision["responses"])
    assert provision["security"] == [{"HTTPBearer": []}]
    assert (
        "text/csv"
        in spec["paths"]["/api/races/{race_id}/export/laps.csv"]["get"]["responses"]["200"]["content"]
    )
    entry = spec["components"]["schemas"]["LeaderboardEntry"]["properties"]
    assert {"position", "racer", "team", "gap_s", "best_lap_s", "last_lap_s", "ranking_value_s"} <= set(entry)


def test_postgres_hazards_are_refused_before_the_database(postgres_url: str, settings: Any) -> None:
    from league_server.main import create_app

    headers = {"Authorization": "Bearer test-admin-token"}
    with TestClient(create_app(settings.model_copy(update={"database_url": postgres_url}))) as client:
        nul = client.post("/api/admin/leagues", json={"slug": "x", "name": "a\x00b"}, headers=headers)
        assert nul.status_code == 422 and nul.json()["errors"][0]["field"] == "body.name"
        big = client.get(f"/api/races/{2**40}")
        assert big.status_code == 422 and big.json()["errors"][0]["field"] == "path.race_id"
        league = client.post("/api/admin/leagues", json={"slug": "x", "name": "X"}, headers=headers).json()
        far = client.post(
            f"/api/admin/leagues/{league['id']}/events",
            json={"name": "E", "starts_at": "9999-12-31T23:59:59-05:00"},
            headers=headers,
        )
        assert far.status_code == 422 and far.json()["errors"][0]["field"] == "body.starts_at"
