"""A model's robustness card (contracts.robustness) where the league server shows it, on SQLite and PostgreSQL:
the console's model API (the verdict, the card and its advice; "not measured" for a card without one) and a
virtual race's leaderboard (JSON and page: the counted model's verdict and clean-lap completion, "—" without
one, no column on a physical race's page, no token on the page)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.robustness import robustness_warning
from tests.league.robustness_support import (
    FRAGILE,
    READY,
    card_dict,
    evaluated,
    finished_console_model,
    virtual_race,
)


@pytest.fixture
def client(settings: Any, tmp_path: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from league_server.main import create_app

    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "data"}))) as client:
        yield client


@pytest.fixture
def league(client: Any) -> dict[str, Any]:
    """A league with Ada, Ben and Cy (racer ids and tokens)."""
    from league_server.crud import leagues, virtual

    with client.app.state.sessionmaker() as session:
        league = leagues.create_league(session, "class-r", "Class R")
        issued = virtual.import_roster(
            session, league.id, [virtual.RosterRow(n) for n in ("Ada", "Ben", "Cy")]
        )
        session.commit()
        return {
            "id": league.id,
            "ids": {r.name: r.id for r, _ in issued},
            "tokens": {r.name: t for r, t in issued},
        }


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _racer(session: Any, racer_id: int) -> Any:
    from league_server.models import Racer

    return session.get(Racer, racer_id)


def test_the_console_model_api_gives_the_verdict_the_card_and_its_advice(
    client: Any, league: dict[str, Any]
) -> None:
    from contracts.recipe import Recipe
    from league_server.crud import console

    data_dir = client.app.state.settings.data_dir
    with client.app.state.sessionmaker() as session:
        ada = _racer(session, league["ids"]["Ada"])
        fragile = finished_console_model(session, data_dir, ada, "fragile", card_dict(FRAGILE))
        older = finished_console_model(session, data_dir, ada, "older export", card_dict(None))
        broken_card = card_dict(None) | {"robustness": {"completion": 2.0}}
        broken = finished_console_model(session, data_dir, ada, "broken", broken_card)
        draft = console.create_model(session, ada, Recipe(name="draft")).id
        session.commit()
    ada_headers = _bearer(league["tokens"]["Ada"])

    def get(model_id: int) -> Any:
        return client.get(f"/api/console/models/{model_id}", headers=ada_headers)

    shown = get(fragile).json()["robustness"]
    assert shown["measured"] is True and shown["verdict"] == "fragile"
    assert shown["card"]["completion"] == pytest.approx(0.8)
    assert [t["track"] for t in shown["card"]["tracks"]] == ["reInvent2019_track", "Canada_Training"]
    assert shown["card"]["tracks"][1]["best_over_limit"] == pytest.approx(1.47)
    assert shown["summary"] == FRAGILE.summary() and shown["advice"] == robustness_warning(FRAGILE)

    for model_id in (older, broken):  # no card, and one the contract refuses: not measured, never a 500
        response = get(model_id)
        assert response.status_code == 200, response.text
        none = response.json()["robustness"]
        assert none["measured"] is False and none["verdict"] is None and none["card"] is None
        assert none["advice"] == robustness_warning(None)
    assert get(draft).json()["robustness"] is None  # nothing exported yet: no panel


def test_a_virtual_leaderboard_shows_each_counted_model_s_robustness(
    client: Any, league: dict[str, Any]
) -> None:
    from league_server.crud import leagues, races

    ids = league["ids"]
    with client.app.state.sessionmaker() as session:
        race = virtual_race(session, league["id"])
        ada, ben, cy = (_racer(session, ids[n]) for n in ("Ada", "Ben", "Cy"))
        evaluated(session, race, ada, "a", card_dict(READY), [10.0, 10.2, 10.1])
        # Ben's faster model has no card: it is the one that ranks, so his row shows none
        evaluated(session, race, ben, "b", card_dict(FRAGILE), [12.0, 12.0, 12.0])
        evaluated(session, race, ben, "c", card_dict(None), [11.0, 11.0, 11.0])
        evaluated(session, race, cy, "d", card_dict(FRAGILE), [13.0, 13.0, 13.0])
        physical = races.create_race(
            session, leagues.create_event(session, league["id"], "Track day").id, "Real"
        )
        session.commit()
        race_id, physical_id = race.id, physical.id

    board = client.get(f"/api/races/{race_id}/leaderboard").json()
    rows = {e["racer"]: e["robustness"] for e in board["entries"]}
    assert rows["Ben"] is None
    assert rows["Ada"]["verdict"] == "ready" and rows["Ada"]["completion"] == pytest.approx(0.95)
    assert rows["Ada"]["summary"] == READY.summary()
    assert rows["Cy"]["verdict"] == "fragile" and rows["Cy"]["completion_ci95"] == pytest.approx([0.49, 0.94])
    assert set(rows["Cy"]) == {"verdict", "completion", "completion_ci95", "summary"}  # not the whole card

    page = client.get(f"/races/{race_id}")
    assert page.status_code == 200
    html = page.text
    assert 'data-robustness="yes"' in html and ">Robustness</th>" in html
    assert '<span class="robust-badge" data-verdict="ready"' in html and "ready 95\u00a0%" in html
    assert '<span class="robust-badge" data-verdict="fragile"' in html and "fragile 80\u00a0%" in html
    assert html.count('<span class="robust-none"') == 1  # Ben's counted model
    assert "model.int8.onnx" not in html  # the badge, not the card
    assert not any(token in html for token in league["tokens"].values())

    physical_page = client.get(f"/races/{physical_id}").text
    assert "Robustness" not in physical_page and "robust-badge" not in physical_page
    assert all(
        e["robustness"] is None for e in client.get(f"/api/races/{physical_id}/leaderboard").json()["entries"]
    )
