"""The leaderboard: the one implementation the API, the web page and the exports use.

The race rules are `sim.race` (penalties, per-lap reset limit, the four ranking methods); this module only
groups a race's laps into entries, feeds them to `sim.race.make_lap` / `rank_key`, and orders the entries
with stable tie-breaks:

1. the ranking value (`sim.race.sortable(rank_key(...))`: unranked entries last);
2. who set it first: the time of the lap with which the entry first reached its final value;
3. the racer id (entries without a racer: after racers), then the car id.

Which laps count: soft-deleted laps are ignored entirely; a lap a marshal invalidated stays in the entry as
a driven but invalid lap (so it breaks a run of consecutive laps, and its time runs on the most-laps-in
clock), exactly as a lap over the reset limit does. A lap's time = clock time + marshal penalty + off-track
count x the race's off-track penalty. Laps are ordered by when they finished (sent_at, else received_at).
Entries: one per racer (laps carry the racer their car was assigned to), or per car for laps without one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from league_server.crud.races import get_race, rules_of
from league_server.models import Lap, Race, Racer, Team, utc_now
from league_server.schemas import Leaderboard, LeaderboardEntry
from sim.race import LapRecord, RaceRules, make_lap, rank_key, sortable

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
    """One entry's ranking: key = sim.race.rank_key (None: unranked); records in driving order."""

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
    """sim.race's view of a lap: penalties applied, valid only if within the rules and not invalidated."""
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
    """Group laps into entries (per racer, else per car), rank each with sim.race and sort (tie-breaks above)."""
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


def build_entries(
    results: Sequence[EntryResult], rules: RaceRules, names: dict[int, tuple[str, str | None]]
) -> list[LeaderboardEntry]:
    """LeaderboardEntry rows from ranked results; names: racer id -> (racer name, team name)."""
    leader_value, leader_count = _value_s(results[0].key, rules) if results else (None, None)
    entries = []
    for position, result in enumerate(results, start=1):
        value, count = _value_s(result.key, rules)
        gap_s, gap_laps = None, None
        if value is not None and leader_value is not None:
            if count is None or count == leader_count:
                gap_s = round(value - leader_value, 3)
            else:
                gap_laps = (leader_count or 0) - count
        valid_times = [r.lap_time_s for r in result.records if r.valid]
        racer, team = (
            names.get(result.racer_id, (None, None)) if result.racer_id is not None else (None, None)
        )
        entries.append(
            LeaderboardEntry(
                position=position if result.key is not None else None,
                racer_id=result.racer_id,
                racer=racer,
                team=team,
                car_id=result.car_id,
                ranking_value_s=value,
                counted_laps=count,
                best_lap_s=round(min(valid_times), 3) if valid_times else None,
                gap_s=gap_s,
                gap_laps=gap_laps,
                laps=len(result.records),
                valid_laps=len(valid_times),
                offtrack=sum(r.offtrack for r in result.records),
                resets=sum(r.resets for r in result.records),
                last_lap_s=round(result.records[-1].lap_time_s, 3),
                last_lap_at=result.laps[-1].at,
                ranked_at=result.ranked_at,
            )
        )
    return entries


def race_laps(session: Session, race_id: int) -> list[RankedLap]:
    """The race's laps that count (not soft-deleted), read as plain rows (no ORM objects: the hot path)."""
    rows = session.connection().execute(
        select(
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
    )
    return [
        RankedLap(row[0], row[1], row[2], row[3], row[4] or row[5], row[6], row[7], row[8], row[9])
        for row in rows
    ]


def racer_names(session: Session, racer_ids: set[int]) -> dict[int, tuple[str, str | None]]:
    if not racer_ids:
        return {}
    rows = session.execute(
        select(Racer.id, Racer.name, Team.name)
        .outerjoin(Team, Racer.team_id == Team.id)
        .where(Racer.id.in_(racer_ids))
    )
    return {row[0]: (row[1], row[2]) for row in rows}


def compute_leaderboard(session: Session, race: Race) -> Leaderboard:
    """The leaderboard of `race`, ranked now (no cache)."""
    rules = rules_of(race)
    results = rank_entries(race_laps(session, race.id), rules)
    names = racer_names(session, {r.racer_id for r in results if r.racer_id is not None})
    return Leaderboard(
        race_id=race.id,
        race_name=race.name,
        ranking=race.ranking,
        ranked_laps=race.ranked_laps,
        time_window_s=race.time_window_s,
        offtrack_penalty_s=race.offtrack_penalty_s,
        updated_at=utc_now(),
        entries=build_entries(results, rules, names),
    )


def leaderboard(session: Session, race_id: int) -> Leaderboard:
    """The race's leaderboard, ranked now (NotFoundError for an unknown race) — the one used by API, web and
    exports (the public JSON route serves it through league_server.leaderboard_cache)."""
    return compute_leaderboard(session, get_race(session, race_id))
