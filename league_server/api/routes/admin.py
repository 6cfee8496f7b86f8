"""Admin endpoints (bearer token): create the league structure, provision cars and trackside timers
(credentials shown once), assign them to races, list timer crossings, enter laps by hand,
invalidate/restore/delete laps with a reason, read the audit log and the dead letters.

Every audited edit names the authenticated admin (`AdminDep`) as its actor, never a request field."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field

from contracts.wire import CarCredentialsFile, timer_topic
from league_server.api.deps import MAX_ID, AdminDep, CarIdPath, LapId, LeagueId, RaceId, SessionDep, events_of
from league_server.api.errors import ADMIN_RESPONSES
from league_server.crud import audit as audit_crud
from league_server.crud import cars as cars_crud
from league_server.crud import crossings as crossings_crud
from league_server.crud import dead_letters as dead_letters_crud
from league_server.crud import laps as laps_crud
from league_server.crud import leagues as leagues_crud
from league_server.crud import races as races_crud
from league_server.crud import timers as timers_crud
from league_server.models import Car, Lap, Timer
from league_server.schemas import (
    AuditEntryOut,
    CarAssign,
    CarIn,
    CarOut,
    CrossingOut,
    DeadLetterOut,
    EventIn,
    EventOut,
    LapEdit,
    LapOut,
    LapPenalty,
    LeagueIn,
    LeagueOut,
    ManualLapIn,
    RaceIn,
    RaceOut,
    RacerIn,
    RacerOut,
    RaceUpdate,
    SeasonIn,
    SeasonOut,
    TeamIn,
    TeamOut,
    TimerAssign,
    TimerIn,
    TimerOut,
    TimerProvisioned,
    TrackIn,
    TrackOut,
)

router = APIRouter(prefix="/api/admin", tags=["admin"], responses=ADMIN_RESPONSES)

EventId = Annotated[int, Path(ge=1, le=MAX_ID, description="event id")]
SLUG_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
TimerIdPath = Annotated[str, Path(pattern=SLUG_PATTERN, description="timer id (slug)")]
CREATED = status.HTTP_201_CREATED


def _publish(request: Request, race_id: int, event: dict[str, Any]) -> None:
    hub = events_of(request)
    if hub is not None:
        hub.publish(race_id, {"race_id": race_id, **event})


@router.post("/leagues", response_model=LeagueOut, status_code=CREATED, summary="Create a league")
def create_league(body: LeagueIn, session: SessionDep, _actor: AdminDep) -> LeagueOut:
    league = leagues_crud.create_league(session, body.slug, body.name)
    session.commit()
    return LeagueOut.model_validate(league)


@router.post("/leagues/{league_id}/seasons", response_model=SeasonOut, status_code=CREATED)
def create_season(league_id: LeagueId, body: SeasonIn, session: SessionDep, _actor: AdminDep) -> SeasonOut:
    season = leagues_crud.create_season(session, league_id, body.name)
    session.commit()
    return SeasonOut.model_validate(season)


@router.post("/leagues/{league_id}/events", response_model=EventOut, status_code=CREATED)
def create_event(league_id: LeagueId, body: EventIn, session: SessionDep, _actor: AdminDep) -> EventOut:
    event = leagues_crud.create_event(session, league_id, **body.model_dump())
    session.commit()
    return EventOut.model_validate(event)


@router.post("/leagues/{league_id}/teams", response_model=TeamOut, status_code=CREATED)
def create_team(league_id: LeagueId, body: TeamIn, session: SessionDep, _actor: AdminDep) -> TeamOut:
    team = leagues_crud.create_team(session, league_id, body.name)
    session.commit()
    return TeamOut.model_validate(team)


@router.post("/leagues/{league_id}/racers", response_model=RacerOut, status_code=CREATED)
def create_racer(league_id: LeagueId, body: RacerIn, session: SessionDep, _actor: AdminDep) -> RacerOut:
    racer = leagues_crud.create_racer(session, league_id, body.name, team_id=body.team_id)
    session.commit()
    return RacerOut.model_validate(racer)


@router.post("/tracks", response_model=TrackOut, status_code=CREATED, summary="Create a track")
def create_track(body: TrackIn, session: SessionDep, _actor: AdminDep) -> TrackOut:
    track = leagues_crud.create_track(session, body.slug, body.name, body.length_m)
    session.commit()
    return TrackOut.model_validate(track)


@router.post("/events/{event_id}/races", response_model=RaceOut, status_code=CREATED, summary="Create a race")
def create_race(event_id: EventId, body: RaceIn, session: SessionDep, _actor: AdminDep) -> RaceOut:
    data = body.model_dump()
    race = races_crud.create_race(session, event_id, data.pop("name"), **data)
    session.commit()
    return RaceOut.model_validate(race)


@router.patch("/races/{race_id}", response_model=RaceOut, summary="Change a race's rules or status (audited)")
def update_race(race_id: RaceId, body: RaceUpdate, session: SessionDep, actor: AdminDep) -> RaceOut:
    changes = body.model_dump(exclude_unset=True)
    race = races_crud.update_race(session, race_id, actor=actor, **changes)
    session.commit()
    return RaceOut.model_validate(race)


def _provisioned(request: Request, session: SessionDep, car: Car, creds: Any) -> CarCredentialsFile:
    base_url = getattr(request.app.state.settings, "public_base_url", None)
    return cars_crud.credentials_file(session, car, creds, public_base_url=base_url)


@router.post(
    "/leagues/{league_id}/cars",
    response_model=CarCredentialsFile,
    status_code=CREATED,
    summary="Provision a car: its credentials file (MQTT password, HMAC secret) is returned this once",
)
def provision_car(
    request: Request, league_id: LeagueId, body: CarIn, session: SessionDep, actor: AdminDep
) -> CarCredentialsFile:
    car, creds = cars_crud.provision_car(
        session,
        league_id,
        body.car_id,
        name=body.name,
        number=body.number,
        racer_id=body.racer_id,
        race_id=body.race_id,
        actor=actor,
    )
    session.commit()
    return _provisioned(request, session, car, creds)


@router.post(
    "/cars/{car_id}/rotate-credentials",
    response_model=CarCredentialsFile,
    summary="New MQTT password and HMAC secret (the old ones stop working): the credentials file, once",
)
def rotate_credentials(
    request: Request, car_id: CarIdPath, session: SessionDep, actor: AdminDep
) -> CarCredentialsFile:
    creds = cars_crud.rotate_credentials(session, car_id, actor=actor)
    session.commit()
    return _provisioned(request, session, cars_crud.require_car(session, car_id), creds)


@router.get("/cars", response_model=list[CarOut], summary="Cars (never their secrets)")
def list_cars(
    session: SessionDep,
    _actor: AdminDep,
    league_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    race_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[CarOut]:
    return [
        CarOut.model_validate(c) for c in cars_crud.list_cars(session, league_id=league_id, race_id=race_id)
    ]


@router.patch(
    "/cars/{car_id}", response_model=CarOut, summary="Assign a car to a race and/or racer (audited)"
)
def assign_car(car_id: CarIdPath, body: CarAssign, session: SessionDep, actor: AdminDep) -> CarOut:
    changes = body.model_dump(exclude_unset=True)
    car = cars_crud.assign_car(session, car_id, actor=actor, **changes)
    session.commit()
    return CarOut.model_validate(car)


def _timer_provisioned(session: SessionDep, timer: Timer, creds: Any) -> TimerProvisioned:
    league = leagues_crud.get_league(session, timer.league_id)
    return TimerProvisioned(
        **TimerOut.model_validate(timer).model_dump(),
        mqtt_password=creds.mqtt_password,
        hmac_secret=creds.hmac_secret,
        league=league.slug,
        crossing_topic=timer_topic(league.slug, timer.timer_id),
    )


@router.post(
    "/leagues/{league_id}/timers",
    response_model=TimerProvisioned,
    status_code=CREATED,
    summary="Provision a trackside timer: its MQTT password and HMAC secret are returned this once",
)
def provision_timer(
    league_id: LeagueId, body: TimerIn, session: SessionDep, actor: AdminDep
) -> TimerProvisioned:
    timer, creds = timers_crud.provision_timer(
        session, league_id, body.timer_id, name=body.name, race_id=body.race_id, actor=actor
    )
    session.commit()
    return _timer_provisioned(session, timer, creds)


@router.post(
    "/timers/{timer_id}/rotate-credentials",
    response_model=TimerProvisioned,
    summary="New MQTT password and HMAC secret for a timer (the old ones stop working), returned once",
)
def rotate_timer_credentials(timer_id: TimerIdPath, session: SessionDep, actor: AdminDep) -> TimerProvisioned:
    creds = timers_crud.rotate_timer_credentials(session, timer_id, actor=actor)
    session.commit()
    return _timer_provisioned(session, timers_crud.require_timer(session, timer_id), creds)


@router.get("/timers", response_model=list[TimerOut], summary="Trackside timers (never their secrets)")
def list_timers(
    session: SessionDep,
    _actor: AdminDep,
    league_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    race_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[TimerOut]:
    found = timers_crud.list_timers(session, league_id=league_id, race_id=race_id)
    return [TimerOut.model_validate(t) for t in found]


@router.patch("/timers/{timer_id}", response_model=TimerOut, summary="Assign a timer to a race (audited)")
def assign_timer(timer_id: TimerIdPath, body: TimerAssign, session: SessionDep, actor: AdminDep) -> TimerOut:
    timer = timers_crud.assign_timer(session, timer_id, actor=actor, race_id=body.race_id)
    session.commit()
    return TimerOut.model_validate(timer)


@router.get("/crossings", response_model=list[CrossingOut], summary="Stored timer crossings, newest first")
def list_crossings(
    session: SessionDep,
    _actor: AdminDep,
    timer_id: Annotated[str | None, Query(pattern=SLUG_PATTERN)] = None,
    race_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[CrossingOut]:
    found = crossings_crud.list_crossings(session, timer_id=timer_id, race_id=race_id, limit=limit)
    return [CrossingOut.model_validate(c) for c in found]


@router.post(
    "/races/{race_id}/laps", response_model=LapOut, status_code=CREATED, summary="Enter a lap by hand"
)
def manual_lap(
    race_id: RaceId, body: ManualLapIn, request: Request, session: SessionDep, actor: AdminDep
) -> LapOut:
    lap = laps_crud.add_manual_lap(
        session,
        race_id,
        body.car_id,
        body.lap_time_ms,
        actor=actor,
        reason=body.reason,
        offtrack_count=body.offtrack_count,
        reset_count=body.reset_count,
        lap_number=body.lap_number,
    )
    session.commit()
    _publish(request, race_id, {"type": "lap", "car_id": lap.car_id, "lap_id": lap.id, "source": "manual"})
    return LapOut.model_validate(lap)


def _lap_edit(request: Request, session: SessionDep, lap: Lap, action: str) -> LapOut:
    session.commit()
    _publish(
        request,
        lap.race_id,
        {"type": "lap_updated", "lap_id": lap.id, "car_id": lap.car_id, "action": action},
    )
    return LapOut.model_validate(lap)


@router.post("/laps/{lap_id}/invalidate", response_model=LapOut, summary="Invalidate a lap (reason audited)")
def invalidate_lap(
    lap_id: LapId, body: LapEdit, request: Request, session: SessionDep, actor: AdminDep
) -> LapOut:
    lap = laps_crud.invalidate_lap(session, lap_id, reason=body.reason, actor=actor)
    return _lap_edit(request, session, lap, "invalidate")


@router.post("/laps/{lap_id}/restore", response_model=LapOut, summary="Restore an invalidated/deleted lap")
def restore_lap(
    lap_id: LapId, body: LapEdit, request: Request, session: SessionDep, actor: AdminDep
) -> LapOut:
    lap = laps_crud.restore_lap(session, lap_id, reason=body.reason, actor=actor)
    return _lap_edit(request, session, lap, "restore")


@router.post("/laps/{lap_id}/delete", response_model=LapOut, summary="Soft-delete a bogus lap (audited)")
def delete_lap(
    lap_id: LapId, body: LapEdit, request: Request, session: SessionDep, actor: AdminDep
) -> LapOut:
    lap = laps_crud.delete_lap(session, lap_id, reason=body.reason, actor=actor)
    return _lap_edit(request, session, lap, "delete")


@router.post("/laps/{lap_id}/penalty", response_model=LapOut, summary="Set a marshal's time penalty (ms)")
def penalise_lap(
    lap_id: LapId, body: LapPenalty, request: Request, session: SessionDep, actor: AdminDep
) -> LapOut:
    lap = laps_crud.set_penalty(session, lap_id, penalty_ms=body.penalty_ms, reason=body.reason, actor=actor)
    return _lap_edit(request, session, lap, "penalty")


@router.get("/audit", response_model=list[AuditEntryOut], summary="The audit log, newest first")
def audit_log(
    session: SessionDep,
    _actor: AdminDep,
    entity: Annotated[str | None, Query(pattern="^(lap|car|race|timer)$")] = None,
    entity_id: Annotated[str | None, Query(pattern=SLUG_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[AuditEntryOut]:
    entries = audit_crud.list_entries(session, entity=entity, entity_id=entity_id, limit=limit)
    return [AuditEntryOut.model_validate(e) for e in entries]


@router.get(
    "/races/{race_id}/audit",
    response_model=list[AuditEntryOut],
    summary="A race's audit log, newest first: changes to the race and edits of its laps (who, what, why)",
)
def race_audit_log(
    race_id: RaceId,
    session: SessionDep,
    _actor: AdminDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[AuditEntryOut]:
    races_crud.get_race(session, race_id)
    entries = audit_crud.race_entries(session, race_id, limit=limit)
    return [AuditEntryOut.model_validate(e) for e in entries]


@router.get(
    "/dead-letters", response_model=list[DeadLetterOut], summary="Refused broker messages, newest first"
)
def dead_letters(
    session: SessionDep, _actor: AdminDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[DeadLetterOut]:
    return [DeadLetterOut.model_validate(d) for d in dead_letters_crud.list_recent(session, limit)]


class IngestStatsOut(BaseModel):
    """Counters of this process's MQTT ingest since it started (None fields: ingest not running here)."""

    running: bool
    connected: bool | None = None
    received: int = 0
    stored: int = 0
    duplicates: int = Field(
        0, description="laps or timer crossings already stored (redelivered or replayed unchanged)"
    )
    crossings: int = Field(0, description="timer crossings stored")
    presence: int = 0
    acked: int = 0
    db_errors: int = 0
    batches: int = 0
    dead_letters: dict[str, int] = Field(default_factory=dict, description="refusals per reason")
    dead_letters_total: int = 0


@router.get(
    "/ingest", response_model=IngestStatsOut, summary="MQTT ingest counters (dead letters per reason)"
)
def ingest_stats(request: Request, _actor: AdminDep) -> IngestStatsOut:
    ingest = getattr(request.app.state, "ingest", None)
    if ingest is None:
        return IngestStatsOut(running=False)
    return IngestStatsOut(running=True, connected=ingest.connected.is_set(), **ingest.stats.snapshot())
