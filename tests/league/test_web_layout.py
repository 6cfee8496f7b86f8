"""Do the pages fit the screens they are shown on? Headless Chromium against the live server, with the names
people really enter (31 and 64 characters, markup), 22 entries, a lap a minute slower than the rest and cars
without a lap (DNF rows):

- the big screen at 1920x1080 and 3840x2160: every column header and every cell of the rows in view lies
  inside the window (bounding boxes), no number is cut inside its cell, long names end with an ellipsis, the
  page does not scroll sideways, and the type is large enough to read across a hall;
- the leaderboard at 390x844 (a phone): the same, with position, car number, name, ranking value and gap shown.

The checks run in the page (`LAYOUT_PROBLEMS`) and list every problem, so a failure says which cell of which
row went where. Screenshots: /tmp/pitlane-web-layout-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.league.web_live import LiveServer, Race, add_lap, chromium, make_race, page_without_errors

NAME_31 = "Maximiliana Alexandra Johansson"
NAME_64 = "Bartholomew Fitzgerald-Worthington of Kensington-upon-Thames III"
EVIL = "<script>window.__xss=1</script>"
ESSENTIAL = ("pos", "no", "racer", "value", "gap")  # the columns a phone must keep
BIGSCREEN_COLUMNS = ("pos", "no", "racer", "value", "gap", "ahead", "laps", "last")

# Runs in the page; returns a list of problems (empty: the layout is fine). A row is "in view" when it lies
# wholly inside the board's scroll box (the big screen) or the window.
LAYOUT_PROBLEMS = """
() => {
  const problems = [];
  const vw = window.innerWidth;
  const vh = window.innerHeight;
  const page = document.documentElement.scrollWidth;
  if (page > vw) problems.push(`the page is ${page} px wide in a ${vw} px window: it scrolls sideways`);
  const box = (document.querySelector("[data-scroll]") || document.documentElement).getBoundingClientRect();
  const top = Math.max(box.top, 0);
  const bottom = Math.min(box.bottom, vh);
  const table = document.querySelector("[data-board-table]");
  const rows = [table.tHead.rows[0], ...table.tBodies[0].rows];
  let checked = 0;
  for (const row of rows) {
    const r = row.getBoundingClientRect();
    const inView = row.parentElement.tagName === "THEAD" || (r.top >= top - 1 && r.bottom <= bottom + 1);
    if (!inView) continue;
    const name = row.dataset.key || "header";
    for (const cell of row.cells) {
      if (getComputedStyle(cell).display === "none") continue;
      checked += 1;
      const c = cell.getBoundingClientRect();
      const what = `${name} ${cell.tagName.toLowerCase()}.${cell.className.replace(/ /g, ".")}`;
      if (c.left < -0.5 || c.right > vw + 0.5) {
        problems.push(`${what} spans x ${c.left.toFixed(0)}..${c.right.toFixed(0)}, outside 0..${vw}`);
      }
      if (c.width < 1) problems.push(`${what} has no width`);
      const text = cell.querySelector(".name") || cell;
      const ellipsis = getComputedStyle(text).textOverflow === "ellipsis";
      if (text.scrollWidth > text.clientWidth + 1 && !(cell.classList.contains("racer") && ellipsis)) {
        problems.push(`${what} is cut: ${text.scrollWidth} px of text in ${text.clientWidth} px`);
      }
    }
  }
  for (const el of document.querySelectorAll(".side, .side *, .race-clock, .race-clock *, .board-head")) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.left < -0.5 || r.right > vw + 0.5)) {
      problems.push(`${el.tagName.toLowerCase()}.${el.className} spans x ${r.left}..${r.right}`);
    }
  }
  if (checked < 20) problems.push(`only ${checked} cells in view: the board did not render`);
  return problems;
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture(scope="module")
def crowded_race(live_server: LiveServer) -> Race:
    """22 cars with long names and numbers up to 3 digits: 20 with laps (one a minute off the pace), 2 DNF;
    the race window is running."""
    from league_server.models import utc_now

    names = [NAME_31, NAME_64, EVIL] + [f"Racer number {i}" for i in range(3, 22)]
    cars = [
        (f"lay-{i}", name, f"Team {'Long Name Motorsport Engineering' if i % 2 else 'Red'}")
        for i, name in enumerate(names)
    ]
    numbers = [i * 37 % 900 + 100 for i in range(len(cars))]
    now = utc_now()
    race = make_race(
        live_server,
        "Layout Grand Prix of the Long Names",
        cars,
        numbers=numbers,
        window_start=now - timedelta(minutes=3),
        window_end=now + timedelta(hours=1, minutes=5),
    )
    for i, (car_id, _, _) in enumerate(cars[:20]):
        for k in range(2):
            add_lap(
                live_server, race, car_id, lap_time_ms=9_000 + 97 * i + 410 * k + (60_000 if i == 19 else 0)
            )
    return race


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield from page_without_errors(browser)


def _font_px(page: Any, selector: str) -> float:
    return page.evaluate(f"parseFloat(getComputedStyle(document.querySelector('{selector}')).fontSize)")


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (3840, 2160)])
def test_the_big_screen_fits_with_any_names(
    live_server: LiveServer, crowded_race: Race, page: Any, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_server.url}/races/{crowded_race.race_id}/bigscreen")
    rows = page.locator("[data-board-rows] tr")
    expect(rows).to_have_count(22)
    expect(page.locator("[data-live-status]")).to_have_text("live", timeout=5000)
    for column in BIGSCREEN_COLUMNS:
        expect(page.locator(f"[data-board-table] thead th.{column}")).to_be_visible()
    problems = page.evaluate(LAYOUT_PROBLEMS)
    page.screenshot(path=f"/tmp/pitlane-web-layout-bigscreen-{width}x{height}.png")
    assert problems == []

    long_name = page.locator('[data-board-rows] tr[data-key="lay-1"] td.racer .name')
    expect(long_name).to_have_text(NAME_64)  # all of it in the page, cut on screen by an ellipsis
    assert long_name.evaluate("el => el.scrollWidth > el.clientWidth"), "64 characters should not fit"
    expect(page.locator('[data-board-rows] tr[data-key="lay-2"] td.racer .name')).to_have_text(EVIL)
    assert page.evaluate("window.__xss") is None
    # readable from across a hall: at 1080p names and times at least 30 px high, twice that at 4K
    scale = height / 1080
    assert _font_px(page, "td.racer") >= 30 * scale and _font_px(page, "td.value") >= 30 * scale
    assert _font_px(page, "td.last") >= 24 * scale and _font_px(page, ".clock-time") >= 60 * scale
    expect(page.locator('[data-board-rows] tr[data-key="lay-0"] td.no')).to_have_text("100")
    expect(page.locator("[data-clock-label]")).to_have_text("time left")
    expect(page.locator("[data-clock-time]")).to_have_text(re.compile(r"^1:0[45]:[0-5][0-9]$"))


@pytest.mark.parametrize(("width", "height"), [(390, 844), (360, 740)])
def test_the_leaderboard_fits_a_phone_with_its_essential_columns(
    live_server: LiveServer, crowded_race: Race, page: Any, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_server.url}/races/{crowded_race.race_id}")
    expect(page.locator("[data-board-rows] tr")).to_have_count(22)
    expect(page.locator("[data-live-status]")).to_have_text("live", timeout=5000)
    for column in ESSENTIAL:
        expect(page.locator(f"[data-board-table] thead th.{column}")).to_be_visible()
        expect(page.locator(f"[data-board-rows] tr >> nth=0 >> td.{column}")).to_be_visible()
    problems = page.evaluate(LAYOUT_PROBLEMS)
    page.screenshot(path=f"/tmp/pitlane-web-layout-phone-{width}x{height}.png")
    assert problems == []
    # what the hidden columns held moves to the name's second line
    sub = page.locator('[data-board-rows] tr[data-key="lay-0"] td.racer .sub')
    expect(sub).to_be_visible()
    expect(sub).to_contain_text("2 laps · last 9.410 s")
    dnf = page.locator('[data-board-rows] tr[data-key="lay-21"]')
    expect(dnf.locator("td.pos")).to_have_text("DNF")
    expect(dnf.locator("td.no")).to_be_visible()
