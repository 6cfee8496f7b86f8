"""An organiser's and a racer's virtual race from the command line, as the README walks through it: migrate,
league, event, race, roster (tokens printed once), make it virtual, serve, submit, follow the submission to
its laps on the leaderboard."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from league_server.broker.embedded import free_port
from league_server.serve_process import PITLANE_CLI
from pitlane.cli import app
from tests.export_fixtures import exported_state

__all__ = ["exported_state"]

runner = CliRunner()


def pitlane(*args: str, env: dict[str, str]) -> Any:
    result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def league(tmp_path: Path) -> dict[str, Any]:
    env = {
        "PITLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'league.db'}",
        "PITLANE_DATA_DIR": str(tmp_path / "data"),
    }
    pitlane("league", "migrate", env=env)
    pitlane("league", "admin", "create-league", "class-7b", "Class 7B", env=env)
    pitlane("league", "admin", "create-event", "Autumn round", "--league", "class-7b", env=env)
    pitlane("league", "admin", "create-race", "Sprint", "--event", "1", "--laps", "2", env=env)
    roster = tmp_path / "roster.csv"
    roster.write_text("name,team,alias\nAda Lovelace,Red,falcon\nBen Ng,Blue,\n", encoding="utf-8")
    issued = json.loads(
        pitlane(
            "league", "admin", "import-roster", str(roster), "--league", "class-7b", "--json", env=env
        ).stdout
    )
    made = pitlane(
        "league", "admin", "make-virtual", "1", "--track", "reinvent_base", "--max-submissions", "2", env=env
    )
    assert "race 1 is virtual" in made.output and "pitlane submit" in made.output
    kept = list((tmp_path / "data" / "tracks").glob("*.npy"))
    assert len(kept) == 1  # the race's own copy of its route
    return {"env": env, "tokens": {r["name"]: r["token"] for r in issued}, "shots": tmp_path}


@pytest.fixture
def server(league: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    port = free_port("127.0.0.1")
    env = {**os.environ, **league["env"]}
    args = ["league", "serve", "--no-ingest", "--port", str(port), "--workers", "1"]
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen([*PITLANE_CLI, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/api/health", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_racer_submits_and_the_server_ranks_the_evaluation(
    league: dict[str, Any], server: str, exported_state: Path
) -> None:
    env = {"PITLANE_RACER_TOKEN": league["tokens"]["Ada Lovelace"]}
    sent = pitlane("submit", str(exported_state), "--race", f"{server}/races/1", "--json", env=env)
    assert json.loads(sent.stdout)["status"] in ("queued", "running")
    deadline, subs = time.monotonic() + 120, []
    while time.monotonic() < deadline:
        subs = json.loads(pitlane("submissions", "--server", server, "--json", env=env).stdout)
        if subs[0]["status"] in ("finished", "failed"):
            break
        time.sleep(0.5)
    assert subs[0]["status"] == "finished" and len(subs[0]["laps"]) == 2, subs
    board = json.loads(urllib.request.urlopen(f"{server}/api/races/1/leaderboard", timeout=5).read())
    (entry,) = board["entries"]
    assert entry["racer"] == "Ada Lovelace" and entry["laps"] == 2
    _the_pages_animate_the_evaluation(server, subs[0]["id"], league["shots"])
    _a_racer_submits_through_the_race_page(
        server, league["tokens"]["Ben Ng"], exported_state, league["shots"]
    )
    wrong = runner.invoke(
        app, ["submit", str(exported_state), "--race", f"{server}/races/1", "--token", "nope"]
    )
    assert wrong.exit_code == 2 and "refused (401)" in wrong.output  # the CLI's error status, the reason


def _the_pages_animate_the_evaluation(server: str, submission_id: int, shots: Path) -> None:
    """In headless Chromium: the race page links the ghost race; the ghost race and the replay animate the car
    (the frame shown advances) with no JavaScript error; screenshots in `shots` to look at."""
    from tests.league.web_live import chromium

    errors: list[str] = []
    for browser in chromium():
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server}/races/1")
        assert page.locator("nav a", has_text="ghost race").count() == 1
        for path in ("/races/1/ghost", f"/races/1/replays/{submission_id}"):
            page.goto(server + path)
            page.wait_for_function("window.pitlaneReplay && window.pitlaneReplay.frame > 5", timeout=15_000)
            first = page.evaluate("window.pitlaneReplay.frame")
            page.wait_for_timeout(600)
            assert page.evaluate("window.pitlaneReplay.frame") > first  # it moves, in real time
            assert page.evaluate("window.pitlaneReplay.cars.length") == 1
            assert page.locator("[data-legend] tbody tr").count() == 1
            page.screenshot(path=str(shots / f"{path.strip('/').replace('/', '-')}.png"))
        assert errors == []


def _a_racer_submits_through_the_race_page(server: str, token: str, exported: Path, shots: Path) -> None:
    """The race page's form: a wrong token is refused with the reason; the right one queues the model, which
    then ranks on the same page."""
    from tests.league.web_live import chromium

    for browser in chromium():
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.goto(f"{server}/races/1")
        form = page.locator("[data-submit-form]")
        form.locator("input[name=model]").set_input_files(str(exported / "model.int8.onnx"))
        form.locator("input[name=card]").set_input_files(str(exported / "model.json"))
        form.locator("input[name=token]").fill("not-my-token")
        form.locator("button").click()
        result = page.locator("[data-submit-result]")
        page.wait_for_function("document.querySelector('[data-submit-result]').dataset.state === 'refused'")
        assert "refused (401)" in result.text_content()
        form.locator("input[name=token]").fill(token)
        form.locator("button").click()
        page.wait_for_function(
            "document.querySelector('[data-submit-result]').dataset.state === 'ok'", timeout=60_000
        )
        assert "queued" in result.text_content() or "running" in result.text_content()
        page.wait_for_function(
            "document.querySelectorAll('[data-leaderboard] tbody tr').length === 2", timeout=120_000
        )
        page.screenshot(path=str(shots / "race-page-with-form.png"), full_page=True)
