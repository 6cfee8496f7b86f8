"""The web pages in headless Chromium (Debian's /usr/bin/chromium driven by Playwright), against a real uvicorn
server over SQLite: a lap published over MQTT (signed, through Mosquitto and the ingest) appears on the
leaderboard with its personal/overall-best highlight; the big screen renders its QR code and scrolls; the lap page
shows invalidations live; user input is escaped.

Screenshots go to /tmp/pitlane-web-*.png (looked at by hand when the pages change).
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import skip_or_fail
from tests.league.web_live import LiveServer, add_lap, chromium, make_race, publish_lap_over_mqtt

SEEN_WITHIN_MS = 3000  # "within a second" is the target; the assertion leaves headroom on a loaded 2-core box
EVIL_NAME = '<img src=x onerror="window.__xss=1">Ada'


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"dialog opened: {dialog.message}"))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors or dialogs on the page: {errors}"


def _row(page, car_id: str):
    return page.locator(f'[data-board-rows] tr[data-key="{car_id}"]')


def test_a_lap_published_over_mqtt_appears_with_best_lap_highlights(live_server: LiveServer, page) -> None:
    from playwright.sync_api import expect

    if live_server.ingest is None:
        skip_or_fail("the live server started no MQTT ingest (app.state.ingest is None)")
    race = make_race(live_server, "Sprint <b>1</b>", [("ada", EVIL_NAME, "Red & Blue"), ("bob", "Bob", None)])
    page.goto(f"{live_server.url}/races/{race.race_id}")
    expect(page.locator("h1")).to_have_text("Sprint <b>1</b>")
    expect(page.locator("[data-live-status]")).to_have_text("live", timeout=5000)

    t0 = time.monotonic()
    publish_lap_over_mqtt(live_server, race, "ada", lap_time_ms=10_500)
    expect(_row(page, "ada").locator("td.value")).to_have_text("10.500", timeout=SEEN_WITHIN_MS)
    latency_ms = (time.monotonic() - t0) * 1000
    print(f"MQTT publish -> row visible in the browser: {latency_ms:.0f} ms")
    expect(_row(page, "ada")).to_have_class("ob")  # the first lap of the race is the overall best
    expect(_row(page, "ada").locator("td.racer .name")).to_have_text(EVIL_NAME)  # shown as text, not markup
    expect(_row(page, "ada").locator("td.team")).to_have_text("Red & Blue")
    assert page.evaluate("window.__xss") is None

    publish_lap_over_mqtt(live_server, race, "bob", lap_time_ms=12_000)
    expect(_row(page, "bob")).to_have_class("pb", timeout=SEEN_WITHIN_MS)  # personal, not overall, best
    expect(_row(page, "bob").locator("td.pos")).to_have_text("2")
    expect(_row(page, "bob").locator("td.gap")).to_have_text("+1.500")

    publish_lap_over_mqtt(live_server, race, "bob", lap_time_ms=9_900)
    expect(_row(page, "bob").locator("td.pos")).to_have_text("1", timeout=SEEN_WITHIN_MS)
    expect(_row(page, "bob")).to_have_class("ob")
    expect(_row(page, "ada")).to_have_class("pb")  # beaten: no longer the overall best, still a new PB
    expect(_row(page, "ada").locator("td.gap")).to_have_text("+0.600")
    expect(page.locator("[data-board-rows] tr")).to_have_count(2)
    page.screenshot(path="/tmp/pitlane-web-leaderboard.png", full_page=True)

    publish_lap_over_mqtt(live_server, race, "ada", lap_time_ms=11_000)  # slower: no new best
    expect(_row(page, "ada").locator("td.laps")).to_have_text("2", timeout=SEEN_WITHIN_MS)
    expect(_row(page, "ada").locator("td.last")).to_have_text("11.000")
    expect(_row(page, "bob")).not_to_have_class("ob", timeout=8000)  # the highlight fades after a few s
    expect(_row(page, "ada")).to_have_class("")


def test_bigscreen_shows_a_qr_code_of_the_page_and_scrolls_a_long_board(
    live_server: LiveServer, page
) -> None:
    from playwright.sync_api import expect

    cars = [(f"car-{i:02d}", f"Racer {i:02d}", f"Team {i % 5}") for i in range(30)]
    race = make_race(live_server, "Big screen final", cars)
    for i, (car_id, _, _) in enumerate(cars):
        add_lap(live_server, race, car_id, lap_time_ms=9_000 + 137 * i)
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(f"{live_server.url}/races/{race.race_id}/bigscreen")
    expect(page.locator("[data-board-rows] tr")).to_have_count(30)
    qr = page.locator(".qr-box svg.qr")
    expect(qr).to_be_visible()
    assert qr.locator("path").count() >= 1
    expect(qr.locator("title")).to_have_text(f"{live_server.public_base_url}/races/{race.race_id}")
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 150, f"QR code too small to scan from a distance: {box}"
    # The board may re-render its rows while we look (a live update replaces them): read the size of a row
    # that is attached, waiting for one, rather than of a node that was just replaced (NaN px).
    size_js = "() => parseFloat(getComputedStyle(document.querySelector('td.racer')).fontSize)"
    page.wait_for_function(f"({size_js})() > 0", timeout=5000)
    font_px = page.evaluate(size_js)
    assert font_px >= 30, f"big-screen type is {font_px} px"
    page.screenshot(path="/tmp/pitlane-web-bigscreen.png")

    scroll = page.locator("[data-scroll]")
    assert scroll.evaluate("el => el.scrollHeight > el.clientHeight"), "30 rows should overflow 1080 px"
    page.wait_for_function("document.querySelector('[data-scroll]').scrollTop > 20", timeout=8000)
    header = page.locator("[data-board-table] thead th.racer").bounding_box()
    top = scroll.bounding_box()
    assert header is not None and top is not None
    assert abs(header["y"] - top["y"]) < 2, "the column headers stick to the top while the board scrolls"
    page.screenshot(path="/tmp/pitlane-web-bigscreen-scrolled.png")

    add_lap(live_server, race, "car-29", lap_time_ms=8_000)  # the last racer takes the lead, live
    expect(_row(page, "car-29").locator("td.pos")).to_have_text("1", timeout=SEEN_WITHIN_MS)
    expect(_row(page, "car-29")).to_have_class("ob")


def test_lap_page_lists_every_lap_and_shows_an_invalidation_live(live_server: LiveServer, page) -> None:
    from playwright.sync_api import expect

    race = make_race(live_server, "Lap list", [("cara", "Cara", "Blue")], offtrack_penalty_s=2.0)
    add_lap(live_server, race, "cara", lap_time_ms=10_000)
    add_lap(live_server, race, "cara", lap_time_ms=11_000, offtrack_count=2)
    page.goto(f"{live_server.url}/races/{race.race_id}/laps")
    rows = page.locator("[data-laps-rows] tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td.penalty")).to_have_text("4.000")  # newest first; 2 off-tracks x 2 s
    expect(rows.first.locator("td.counted")).to_have_text("15.000")
    expect(page.locator("[data-live-status]")).to_have_text("live", timeout=5000)

    lap_id = add_lap(live_server, race, "cara", lap_time_ms=9_000)
    expect(rows).to_have_count(3, timeout=SEEN_WITHIN_MS)
    expect(rows.first).to_have_attribute("data-lap-id", str(lap_id))
    live_server.invalidate(lap_id, reason="<i>cut</i> the chicane")
    invalid = page.locator(f'[data-laps-rows] tr[data-lap-id="{lap_id}"]')
    expect(invalid).to_have_class("invalid", timeout=SEEN_WITHIN_MS)
    expect(invalid.locator("td.lap-status")).to_have_text("invalid: <i>cut</i> the chicane")
    page.screenshot(path="/tmp/pitlane-web-laps.png", full_page=True)


def test_invalidating_the_best_lap_re_ranks_the_open_leaderboard(live_server: LiveServer, page) -> None:
    from playwright.sync_api import expect

    race = make_race(live_server, "Marshal race", [("eve", "Eve", None), ("fay", "Fay", None)])
    best = add_lap(live_server, race, "eve", lap_time_ms=9_000)
    add_lap(live_server, race, "eve", lap_time_ms=10_200)
    add_lap(live_server, race, "fay", lap_time_ms=10_000)
    page.goto(f"{live_server.url}/races/{race.race_id}")
    expect(_row(page, "eve").locator("td.pos")).to_have_text("1")
    expect(page.locator("[data-live-status]")).to_have_text("live", timeout=5000)
    live_server.invalidate(best, reason="jumped the chicane")
    expect(_row(page, "fay").locator("td.pos")).to_have_text("1", timeout=SEEN_WITHIN_MS)
    expect(_row(page, "eve").locator("td.value")).to_have_text("10.200")
    expect(_row(page, "eve").locator("td.gap")).to_have_text("+0.200")


def test_races_page_links_every_view(live_server: LiveServer, page) -> None:
    from playwright.sync_api import expect

    race = make_race(live_server, "Listed race", [("dan", "Dan", None)])
    page.goto(f"{live_server.url}/")
    row = page.locator("table.races tr", has_text="Listed race")
    expect(row).to_have_count(1)
    base = f"/races/{race.race_id}"
    for name, href in (("leaderboard", base), ("big screen", f"{base}/bigscreen"), ("laps", f"{base}/laps")):
        expect(row.get_by_role("link", name=name, exact=True)).to_have_attribute("href", href)
    page.screenshot(path="/tmp/pitlane-web-races.png", full_page=True)
    row.get_by_role("link", name="big screen").click()
    expect(page).to_have_url(f"{live_server.url}/races/{race.race_id}/bigscreen")


def test_the_leaderboard_fits_a_phone_screen(live_server: LiveServer, page) -> None:
    from playwright.sync_api import expect

    cars = [(f"ph-{i}", f"Racer with a rather long name {i}", "Team Rocket") for i in range(4)]
    race = make_race(live_server, "Phone race", cars)
    for i, (car_id, _, _) in enumerate(cars):
        add_lap(live_server, race, car_id, lap_time_ms=10_000 + 321 * i)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/races/{race.race_id}")
    expect(page.locator("[data-board-rows] tr")).to_have_count(4)
    expect(page.locator("[data-live-status]")).to_have_text("live", timeout=5000)
    overflow_px = page.evaluate(
        "document.querySelector('[data-board-table]').scrollWidth - window.innerWidth"
    )
    assert overflow_px <= 0, f"the leaderboard is {overflow_px} px wider than a 390 px phone"
    expect(page.locator("td.team").first).to_be_hidden()
    page.screenshot(path="/tmp/pitlane-web-phone.png")
