"""The console pages in headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against the real
app under uvicorn (tests/league/web_live.py), its console API included: sign in with a racer token, my models
and quota, the create page (CodeMirror, the track grid, a reward function's problem shown at its line, field
problems of a refused Train, a saved draft edited again), and the plain-textarea fallback while the assets are
missing, fetched by the server in the background.

The assets come from the shared cache (test_console_assets.py's): the registry is asked at most once a run.
Screenshots go to /tmp/console-shots/ (looked at by hand when the pages change).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from league_server.web.assets import WEB_ASSETS_DIR, ensure_assets, shared_cache_dir
from tests.conftest import skip_or_fail
from tests.league.web_live import LiveServer, chromium, page_without_errors, serve

pytestmark = pytest.mark.xdist_group("console_browser")

SHOTS = Path("/tmp/console-shots")
# a reward function that fails at line 4 for every fast step
BROKEN_REWARD = """def reward_function(params):
    speed = params["speed"]
    if speed > 0.5:
        return 1.0 / undefined_name
    return float(speed)
"""


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """The app with its console assets in place, and the token of a racer of its league."""
    from league_server.crud import virtual

    root = tmp_path_factory.mktemp("console")
    status = ensure_assets(root / "data" / WEB_ASSETS_DIR, cache=shared_cache_dir())  # serve(): data_dir
    if not status.ok:
        skip_or_fail(f"the console's assets could not be fetched: {status.message()}")
    for live in serve(root):
        with live.sessions() as session:
            ((_, token),) = virtual.import_roster(
                session, live.league_id, [virtual.RosterRow(name='Ada <img src=x onerror="window.__xss=1">')]
            )
            session.commit()
        yield live, token


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield from page_without_errors(browser, viewport={"width": 1440, "height": 900})


def _sign_in(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/console/sign-in")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/console")


def _open_editor(page: Any, url: str, path: str = "/console/models/new") -> None:
    page.goto(url + path)
    # the first opening waits for the server to draw its track catalogue
    page.wait_for_selector("[data-recipe-editor][data-ready=yes]", timeout=60_000)


def test_console_pages_send_a_stranger_to_sign_in(console_server: tuple[LiveServer, str], page: Any) -> None:
    import httpx
    from playwright.sync_api import expect

    live, token = console_server
    for path in ("/console", "/console/models/new", "/console/models/1", "/console/gallery"):
        response = httpx.get(live.url + path, follow_redirects=False, timeout=10)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/sign-in"

    page.goto(f"{live.url}/console")
    expect(page).to_have_url(f"{live.url}/console/sign-in")
    page.fill("input[name=token]", "not-a-token")
    page.click("button[type=submit]")
    expect(page.locator("[data-sign-in-error]")).to_be_visible()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "signin-error.png"))

    _sign_in(page, live.url, token)
    expect(page.locator("header .who")).to_have_text('Ada <img src=x onerror="window.__xss=1">')  # as text
    expect(page.locator("[data-quota-jobs]")).to_have_text("0 of 1")
    expect(page.locator("[data-quota-minutes]")).to_have_text("0.0 of 60 min")
    expect(page.locator("[data-models-empty]")).to_be_visible()
    assert page.evaluate("window.__xss") is None
    page.screenshot(path=str(SHOTS / "home-empty.png"))


def test_create_page_shows_a_reward_problem_at_its_line_and_field_problems(
    console_server: tuple[LiveServer, str], page: Any
) -> None:
    from playwright.sync_api import expect

    live, token = console_server
    _sign_in(page, live.url, token)
    _open_editor(page, live.url)
    expect(page.locator(".reward .CodeMirror")).to_be_visible()
    assert page.evaluate("document.querySelector('.CodeMirror').CodeMirror.getOption('mode')") == "python"
    expect(page.locator(".CodeMirror-code .CodeMirror-linenumber").first).to_have_text("1")  # line numbers
    tracks = page.evaluate("fetch('/api/console/tracks').then(r => r.json())")
    expect(page.locator(".track-card")).to_have_count(len(tracks))
    default_track = page.locator(".track-card.selected")
    expect(default_track).to_have_attribute("data-track", "reinvent_base")
    expect(page.locator("[data-actions-rows] tr")).to_have_count(10)  # DeepRacer's default action space
    page.screenshot(path=str(SHOTS / "new-top.png"))

    page.click(".track-card[data-track=hairpin]")
    expect(page.locator(".track-card.selected")).to_have_attribute("data-track", "hairpin")
    page.evaluate("code => document.querySelector('.CodeMirror').CodeMirror.setValue(code)", BROKEN_REWARD)
    page.click("[data-check]")
    widget = page.locator(".CodeMirror .cm-problem")
    expect(widget).to_have_count(1, timeout=60_000)
    expect(widget).to_contain_text("line 4")
    expect(widget).to_contain_text("NameError")
    marked = page.evaluate(
        "() => { const cm = document.querySelector('.CodeMirror').CodeMirror;"
        " return [...Array(cm.lineCount()).keys()].filter(i => (cm.lineInfo(i).bgClass || '')"
        ".includes('cm-problem-line')).map(i => i + 1); }"
    )
    assert marked == [4], f"the problem is marked on lines {marked}, not line 4"
    # the widget sits right under line 4 of the editor
    line_box = page.locator(".CodeMirror-code > div").nth(3).bounding_box()
    widget_box = widget.bounding_box()
    assert line_box and widget_box and 0 <= widget_box["y"] - line_box["y"] <= 2 * line_box["height"]
    page.screenshot(path=str(SHOTS / "new-reward-problem.png"))

    page.click("[data-use-template]")  # the default template: no problems, a reward summary
    page.click("[data-check]")
    expect(page.locator("[data-reward-summary]")).to_contain_text("µs per call", timeout=60_000)
    expect(widget).to_have_count(0)

    page.fill("[data-hp=lr]", "0.5")  # DeepRacer allows at most 0.001
    page.fill("input[name=minutes]", "0")
    page.click("[data-train]")
    expect(page.locator("[data-submit-status]")).to_have_attribute("data-state", "refused", timeout=60_000)
    lr_problem = page.locator('[data-field="hyperparameters.lr"] .field-problem')
    expect(lr_problem).to_contain_text("0.001")
    expect(page.locator('[data-field="stop.minutes"] .field-problem')).to_be_visible()
    expect(page.locator("[data-hp=lr]")).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(SHOTS / "new-train-refused.png"))

    page.fill("[data-hp=lr]", "0.0003")
    page.fill("input[name=minutes]", "90")  # the league allows 60 min a day
    page.click("[data-train]")
    expect(page.locator("[data-submit-status]")).to_contain_text("quota: this model asks for 90 min")
    expect(page.locator(".field-problem")).to_have_count(0)


def test_a_saved_draft_is_listed_and_opens_for_editing(
    console_server: tuple[LiveServer, str], page: Any
) -> None:
    from playwright.sync_api import expect

    live, token = console_server
    _sign_in(page, live.url, token)
    _open_editor(page, live.url)
    page.fill("input[name=name]", "Zig <i>zag</i>")
    page.click(".track-card[data-track=oval]")
    page.check("input[name=direction][value=reverse]")
    page.check("input[name=training_algorithm][value=sac]")  # SAC: continuous actions only
    expect(page.locator("[data-continuous]")).to_be_visible()
    page.fill('[data-range="speed.high"]', "2.5")
    page.uncheck("input[name=stop_early]")
    page.click("[data-save]")
    expect(page.locator("[data-submit-status]")).to_have_attribute("data-state", "ok")
    assert "from=" in page.url  # the page now edits that draft

    page.goto(f"{live.url}/console")
    row = page.locator("[data-models-rows] tr").first
    expect(row.locator("td.name")).to_have_text("Zig <i>zag</i>")
    expect(row.locator("td.track")).to_have_text("oval")
    expect(row.locator(".model-status")).to_have_text("draft")
    page.screenshot(path=str(SHOTS / "home-draft.png"))

    row.locator("a", has_text="edit").click()
    page.wait_for_selector("[data-recipe-editor][data-ready=yes]")
    expect(page.locator("[data-editor-title]")).to_have_text("Edit draft")
    expect(page.locator("input[name=name]")).to_have_value("Zig <i>zag</i>")
    expect(page.locator(".track-card.selected")).to_have_attribute("data-track", "oval")
    expect(page.locator("input[name=direction][value=reverse]")).to_be_checked()
    expect(page.locator("input[name=training_algorithm][value=sac]")).to_be_checked()
    expect(page.locator('[data-range="speed.high"]')).to_have_value("2.5")
    expect(page.locator("input[name=stop_early]")).not_to_be_checked()

    page.click("[data-train]")  # the draft, checked and queued: its watch page opens
    expect(page).to_have_url(re.compile(r".*/console/models/\d+$"), timeout=60_000)
    page.goto(f"{live.url}/console")
    expect(page.locator("[data-models-rows] tr").first.locator(".model-status")).to_have_text("queued")
    expect(page.locator("[data-quota-jobs]")).to_have_text("1 of 1")


def test_without_its_assets_the_editor_is_a_textarea_until_the_server_fetched_them(
    console_server: tuple[LiveServer, str], page: Any
) -> None:
    from playwright.sync_api import expect

    live, token = console_server
    _sign_in(page, live.url, token)
    shutil.rmtree(live.app.state.settings.data_dir / WEB_ASSETS_DIR)
    live.app.state.console_assets = None  # forget the verified state, as a restarted server would
    live.app.state.console_assets_fetch = None
    _open_editor(page, live.url)  # this view finds them missing and starts the fetch
    expect(page.locator("[data-assets-note]")).to_contain_text("pitlane league assets")
    expect(page.locator(".CodeMirror")).to_have_count(0)
    source = page.locator("textarea[data-reward-source]")
    expect(source).to_be_visible()
    source.fill(BROKEN_REWARD)
    page.click("[data-check]")
    expect(page.locator(".line-problems .cm-problem")).to_contain_text("line 4", timeout=60_000)
    page.screenshot(path=str(SHOTS / "new-fallback.png"))

    live.app.state.console_assets_fetch.join(60)  # the page view started it (from the shared cache)
    _open_editor(page, live.url)
    expect(page.locator(".reward .CodeMirror")).to_be_visible()
    expect(page.locator("[data-assets-note]")).to_have_count(0)
