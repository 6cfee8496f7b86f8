"""Public read endpoints (rate-limited per client IP): leagues, races, leaderboards, results, laps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from league_server import ranking
from league_server.api.deps import MAX_ID, RaceId, SessionDep
from league_server.api.errors import PUBLIC_RESPONSES
from league_server.api.ratelimit import rate_limited
from league_server.crud import laps as laps_crud
from league_server.crud import leagues as leagues_crud
from league_server.crud import races as races_crud
from league_server.leaderboard_cache import cache_of
from league_server.schemas import EventOut, HealthOut, LapOut, Leaderboard, LeagueOut, RaceOut, RaceResults

router = APIRouter(
    prefix="/api", tags=["public"], dependencies=[Depends(rate_limited)], responses=PUBLIC_RESPONSES
)

OptId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/health", response_model=HealthOut, summary="Server and ingest status")
def health(request: Request) -> HealthOut:
    ingest = getattr(request.app.state, "ingest", None)
    broker = getattr(request.app.state, "broker", None)
    connected = None
    if ingest is not None and hasattr(ingest, "connected"):
        connected = ingest.connected.is_set()
    return HealthOut(
        status="ok",
        ingest_connected=connected,
        broker_url=getattr(broker, "url", None) or request.app.state.settings.broker_url,
    )


@router.get("/leagues", response_model=list[LeagueOut], summary="All leagues")
def list_leagues(session: SessionDep) -> list[LeagueOut]:
    return [LeagueOut.model_validate(x) for x in leagues_crud.list_leagues(session)]


@router.get("/events", response_model=list[EventOut], summary="Events, optionally of one league")
def list_events(session: SessionDep, league_id: OptId = None) -> list[EventOut]:
    return [EventOut.model_validate(x) for x in leagues_crud.list_events(session, league_id)]


@router.get("/races", response_model=list[RaceOut], summary="Races, optionally of one league / status")
def list_races(
    session: SessionDep,
    league_id: OptId = None,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
) -> list[RaceOut]:
    found = races_crud.list_races(session, league_id=league_id, status=status)
    return [RaceOut.model_validate(x) for x in found]


@router.get("/races/{race_id}", response_model=RaceOut, summary="One race and its rules")
def get_race(race_id: RaceId, session: SessionDep) -> RaceOut:
    return RaceOut.model_validate(races_crud.get_race(session, race_id))


@router.get(
    "/races/{race_id}/leaderboard",
    response_model=Leaderboard,
    summary="The race's live leaderboard (times in seconds)",
)
async def get_leaderboard(race_id: RaceId, request: Request) -> Response:
    # Served from the per-process cache (league_server/leaderboard_cache.py): re-ranking per request is too
    # slow for 100 polling screens. A fresh copy is returned right here on the event loop (no thread, no
    # database); otherwise it is validated (and if need be re-ranked) in a worker thread.
    cache = cache_of(request.app.state)
    body = cache.fresh(race_id)
    if body is None:
        body = await run_in_threadpool(cache.json_in_new_session, race_id)
    return Response(body, media_type="application/json")


@router.get(
    "/races/{race_id}/results",
    response_model=RaceResults,
    summary="Race, standings and every counted lap",
)
def get_results(race_id: RaceId, session: SessionDep) -> RaceResults:
    race = races_crud.get_race(session, race_id)
    return RaceResults(
        race=RaceOut.model_validate(race),
        leaderboard=ranking.leaderboard(session, race_id),
        laps=[LapOut.model_validate(x) for x in laps_crud.list_laps(session, race_id)],
    )


@router.get("/races/{race_id}/laps", response_model=list[LapOut], summary="Laps of a race in driving order")
def get_laps(
    race_id: RaceId,
    session: SessionDep,
    car_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    include_deleted: bool = False,
) -> list[LapOut]:
    races_crud.get_race(session, race_id)
    found = laps_crud.list_laps(
        session, race_id, car_id=car_id, include_deleted=include_deleted, limit=limit, offset=offset
    )
    return [LapOut.model_validate(x) for x in found]
