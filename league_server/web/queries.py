"""Read-only queries the pages need beyond the leaderboard (which is `league_server.ranking`'s alone): the races
list, one page of the lap list, the laps that changed since a data version (the live pages' pushes), and which
cars are on track."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from league_server import ranking
from league_server.crud import races as races_crud
from league_server.leaderboard_cache import Version, data_version
from league_server.models import AuditLog, Car, CarPresence, Event, Lap, League, Race, Racer
from league_server.web import formatting

# Rows per page of the lap list: a page of 100 is ~50 kB of HTML however long the race has run.
LAPS_PAGE_SIZE = 100
# Laps in the big screen's ticker.
TICKER_LAPS = 6
# Presence states that count as "on track now" (from the cars' retained status topic).
ON_TRACK_STATES = ("driving", "online")
# Audit entries read per change check; more than this since a stream's version makes it reload.
MAX_AUDIT_ROWS = 1000


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

    lap_id: what marshals name a lap by (`pitlane league admin invalidate-lap <lap_id>`); penalty_s:
    off-track penalties (race rule × count) plus a marshal's extra penalty; counted_s: what the ranking
    counts (clock time + penalties); valid/invalid_reason: as the ranking judges the lap
    (`league_server.ranking.lap_record`: marshal invalidation or the per-lap reset limit); deleted: soft-deleted
    by a marshal (only ever sent to open pages, which then drop the row).
    """

    lap_id: int
    received_at: datetime
    racer: str
    team: str | None
    car_id: str
    car_number: int | None
    lap_number: int
    raw_time_s: float
    offtrack_count: int
    reset_count: int
    penalty_s: float
    counted_s: float
    source: str
    valid: bool
    invalid_reason: str | None
    deleted: bool = False


@dataclass(frozen=True)
class LapPage:
    """One page of a race's lap list, newest first. total: laps in the race (soft-deleted ones not counted);
    older_before / newer_after: the lap ids to page on with (None: no older / no newer laps)."""

    rows: list[LapRow]
    total: int
    older_before: int | None
    newer_after: int | None

    @property
    def newest(self) -> bool:
        """True for the page holding the newest lap (the one that shows new laps as they arrive)."""
        return self.newer_after is None


@dataclass(frozen=True)
class LapChanges:
    """What changed for one race between two data versions (`leaderboard_cache.data_version`).

    laps: new laps (newest first) and laps a marshal edited (invalidated, restored, penalised, deleted); total:
    laps in the race now (only counted when a lap changed, else 0); race_edited: the race's rules changed (every lap's penalties may have changed);
    board_changed: the leaderboard may differ (a lap changed, or a race or car was edited); overflow: more
    changed than a page shows (the page should reload instead).
    """

    version: Version
    laps: list[LapRow]
    total: int
    race_edited: bool
    board_changed: bool
    overflow: bool


@dataclass(frozen=True)
class TrackCar:
    """A car of the race that is on track now. state: its presence state (driving | online)."""

    car_id: str
    number: int | None
    racer: str | None
    state: str


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


def lap_rows(session: Session, race: Race, laps: Sequence[Lap]) -> list[LapRow]:
    """LapRows of `laps`, in the same order."""
    rules = races_crud.rules_of(race)
    racers = ranking.racer_names(session, {lap.racer_id for lap in laps if lap.racer_id is not None})
    car_numbers = ranking.car_numbers(session, {lap.car_id for lap in laps})
    rows = []
    for lap in laps:
        record = ranking.lap_record(ranking.RankedLap.from_lap(lap), rules)
        raw_s = lap.lap_time_ms / 1000.0
        racer, team = racers.get(lap.racer_id, (lap.car_id, None)) if lap.racer_id else (lap.car_id, None)
        rows.append(
            LapRow(
                lap_id=lap.id,
                received_at=lap.received_at,
                racer=racer,
                team=team,
                car_id=lap.car_id,
                car_number=car_numbers.get(lap.car_id),
                lap_number=lap.lap_number,
                raw_time_s=raw_s,
                offtrack_count=lap.offtrack_count,
                reset_count=lap.reset_count,
                penalty_s=record.lap_time_s - raw_s,
                counted_s=record.lap_time_s,
                source=lap.source,
                valid=record.valid,
                invalid_reason=None if record.valid else _invalid_reason(lap, rules.max_resets),
                deleted=lap.deleted_at is not None,
            )
        )
    return rows


def _counted(race_id: int) -> ColumnElement[bool]:
    """The race's laps the lap list shows (soft-deleted laps are bogus entries: left out)."""
    return (Lap.race_id == race_id) & Lap.deleted_at.is_(None)


def lap_count(session: Session, race_id: int) -> int:
    """Laps in the race (soft-deleted ones not counted)."""
    return int(session.scalar(select(func.count(Lap.id)).where(_counted(race_id))) or 0)


def _any_lap(session: Session, race_id: int, condition: ColumnElement[bool]) -> bool:
    return session.scalar(select(Lap.id).where(_counted(race_id), condition).limit(1)) is not None


def lap_page(
    session: Session,
    race: Race,
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = LAPS_PAGE_SIZE,
) -> LapPage:
    """One page of the race's laps, newest first: the `size` laps before lap id `before` (older), or after
    lap id `after` (newer), else the newest. Laps are listed in the order they were stored (lap id)."""
    query = select(Lap).where(_counted(race.id))
    laps: list[Lap] = []
    if after is not None:
        laps = list(session.scalars(query.where(Lap.id > after).order_by(Lap.id).limit(size + 1)))
        if len(laps) <= size:  # these are the newest laps: show the newest page, which takes live laps
            after = None
        laps = laps[:size][::-1]
    if after is None:
        if before is not None:
            query = query.where(Lap.id < before)
        laps = list(session.scalars(query.order_by(Lap.id.desc()).limit(size + 1)))
        older = len(laps) > size
        laps = laps[:size]
    else:
        older = bool(laps) and _any_lap(session, race.id, Lap.id < laps[-1].id)
    newer = (
        bool(laps)
        and (before is not None or after is not None)
        and _any_lap(session, race.id, Lap.id > laps[0].id)
    )
    rows = lap_rows(session, race, laps)
    return LapPage(
        rows=rows,
        total=lap_count(session, race.id),
        older_before=rows[-1].lap_id if older else None,
        newer_after=rows[0].lap_id if newer else None,
    )


def recent_laps(session: Session, race: Race, count: int = TICKER_LAPS) -> list[LapRow]:
    """The race's `count` newest laps, newest first (the big screen's ticker)."""
    laps = session.scalars(select(Lap).where(_counted(race.id)).order_by(Lap.id.desc()).limit(count))
    return lap_rows(session, race, list(laps))


def _edited_since(session: Session, audit_id: int) -> tuple[list[tuple[str, str]], bool]:
    """((entity, entity id) of the audit entries after `audit_id`, oldest first; True if there were more
    than MAX_AUDIT_ROWS of them)."""
    rows = session.execute(
        select(AuditLog.entity, AuditLog.entity_id)
        .where(AuditLog.id > audit_id)
        .order_by(AuditLog.id)
        .limit(MAX_AUDIT_ROWS + 1)
    ).all()
    return [(row[0], row[1]) for row in rows[:MAX_AUDIT_ROWS]], len(rows) > MAX_AUDIT_ROWS


def _lap_ids(edits: Iterable[tuple[str, str]]) -> set[int]:
    return {int(entity_id) for entity, entity_id in edits if entity == "lap" and entity_id.isdigit()}


def lap_changes(session: Session, race: Race, since: Version, *, limit: int = LAPS_PAGE_SIZE) -> LapChanges:
    """The race's laps stored or edited after data version `since` (see LapChanges).

    New laps: lap ids above since[0]. Edits: the audit log after since[1] (every marshal edit, whether
    made through the admin API or the CLI in another process, writes one), so one mechanism serves both.
    The version is read first: what is found may go a little past it, and a later call repeats those laps
    (pages update rows by lap id, so a repeat is harmless).
    """
    version = data_version(session)
    if version[0] <= since[0] and version[1] <= since[1]:
        return LapChanges(version, [], 0, False, False, False)
    new_laps = list(
        session.scalars(
            select(Lap).where(_counted(race.id), Lap.id > since[0]).order_by(Lap.id.desc()).limit(limit + 1)
        )
    )
    edits, too_many_edits = _edited_since(session, since[1])
    edited_ids = _lap_ids(edits) - {lap.id for lap in new_laps}
    edited = []
    if edited_ids:
        edited = list(
            session.scalars(
                select(Lap).where(Lap.race_id == race.id, Lap.id.in_(edited_ids)).order_by(Lap.id)
            )
        )
    rows = lap_rows(session, race, [*new_laps[:limit], *edited])
    other_edits = any(entity != "lap" for entity, _ in edits)
    return LapChanges(
        version=version,
        laps=rows,
        total=lap_count(session, race.id) if rows else 0,
        race_edited=("race", str(race.id)) in edits,
        board_changed=bool(rows) or other_edits or too_many_edits,
        overflow=len(new_laps) > limit or too_many_edits,
    )


def on_track(session: Session, race_ids: Iterable[int]) -> dict[int, list[TrackCar]]:
    """race id -> the race's cars whose presence state is driving or online, by car number (cars without a
    number last), then car id. Races without such cars map to an empty list."""
    wanted = sorted(set(race_ids))
    found: dict[int, list[TrackCar]] = {race_id: [] for race_id in wanted}
    if not wanted:
        return found
    rows = session.execute(
        select(Car.race_id, Car.car_id, Car.number, ranking.shown_racer_name(), CarPresence.state)
        .join(CarPresence, CarPresence.car_id == Car.car_id)
        .outerjoin(Racer, Car.racer_id == Racer.id)
        .outerjoin(League, Racer.league_id == League.id)
        .where(Car.race_id.in_(wanted), CarPresence.state.in_(ON_TRACK_STATES))
        .order_by(Car.number.is_(None), Car.number, Car.car_id)
    )
    for race_id, car_id, number, racer, state in rows:
        found[race_id].append(TrackCar(car_id=car_id, number=number, racer=racer, state=state))
    return found


def track_json(cars: Sequence[TrackCar]) -> list[dict[str, object]]:
    """The on-track cars as JSON-able dicts (the `track` event the live pages receive)."""
    return [asdict(car) for car in cars]
