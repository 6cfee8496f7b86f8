"""Read-only queries the pages need beyond the leaderboard (which is `league_server.ranking`'s alone)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from league_server import ranking
from league_server.crud import laps as laps_crud
from league_server.crud import races as races_crud
from league_server.models import Event, Lap, Race, Racer
from league_server.web import formatting


@dataclass(frozen=True)
class RaceSummary:
    """One row of the races list."""

    id: int
    name: str
    event: str
    status: str
    ranking_text: str
    laps: int
    last_lap_at: datetime | None


@dataclass(frozen=True)
class LapRow:
    """One lap as the race's lap page shows it. Times in seconds.

    penalty_s: off-track penalties (race rule × count) plus a marshal's extra penalty; counted_s: what the
    ranking counts (clock time + penalties); valid/invalid_reason: as the ranking judges the lap
    (`league_server.ranking.lap_record`: marshal invalidation or the per-lap reset limit).
    """

    lap_id: int
    received_at: datetime
    racer: str
    team: str | None
    car_id: str
    lap_number: int
    raw_time_s: float
    offtrack_count: int
    reset_count: int
    penalty_s: float
    counted_s: float
    source: str
    valid: bool
    invalid_reason: str | None


def race_summaries(session: Session) -> list[RaceSummary]:
    """Every race, newest first, with its lap count (soft-deleted laps not counted)."""
    lap_stats = (
        select(Lap.race_id, func.count(Lap.id).label("laps"), func.max(Lap.received_at).label("last_at"))
        .where(Lap.deleted_at.is_(None))
        .group_by(Lap.race_id)
        .subquery()
    )
    rows = session.execute(
        select(Race, Event.name, lap_stats.c.laps, lap_stats.c.last_at)
        .join(Event, Race.event_id == Event.id)
        .outerjoin(lap_stats, lap_stats.c.race_id == Race.id)
        .order_by(Race.id.desc())
    )
    return [
        RaceSummary(
            id=race.id,
            name=race.name,
            event=event_name,
            status=race.status,
            ranking_text=formatting.ranking_description(race.ranking, race.ranked_laps, race.time_window_s),
            laps=laps or 0,
            last_lap_at=last_at,
        )
        for race, event_name, laps, last_at in rows
    ]


def _invalid_reason(lap: Lap, max_resets: int | None) -> str:
    """Why a lap the ranking does not count was refused: a marshal's reason, or the per-lap reset limit."""
    if not lap.valid:
        return lap.invalid_reason or "invalidated by a marshal"
    if max_resets is not None and lap.reset_count > max_resets:
        return f"{lap.reset_count} resets, over the limit of {max_resets} per lap"
    return "not counted under the race rules"


def race_laps(session: Session, race: Race) -> list[LapRow]:
    """Every lap of the race in the order received (soft-deleted laps left out: they are bogus entries)."""
    rules = races_crud.rules_of(race)
    stored = laps_crud.list_laps(session, race.id)
    racer_ids = {lap.racer_id for lap in stored if lap.racer_id is not None}
    racers = (
        {r.id: r for r in session.scalars(select(Racer).where(Racer.id.in_(racer_ids)))} if racer_ids else {}
    )
    rows = [(lap, racers.get(lap.racer_id)) for lap in stored]
    laps = []
    for lap, racer in rows:
        record = ranking.lap_record(ranking.RankedLap.from_lap(lap), rules)
        raw_s = lap.lap_time_ms / 1000.0
        laps.append(
            LapRow(
                lap_id=lap.id,
                received_at=lap.received_at,
                racer=racer.name if racer is not None else lap.car_id,
                team=racer.team.name if racer is not None and racer.team is not None else None,
                car_id=lap.car_id,
                lap_number=lap.lap_number,
                raw_time_s=raw_s,
                offtrack_count=lap.offtrack_count,
                reset_count=lap.reset_count,
                penalty_s=record.lap_time_s - raw_s,
                counted_s=record.lap_time_s,
                source=lap.source,
                valid=record.valid,
                invalid_reason=None if record.valid else _invalid_reason(lap, rules.max_resets),
            )
        )
    return laps
