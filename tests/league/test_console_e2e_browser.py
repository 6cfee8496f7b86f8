"""The console end to end in headless Chromium, with real training: Ada signs in, creates a model with an
edited reward function, watches it train (progress pushed to the page) to a clean evaluation lap, downloads
the archive for the car, shares it and submits it to a virtual race; Ben remixes the shared recipe and trains
the remix, and both models' pages show the lineage.

Real parts: the app under uvicorn with one job worker, `python -m trainer.job` (stable-baselines3, ONNX export,
ONNX Runtime evaluation) in the sandbox, the race's evaluation job, Playwright driving Debian's Chromium.
Screenshots: /tmp/console-shots/e2e-*.png.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.virtual_race import VirtualRaceSpec
from tests.league.web_live import chromium, page_without_errors, serve

pytestmark = pytest.mark.xdist_group("console-e2e")

SHOTS = Path("/tmp/console-shots")
#: the edited reward: DeepRacer's centre-line example with a bonus for speed (a line the page shows)
EDITED_REWARD = '''def reward_function(params):
    """Centre line, plus a little for speed."""
    half = params["track_width"] / 2.0
    if not params["all_wheels_on_track"]:
        return 1e-3
    centred = 1.0 - min(params["distance_from_center"] / half, 1.0)
    return float(centred + 0.1 * params["speed"])
'''
TRAIN_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from league_server.web.assets import WEB_ASSETS_DIR, ensure_assets, shared_cache_dir
    from tests.conftest import skip_or_fail

    folder = tmp_path_factory.mktemp("console-e2e")
    status = ensure_assets(folder / "data" / WEB_ASSETS_DIR, cache=shared_cache_dir())  # the code editor
    if not status.ok:
        skip_or_fail(f"the console's browser libraries could not be fetched: {status.problem}")
    gen = serve(folder, jobs_enabled=True, job_workers="1", ingest_enabled=False)
    yield next(gen)
    gen.close()


@pytest.fixture(scope="module")
def roster(server: Any) -> dict[str, Any]:
    from league_server.crud import leagues as leagues_crud
    from league_server.crud import races, virtual

    with server.sessions() as session:
        event = leagues_crud.create_event(session, server.league_id, "Round 1")
        race = virtual.make_virtual(
            session, races.create_race(session, event.id, "Console sprint"),
            VirtualRaceSpec(track="reinvent_base", rules={"laps": 2}),
        )  # fmt: skip
        (_, ada), (_, ben) = virtual.import_roster(
            session, server.league_id, [virtual.RosterRow("Ada"), virtual.RosterRow("Ben")]
        )
        session.commit()
        return {"ada": ada, "ben": ben, "race": race.id}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


def _sign_in(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/console/sign-in")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/console")


def _wait_trained(page: Any) -> None:
    """Until the watch page shows a clean evaluation lap (pushed live) and then the download."""
    page.wait_for_function(
        "() => parseInt(document.querySelector('[data-fig=eval_clean_laps]')?.textContent) >= 1",
        timeout=TRAIN_TIMEOUT_MS,
    )
    page.wait_for_selector("[data-archive]", state="visible", timeout=TRAIN_TIMEOUT_MS)


def test_create_train_download_submit_then_remix(server: Any, roster: dict[str, Any], browser: Any) -> None:
    SHOTS.mkdir(exist_ok=True)
    for page in page_without_errors(browser, viewport={"width": 1280, "height": 900}, accept_downloads=True):
        _sign_in(page, server.url, roster["ada"])
        page.goto(f"{server.url}/console/models/new")
        page.wait_for_selector("[data-recipe-editor][data-ready=yes]", timeout=60_000)
        page.wait_for_selector(".CodeMirror")
        page.fill("input[name=name]", "centre plus speed")
        page.evaluate(
            "(src) => document.querySelector('.CodeMirror').CodeMirror.setValue(src)", EDITED_REWARD
        )
        page.screenshot(path=str(SHOTS / "e2e-create.png"), full_page=True)
        page.click("[data-train]")
        page.wait_for_url(re.compile(r".*/console/models/\d+$"))
        model_id = int(page.url.rsplit("/", 1)[1])
        _wait_trained(page)
        page.screenshot(path=str(SHOTS / "e2e-trained.png"), full_page=True)
        assert "Parity, int8 vs fp32" in page.text_content("[data-parity]")
        assert page.locator("[data-laps] tr").count() >= 1  # the evaluation's laps

        with page.expect_download() as download:
            page.click("[data-archive]")
        names = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())).namelist()
        assert sorted(names) == ["model.int8.onnx", "model.json", "model.onnx", "parity.json", "recipe.toml"]

        page.check("[data-share]")
        page.wait_for_function("() => document.querySelector('[data-action-note]').textContent.length > 0")
        page.select_option("[data-races]", str(roster["race"]))
        page.click("[data-submit-button]")
        page.wait_for_function(
            "() => /queued|running|finished/.test(document.querySelector('[data-submit-result]').textContent)"
        )
        recipe = page.request.get(f"{server.url}/api/console/models/{model_id}/recipe.toml").text()
        assert '0.1 * params["speed"]' in recipe  # the edited reward is what trained

    for page in page_without_errors(browser, viewport={"width": 390, "height": 844}):
        _sign_in(page, server.url, roster["ben"])
        page.goto(f"{server.url}/console/gallery")
        page.wait_for_selector("text=centre plus speed")
        page.goto(f"{server.url}/console/models/{model_id}")
        page.click("[data-remix]")
        page.wait_for_url(re.compile(r".*/console/models/new\?from=\d+$"))
        page.wait_for_selector("[data-recipe-editor][data-ready=yes]", timeout=60_000)
        page.click("[data-train]")
        page.wait_for_url(re.compile(r".*/console/models/\d+$"))
        remix_id = int(page.url.rsplit("/", 1)[1])
        page.wait_for_selector("[data-lineage]:not([hidden])")
        assert "remixed from centre plus speed by Ada" in page.text_content("[data-lineage]")
        _wait_trained(page)
        page.screenshot(path=str(SHOTS / "e2e-remix-phone.png"), full_page=True)
        page.goto(f"{server.url}/console/models/{model_id}")
        page.wait_for_selector("[data-lineage]:not([hidden])")
        assert "1 remix" in page.text_content("[data-lineage]")
        assert remix_id != model_id
        # the gallery lists Ada's recipe with the race its model was evaluated in (the race's job has run)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            page.goto(f"{server.url}/console/gallery")
            page.wait_for_selector("text=centre plus speed")
            if page.locator("text=Console sprint").count():
                break
            time.sleep(2)
        page.screenshot(path=str(SHOTS / "e2e-gallery-phone.png"), full_page=True)
        entry = next(g for g in page.request.get(f"{server.url}/api/recipes").json() if g["id"] == model_id)
        assert entry["remixes"] == 1 and entry["races"][0]["best_lap_s"] > 0
