"""The robustness card in headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against the real
app under uvicorn: a finished console model's page draws its Robustness panel (verdict badge, clean-lap
completion and interval, a row per held-out track with clean laps x/y and the best lap against the car's
limit, the perturbation, the advice; a ready model's summary), a model without a card says "not measured", and a virtual race's live
leaderboard keeps each counted model's badge after leaderboard.js redraws it.

Screenshots: /tmp/robustness_console.png, /tmp/robustness_console_none.png, /tmp/robustness_leaderboard.png
and /tmp/robustness_leaderboard_phone.png (looked at by hand when the pages change).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
from tests.league.test_console_watch_browser import _png
from tests.league.web_live import LiveServer, chromium, page_without_errors

pytestmark = pytest.mark.xdist_group("robustness_browser")

SHOTS = Path("/tmp")
SEEN_WITHIN_MS = 5000


@dataclass
class Setup:
    server: LiveServer
    token: str  # Ada's
    measured: int  # Ada's finished model whose card has FRAGILE
    ready: int  # Ada's finished model whose card has READY
    unmeasured: int  # Ada's finished model whose card has no robustness
    race: int  # a virtual race: Ada's model READY, Ben's without a card


@pytest.fixture(scope="module")
def setup(live_server: LiveServer) -> Setup:
    from league_server.crud import virtual

    data_dir = live_server.app.state.settings.data_dir
    with live_server.sessions() as session:
        (ada, token), (ben, _) = virtual.import_roster(
            session, live_server.league_id, [virtual.RosterRow("Ada"), virtual.RosterRow("Ben")]
        )
        measured = finished_console_model(session, data_dir, ada, "Centre line", card_dict(FRAGILE))
        ready = finished_console_model(session, data_dir, ada, "Steady", card_dict(READY))
        unmeasured = finished_console_model(session, data_dir, ada, "Old export", card_dict(None))
        race = virtual_race(session, live_server.league_id, "Robust sprint")
        evaluated(session, race, ada, "a", card_dict(READY), [10.0, 10.2, 10.1])
        evaluated(session, race, ben, "b", card_dict(None), [11.0, 11.0, 11.0])
        session.commit()
        race_id = race.id
    from league_server.jobs.dispatch import training_output

    for model_id in (measured, ready, unmeasured):
        training_output(data_dir, model_id, "png").write_bytes(_png())
    return Setup(live_server, token, measured, ready, unmeasured, race_id)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield from page_without_errors(browser, viewport={"width": 1280, "height": 900})


def _sign_in(page: Any, setup: Setup) -> None:
    page.goto(f"{setup.server.url}/console/sign-in")
    page.fill("input[name=token]", setup.token)
    page.click("form[action='/console/sign-in'] button[type=submit]")
    page.wait_for_url(f"{setup.server.url}/console")


def test_the_console_model_page_draws_the_robustness_panel(setup: Setup, page: Any) -> None:
    from playwright.sync_api import expect

    _sign_in(page, setup)
    page.goto(f"{setup.server.url}/console/models/{setup.measured}")
    panel = page.locator("[data-robustness]")
    expect(panel).to_be_visible(timeout=SEEN_WITHIN_MS)
    badge = panel.locator("[data-robust-verdict]")
    expect(badge).to_have_text("fragile")
    expect(badge).to_have_attribute("data-verdict", "fragile")
    expect(badge).to_have_css("color", "rgb(255, 176, 32)")  # pitlane.css's amber
    expect(panel.locator("[data-robust-completion]")).to_have_text("80\u00a0%")
    expect(panel.locator("[data-robust-ci]")).to_have_text("49–94\u00a0%")
    expect(panel.locator("[data-robust-shift]")).to_have_text("eval-shift")
    rows = panel.locator("[data-robust-tracks] tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("Canada_Training")
    expect(rows.nth(1)).to_contain_text("3\u00a0/\u00a05")
    expect(rows.nth(1)).to_contain_text("12.50")
    expect(rows.nth(1)).to_contain_text("1.47× the car's limit")
    expect(panel.locator("[data-robust-what]")).to_contain_text(
        "5 seeds × 1 lap per track, driving model.int8.onnx"
    )
    expect(panel.locator("[data-robust-advice]")).to_have_text(robustness_warning(FRAGILE) or "")
    page.wait_for_function(
        "document.querySelector('[data-eval-png]').naturalWidth > 0", timeout=SEEN_WITHIN_MS
    )
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "robustness_console.png"), full_page=True)

    page.goto(f"{setup.server.url}/console/models/{setup.ready}")  # no advice for a ready model: its summary
    expect(page.locator("[data-robust-verdict]")).to_have_text("ready", timeout=SEEN_WITHIN_MS)
    expect(page.locator("[data-robust-advice]")).to_have_text(READY.summary())

    page.goto(f"{setup.server.url}/console/models/{setup.unmeasured}")
    expect(page.locator("[data-robust-verdict]")).to_have_text("not measured", timeout=SEEN_WITHIN_MS)
    expect(page.locator("[data-robust-figures]")).to_be_hidden()
    expect(page.locator("[data-robust-table]")).to_be_hidden()
    expect(page.locator("[data-robust-advice]")).to_have_text(robustness_warning(None) or "")
    page.locator("[data-robustness]").screenshot(path=str(SHOTS / "robustness_console_none.png"))


def test_the_live_leaderboard_draws_each_model_s_badge(setup: Setup, page: Any) -> None:
    from playwright.sync_api import expect

    # the JSON as the server sends it with Ada's completion changed: what the page shows came from the JS
    fetched: list[int] = []

    def served(route: Any) -> None:
        fetched.append(1)
        response = route.fetch()
        board = response.json()
        for entry in board["entries"]:
            if entry["robustness"] is not None:
                entry["robustness"]["completion"] = 0.91
        route.fulfill(response=response, json=board)

    page.route(f"**/api/races/{setup.race}/leaderboard", served)
    page.goto(f"{setup.server.url}/races/{setup.race}")
    rows = page.locator("[data-board-rows] tr")
    expect(rows.nth(0).locator(".robust-badge")).to_have_text("ready 91\u00a0%", timeout=SEEN_WITHIN_MS)
    expect(rows).to_have_count(2)
    badge = rows.nth(0).locator(".robust-badge")
    expect(badge).to_have_attribute("data-verdict", "ready")
    expect(badge).to_have_attribute("title", READY.summary())
    expect(badge).to_have_css("color", "rgb(31, 168, 85)")  # pitlane.css's green (rows are redrawn: retried)
    expect(rows.nth(1).locator("td.robust")).to_have_text("—")
    # both entries drive the simulator car: drawing the same board again (the page fetches it on load and
    # when its stream opens) marks no one's best lap as new
    for _ in range(50):
        if len(fetched) >= 2:
            break
        page.wait_for_timeout(100)
    assert len(fetched) >= 2, "the page fetched the leaderboard once only"
    page.wait_for_timeout(300)  # the second answer drawn
    marked = page.evaluate("[...document.querySelectorAll('[data-board-rows] tr')].map((t) => t.className)")
    assert not any(m in ("pb", "ob") for c in marked for m in c.split()), marked  # now: highlights fade
    expect(page.locator("thead th.robust")).to_have_text("Robustness")
    assert setup.token not in page.content()
    page.screenshot(path=str(SHOTS / "robustness_leaderboard.png"))

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the column gives way to the name's line
    expect(page.locator("thead th.robust")).to_be_hidden()
    expect(rows.nth(0).locator(".sub")).to_contain_text("ready 91\u00a0%")
    page.screenshot(path=str(SHOTS / "robustness_leaderboard_phone.png"))
