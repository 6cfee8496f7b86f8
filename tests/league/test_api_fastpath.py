"""The leaderboard fast path (league_server/api/fastpath.py): a cache hit is answered by the middleware with
the route's bytes and headers; misses, bad ids, unknown races and clients over the rate limit still get the
route's answers (so the OpenAPI contract holds either way)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from league_server.api.fastpath import LeaderboardFastPath
from league_server.main import create_app
from tests.league.ingest_support import add_lap, provision


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def _scope(path: str, method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "client": ("127.0.0.1", 5000)}


def _race_with_a_lap(app: Any) -> int:
    fleet = provision(app.state.sessionmaker, n_cars=1)
    with app.state.sessionmaker() as s:
        add_lap(s, fleet.race_id, "car-0", 0, 10_000)
    return fleet.race_id


def test_a_cache_hit_is_the_routes_response(client: Any, app: Any) -> None:
    race_id = _race_with_a_lap(app)
    fast = LeaderboardFastPath(app=None, state_app=app)
    assert fast._cached_body(_scope(f"/api/races/{race_id}/leaderboard")) is None  # nothing cached yet
    first = client.get(f"/api/races/{race_id}/leaderboard")  # the route ranks and fills the cache
    assert fast._cached_body(_scope(f"/api/races/{race_id}/leaderboard")) == first.content
    second = client.get(f"/api/races/{race_id}/leaderboard")  # answered by the middleware
    assert second.status_code == 200 and second.content == first.content
    assert second.json()["entries"][0]["best_lap_s"] == 10.0
    for header in ("content-type", "content-length"):
        assert second.headers[header] == first.headers[header]


def test_only_get_of_a_leaderboard_path_is_taken(client: Any, app: Any) -> None:
    race_id = _race_with_a_lap(app)
    client.get(f"/api/races/{race_id}/leaderboard")
    fast = LeaderboardFastPath(app=None, state_app=app)
    for scope in (
        _scope(f"/api/races/{race_id}/leaderboard", method="POST"),
        _scope(f"/api/races/{race_id}/leaderboard/x"),
        _scope(f"/api/races/0{race_id}/leaderboard"),
        _scope("/api/races/99999999999/leaderboard"),
        {"type": "websocket", "path": f"/api/races/{race_id}/leaderboard"},
    ):
        assert fast._cached_body(scope) is None, scope


def test_misses_and_bad_ids_get_the_routes_errors(client: Any) -> None:
    assert client.get("/api/races/424242/leaderboard").status_code == 404
    assert client.get("/api/races/0/leaderboard").status_code == 422
    assert client.get("/api/races/99999999999/leaderboard").status_code == 422


def test_the_rate_limit_holds_on_the_fast_path(settings: Any) -> None:
    app = create_app(settings.model_copy(update={"public_rate_limit_per_minute": 3}))
    with TestClient(app) as client:
        race_id = _race_with_a_lap(app)
        codes = [client.get(f"/api/races/{race_id}/leaderboard").status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        limited = client.get(f"/api/races/{race_id}/leaderboard")
        assert (
            "3 requests per minute" in limited.json()["detail"] and int(limited.headers["retry-after"]) >= 1
        )
