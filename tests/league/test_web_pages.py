"""Web routes over HTTP against the live uvicorn server (no browser): the SSE wire format, keep-alive and
unsubscribe on disconnect, 404s, server-side escaping, static files, QR URL; and the value formatting."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from types import SimpleNamespace

import httpx
import pytest

from league_server.web import formatting
from league_server.web.routes import public_url
from tests.league.web_live import LiveServer, add_lap, make_race

EVIL = "<script>alert('x')</script> & Co"


def _wait_for(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_event_stream_sends_retry_keepalives_and_one_event_per_lap(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fastapi.routing._PING_INTERVAL", 0.3)  # FastAPI's keep-alive comment interval
    race = make_race(live_server, "Stream race", [("sse-car", "Sam", None)])
    url = f"{live_server.url}/races/{race.race_id}/events"
    with httpx.stream("GET", url, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == ": subscribed"
        assert next(lines) == "retry: 2000"
        assert _wait_for(lambda: live_server.events.subscriber_count(race.race_id) == 1)
        lap_id = add_lap(live_server, race, "sse-car", lap_time_ms=12_345)
        data = []
        pings = 0
        for line in lines:
            if line.startswith("data: "):
                data.append(json.loads(line.removeprefix("data: ")))
                break
        for line in lines:  # then silence: keep-alive comments
            pings += line == ": ping"
            if pings == 2:
                break
    assert data == [{"type": "lap", "race_id": race.race_id, "car_id": "sse-car", "lap_id": lap_id}]
    assert _wait_for(lambda: live_server.events.subscriber_count(race.race_id) == 0), (
        "closing the stream must unsubscribe it from the EventHub"
    )


def test_leaderboard_streams_share_one_computation_per_burst_of_laps(live_server: LiveServer) -> None:
    race = make_race(live_server, "Feed race", [(f"feed-{i}", f"F{i}", None) for i in range(5)])
    url = f"{live_server.url}/races/{race.race_id}/events?leaderboard=1"
    with ExitStack() as stack:
        streams = [stack.enter_context(httpx.stream("GET", url, timeout=10)) for _ in range(3)]
        lines = [s.iter_lines() for s in streams]  # keep the iterators (see the 503 test)
        for it in lines:
            assert next(it) == ": subscribed"
        feed = live_server.app.state.web_feeds.get(race.race_id)
        assert feed is not None and feed.listeners == 3
        for i in range(5):  # one burst: well inside the feed's coalescing window
            add_lap(live_server, race, f"feed-{i}", lap_time_ms=10_000 + i)
        for it in lines:
            board = None
            for line in it:
                if line.startswith("data: "):
                    board = json.loads(line.removeprefix("data: "))
                    if [e["status"] for e in board["entries"]] == ["ranked"] * 5:
                        break  # (the race's cars without a lap yet are DNF rows before that)
            assert board is not None and [e["car_id"] for e in board["entries"]] == [
                f"feed-{i}" for i in range(5)
            ]
            assert board["entries"][4]["gap_s"] == pytest.approx(0.004)
        assert feed.computations <= 2, (
            f"{feed.computations} leaderboard computations for 5 laps and 3 streams"
        )
    assert _wait_for(lambda: live_server.app.state.web_feeds.get(race.race_id) is None), "idle feeds stop"
    assert _wait_for(lambda: live_server.events.subscriber_count(race.race_id) == 0)


def test_event_stream_ends_after_its_lifetime_so_the_server_can_shut_down(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("league_server.web.routes.SSE_STREAM_MAX_S", 0.5)
    race = make_race(live_server, "Short stream", [("short-car", "Shorty", None)])
    t0 = time.monotonic()
    with httpx.stream("GET", f"{live_server.url}/races/{race.race_id}/events", timeout=10) as response:
        lines = list(response.iter_lines())  # returns only when the server ends the stream
    assert time.monotonic() - t0 < 5
    assert lines[:2] == [": subscribed", "retry: 2000"]
    assert _wait_for(lambda: live_server.events.subscriber_count(race.race_id) == 0)


def test_a_full_hub_answers_503_with_retry_after(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    race = make_race(live_server, "Crowded race", [("crowd-car", "Crowd", None)])
    url = f"{live_server.url}/races/{race.race_id}/events"
    monkeypatch.setattr(live_server.events, "max_subscribers", 1)
    with httpx.stream("GET", url, timeout=10) as first:
        lines = first.iter_lines()  # keep the iterator: a discarded one closes the stream under httpx's feet
        assert next(lines) == ": subscribed"
        refused = httpx.get(url, timeout=5)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "10"
        assert "too many open event streams" in refused.json()["detail"]
    assert _wait_for(lambda: live_server.events.subscriber_count(race.race_id) == 0)


def test_unknown_race_is_404_for_every_page_and_the_stream(live_server: LiveServer) -> None:
    for path in ("/races/999999", "/races/999999/bigscreen", "/races/999999/laps", "/races/999999/events"):
        response = httpx.get(live_server.url + path, timeout=5)
        assert response.status_code == 404, path
    assert httpx.get(live_server.url + "/races/0", timeout=5).status_code == 422


def test_pages_escape_user_input_server_side(live_server: LiveServer) -> None:
    race = make_race(live_server, f"Race {EVIL}", [("esc-car", EVIL, EVIL)])
    add_lap(live_server, race, "esc-car", lap_time_ms=10_000)
    for path in (
        "/",
        f"/races/{race.race_id}",
        f"/races/{race.race_id}/bigscreen",
        f"/races/{race.race_id}/laps",
    ):
        html = httpx.get(live_server.url + path, timeout=5).text
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in html, path


def test_static_files_are_served_locally_and_pages_reference_no_other_host(live_server: LiveServer) -> None:
    race = make_race(live_server, "Static race", [("static-car", "Stat", None)])
    html = httpx.get(f"{live_server.url}/races/{race.race_id}/bigscreen", timeout=5).text
    for name, kind in (
        ("pitlane.css", "text/css"),
        ("leaderboard.js", "javascript"),
        ("laps.js", "javascript"),
    ):
        response = httpx.get(f"{live_server.url}/static/web/{name}", timeout=5)
        assert response.status_code == 200 and kind in response.headers["content-type"], name
    assert "http://" not in html.replace(live_server.public_base_url, "").replace("http://www.w3.org", "")
    assert "https://" not in html


def test_bigscreen_warns_only_when_its_qr_code_points_at_a_loopback_address(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    race = make_race(live_server, "QR race", [("qr-car", "Q", None)])
    url = f"{live_server.url}/races/{race.race_id}/bigscreen"
    assert "PITLANE_PUBLIC_BASE_URL" not in httpx.get(url, timeout=5).text
    monkeypatch.setattr(live_server.app.state.settings, "public_base_url", "http://127.0.0.1:8000")
    html = httpx.get(url, timeout=5).text
    assert f"<title>{live_server.url}/races/{race.race_id}</title>" in html  # the address the screen used
    assert "set PITLANE_PUBLIC_BASE_URL" in html


def test_pages_are_not_in_the_openapi_schema(live_server: LiveServer) -> None:
    paths = httpx.get(f"{live_server.url}/openapi.json", timeout=5).json()["paths"]
    assert not [p for p in paths if not p.startswith("/api/")], "HTML pages and the SSE stream are not API"


def test_leaderboard_page_renders_the_rankings_values_with_units(live_server: LiveServer) -> None:
    race = make_race(
        live_server, "Average race", [("avg-a", "A", None), ("avg-b", "B", None)], ranking="best_average_of"
    )
    for ms in (10_000, 11_000, 12_000):
        add_lap(live_server, race, "avg-a", lap_time_ms=ms)
    for ms in (10_500, 11_500, 12_500):
        add_lap(live_server, race, "avg-b", lap_time_ms=ms)
    html = httpx.get(f"{live_server.url}/races/{race.race_id}", timeout=5).text
    assert "Best avg of 3 (s)" in html and "Gap (s)" in html and "Last lap (s)" in html
    assert ">11.000<" in html and ">11.500<" in html and ">+0.500<" in html


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"position": 1, "gap_s": 0.0, "gap_laps": None}, "—"),
        ({"position": 2, "gap_s": 1.23456, "gap_laps": None}, "+1.235"),
        ({"position": 3, "gap_s": None, "gap_laps": 1}, "+1 lap"),
        ({"position": 4, "gap_s": None, "gap_laps": 3}, "+3 laps"),
        ({"position": None, "gap_s": None, "gap_laps": None}, "—"),
    ],
)
def test_gap_text(entry: dict, expected: str) -> None:
    assert formatting.gap(SimpleNamespace(**entry)) == expected


def test_ranking_value_and_header_per_method() -> None:
    entry = SimpleNamespace(ranking_value_s=57.5, counted_laps=6)
    assert formatting.ranking_value(entry, "most_laps_in") == "6"
    assert formatting.ranking_value(entry, "total_time") == "57.500"
    assert formatting.ranking_header("most_laps_in", 3, 120.0) == "Laps in 120 s"
    assert formatting.ranking_header("total_time", 5, None) == "Total of 5 laps (s)"
    assert formatting.ranking_description("best_average_of", 3, None) == (
        "best average of 3 consecutive valid laps"
    )


def _request(base_url: str, public_base_url: str | None) -> SimpleNamespace:
    settings = SimpleNamespace(public_base_url=public_base_url)
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=settings)), base_url=base_url)


def test_qr_url_prefers_the_configured_public_url_unless_it_is_loopback() -> None:
    assert public_url(_request("http://10.0.0.5:8000/", "https://league.example.com"), "/races/3") == (
        "https://league.example.com/races/3"
    )
    # The default public_base_url is loopback: a phone cannot open it; the address the big screen used can.
    assert public_url(_request("http://10.0.0.5:8000/", "http://127.0.0.1:8000"), "/races/3") == (
        "http://10.0.0.5:8000/races/3"
    )
    assert public_url(_request("http://127.0.0.1:8765/", "http://127.0.0.1:8000"), "/races/3") == (
        "http://127.0.0.1:8765/races/3"
    )


def _sse_events(lines, count: int) -> list[tuple[str, str, dict | list]]:  # type: ignore[no-untyped-def]
    """The next `count` events with data of an SSE line iterator as (event name, id, data), each dispatched at
    its blank line as a browser does."""
    events: list[tuple[str, str, dict | list]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
            continue
        if "data" in fields:
            events.append((fields.get("event", ""), fields.get("id", ""), json.loads(fields["data"])))
            if len(events) == count:
                break
        fields = {}
    return events


def _version(live_server: LiveServer) -> str:
    from league_server.leaderboard_cache import data_version

    with live_server.sessions() as session:
        lap_id, audit_id = data_version(session)
    return f"{lap_id}.{audit_id}"


def test_the_leaderboard_api_and_page_list_dnf_rows_numbers_and_gaps_to_the_car_ahead(
    live_server: LiveServer,
) -> None:
    race = make_race(
        live_server,
        "DNF race",
        [("dnf-a", "Ada", None), ("dnf-b", "Bob", None), ("dnf-c", "Cy", None), ("dnf-d", EVIL, None)],
        numbers=[401, 402, 403, 404],
    )
    add_lap(live_server, race, "dnf-a", lap_time_ms=10_000)
    add_lap(live_server, race, "dnf-b", lap_time_ms=10_250)
    add_lap(live_server, race, "dnf-c", lap_time_ms=11_000)
    board = httpx.get(f"{live_server.url}/api/races/{race.race_id}/leaderboard", timeout=5).json()
    assert [
        (e["car_id"], e["car_number"], e["status"], e["position"], e["gap_s"], e["gap_ahead_s"])
        for e in board["entries"]
    ] == [
        ("dnf-a", 401, "ranked", 1, 0.0, None),
        ("dnf-b", 402, "ranked", 2, 0.25, 0.25),
        ("dnf-c", 403, "ranked", 3, 1.0, 0.75),
        ("dnf-d", 404, "dnf", None, None, None),
    ]
    assert board["entries"][3]["laps"] == 0 and board["entries"][3]["racer"] == EVIL
    for path in (f"/races/{race.race_id}", f"/races/{race.race_id}/bigscreen"):
        html = httpx.get(live_server.url + path, timeout=5).text
        assert 'data-key="dnf-d" data-status="dnf"' in html and '<td class="num pos">DNF</td>' in html, path
        assert '<td class="num no">403</td>' in html and '<td class="num ahead">+0.750</td>' in html, path
        assert "<script>alert" not in html, path


def test_the_lap_page_is_one_bounded_page_newest_first(live_server: LiveServer) -> None:
    race = make_race(live_server, "Long race", [("long-car", EVIL, None)])
    lap_ids = [add_lap(live_server, race, "long-car", lap_time_ms=10_000 + i) for i in range(120)]
    response = httpx.get(f"{live_server.url}/races/{race.race_id}/laps", timeout=5)
    html = response.text
    assert html.count('<tr class="valid"') == 100
    assert html.index(f'data-lap-id="{lap_ids[-1]}"') < html.index(f'data-lap-id="{lap_ids[-2]}"')
    assert f'href="/races/{race.race_id}/laps?before={lap_ids[20]}"' in html
    assert "<script>alert" not in html
    older = httpx.get(f"{live_server.url}/races/{race.race_id}/laps?before={lap_ids[20]}", timeout=5).text
    assert older.count('<tr class="valid"') == 20 and f'?after={lap_ids[19]}"' in older
    assert httpx.get(f"{live_server.url}/races/{race.race_id}/laps?before=0", timeout=5).status_code == 422


def test_a_laps_stream_sends_what_the_page_missed_then_new_and_edited_laps(live_server: LiveServer) -> None:
    race = make_race(live_server, "Laps stream", [("ls-car", "Lee", None)], numbers=[77])
    first = add_lap(live_server, race, "ls-car", lap_time_ms=10_000)
    since = _version(live_server)  # what the page was rendered at
    missed = add_lap(live_server, race, "ls-car", lap_time_ms=10_100)
    url = f"{live_server.url}/races/{race.race_id}/events?laps=1&since={since}"
    with httpx.stream("GET", url, timeout=10) as response:
        lines = response.iter_lines()
        (name, event_id, data) = _sse_events(lines, 1)[0]
        assert name == "laps" and event_id == _version(live_server)
        assert [lap["lap_id"] for lap in data["laps"]] == [missed] and data["total"] == 2
        lap = data["laps"][0]
        assert (lap["car_number"], lap["racer"], lap["counted"], lap["valid"]) == (77, "Lee", "10.100", True)
        assert ["num id", str(missed)] in lap["cells"]
        new = add_lap(live_server, race, "ls-car", lap_time_ms=9_900)
        live_server.invalidate(first, reason="cut")
        seen: dict[int, dict] = {}
        while first not in seen or new not in seen:
            for _name, _id, data in _sse_events(lines, 1):
                seen.update({lap["lap_id"]: lap for lap in data["laps"]})
        assert seen[new]["valid"] and not seen[first]["valid"]
        assert ["lap-status", "invalid: cut"] in seen[first]["cells"]
    # a browser reconnecting sends its last event id: only what came after it
    resumed = httpx.stream(
        "GET", f"{live_server.url}/races/{race.race_id}/events?laps=1&since=0.0",
        headers={"Last-Event-ID": _version(live_server)}, timeout=10,
    )  # fmt: skip
    with resumed as response:
        (name, _id, data) = _sse_events(response.iter_lines(), 1)[0]
        assert name == "laps" and data["laps"] == [] and not data["resync"]


def test_a_track_stream_sends_the_cars_on_track(live_server: LiveServer) -> None:
    from tests.league.web_live import set_presence

    race = make_race(
        live_server, "Track stream", [("tr-a", "Ann", None), ("tr-b", "Ben", None)], numbers=[61, 62]
    )
    set_presence(live_server, "tr-b", "driving")
    url = f"{live_server.url}/races/{race.race_id}/events?track=1"
    with httpx.stream("GET", url, timeout=10) as response:
        lines = response.iter_lines()
        assert _sse_events(lines, 1)[0][1:] == (
            "",
            [{"car_id": "tr-b", "number": 62, "racer": "Ben", "state": "driving"}],
        )
        set_presence(live_server, "tr-a", "online")
        (name, _id, cars) = _sse_events(lines, 1)[0]
        assert name == "track" and [car["car_id"] for car in cars] == ["tr-a", "tr-b"]


def test_race_clock_counts_down_to_the_start_then_to_the_end() -> None:
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 12, 5, 14, 0, tzinfo=timezone.utc)
    end = start + timedelta(minutes=30)
    clock = formatting.race_clock
    assert clock(start, end, start - timedelta(minutes=2, seconds=0.4)) == formatting.RaceClock(
        "before", "starts in", "2:01"
    )  # rounded up: it shows 0:01 in the last second, never 0:00 early
    assert clock(start, end, start + timedelta(seconds=1)) == formatting.RaceClock(
        "running", "time left", "29:59"
    )
    assert clock(start, end, end) == formatting.RaceClock("finished", "race", "finished")
    assert clock(start, start + timedelta(hours=2), start).text == "2:00:00"
    assert clock(start, None, start).text == "running"
    assert clock(None, None, start) is None  # no window: no clock


def test_bigscreen_shows_no_clock_for_a_race_without_a_window(live_server: LiveServer) -> None:
    race = make_race(live_server, "No window", [("nw-car", "Nia", None)])
    html = httpx.get(f"{live_server.url}/races/{race.race_id}/bigscreen", timeout=5).text
    assert 'data-state="none" hidden' in html and 'data-window-end=""' in html
