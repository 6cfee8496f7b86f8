"""HTML pages and the server-sent-events stream of the league (see the package docstring for the routes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from league_server import ranking
from league_server.api.deps import RaceId, SessionDep
from league_server.crud import races as races_crud
from league_server.events import EventHub, SubscriberLimitError
from league_server.web import formatting, queries
from league_server.web.feed import LeaderboardFeeds
from league_server.web.qr import qr_svg

WEB_DIR = Path(__file__).resolve().parent
STATIC_MOUNT = "/static/web"
# Browsers wait this long before reconnecting a dropped stream (SSE `retry:` field).
SSE_RETRY_MS = 2000
# An event stream ends after this long and the browser reconnects (after SSE_RETRY_MS; the page refetches on
# reconnect, so nothing is missed). Why: uvicorn waits for open responses before it shuts down, and an endless
# stream would keep `pitlane league serve` from stopping unless it runs with timeout_graceful_shutdown.
SSE_STREAM_MAX_S = 30.0
# How long a new personal/overall best stays highlighted on the page.
HIGHLIGHT_MS = 5000


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(
        directory=WEB_DIR / "templates"
    )  # autoescapes .html (racer names are user input)
    templates.env.filters.update(
        seconds=formatting.seconds,
        gap=formatting.gap,
        clock=formatting.clock,
        ranking_value=formatting.ranking_value,
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


def _race_context(request: Request, session: Session, race_id: int) -> dict[str, Any]:
    race = races_crud.get_race(session, race_id)
    board = ranking.leaderboard(session, race_id)
    return {
        "race": race,
        "board": board,
        "value_header": formatting.ranking_header(race.ranking, race.ranked_laps, race.time_window_s),
        "ranking_text": formatting.ranking_description(race.ranking, race.ranked_laps, race.time_window_s),
        "api_url": f"/api/races/{race_id}/leaderboard",
        "events_url": f"/races/{race_id}/events",
        "highlight_ms": HIGHLIGHT_MS,
    }


def web_router() -> APIRouter:
    """The pages, the SSE stream and the static files; not part of the OpenAPI schema (they are not an API)."""
    router = APIRouter(include_in_schema=False)
    templates = _templates()
    router.mount(STATIC_MOUNT, StaticFiles(directory=WEB_DIR / "static"), name="web-static")

    @router.get("/", response_class=HTMLResponse, name="web-races")
    def races_page(request: Request, session: SessionDep) -> HTMLResponse:
        return templates.TemplateResponse(request, "races.html", {"races": queries.race_summaries(session)})

    @router.get("/races/{race_id}", response_class=HTMLResponse, name="web-leaderboard")
    def leaderboard_page(request: Request, race_id: RaceId, session: SessionDep) -> HTMLResponse:
        context = _race_context(request, session, race_id)
        return templates.TemplateResponse(request, "leaderboard.html", context)

    @router.get("/races/{race_id}/bigscreen", response_class=HTMLResponse, name="web-bigscreen")
    def bigscreen_page(request: Request, race_id: RaceId, session: SessionDep) -> HTMLResponse:
        context = _race_context(request, session, race_id)
        page_url = public_url(request, f"/races/{race_id}")
        context.update(page_url=page_url, qr=qr_svg(page_url), qr_is_loopback=_is_loopback(page_url))
        return templates.TemplateResponse(request, "bigscreen.html", context)

    @router.get("/races/{race_id}/laps", response_class=HTMLResponse, name="web-laps")
    def laps_page(request: Request, race_id: RaceId, session: SessionDep) -> HTMLResponse:
        race = races_crud.get_race(session, race_id)
        context = {
            "race": race,
            "laps": queries.race_laps(session, race),
            "events_url": f"/races/{race_id}/events",
        }
        return templates.TemplateResponse(request, "laps.html", context)

    @router.get("/races/{race_id}/events", response_class=EventSourceResponse, name="web-events")
    async def race_events(
        request: Request,
        race_id: Annotated[int, Depends(existing_race_id)],
        leaderboard: Annotated[
            bool, Query(description="send the new leaderboard instead of raw events")
        ] = False,
    ) -> AsyncIterator[ServerSentEvent]:
        """text/event-stream of the race.

        Default: one `data:` JSON event per committed lap or lap edit (``{"type": "lap", ...}``);
        ``{"type": "resync"}`` means events were dropped for this (slow) client: refetch.
        ``?leaderboard=1``: ``event: leaderboard`` messages whose data is the race's new leaderboard (the JSON
        of ``GET /api/races/{race_id}/leaderboard``), computed once per burst of laps for all watchers (feed.py).
        FastAPI adds a keep-alive comment every 15 s of silence. The stream ends when the hub closes or after
        SSE_STREAM_MAX_S (the browser's EventSource reconnects by itself).
        """
        hub: EventHub = request.app.state.events
        stream = _leaderboard_stream(request, hub, race_id) if leaderboard else _event_stream(hub, race_id)
        async for message in stream:
            yield message

    return router


async def _event_stream(hub: EventHub, race_id: int) -> AsyncIterator[ServerSentEvent]:
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + SSE_STREAM_MAX_S
    try:
        subscription = hub.subscribe(race_id)
    except SubscriberLimitError:
        return  # filled up since existing_race_id checked: end the stream; the browser retries later
    async with subscription:
        yield ServerSentEvent(comment="subscribed", retry=SSE_RETRY_MS)
        while (remaining_s := ends_at - loop.time()) > 0:
            try:
                event = await asyncio.wait_for(subscription.__anext__(), remaining_s)
            except (StopAsyncIteration, asyncio.TimeoutError):
                break  # hub closed, or time to let the browser reconnect
            yield ServerSentEvent(data=event)


def _feeds(request: Request, hub: EventHub) -> LeaderboardFeeds:
    feeds = getattr(request.app.state, "web_feeds", None)
    if feeds is None:
        feeds = request.app.state.web_feeds = LeaderboardFeeds(hub, request.app.state.sessionmaker)
    return feeds


async def _leaderboard_stream(
    request: Request, hub: EventHub, race_id: int
) -> AsyncIterator[ServerSentEvent]:
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + SSE_STREAM_MAX_S
    feeds = _feeds(request, hub)
    try:
        feed = feeds.attach(race_id)
    except SubscriberLimitError:
        return
    try:
        seen = feed.version  # the page fetched the current leaderboard itself when the stream opened
        yield ServerSentEvent(comment="subscribed", retry=SSE_RETRY_MS)
        while (remaining_s := ends_at - loop.time()) > 0:
            try:
                newer = await asyncio.wait_for(feed.wait_newer(seen), remaining_s)
            except asyncio.TimeoutError:
                break
            if newer is None:
                break  # hub closed
            seen, text = newer
            yield ServerSentEvent(raw_data=text, event="leaderboard")
    finally:
        feeds.detach(feed)
