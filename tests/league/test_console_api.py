"""The console's API on SQLite and PostgreSQL, without training: signing in (cookie + CSRF), who sees which
model, quotas, sharing, remixing with lineage, publishing a recipe, and bad input that names what is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.recipe import Recipe, StopCondition


@pytest.fixture
def client(settings: Any, tmp_path: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from league_server.main import create_app

    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "data"}))) as client:
        yield client


@pytest.fixture
def roster(client: Any) -> dict[str, Any]:
    """A league with Ada and Ben (quota: 1 job at once, 30 min a day) and another league's Eve."""
    from league_server.crud import console, leagues, virtual

    with client.app.state.sessionmaker() as session:
        league = leagues.create_league(session, "class-9", "Class 9")
        console.set_quota(session, league, concurrent_jobs=1, minutes_per_day=30)
        (ada, ada_token), (_, ben_token) = virtual.import_roster(
            session, league.id, [virtual.RosterRow("Ada"), virtual.RosterRow("Ben")]
        )
        other = leagues.create_league(session, "class-10", "Class 10")
        ((_, eve_token),) = virtual.import_roster(session, other.id, [virtual.RosterRow("Eve")])
        session.commit()
        return {
            "ada": ada_token,
            "ben": ben_token,
            "eve": eve_token,
            "league_id": league.id,
            "ada_id": ada.id,
        }


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _recipe(name: str = "centre", minutes: float = 1.0) -> dict[str, Any]:
    return Recipe(name=name, stop=StopCondition(minutes=minutes)).model_dump(mode="json")


def _draft(client: Any, token: str, name: str = "centre", minutes: float = 1.0) -> dict[str, Any]:
    response = client.post(
        "/api/console/models", json={"recipe": _recipe(name, minutes), "train": False}, headers=_bearer(token)
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_sign_in_sets_an_httponly_cookie_and_unsafe_requests_need_the_csrf_token(
    client: Any, roster: Any
) -> None:
    refused = client.post("/console/sign-in", data={"token": "not-a-token"}, follow_redirects=False)
    assert refused.status_code == 303 and "error" in refused.headers["location"]
    assert "pitlane_session" not in refused.cookies

    signed = client.post("/console/sign-in", data={"token": roster["ada"]}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/console"
    cookie_header = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie_header and "samesite=lax" in cookie_header
    assert roster["ada"] not in signed.headers["set-cookie"]  # the cookie is a session, not the racer token

    me = client.get("/api/console/me")  # the cookie alone reads
    assert me.status_code == 200 and me.json()["racer"]["name"] == "Ada"
    assert me.json()["quota"] == {"concurrent_jobs": 1, "minutes_per_day": 30.0}

    body = {"recipe": _recipe(), "train": False}
    forged = client.post("/api/console/models", json=body)  # a cross-site form would carry only the cookie
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    with client.app.state.sessionmaker() as session:
        from sqlalchemy import select

        from league_server.models import ConsoleSession

        csrf = session.scalar(select(ConsoleSession.csrf_token))
    made = client.post("/api/console/models", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201 and made.json()["status"] == "draft"

    client.post("/console/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert client.get("/api/console/me").status_code == 401


def test_a_racer_never_sees_another_racers_private_model(client: Any, roster: Any) -> None:
    model = _draft(client, roster["ada"])
    for token in ("ben", "eve"):
        for path in ("", "/recipe.toml"):
            assert (
                client.get(
                    f"/api/console/models/{model['id']}{path}", headers=_bearer(roster[token])
                ).status_code
                == 404
            )
    assert (
        client.post(f"/api/console/models/{model['id']}/remix", headers=_bearer(roster["ben"])).status_code
        == 404
    )
    assert client.get("/api/console/models", headers=_bearer(roster["ben"])).json() == []

    shared = client.post(
        f"/api/console/models/{model['id']}/share", json={"shared": True}, headers=_bearer(roster["ada"])
    )
    assert shared.json()["shared"] is True
    assert client.get(f"/api/console/models/{model['id']}", headers=_bearer(roster["ben"])).status_code == 200
    # shared in Ada's league only; and only Ada changes it
    assert client.get(f"/api/console/models/{model['id']}", headers=_bearer(roster["eve"])).status_code == 404
    unshare = client.post(
        f"/api/console/models/{model['id']}/share", json={"shared": False}, headers=_bearer(roster["ben"])
    )
    assert unshare.status_code == 404
    put = client.put(f"/api/console/models/{model['id']}", json={"recipe": _recipe("mine now"), "train": False},
                      headers=_bearer(roster["ben"]))  # fmt: skip
    assert put.status_code == 404


def test_remix_copies_the_recipe_and_both_sides_show_the_lineage(client: Any, roster: Any) -> None:
    original = _draft(client, roster["ada"], "centre line")
    client.post(
        f"/api/console/models/{original['id']}/share", json={"shared": True}, headers=_bearer(roster["ada"])
    )
    remix = client.post(f"/api/console/models/{original['id']}/remix", headers=_bearer(roster["ben"]))
    assert remix.status_code == 201
    copy = remix.json()
    assert copy["status"] == "draft" and copy["mine"] and copy["name"] == "centre line (remix)"
    assert copy["parent"] == {"id": original["id"], "name": "centre line", "author": "Ada"}
    detail = client.get(f"/api/console/models/{copy['id']}", headers=_bearer(roster["ben"])).json()
    assert detail["recipe"]["remixed_from"]["name"] == "centre line"
    assert detail["recipe"]["remixed_from"]["url"].endswith(f"/api/recipes/{original['id']}.toml")
    assert detail["recipe"]["reward_function"] == Recipe().reward_function

    gallery = client.get("/api/recipes", headers=_bearer(roster["ben"])).json()
    assert [(g["name"], g["remixes"], g["author"]) for g in gallery] == [("centre line", 1, "Ada")]
    toml = client.get(gallery[0]["recipe"], headers=_bearer(roster["ben"]))
    assert Recipe.from_toml(toml.text).name == "centre line"


def test_publish_puts_a_recipe_file_in_the_gallery_and_a_bad_one_names_the_key(
    client: Any, roster: Any
) -> None:
    text = Recipe(name="published").to_toml()
    made = client.post("/api/recipes", json={"toml": text}, headers=_bearer(roster["ada"]))
    assert made.status_code == 201 and made.json()["url"].endswith(f"/console/models/{made.json()['id']}")
    assert [g["name"] for g in client.get("/api/recipes", headers=_bearer(roster["ben"])).json()] == [
        "published"
    ]

    bad = client.post("/api/recipes", json={"toml": text.replace("batch_size = 64", "batch_size = 63")},
                      headers=_bearer(roster["ada"]))  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["detail"]["problems"][0]["field"] == "hyperparameters.batch_size"
    too_many = _recipe() | {"action_space": [{"steering_angle": 0.0, "speed": 1.0}] * 51}
    refused = client.post(
        "/api/console/models", json={"recipe": too_many, "train": False}, headers=_bearer(roster["ada"])
    )
    assert refused.status_code == 422 and "expected 2 to 50 discrete actions, got 51" in refused.text
    assert (
        client.post("/api/recipes", json={"toml": "x = "}, headers=_bearer(roster["ada"])).status_code == 422
    )
    assert client.get("/api/console/models", headers=_bearer(roster["ada"])).json()[0]["name"] == "published"


def test_quotas_refuse_training_with_the_figures_and_touch_nothing(client: Any, roster: Any) -> None:
    from league_server.crud import console
    from league_server.models import Racer, RacerModel

    long = client.post("/api/console/models", json={"recipe": _recipe("long", 45.0), "train": True},
                       headers=_bearer(roster["ada"]))  # fmt: skip
    assert long.status_code == 409
    assert "45 min" in long.json()["detail"] and "30 min" in long.json()["detail"]
    with client.app.state.sessionmaker() as session:  # refused: no model left behind
        assert session.query(RacerModel).count() == 0
        racer = session.get(Racer, roster["ada_id"])
        first = console.create_model(session, racer, Recipe(name="a", stop=StopCondition(minutes=10)))
        console.queue_training(session, first)
        session.commit()
    second = client.post("/api/console/models", json={"recipe": _recipe("b", 10.0), "train": True},
                         headers=_bearer(roster["ada"]))  # fmt: skip
    assert second.status_code == 409 and "1 at once" in second.json()["detail"]
    me = client.get("/api/console/me", headers=_bearer(roster["ada"])).json()
    assert me["usage"] == {"running_jobs": 1, "minutes_today": 10.0}
    # Ben's quota is his own: Ada's queued job does not count against it (he passes the quota; the check runs)
    assert client.get("/api/console/me", headers=_bearer(roster["ben"])).json()["usage"]["running_jobs"] == 0


def test_a_model_s_live_stream_is_its_owner_s_or_a_shared_one_s(client: Any, roster: Any) -> None:
    model = _draft(client, roster["ada"])
    url = f"/api/console/models/{model['id']}/events"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=_bearer(roster["ben"])).status_code == 404  # private: not even confirmed
    assert client.get(url, headers=_bearer("not-a-token")).status_code == 401
