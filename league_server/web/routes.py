"""HTML pages and the server-sent-events stream of the league (see the package docstring for the routes)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from league_server.api.deps import RaceId, SessionDep
from league_server.api.ratelimit import page_rate_limited
from league_server.crud import races as races_crud
from league_server.events import EventHub, SubscriberLimitError
from league_server.leaderboard_cache import Version, cache_of, data_version
from league_server.models import Race, utc_now
from league_server.schemas import Leaderboard
from league_server.web import formatting, queries
from league_server.web.feed import (
    LeaderboardFeeds,
    LiveSource,
    RaceFeed,
    StreamPosition,
    format_version,
    parse_version,
)
from league_server.web.qr import qr_svg

WEB_DIR = Path(__file__).resolve().parent
STATIC_MOUNT = "/static/web"
# What a page is sent when it fell too far behind to catch up: reload.
RESYNC_LAPS = '{"resync":true,"total":0,"laps":[]}'
# Browsers wait this long before reconnecting a dropped stream (SSE `retry:` field).
SSE_RETRY_MS = 2000
# An event stream ends after this long and the browser reconnects (after SSE_RETRY_MS; the page catches up on
# reconnect, so nothing is missed). Why: uvicorn waits for open responses before it shuts down, and an endless
# stream would keep `pitlane league serve` from stopping unless it runs with timeout_graceful_shutdown.
SSE_STREAM_MAX_S = 30.0
# How long a new personal/overall best stays highlighted on the page.
HIGHLIGHT_MS = 5000
VERSION_PATTERN = r"^[0-9]{1,19}\.[0-9]{1,19}$"
LapIdQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(
        directory=WEB_DIR / "templates"
    )  # autoescapes .html (racer names are user input)
    templates.env.filters.update(
        seconds=formatting.seconds,
        gap=formatting.gap,
        gap_ahead=formatting.gap_ahead,
        position=formatting.position,
        car_number=formatting.car_number,
        clock=formatting.clock,
        ranking_value=formatting.ranking_value,
        robustness_label=formatting.robustness_label,
        subline=formatting.subline,
        lap_cells=formatting.lap_cells,
        lap_status=formatting.lap_status,
    )
    return templates


def existing_race_id(request: Request, race_id: RaceId) -> int:
    """``race_id`` after checking the race exists (NotFoundError -> 404) with a session closed right away, so an
    open event stream holds no database connection; 503 when the EventHub has no room for another stream."""
    with request.app.state.sessionmaker() as session:
        races_crud.get_race(session, race_id)
    hub: EventHub = request.app.state.events
    feeds = getattr(request.app.state, "web_feeds", None)
    open_streams = hub.subscriber_count() + (feeds.listeners() if feeds is not None else 0)
    if open_streams >= hub.max_subscribers:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"too many open event streams (limit {hub.max_subscribers}); retry later",
            headers={"Retry-After": "10"},
        )
    return race_id


class StreamCleanup:
    """What an event stream must release (its feed, its EventHub subscription), released by the request's
    teardown (`stream_cleanup`) rather than by the stream generator's own ``finally``: when the response
    ends, FastAPI cancels the task that pulls from the generator; a generator suspended at a ``yield`` is then
    only closed whenever the garbage collector gets to it, holding its feed and subscription (and counting
    against EventHub.max_subscribers) until then."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], Any]] = []

    def add(self, callback: Callable[[], Any]) -> None:
        self._callbacks.append(callback)

    async def run(self) -> None:
        """Run every callback once (awaiting coroutine ones), newest first."""
        while self._callbacks:
            result = self._callbacks.pop()()
            if inspect.isawaitable(result):
                await result


async def _until_disconnected(request: Request) -> None:
    """Returns when the browser has gone. Why watch: the server only learns it from a failed write, and an
    idle stream writes nothing but a keep-alive every 15 s, so its feed and subscription would be held
    that long after the page closed (nothing else reads this request: a GET stream has no body)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_gone(awaitable: Any, gone: asyncio.Future[None], timeout_s: float) -> tuple[bool, Any]:
    """(True, what `awaitable` returned), or (False, None) when the browser went away or `timeout_s` passed
    first (the awaitable is then cancelled: the EventHub's and the feed's waits lose nothing by that)."""
    waiter = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({waiter, gone}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        return True, waiter.result()
    waiter.cancel()
    return False, None


def _watch_disconnect(request: Request, cleanup: StreamCleanup) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(_until_disconnected(request))
    cleanup.add(task.cancel)
    return task


async def stream_cleanup() -> AsyncIterator[StreamCleanup]:
    """Dependency: a StreamCleanup run when the request ends, however it ends."""
    cleanup = StreamCleanup()
    try:
        yield cleanup
    finally:
        await cleanup.run()


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def public_url(request: Request, path: str) -> str:
    """The URL a phone in the audience should open for ``path``.

    settings.public_base_url wins unless it is a loopback address (the default): then the address the big
    screen itself used is the better guess (reached over the network, the audience can reach it too).
    """
    settings = getattr(request.app.state, "settings", None)
    base = getattr(settings, "public_base_url", None) or str(request.base_url)
    if _is_loopback(base):
        base = str(request.base_url)
    return base.rstrip("/") + path


def _leaderboard(request: Request, session: Session, race_id: int) -> Leaderboard:
    """The race's leaderboard as the JSON API serves it (the same cache: no re-rank per page view)."""
    cache = cache_of(request.app.state)
    body = cache.fresh(race_id)
    if body is None:
        body = cache.json(session, race_id)
    return Leaderboard.model_validate_json(body)


def _events_url(race_id: int, since: Version | None = None, **wanted: bool) -> str:
    params = {name: "1" for name, on in wanted.items() if on}
    if since is not None:
        params["since"] = format_version(since)
    return f"/races/{race_id}/events?{urlencode(params)}"


def _race_context(request: Request, session: Session, race: Race) -> dict[str, Any]:
    return {
        "race": race,
        "board": _leaderboard(request, session, race.id),
        "value_header": formatting.ranking_header(race.ranking, race.ranked_laps, race.time_window_s),
        "ranking_text": formatting.ranking_description(race.ranking, race.ranked_laps, race.time_window_s),
        "api_url": f"/api/races/{race.id}/leaderboard",
        "highlight_ms": HIGHLIGHT_MS,
    }


def _replay_context(race: Race, submission_id: int | None) -> dict[str, Any]:
    """The replay page's: the race, the list to animate (every ranked evaluation, or `submission_id`'s)."""
    ghost = submission_id is None
    return {
        "race": race,
        "heading": "ghost race" if ghost else f"replay of evaluation {submission_id}",
        "explain": "every racer's ranked evaluation, on one clock"
        if ghost
        else "the evaluation's laps, in real time",
        "list_url": f"/api/races/{race.id}/replays",
        "replay_base": f"/api/races/{race.id}/replays",
        "only": None if ghost else str(submission_id),
    }


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def web_router() -> APIRouter:
    """The pages, the SSE stream and the static files; not part of the OpenAPI schema (they are not an API).
    Pages and streams are rate-limited per client IP like the public API (static files are not)."""
    router = APIRouter(include_in_schema=False, dependencies=[Depends(page_rate_limited)])
    templates = _templates()
    router.mount(STATIC_MOUNT, StaticFiles(directory=WEB_DIR / "static"), name="web-static")

    @router.get("/", response_class=HTMLResponse, name="web-races")
    def races_page(request: Request, session: SessionDep) -> HTMLResponse:
        return templates.TemplateResponse(request, "races.html", {"races": queries.race_summaries(session)})

    @router.get("/races/{race_id}", response_class=HTMLResponse, name="web-leaderboard")
    def leaderboard_page(request: Request, race_id: RaceId, session: SessionDep) -> HTMLResponse:
        race = races_crud.get_race(session, race_id)
        context = _race_context(request, session, race)
        context["events_url"] = _events_url(race_id, leaderboard=True)
        context["show_robustness"] = race.kind == "virtual"  # each entry is a submitted model
        return templates.TemplateResponse(request, "leaderboard.html", context)

    @router.get("/races/{race_id}/bigscreen", response_class=HTMLResponse, name="web-bigscreen")
    def bigscreen_page(request: Request, race_id: RaceId, session: SessionDep) -> HTMLResponse:
        race = races_crud.get_race(session, race_id)
        since = data_version(session)  # read first: anything committed after it reaches the page live
        context = _race_context(request, session, race)
        page_url = public_url(request, f"/races/{race_id}")
        now = utc_now()
        context.update(
            page_url=page_url,
            qr=qr_svg(page_url),
            qr_is_loopback=_is_loopback(page_url),
            events_url=_events_url(race_id, since, leaderboard=True, laps=True, track=True),
            ticker=queries.recent_laps(session, race),
            on_track=queries.on_track(session, [race_id])[race_id],
            clock=formatting.race_clock(race.window_start, race.window_end, now),
            window_start=_iso(race.window_start),
            window_end=_iso(race.window_end),
            server_now_ms=int(now.timestamp() * 1000),
        )
        return templates.TemplateResponse(request, "bigscreen.html", context)

    @router.get("/races/{race_id}/ghost", response_class=HTMLResponse, name="web-ghost")
    def ghost_page(request: Request, race_id: RaceId, session: SessionDep) -> HTMLResponse:
        """Every racer's ranked evaluation of a virtual race, animated together on one track, in step."""
        race = races_crud.get_race(session, race_id)
        return templates.TemplateResponse(request, "replay.html", _replay_context(race, None))

    @router.get("/races/{race_id}/replays/{submission_id}", response_class=HTMLResponse, name="web-replay")
    def replay_page(
        request: Request, race_id: RaceId, submission_id: RaceId, session: SessionDep
    ) -> HTMLResponse:
        """One evaluation's drive, animated: speed colours, off-track marks, lap clock."""
        race = races_crud.get_race(session, race_id)
        return templates.TemplateResponse(request, "replay.html", _replay_context(race, submission_id))

    @router.get("/races/{race_id}/laps", response_class=HTMLResponse, name="web-laps")
    def laps_page(
        request: Request,
        race_id: RaceId,
        session: SessionDep,
        before: LapIdQuery = None,
        after: LapIdQuery = None,
    ) -> HTMLResponse:
        """The race's laps, newest first, LAPS_PAGE_SIZE per page (``before``/``after``: a lap id to page on);
        open pages get new and edited laps pushed (the newest page inserts new laps at the top)."""
        race = races_crud.get_race(session, race_id)
        since = data_version(session)
        page = queries.lap_page(session, race, before=before, after=after)
        context = {
            "race": race,
            "page": page,
            "page_size": queries.LAPS_PAGE_SIZE,
            "events_url": _events_url(race_id, since, laps=True),
        }
        return templates.TemplateResponse(request, "laps.html", context)

    @router.get("/races/{race_id}/events", response_class=EventSourceResponse, name="web-events")
    async def race_events(
        request: Request,
        race_id: Annotated[int, Depends(existing_race_id)],
        cleanup: Annotated[StreamCleanup, Depends(stream_cleanup)],
        leaderboard: Annotated[bool, Query(description="send the race's new leaderboards")] = False,
        laps: Annotated[bool, Query(description="send new and edited laps")] = False,
        track: Annotated[bool, Query(description="send the cars on track when that changes")] = False,
        since: Annotated[str | None, Query(pattern=VERSION_PATTERN)] = None,
        last_event_id: Annotated[str | None, Header(max_length=40)] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """text/event-stream of the race.

        Default: one `data:` JSON event per committed lap or lap edit (``{"type": "lap", ...}``);
        ``{"type": "resync"}`` means events were dropped for this (slow) client: refetch.
        With any of ``leaderboard``, ``laps``, ``track``: named events, computed once per burst for all
        watchers of the race (feed.py): ``event: leaderboard`` (the JSON of ``GET
        /api/races/{race_id}/leaderboard``), ``event: laps`` (``{"total", "resync", "laps": [...]}``, with an
        ``id:`` the browser sends back as Last-Event-ID when it reconnects; ``since`` is the page's data
        version, so laps stored between the page and the stream are sent first; ``resync``: reload),
        ``event: track`` (a JSON list of the cars on track). Marshal edits from other processes arrive within
        about a second (feed.POLL_S). FastAPI adds a keep-alive comment every 15 s of silence. The stream ends
        when the hub closes or after SSE_STREAM_MAX_S (the browser's EventSource reconnects by itself).
        """
        hub: EventHub = request.app.state.events
        if leaderboard or laps or track:
            wanted = {"leaderboard": leaderboard, "laps": laps, "track": track}
            resume = parse_version(last_event_id) or parse_version(since)
            stream = _live_stream(request, hub, race_id, wanted, resume, cleanup)
        else:
            stream = hub_stream(request, hub, race_id, cleanup)
        async for message in stream:
            yield message

    return router


async def hub_stream(
    request: Request,
    hub: EventHub,
    key: int,
    cleanup: StreamCleanup,
    to_sse: Callable[[dict[str, Any]], ServerSentEvent] = lambda event: ServerSentEvent(data=event),
) -> AsyncIterator[ServerSentEvent]:
    """The events `hub` publishes for `key` (a race, a console model), each made a ServerSentEvent by `to_sse`,
    until the browser goes, the hub closes or SSE_STREAM_MAX_S passes (the browser reconnects by itself)."""
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + SSE_STREAM_MAX_S
    try:
        subscription = hub.subscribe(key)
    except SubscriberLimitError:
        return  # filled up since existing_race_id checked: end the stream; the browser retries later
    cleanup.add(subscription.aclose)
    gone = _watch_disconnect(request, cleanup)
    yield ServerSentEvent(comment="subscribed", retry=SSE_RETRY_MS)
    while (remaining_s := ends_at - loop.time()) > 0:
        try:
            got, event = await _unless_gone(subscription.__anext__(), gone, remaining_s)
        except StopAsyncIteration:
            break  # the hub closed
        if not got:
            break  # the browser went, or time to let it reconnect
        yield to_sse(event)


def _feeds(request: Request, hub: EventHub) -> LeaderboardFeeds:
    feeds = getattr(request.app.state, "web_feeds", None)
    if feeds is None:
        source = LiveSource(request.app.state.sessionmaker, cache_of(request.app.state))
        feeds = request.app.state.web_feeds = LeaderboardFeeds(hub, source)
    return feeds


def _newer(version: Version, than: Version) -> bool:
    return version[0] > than[0] or version[1] > than[1]


def _laps_event(text: str, version: Version) -> ServerSentEvent:
    return ServerSentEvent(raw_data=text, event="laps", id=format_version(version))


async def _catch_up(feed: RaceFeed, since: Version) -> tuple[Version, ServerSentEvent]:
    """The laps a stream that saw data version `since` has missed, as one ``laps`` event."""
    version, text, _resync = await asyncio.to_thread(feed.source.catch_up, feed.race_id, since)
    return version, _laps_event(text, version)


async def _pending(
    feed: RaceFeed, wanted: dict[str, bool], seen: StreamPosition
) -> AsyncIterator[ServerSentEvent]:
    """What the feed has that this stream has not been sent yet (advances `seen`)."""
    if wanted["track"] and feed.track_version > seen.track and feed.track_json is not None:
        seen.track = feed.track_version
        yield ServerSentEvent(raw_data=feed.track_json, event="track")
    if wanted["laps"] and feed.laps_seq > seen.laps_seq:
        pushes = feed.laps_after(seen.laps_seq)
        seen.laps_seq = feed.laps_seq
        if pushes is None:  # fell behind the feed's backlog
            if seen.version is None:
                yield ServerSentEvent(raw_data=RESYNC_LAPS, event="laps")
            else:
                seen.version, event = await _catch_up(feed, seen.version)
                yield event
        for push in pushes or ():
            if seen.version is not None and not _newer(push.version, seen.version):
                continue  # a catch-up query already covered it
            seen.version = push.version
            yield _laps_event(push.text, push.version)
    if wanted["leaderboard"] and feed.version > seen.board and feed.json is not None:
        seen.board = feed.version
        yield ServerSentEvent(raw_data=feed.json, event="leaderboard")


async def _live_stream(
    request: Request,
    hub: EventHub,
    race_id: int,
    wanted: dict[str, bool],
    since: Version | None,
    cleanup: StreamCleanup,
) -> AsyncIterator[ServerSentEvent]:
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + SSE_STREAM_MAX_S
    feeds = _feeds(request, hub)
    try:
        feed = feeds.attach(race_id, wanted["leaderboard"])
    except SubscriberLimitError:
        return
    cleanup.add(lambda: feeds.detach(feed, wanted["leaderboard"]))
    gone = _watch_disconnect(request, cleanup)
    seen = feed.position()  # the page fetched or rendered the current leaderboard itself
    yield ServerSentEvent(comment="subscribed", retry=SSE_RETRY_MS)
    if wanted["laps"] and since is not None:
        seen.version, event = await _catch_up(feed, since)
        yield event
    while (remaining_s := ends_at - loop.time()) > 0:
        async for message in _pending(feed, wanted, seen):
            yield message
        got, more = await _unless_gone(feed.wait_change(seen), gone, remaining_s)
        if not (got and more):
            break  # the browser went, time to let it reconnect, or the hub closed
