"""Property-based tests over the OpenAPI schema (schemathesis 4, in-process against the ASGI app): valid and
invalid inputs on every operation, with the admin token, on SQLite and PostgreSQL; no response is a 5xx.

The schema is read at import from an app that is never started (no database is touched); each generated case
is then sent to a started app on each database. Not ``schemathesis.pytest.from_fixture``: its runner renames
the pytest item through a private attribute (``Item._nodeid``) that pytest 9.2 no longer has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from league_server.core.config import Settings
from league_server.main import create_app
from tests.conftest import POSTGRES, require_service
from tests.league.conftest import ADMIN_TOKEN, fresh_postgres_database

MAX_EXAMPLES = 20
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None, database_url=database_url, admin_token=ADMIN_TOKEN, public_rate_limit_per_minute=0
    )


schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_settings("sqlite://")))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def _seed(client: TestClient) -> None:
    """A league with a race, a car and laps, so generated ids (1, 2, ...) hit real rows too."""
    league = client.post("/api/admin/leagues", json={"slug": "s", "name": "S"}, headers=HEADERS).json()
    event = client.post(
        f"/api/admin/leagues/{league['id']}/events", json={"name": "E"}, headers=HEADERS
    ).json()
    race = client.post(f"/api/admin/events/{event['id']}/races", json={"name": "R"}, headers=HEADERS).json()
    client.post(
        f"/api/admin/leagues/{league['id']}/cars",
        json={"car_id": "c1", "race_id": race["id"]},
        headers=HEADERS,
    )
    for ms in (9000, 9500):
        client.post(
            f"/api/admin/races/{race['id']}/laps", json={"car_id": "c1", "lap_time_ms": ms, "reason": "seed"},
            headers=HEADERS,
        )  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    if request.param == "postgresql":
        require_service(*POSTGRES[:2], POSTGRES[2])
        database = fresh_postgres_database(*POSTGRES[:2])
    else:
        database = _sqlite(tmp_path_factory)
    with database as url, TestClient(create_app(_settings(url))) as client:
        _seed(client)
        yield client


class _sqlite:  # noqa: N801 - a context manager used like fresh_postgres_database
    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.url = f"sqlite:///{factory.mktemp('schemathesis') / 'league.db'}"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        return None


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case: Any, api_client: TestClient) -> None:
    request = case.as_transport_kwargs(headers=HEADERS)
    if isinstance(request.get("data"), bytes | str):  # httpx takes a raw body as `content`
        request["content"] = request.pop("data")
    if not request.get("cookies"):  # the API has no cookie parameters; httpx deprecates per-request cookies
        request.pop("cookies", None)
    if request.get("files"):
        request["files"] = _sendable(request["files"])
    response = api_client.request(**request)
    response.request.read()  # a multipart upload's body is a stream: the checks read the request it sent
    case.validate_response(response, checks=[not_a_server_error], headers=HEADERS)


def _sendable(files: Any) -> Any:
    """Multipart parts as an HTTP client can send them: schemathesis' negative cases put numbers or objects
    where a file goes, which no client can encode (httpx raises before sending); they become their JSON bytes,
    the nearest body a server can actually receive."""
    import json

    def content(value: Any) -> Any:
        return value if isinstance(value, bytes | str) else json.dumps(value).encode()

    def part(value: Any) -> Any:  # a part is its content, or (filename, content[, content type])
        return (value[0], content(value[1]), *value[2:]) if isinstance(value, tuple) else content(value)

    if isinstance(files, dict):
        return {name: part(value) for name, value in files.items()}
    return [(name, part(value)) for name, value in files]
