"""The HTML pages and their event streams are rate-limited per client IP like the public API
(`settings.public_rate_limit_per_minute`; 429 with Retry-After; 0 = unlimited), on a budget of their own; an
event stream counts once, when it connects. Static files are not limited (a page needs them to render)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from league_server.core.config import Settings
from league_server.main import create_app
from tests.league.ingest_support import provision

LIMIT = 5


@pytest.fixture
def limited_app(sqlite_url: str) -> Any:
    settings = Settings(
        _env_file=None,
        database_url=sqlite_url,
        ingest_enabled=False,
        public_rate_limit_per_minute=LIMIT,
        rank_in_process=False,
    )
    return create_app(settings)


@pytest.fixture
def race_id(limited_app: Any) -> Iterator[int]:
    with TestClient(limited_app):  # runs the migrations
        yield provision(limited_app.state.sessionmaker, n_cars=1).race_id


def _client(app: Any, ip: str) -> TestClient:
    return TestClient(app, client=(ip, 50000))


def test_pages_answer_429_after_the_limit_per_client_ip(limited_app: Any, race_id: int) -> None:
    with _client(limited_app, "10.0.0.1") as phone, _client(limited_app, "10.0.0.2") as other:
        paths = ["/", f"/races/{race_id}", f"/races/{race_id}/bigscreen", f"/races/{race_id}/laps", "/"]
        assert [phone.get(path).status_code for path in paths] == [200] * LIMIT
        refused = phone.get(f"/races/{race_id}")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "rate limit" in refused.json()["detail"]
        assert phone.get("/static/web/pitlane.css").status_code == 200, "static files are not limited"
        assert other.get(f"/races/{race_id}").status_code == 200, "another address has its own budget"
        assert phone.get("/api/races").status_code == 200, "pages and the JSON API count separately"


def test_an_event_stream_counts_once_when_it_connects(
    limited_app: Any, race_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("league_server.web.routes.SSE_STREAM_MAX_S", 0.3)  # let the stream end by itself
    with _client(limited_app, "10.0.0.3") as screen:
        with screen.stream("GET", f"/races/{race_id}/events?leaderboard=1") as stream:
            assert stream.status_code == 200
            lines = list(stream.iter_lines())  # ends after SSE_STREAM_MAX_S
        assert ": subscribed" in lines
        statuses = [screen.get(f"/races/{race_id}").status_code for _ in range(LIMIT)]
        assert statuses == [200] * (LIMIT - 1) + [429]
        refused = screen.get(f"/races/{race_id}/events?leaderboard=1")
        assert refused.status_code == 429 and "retry-after" in refused.headers


def test_zero_means_unlimited(sqlite_url: str) -> None:
    settings = Settings(
        _env_file=None, database_url=sqlite_url, ingest_enabled=False, public_rate_limit_per_minute=0,
        rank_in_process=False,
    )  # fmt: skip
    app = create_app(settings)
    with _client(app, "10.0.0.4") as client:
        assert {client.get("/").status_code for _ in range(3 * LIMIT)} == {200}
