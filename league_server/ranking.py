"""The leaderboard: the one implementation the API, the web page and the exports use.

The race rules are `contracts.race` (penalties, per-lap reset limit, the four ranking methods); this module only
groups a race's laps into entries, feeds them to `contracts.race.make_lap` / `rank_key`, and orders the entries
with stable tie-breaks:

1. the ranking value (`contracts.race.sortable(rank_key(...))`: unranked entries last);
2. who set it first: the time of the lap with which the entry first reached its final value;
3. the racer id (entries without a racer: after racers), then the car id.

Which laps count: soft-deleted laps are ignored entirely; a lap a marshal invalidated stays in the entry as
a driven but invalid lap (so it breaks a run of consecutive laps, and its time runs on the most-laps-in
clock), exactly as a lap over the reset limit does. A lap's time = clock time + marshal penalty + off-track
count x the race's off-track penalty. Laps are ordered by when they finished (sent_at, else received_at).
Entries: one per racer (laps carry the racer their car was assigned to), or per car for laps without one.
In a virtual race an entry also carries its counted model's robustness badge (`league_server.robustness`,
read from the submission's stored card; None when the card has none).

Rows come in three kinds (`LeaderboardEntry.status`): "ranked" (a ranking value, a position), "unranked"
(laps, but none that qualify yet), and "dnf": a car assigned to the race (Car.race_id) whose entry (its racer,
else the car) has no lap at all, so that a car that never completes a lap is still on the board. DNF rows come
last, by car number (cars without one after), then car id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, case, cast, func, literal, select
from sqlalchemy.orm import Session

from contracts.race import LapRecord, RaceRules, make_lap, rank_key, sortable
from league_server.crud.races import get_race, rules_of
from league_server.crud.virtual import counted_submissions, run_id
from league_server.models import Car, Lap, League, Race, Racer, Submission, Team, utc_now
from league_server.robustness import badge_of, robustness_of
from league_server.schemas import Leaderboard, LeaderboardEntry, RobustnessBadge

_NO_RACER = 2**62  # sorts entries without a racer after every racer id


@dataclass(frozen=True)
class RankedLap:
    """The part of a stored lap the ranking needs. at: when the lap finished (UTC)."""

    lap_id: int
    car_id: str
    racer_id: int | None
    lap_time_ms: int
    at: datetime
    penalty_ms: int = 0
    offtrack: int = 0
    resets: int = 0
    valid: bool = True

    @classmethod
    def from_lap(cls, lap: Lap) -> RankedLap:
        """The ranking's view of a stored lap (finish time: sent_at, else received_at)."""
        return cls(
            lap_id=lap.id,
            car_id=lap.car_id,
            racer_id=lap.racer_id,
            lap_time_ms=lap.lap_time_ms,
            at=lap.sent_at or lap.received_at,
            penalty_ms=lap.penalty_ms,
            offtrack=lap.offtrack_count,
            resets=lap.reset_count,
            valid=lap.valid,
        )


@dataclass(frozen=True)
class EntryResult:
    """One entry's ranking: key = contracts.race.rank_key (None: unranked); records in driving order."""

    racer_id: int | None
    car_id: str
    key: tuple[float, ...] | None
    ranked_at: datetime | None
    laps: tuple[RankedLap, ...]
    records: tuple[LapRecord, ...]

    def sort_key(self) -> tuple[object, ...]:
        ranked_at = self.ranked_at.timestamp() if self.ranked_at else float("inf")
        racer = self.racer_id if self.racer_id is not None else _NO_RACER
        return (sortable(self.key), ranked_at, racer, self.car_id)


def lap_record(lap: RankedLap, rules: RaceRules) -> LapRecord:
    """contracts.race's view of a lap: penalties applied, valid only if within the rules and not invalidated."""
    record = make_lap((lap.lap_time_ms + lap.penalty_ms) / 1000.0, lap.offtrack, lap.resets, rules)
    return record if lap.valid else dataclasses.replace(record, valid=False)


def _first_reached(
    records: Sequence[LapRecord], rules: RaceRules, final: tuple[bool, tuple[float, ...]]
) -> int:
    """The smallest k such that the first k laps already rank as well as all of them. The key of a prefix
    only improves (or stays) as laps are added, for every method, so a binary search over rank_key finds it
    without a second copy of the ranking rules."""
    lo, hi = 1, len(records)
    while lo < hi:
        mid = (lo + hi) // 2
        if sortable(rank_key(list(records[:mid]), rules)) <= final:
            hi = mid
        else:
            lo = mid + 1
    return lo


def rank_entries(laps: Sequence[RankedLap], rules: RaceRules) -> list[EntryResult]:
    """Group laps into entries (per racer, else per car), rank each with contracts.race and sort (tie-breaks above)."""
    groups: dict[tuple[str, object], list[RankedLap]] = {}
    for lap in laps:
        key = ("racer", lap.racer_id) if lap.racer_id is not None else ("car", lap.car_id)
        groups.setdefault(key, []).append(lap)
    results = []
    for group in groups.values():
        ordered = tuple(sorted(group, key=lambda lap: (lap.at, lap.lap_id)))
        records = tuple(lap_record(lap, rules) for lap in ordered)
        key = rank_key(list(records), rules)
        ranked_at = None
        if key is not None:
            ranked_at = ordered[_first_reached(records, rules, sortable(key)) - 1].at
        results.append(
            EntryResult(
                racer_id=ordered[0].racer_id,
                car_id=ordered[-1].car_id,
                key=key,
                ranked_at=ranked_at,
                laps=ordered,
                records=records,
            )
        )
    return sorted(results, key=EntryResult.sort_key)


def _value_s(key: tuple[float, ...] | None, rules: RaceRules) -> tuple[float | None, int | None]:
    """(ranking value in s, laps counted) of a rank key."""
    if key is None:
        return None, None
    if rules.ranking == "most_laps_in":
        return round(key[1], 3), int(-key[0])
    return round(key[0], 3), None


def _gaps(
    value: float | None, count: int | None, other_value: float | None, other_count: int | None
) -> tuple[float | None, int | None]:
    """(gap in s, gap in laps) from the entry ranked (value, count) back to the one ranked (other_value,
    other_count) in front of it: seconds when both counted the same laps (or the method counts none), else
    the lap difference (most_laps_in). (None, None) when either has no ranking value."""
    if value is None or other_value is None:
        return None, None
    if count is None or count == other_count:
        return round(value - other_value, 3), None
    return None, (other_count or 0) - count


def build_entries(
    results: Sequence[EntryResult],
    rules: RaceRules,
    names: dict[int, tuple[str, str | None]],
    car_numbers: dict[str, int | None] | None = None,
    robustness: dict[int, RobustnessBadge | None] | None = None,
) -> list[LeaderboardEntry]:
    """LeaderboardEntry rows from ranked results; names: racer id -> (racer name, team name); car_numbers:
    car id -> racing number (None or missing: no number); robustness: racer id -> their counted model's badge
    (virtual races). gap_s / gap_laps are to the leader, gap_ahead_s / gap_ahead_laps to the entry one
    position up."""
    numbers, badges = car_numbers or {}, robustness or {}
    leader_value, leader_count = _value_s(results[0].key, rules) if results else (None, None)
    entries = []
    ahead_value, ahead_count = None, None
    for position, result in enumerate(results, start=1):
        value, count = _value_s(result.key, rules)
        gap_s, gap_laps = _gaps(value, count, leader_value, leader_count)
        gap_ahead_s, gap_ahead_laps = (
            (None, None) if position == 1 else _gaps(value, count, ahead_value, ahead_count)
        )
        ahead_value, ahead_count = value, count
        valid_times = [r.lap_time_s for r in result.records if r.valid]
        racer, team = (
            names.get(result.racer_id, (None, None)) if result.racer_id is not None else (None, None)
        )
        entries.append(
            LeaderboardEntry(
                position=position if result.key is not None else None,
                status="ranked" if result.key is not None else "unranked",
                racer_id=result.racer_id,
                racer=racer,
                team=team,
                car_id=result.car_id,
                car_number=numbers.get(result.car_id),
                ranking_value_s=value,
                counted_laps=count,
                best_lap_s=round(min(valid_times), 3) if valid_times else None,
                gap_s=gap_s,
                gap_laps=gap_laps,
                gap_ahead_s=gap_ahead_s,
                gap_ahead_laps=gap_ahead_laps,
                laps=len(result.records),
                valid_laps=len(valid_times),
                offtrack=sum(r.offtrack for r in result.records),
                resets=sum(r.resets for r in result.records),
                last_lap_s=round(result.records[-1].lap_time_s, 3),
                last_lap_at=result.laps[-1].at,
                ranked_at=result.ranked_at,
                robustness=badges.get(result.racer_id) if result.racer_id is not None else None,
            )
        )
    return entries


@dataclass(frozen=True)
class RaceCar:
    """A car assigned to the race (Car.race_id): what a DNF row needs."""

    car_id: str
    number: int | None
    racer_id: int | None


def dnf_entries(
    cars: Sequence[RaceCar],
    results: Sequence[EntryResult],
    names: dict[int, tuple[str, str | None]],
) -> list[LeaderboardEntry]:
    """One "dnf" row per entry (racer, else car) of the race's cars that has no lap in `results`, ordered by
    car number (cars without one last), then car id. A racer with several lapless cars gets one row, shown
    with the first of them in that order. A car that drove a lap of the race is never DNF, whichever entry
    its laps count for (laps keep the racer the car had when they were driven)."""
    seen = {("racer", r.racer_id) if r.racer_id is not None else ("car", r.car_id) for r in results}
    drove = {lap.car_id for result in results for lap in result.laps}
    rows = []
    for car in sorted(cars, key=lambda c: (c.number is None, c.number or 0, c.car_id)):
        key = ("racer", car.racer_id) if car.racer_id is not None else ("car", car.car_id)
        if key in seen or car.car_id in drove:
            continue
        seen.add(key)
        racer, team = names.get(car.racer_id, (None, None)) if car.racer_id is not None else (None, None)
        rows.append(
            LeaderboardEntry(
                position=None,
                status="dnf",
                racer_id=car.racer_id,
                racer=racer,
                team=team,
                car_id=car.car_id,
                car_number=car.number,
                ranking_value_s=None,
                best_lap_s=None,
                gap_s=None,
                laps=0,
                valid_laps=0,
                offtrack=0,
                resets=0,
                last_lap_s=None,
                last_lap_at=None,
                ranked_at=None,
            )
        )
    return rows


def race_laps(session: Session, race_id: int, runs: set[str] | None = None) -> list[RankedLap]:
    """The race's laps that count (not soft-deleted; of the `runs` given, if any), read as plain rows (no ORM
    objects: the hot path)."""
    query = select(
        Lap.id,
        Lap.car_id,
        Lap.racer_id,
        Lap.lap_time_ms,
        Lap.sent_at,
        Lap.received_at,
        Lap.penalty_ms,
        Lap.offtrack_count,
        Lap.reset_count,
        Lap.valid,
    ).where(Lap.race_id == race_id, Lap.deleted_at.is_(None))
    if runs is not None:
        query = query.where(Lap.run_id.in_(sorted(runs)))
    rows = session.connection().execute(query)
    return [
        RankedLap(row[0], row[1], row[2], row[3], row[4] or row[5], row[6], row[7], row[8], row[9])
        for row in rows
    ]


def shown_racer_name() -> Any:
    """SQL for the name public pages show: in a league with `public_aliases`, the racer's alias (or "racer
    <id>"), else the name. Needs Racer joined with League."""
    alias = func.coalesce(Racer.alias, literal("racer ").concat(cast(Racer.id, String)))
    return case((League.public_aliases.is_(True), alias), else_=Racer.name)


def racer_names(session: Session, racer_ids: set[int]) -> dict[int, tuple[str, str | None]]:
    """racer id -> (the name public pages show, team name)."""
    if not racer_ids:
        return {}
    rows = session.execute(
        select(Racer.id, shown_racer_name(), Team.name)
        .join(League, Racer.league_id == League.id)
        .outerjoin(Team, Racer.team_id == Team.id)
        .where(Racer.id.in_(racer_ids))
    )
    return {row[0]: (row[1], row[2]) for row in rows}


def race_cars(session: Session, race_id: int) -> list[RaceCar]:
    """The cars assigned to the race (Car.race_id)."""
    rows = session.execute(select(Car.car_id, Car.number, Car.racer_id).where(Car.race_id == race_id))
    return [RaceCar(row[0], row[1], row[2]) for row in rows]


def car_numbers(session: Session, car_ids: set[str]) -> dict[str, int | None]:
    """car id -> racing number of the given cars (cars that no longer exist are left out)."""
    if not car_ids:
        return {}
    rows = session.execute(select(Car.car_id, Car.number).where(Car.car_id.in_(car_ids)))
    return {row[0]: row[1] for row in rows}


def compute_leaderboard(session: Session, race: Race) -> Leaderboard:
    """The leaderboard of `race`, ranked now (no cache): ranked and unranked entries, then DNF rows."""
    rules = rules_of(race)
    # a virtual race ranks one evaluation per racer (their best or last), never laps pooled across models
    counted = counted_submissions(session, race, rules) if race.kind == "virtual" else None
    runs = {run_id(sub.id) for sub in counted.values()} if counted is not None else None
    results = rank_entries(race_laps(session, race.id, runs), rules)
    cars = race_cars(session, race.id)
    racer_ids = {r.racer_id for r in results if r.racer_id is not None}
    racer_ids |= {c.racer_id for c in cars if c.racer_id is not None}
    names = racer_names(session, racer_ids)
    numbers = car_numbers(session, {r.car_id for r in results})
    return Leaderboard(
        race_id=race.id,
        race_name=race.name,
        ranking=race.ranking,
        ranked_laps=race.ranked_laps,
        time_window_s=race.time_window_s,
        offtrack_penalty_s=race.offtrack_penalty_s,
        window_start=race.window_start,
        window_end=race.window_end,
        updated_at=utc_now(),
        entries=[
            *build_entries(results, rules, names, numbers, _badges(counted or {})),
            *dnf_entries(cars, results, names),
        ],
    )


def _badges(counted: dict[int, Submission]) -> dict[int, RobustnessBadge | None]:
    """racer id -> the robustness badge of their counted submission's card (None: the card has none)."""
    return {
        racer_id: badge_of(robustness_of(sub.card, where=f"submission {sub.id}'s model.json"))
        for racer_id, sub in counted.items()
    }


def leaderboard(session: Session, race_id: int) -> Leaderboard:
    """The race's leaderboard, ranked now (NotFoundError for an unknown race) — the one used by API, web and
    exports (the public JSON route serves it through league_server.leaderboard_cache)."""
    return compute_leaderboard(session, get_race(session, race_id))
