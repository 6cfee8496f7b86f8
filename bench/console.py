"""`pitlane bench console`: the console as racers use it, on `pitlane league serve` in a child process.

1. **Create to clean lap, in the browser** (headless Chromium through Playwright): a racer signs in, opens
   "New model", keeps every default and presses Train; the clock runs from the press until the model's watch
   page shows a clean evaluation lap (pushed by server-sent events), and on until the page offers the
   download (the job exported and evaluated its model).
2. **A class training at once**: `racers` racers each press Train with the defaults at the same moment, under
   the league's quotas (1 job at once each), on the server's job workers. Meanwhile a spectator polls a
   race's leaderboard every `POLL_S` (latency percentiles in ms) and every racer's watch page stream is open
   (progress events received per racer: the pages keep updating).

Everything runs on 127.0.0.1 with a bounded number of requests; the server's data lives in a temporary
folder.
"""

from __future__ import annotations

import json
import secrets
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.errors import BenchError

#: the issue's goals on a 2-core machine
CLEAN_LAP_GOAL_S = 120.0
P99_GOAL_MS = 100.0
#: seconds between a spectator's leaderboard requests
POLL_S = 0.1
#: the longest the class's jobs may take together before the bench gives up on them
CLASS_TIMEOUT_S = 1800.0


def _request(
    base: str, path: str, token: str | None = None, body: Any = None, timeout_s: float = 30.0
) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        base + path, data=data, headers=headers, method="POST" if body is not None else "GET"
    )
    with urllib.request.urlopen(req, timeout=timeout_s) as response:
        return json.loads(response.read())


def _setup(db_url: str, racers: int) -> dict[str, Any]:
    """A league whose racers may each train one job at once, a race with laps for the spectator to watch,
    and every racer's token."""
    from league_server.core.db import make_engine, make_sessionmaker, upgrade
    from league_server.crud import console, leagues, races, virtual
    from league_server.crud.laps import insert_laps_idempotent

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            league = leagues.create_league(session, "bench", "Console bench")
            console.set_quota(session, league, concurrent_jobs=1, minutes_per_day=600)
            event = leagues.create_event(session, league.id, "Bench")
            race = races.create_race(session, event.id, "Spectated race")
            roster = virtual.import_roster(
                session, league.id, [virtual.RosterRow(f"racer-{i:02d}") for i in range(racers + 1)]
            )
            car = virtual.simulator_car(session, league.id)
            laps = [
                {"race_id": race.id, "car_id": car.car_id, "racer_id": racer.id, "run_id": f"bench-{racer.id}",
                 "seq": n, "lap_number": n, "lap_time_ms": 9000 + 37 * racer.id + 11 * n, "offtrack_count": 0,
                 "reset_count": 0, "source": "sim"}
                for racer, _ in roster for n in range(1, 6)
            ]  # fmt: skip
            insert_laps_idempotent(session, laps)
            session.commit()
            return {"race_id": race.id, "tokens": [token for _, token in roster]}
    finally:
        engine.dispose()


def browser_create_to_clean_lap(base: str, token: str, timeout_s: float = 600.0) -> dict[str, float]:
    """Seconds from pressing Train (defaults) to a clean evaluation lap on the watch page, and to the download."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(f"{base}/console/sign-in")
            page.fill("input[name=token]", token)
            page.click("button[type=submit]")
            page.goto(f"{base}/console/models/new")
            # the page is ready once its script has the defaults and the track list (the first opening waits
            # for the server to draw its track catalogue)
            page.wait_for_selector("[data-recipe-editor][data-ready=yes]", timeout=120_000)
            started = time.monotonic()
            page.click("[data-train]")
            page.wait_for_url("**/console/models/*", timeout=60_000)
            page.wait_for_function(
                "() => parseInt(document.querySelector('[data-fig=eval_clean_laps]')?.textContent) >= 1",
                timeout=timeout_s * 1000,
            )
            clean = time.monotonic() - started
            page.wait_for_selector("a[href$='archive.zip']", timeout=timeout_s * 1000)
            download = time.monotonic() - started
            model = page.request.get(page.url.replace("/console/models/", "/api/console/models/")).json()
        finally:
            browser.close()
    # the job's own clock at its first clean evaluation: what the command line would take (the page's share
    # is the rest: queueing, the job's start, the push)
    job_clean = next(
        (line["t_s"] for line in model["progress_history"] if (line.get("eval_clean_laps") or 0) >= 1), None
    )
    return {
        "seconds_to_clean_lap": clean,
        "seconds_to_download": download,
        "job_seconds_to_clean_lap": job_clean,
        "browser_vs_job_clean_lap": clean / job_clean if job_clean else None,
    }


class _Watch(threading.Thread):
    """One racer's watch-page stream: counts the progress events it is pushed until the job ends (a status
    event) or the bench stops watching."""

    def __init__(self, base: str, model_id: int, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = f"{base}/api/console/models/{model_id}/events", token
        self.progress_events = 0
        self.ended = threading.Event()

    def run(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"}
        while not self.ended.is_set():
            try:
                with httpx.stream("GET", self.url, headers=headers, timeout=None) as response:
                    event = None
                    for line in response.iter_lines():
                        if line.startswith("event:"):
                            event = line.split(":", 1)[1].strip()
                        elif line.startswith("data:") and event == "progress":
                            self.progress_events += 1
                        elif line.startswith("data:") and event == "status":
                            self.ended.set()
                            return
            except httpx.HTTPError:
                time.sleep(0.5)


def _statuses(base: str, made: list[dict[str, Any]], tokens: list[str]) -> list[str]:
    """Each racer's model's status, as their My models page reads it."""
    return [
        _request(base, f"/api/console/models/{m['id']}", token)["status"]
        for m, token in zip(made, tokens, strict=True)
    ]


def idle_leaderboard_ms(base: str, race_id: int, requests: int = 300) -> list[float]:
    """The spectator's leaderboard latencies with nothing training (the baseline of the same run)."""
    latencies_ms = []
    for _ in range(requests):
        t0 = time.perf_counter()
        _request(base, f"/api/races/{race_id}/leaderboard")
        latencies_ms.append((time.perf_counter() - t0) * 1000)
        time.sleep(POLL_S / 4)
    return latencies_ms


def class_training(
    base: str, race_id: int, tokens: list[str], on_stage: Callable[[str], None]
) -> dict[str, Any]:
    """Every racer presses Train at once; the spectator's leaderboard latency while the jobs run, beside the
    same with nothing training."""
    from contracts.recipe import Recipe

    idle_ms = idle_leaderboard_ms(base, race_id)
    body = {"recipe": Recipe().model_dump(mode="json"), "train": True}
    with ThreadPoolExecutor(len(tokens)) as pool:
        made = list(pool.map(lambda t: _request(base, "/api/console/models", t, body, timeout_s=120), tokens))
    watches = [_Watch(base, m["id"], t) for m, t in zip(made, tokens, strict=True)]
    for watch in watches:
        watch.start()
    latencies_ms: list[float] = []
    started = time.monotonic()
    statuses = _statuses(base, made, tokens)
    next_status_s = started + 1.0
    while any(s in ("queued", "running") for s in statuses) and time.monotonic() - started < CLASS_TIMEOUT_S:
        t0 = time.perf_counter()
        _request(base, f"/api/races/{race_id}/leaderboard")
        latencies_ms.append((time.perf_counter() - t0) * 1000)
        if time.monotonic() >= next_status_s:
            statuses, next_status_s = _statuses(base, made, tokens), time.monotonic() + 1.0
            done = sum(s not in ("queued", "running") for s in statuses)
            on_stage(
                f"{len(tokens)} racers training: {done} done, leaderboard p99 {_p99(latencies_ms):.1f} ms"
            )
        time.sleep(POLL_S)
    for watch in watches:
        watch.ended.set()
    return {
        "class_seconds": time.monotonic() - started,
        "class_finished": statuses.count("finished"),
        "class_statuses": statuses,
        "leaderboard_requests": len(latencies_ms),
        "leaderboard_p50_ms_while_training": statistics.median(latencies_ms),
        "leaderboard_p99_ms_while_training": _p99(latencies_ms),
        "leaderboard_p99_ms_idle": _p99(idle_ms),
        "leaderboard_p99_training_vs_idle": _p99(latencies_ms) / _p99(idle_ms),
        "progress_events_per_racer_min": min(w.progress_events for w in watches),
        "progress_events_per_racer_median": statistics.median(w.progress_events for w in watches),
    }


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else (values[0] if values else 0.0)


def bench_console(
    racers: int = 10,
    workers: int | None = None,
    *,
    browser: bool = True,
    on_stage: Callable[[str], None] = print,
) -> dict[str, Any]:
    from league_server.serve_process import ServeError, ServeProcess

    with tempfile.TemporaryDirectory(prefix="pitlane-bench-console-") as tmp:
        folder = Path(tmp)
        db_url = f"sqlite:///{folder / 'league.db'}"
        on_stage("setting up a league")
        setup = _setup(db_url, racers)
        args = ("--no-ingest", *(("--workers", str(workers)) if workers else ()))
        server = ServeProcess(db_url, folder / "data", folder / "serve.log", secrets.token_urlsafe(16), args)
        try:
            server.start(60, ingest=False)
            figures: dict[str, Any] = {"racers": racers, "workers": workers or "cores - 1"}
            if browser:
                on_stage("one racer in the browser: create -> clean lap")
                figures |= browser_create_to_clean_lap(server.base, setup["tokens"][-1])
            on_stage(f"{racers} racers training at once")
            figures |= class_training(server.base, setup["race_id"], setup["tokens"][:racers], on_stage)
        except ServeError as exc:
            raise BenchError(str(exc)) from None
        except urllib.error.HTTPError as exc:
            log = (folder / "serve.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            raise BenchError(f"{exc.url}: HTTP {exc.code}; the server's log ends:\n{log}") from None
        finally:
            server.stop()
    figures["clean_lap_goal_s"], figures["p99_goal_ms"] = CLEAN_LAP_GOAL_S, P99_GOAL_MS
    return figures
