"""The console's watch page and recipe gallery in headless Chromium (Debian's /usr/bin/chromium driven by
Playwright) against the real app under uvicorn: a racer signs in with their token; a running model's page draws
its progress history and appends the progress line the server pushes (the dispatcher's EventHub, as a training
job's lines are pushed), then shows the evaluation when the job finishes (PNG, laps, parity, animated replay);
a phone-wide page never scrolls sideways; the gallery lists a shared model with its lineage, and Remix makes
a copy to edit. Names are user input and stay text.

Screenshots go to /tmp/console-shots/*.png (looked at by hand when the pages change).
"""

from __future__ import annotations

import json
import math
import re
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts.recipe import Recipe, StopCondition
from contracts.virtual_race import Replay
from tests.league.web_live import LiveServer, chromium, page_without_errors

pytestmark = pytest.mark.xdist_group("console_watch")

SHOTS = Path("/tmp/console-shots")
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
EVIL = '<img src=x onerror="window.__xss=1">line'
HISTORY_LINES = 40
SEEN_WITHIN_MS = 5000
MODEL_SHA256 = "5e" * 32  # what the finished models' exported file hashes to (the race results match it)


@dataclass
class Console:
    server: LiveServer
    tokens: dict[str, str]  # racer name -> racer token
    running: int  # Ada's model in training, with a progress history
    finished: int  # Ada's finished, shared model
    remix: int  # Ben's shared remix of it
    race: int  # an open virtual race Ada's finished model was evaluated in
    charts: bool  # uPlot is served (the page draws charts, else a table)


def _progress(t_s: float) -> dict[str, Any]:
    """A TrainingProgress line at t_s seconds that looks like a job learning."""
    laps = t_s >= 30
    return {
        "phase": "training", "t_s": t_s, "steps": int(t_s * 850), "steps_per_s": 850.0 + 40 * math.sin(t_s / 7),
        "episodes": int(t_s * 2), "mean_reward": round(30 * (1 - math.exp(-t_s / 60)), 3),
        "lap_completion_pct": min(100.0, t_s * 0.8), "best_lap_s": 14.0 - t_s / 40 if laps else None,
        "eval_clean_laps": 1 if t_s >= 50 else None, "best_eval_lap_s": 13.2 if t_s >= 50 else None,
    }  # fmt: skip


def _png(width: int = 320, height: int = 200) -> bytes:
    """A small PNG of a grey oval on green (what the evaluation picture stands in for)."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            r = ((x - width / 2) / (width * 0.42)) ** 2 + ((y - height / 2) / (height * 0.42)) ** 2
            rows += b"\x5a\x5a\x5a" if 0.55 < r < 1.0 else b"\xcf\xd8\xc6"

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows)))
        + chunk(b"IEND", b"")
    )


def _replay() -> Replay:
    """Three laps of an oval, 15 frames a second, one off-track."""
    ring = [2 * math.pi * k / 60 for k in range(60)]
    frames = 3 * 150
    angle = [2 * math.pi * i / 150 for i in range(frames)]
    return Replay(
        track="oval", dt_s=1 / 15, max_speed_mps=3.0,
        outer=tuple((3.6 * math.cos(a), 2.4 * math.sin(a)) for a in ring),
        inner=tuple((2.6 * math.cos(a), 1.4 * math.sin(a)) for a in ring),
        x_m=tuple(3.1 * math.cos(a) for a in angle), y_m=tuple(1.9 * math.sin(a) for a in angle),
        speed_mps=tuple(1.0 + (i % 150) / 75 for i in range(frames)), lap=tuple(i // 150 for i in range(frames)),
        off_track=(200,), laps_s=(10.0, 12.0, 10.0),
    )  # fmt: skip


def _lap(raw_time_s: float, offtrack: int = 0) -> dict[str, Any]:
    """An evaluation lap (contracts.race LapRecord's dict), 2 s a penalty."""
    return {"lap_time_s": raw_time_s + 2.0 * offtrack, "raw_time_s": raw_time_s, "offtrack": offtrack,
            "resets": offtrack, "completed": True, "valid": True, "progress": 100.0}  # fmt: skip


LAPS = [_lap(10.0), _lap(10.0, offtrack=1), _lap(10.0)]
#: the parity summary a finished training job stores (trainer/job/finish.py parity_summary's shape)
PARITY = {
    "best_lap_s": {"checkpoint": 10.0, "fp32": 10.0, "int8": 10.02},
    "int8_agreement": 0.9996,
    "int8_meets_targets": True,
    "int8_problems": [],
    "torch_vs_onnx_max_abs_diff": 2.4e-07,
}


def _finish(server: LiveServer, model_id: int) -> None:
    """Write a finished job's files and outcome, as the trainer and the dispatcher leave them."""
    from league_server.crud import console
    from league_server.jobs.dispatch import training_output

    data_dir = server.app.state.settings.data_dir
    out = training_output(data_dir, model_id, "png").parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.png").write_bytes(_png())
    (out / "replay.json").write_text(_replay().model_dump_json(), encoding="utf-8")
    outcome = {"status": "finished", "steps": 51_000, "training_s": 60.0, "best_eval_lap_s": 10.0, "laps": LAPS,
               "parity": PARITY, "files": {"png": "evaluation.png", "replay": "replay.json"},
               "model_sha256": MODEL_SHA256}  # fmt: skip
    with server.sessions() as session:
        console.finish_training(session, model_id, outcome, None)
        session.commit()


def _start(server: LiveServer, model_id: int, lines: list[dict[str, Any]]) -> None:
    """A running job with `lines` already in its progress file."""
    from league_server.jobs.dispatch import training_output
    from league_server.models import RacerModel, utc_now

    path = training_output(server.app.state.settings.data_dir, model_id, "progress.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with server.sessions() as session:
        model = session.get(RacerModel, model_id)
        model.status, model.started_at, model.budget_minutes = "running", utc_now(), 10.0
        model.progress, model.training_s = lines[-1], lines[-1]["t_s"]
        session.commit()


def _assets_served(server: LiveServer) -> bool:
    """Put the console's pinned uPlot/CodeMirror files in the server's data folder (from the per-user cache,
    filled from the npm registry once); False when they cannot be had (the pages then draw tables)."""
    from league_server.web.assets import WEB_ASSETS_DIR, ensure_assets, shared_cache_dir

    status = ensure_assets(
        Path(server.app.state.settings.data_dir) / WEB_ASSETS_DIR, cache=shared_cache_dir()
    )
    if not status.ok:
        print(f"console assets unavailable, the pages draw tables: {status.problem}")
    return status.ok


def _evaluated_in_a_race(session: Any, league_id: int, racer_id: int) -> int:
    """An open virtual race with a finished evaluation of the model whose file is MODEL_SHA256 (best lap
    10.4 s); its id."""
    from league_server.crud import leagues, races
    from league_server.models import Submission

    event = leagues.create_event(session, league_id, "Console cup")
    race = races.create_race(session, event.id, "Spring <i>cup</i>")
    race.kind = "virtual"
    laps = [{"lap_time_s": 10.4, "completed": True}, {"lap_time_s": 11.0, "completed": True}]
    session.add(Submission(race_id=race.id, racer_id=racer_id, sha256=MODEL_SHA256, size_bytes=1, stored_path="-",
                           card={}, status="finished", outcome={"laps": laps}))  # fmt: skip
    session.flush()
    return race.id


@pytest.fixture(scope="module")
def setup(live_server: LiveServer) -> Console:
    from league_server.crud import console, virtual
    from league_server.models import RacerModel

    with live_server.sessions() as session:
        (ada, ada_token), (ben, ben_token) = virtual.import_roster(
            session, live_server.league_id, [virtual.RosterRow("Ada"), virtual.RosterRow("Ben")]
        )
        running = console.create_model(session, ada, Recipe(name=EVIL, stop=StopCondition(minutes=10)))
        finished = console.create_model(session, ada, Recipe(name="Centre line", track="reinvent_base"),
                                        shared=True)  # fmt: skip
        copy = console.remix(session, ben, finished)
        copy.name, copy.shared = "Ben's faster line", True
        race = _evaluated_in_a_race(session, live_server.league_id, ada.id)
        session.commit()
        ids = running.id, finished.id, copy.id, race
    _start(live_server, ids[0], [_progress(2.0 * i) for i in range(1, HISTORY_LINES + 1)])
    _start(live_server, ids[1], [_progress(2.0 * i) for i in range(1, 31)])
    _finish(live_server, ids[1])
    with live_server.sessions() as session:
        assert session.get(RacerModel, ids[1]).status == "finished"
    return Console(
        live_server, {"Ada": ada_token, "Ben": ben_token}, *ids, charts=_assets_served(live_server)
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture
def laptop(browser: Any) -> Iterator[Any]:
    yield from page_without_errors(browser, viewport=LAPTOP)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    yield from page_without_errors(
        browser, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )


def _sign_in(page: Any, setup: Console, racer: str) -> None:
    page.goto(f"{setup.server.url}/console/sign-in")
    page.fill("input[name=token]", setup.tokens[racer])
    page.click("form[action='/console/sign-in'] button[type=submit]")
    page.wait_for_url(f"{setup.server.url}/console")


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _history_length(page: Any) -> int:
    return page.evaluate("window.pitlaneConsoleModel.history.length")


def _no_sideways_scroll(page: Any) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], (
        f"the page scrolls sideways on a phone: {widths[0]} px wide in {widths[1]} px"
    )


def test_watch_page_draws_the_history_appends_pushed_progress_and_shows_the_evaluation(
    setup: Console, laptop: Any
) -> None:
    from playwright.sync_api import expect

    from league_server.models import RacerModel

    page, server = laptop, setup.server
    _sign_in(page, setup, "Ada")
    page.goto(f"{server.url}/console/models/{setup.running}")
    expect(page.locator("[data-name]")).to_have_text(EVIL)  # a name is text, never markup
    expect(page.locator("[data-status]")).to_have_text("running")
    last = _progress(2.0 * HISTORY_LINES)
    expect(page.locator('[data-fig="steps"]')).to_have_text(f"{last['steps']:,}")
    expect(page.locator('[data-fig="best_eval_lap_s"]')).to_have_text("13.20\u00a0s")
    assert _history_length(page) == HISTORY_LINES
    expect(page.locator("[data-facts]")).to_contain_text("budget 10\u00a0min")
    expect(page.locator("[data-stop]")).to_be_visible()
    if setup.charts:
        expect(page.locator(".cw-chart .uplot")).to_have_count(4)
        labels = page.evaluate(  # each axis names its unit (uPlot draws them on the canvas)
            "Object.values(window.pitlaneConsoleModel.charts).flatMap((c) => c.plot.axes.map((a) => a.label))"
        )
        for unit in ("training time (min)", "reward / episode", "% of episodes", "lap time (s)", "steps / s"):
            assert unit in labels, f"no axis labelled {unit!r}: {labels}"
        points = "window.pitlaneConsoleModel.charts.lap.plot.data[0].length"
        assert page.evaluate(points) == HISTORY_LINES
    else:
        expect(page.locator("[data-history-rows] tr")).to_have_count(12)
    expect(page.locator("[data-live-status]")).to_have_text("live", timeout=SEEN_WITHIN_MS)

    pushed = _progress(2.0 * HISTORY_LINES + 2.0) | {
        "steps": 123_456,
        "best_eval_lap_s": 12.5,
        "eval_clean_laps": 3,
    }
    hub = server.app.state.console_events
    # the stream's subscription may start just after the page sees it open: push again until it is drawn
    deadline = time.monotonic() + SEEN_WITHIN_MS / 1000
    while _history_length(page) == HISTORY_LINES and time.monotonic() < deadline:
        hub.publish(setup.running, {"type": "progress", **pushed})
        time.sleep(0.3)
    expect(page.locator('[data-fig="steps"]')).to_have_text("123,456")
    expect(page.locator('[data-fig="best_eval_lap_s"]')).to_have_text("12.50\u00a0s")
    expect(page.locator('[data-fig="eval_clean_laps"]')).to_have_text("3")
    assert _history_length(page) == HISTORY_LINES + 1  # appended once, however often it was pushed
    if setup.charts:
        assert page.evaluate(points) == HISTORY_LINES + 1
        assert page.evaluate("window.pitlaneConsoleModel.charts.lap.plot.data[2].at(-1)") == 12.5
    _shot(page, "watch-running-laptop")

    _finish(server, setup.running)  # the job ends: the dispatcher stores the outcome, then says so
    with server.sessions() as session:
        assert session.get(RacerModel, setup.running).status == "finished"
    hub.publish(setup.running, {"type": "status", "status": "finished", "reason": None})
    expect(page.locator("[data-status]")).to_have_text("finished", timeout=SEEN_WITHIN_MS)
    expect(page.locator("[data-laps] tr")).to_have_count(3)
    expect(page.locator("[data-laps] tr").nth(1)).to_contain_text("completed")
    expect(page.locator("[data-laps] tr").nth(0)).to_have_attribute("data-result", "clean")
    expect(page.locator("[data-parity]")).to_contain_text("99.96\u00a0%")
    expect(page.locator("[data-archive]")).to_have_attribute(
        "href", f"/api/console/models/{setup.running}/archive.zip"
    )
    expect(page.locator("[data-stop]")).to_be_hidden()
    expect(page.locator("[data-races] option")).to_have_text(["Spring <i>cup</i>"])
    page.locator("[data-submit-button]").click()  # this job exported no model.onnx: the server says so
    expect(page.locator("[data-submit-result]")).to_contain_text("refused: ", timeout=SEEN_WITHIN_MS)
    expect(page.locator("[data-submit-result]")).to_contain_text("has no exported model yet")
    page.wait_for_function(
        "document.querySelector('[data-eval-png]').naturalWidth === 320", timeout=SEEN_WITHIN_MS
    )
    page.wait_for_function("window.pitlaneReplay && window.pitlaneReplay.frame > 10", timeout=SEEN_WITHIN_MS)
    expect(page.locator("[data-legend] tbody tr")).to_have_count(1)
    expect(page.locator("[data-legend] tbody a")).to_have_count(0)  # no link to a race replay page
    assert page.evaluate("window.__xss") is None
    _shot(page, "watch-finished-laptop")


def test_a_phone_wide_watch_page_and_gallery_never_scroll_sideways(setup: Console, phone: Any) -> None:
    from playwright.sync_api import expect

    page, server = phone, setup.server
    _sign_in(page, setup, "Ada")
    page.goto(f"{server.url}/console/models/{setup.finished}")
    expect(page.locator("[data-status]")).to_have_text("finished")
    expect(page.locator('[data-fig="steps"]')).not_to_have_text("–")
    expect(page.locator("[data-laps] tr")).to_have_count(3)
    page.wait_for_function("window.pitlaneReplay && window.pitlaneReplay.frame > 1", timeout=SEEN_WITHIN_MS)
    canvas = page.locator("[data-canvas]").bounding_box()
    assert canvas is not None and canvas["width"] <= PHONE["width"], (
        f"the replay is wider than the phone: {canvas}"
    )
    _no_sideways_scroll(page)
    _shot(page, "watch-finished-phone")

    page.goto(f"{server.url}/console/gallery")
    expect(page.locator(".cg-card")).to_have_count(2)
    _no_sideways_scroll(page)
    _shot(page, "gallery-phone")


def test_the_gallery_lists_a_shared_model_with_its_lineage_and_remixes_it(
    setup: Console, laptop: Any
) -> None:
    from playwright.sync_api import expect

    page, server = laptop, setup.server
    _sign_in(page, setup, "Ben")
    page.goto(f"{server.url}/console/gallery")
    cards = page.locator(".cg-card")
    expect(cards).to_have_count(2)  # Ada's and Ben's shared models; not Ada's private one
    original = page.locator(f'.cg-card[data-recipe-id="{setup.finished}"]')
    remix = page.locator(f'.cg-card[data-recipe-id="{setup.remix}"]')
    expect(original.locator("h2")).to_have_text("Centre line")
    expect(original.locator(".cg-author")).to_contain_text("by Ada")
    expect(original.locator(".cg-facts")).to_contain_text("reinvent_base")
    expect(original.locator(".cg-facts")).to_contain_text("PPO (clipped)")
    expect(original.locator(".cg-facts")).to_contain_text("10.00\u00a0s")
    expect(original.locator(".cg-races li")).to_have_text("Spring <i>cup</i>: best lap 10.40\u00a0s")
    expect(original.locator(".cg-races a")).to_have_attribute("href", f"/races/{setup.race}")
    expect(remix.locator(".cg-races-none")).to_have_text("not raced yet")
    expect(original.locator("[data-lineage]")).to_have_text("1 remix")
    expect(remix.locator("[data-lineage]")).to_have_text("remixed from Centre line by Ada · 0 remixes")
    expect(remix.locator("[data-lineage] a")).to_have_attribute("href", f"/console/models/{setup.finished}")
    expect(original.locator("a", has_text="Recipe TOML")).to_have_attribute(
        "href", f"/api/recipes/{setup.finished}.toml"
    )
    _shot(page, "gallery-laptop")

    page.goto(f"{server.url}/console/models/{setup.finished}")  # Ada's model, read by Ben: read-only
    expect(page.locator("[data-status]")).to_have_text("finished")
    expect(page.locator("[data-facts]")).to_contain_text("by Ada")
    expect(page.locator("[data-lineage]")).to_have_text("1 remix")
    expect(page.locator("[data-share-wrap]")).to_be_hidden()
    expect(page.locator("[data-car]")).to_be_hidden()
    expect(page.locator("[data-submit-form]")).to_be_hidden()
    expect(page.locator("[data-remix]")).to_have_text("Remix")
    page.locator("[data-remix]").click()
    page.wait_for_url(re.compile(r".*/console/models/new\?from=\d+$"))
    copy_id = int(page.url.rsplit("=", 1)[1])
    assert copy_id not in (setup.running, setup.finished, setup.remix)
    page.goto(f"{server.url}/console/models/{copy_id}")
    expect(page.locator("[data-lineage]")).to_have_text("remixed from Centre line by Ada · 0 remixes")
    expect(page.locator("[data-status]")).to_have_text("draft")
    expect(page.locator("[data-edit]")).to_be_visible()
