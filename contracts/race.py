"""Race rules: one implementation for simulator evaluation, the trainer's evaluation and the league server.

Pure functions over lap records (standard library only), read by `sim.evaluation`, `trainer.evaluate` and
`league_server.ranking`. Times are seconds; a lap's time includes its penalties (DeepRacer counts the off-track penalty
inside the lap time: the console pauses the car for the penalty, so the clock runs on).

Ranking methods (`RaceRules.ranking`), as DeepRacer leagues used them over the years:
- `best_lap`: the fastest valid lap.
- `best_average_of`: the best mean of `ranked_laps` consecutive valid laps (an invalid lap breaks the run).
- `total_time`: the sum of the first `ranked_laps` laps; every one of them must be valid.
- `most_laps_in`: valid laps finished within `time_window_s` of the start (penalties count as time);
  more laps rank first, ties by the time the last counted lap finished.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from contracts.errors import RaceRulesError

RankingMethod = Literal["best_lap", "best_average_of", "total_time", "most_laps_in"]
RANKING_METHODS: tuple[str, ...] = ("best_lap", "best_average_of", "total_time", "most_laps_in")
RESET_SCOPES: tuple[str, ...] = ("lap", "race")


@dataclass(frozen=True)
class RaceRules:
    """The rules of one race.

    format: "time_trial", the one format modelled (no object avoidance or head-to-head).
    laps: laps to drive (3 is usual); for `most_laps_in` the car drives until the window closes instead.
    offtrack_penalty_s: seconds added to a lap per off-track (DeepRacer console 2 s; later leagues 5 s).
    max_resets: resets allowed (None = unlimited), counted per lap (`max_resets_scope="lap"`) or over the
        whole race (`"race"`); the reset beyond the limit ends the race, and that lap is not completed.
    ranking: see the module docstring. ranked_laps: N of `best_average_of` / `total_time`.
    time_window_s: T of `most_laps_in`.
    """

    format: Literal["time_trial"] = "time_trial"
    laps: int = 3
    offtrack_penalty_s: float = 2.0
    max_resets: int | None = None
    max_resets_scope: Literal["lap", "race"] = "race"
    ranking: RankingMethod = "best_lap"
    ranked_laps: int = 3
    time_window_s: float | None = None

    def __post_init__(self) -> None:
        if self.format != "time_trial":
            raise RaceRulesError(f"format: expected 'time_trial', got {self.format!r}")
        if self.laps < 1:
            raise RaceRulesError(f"laps: expected at least 1, got {self.laps}")
        if not (self.offtrack_penalty_s >= 0 and math.isfinite(self.offtrack_penalty_s)):
            raise RaceRulesError(f"offtrack_penalty_s: expected >= 0 s, got {self.offtrack_penalty_s}")
        if self.max_resets is not None and self.max_resets < 0:
            raise RaceRulesError(f"max_resets: expected None (unlimited) or >= 0, got {self.max_resets}")
        if self.max_resets_scope not in RESET_SCOPES:
            raise RaceRulesError(
                f"max_resets_scope: expected one of {RESET_SCOPES}, got {self.max_resets_scope!r}"
            )
        if self.ranking not in RANKING_METHODS:
            raise RaceRulesError(f"ranking: expected one of {RANKING_METHODS}, got {self.ranking!r}")
        if self.ranked_laps < 1:
            raise RaceRulesError(f"ranked_laps: expected at least 1, got {self.ranked_laps}")
        if self.ranking == "most_laps_in" and not (self.time_window_s and self.time_window_s > 0):
            raise RaceRulesError("time_window_s: most_laps_in needs a time window > 0 s")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LapRecord:
    """One lap as driven. Times in seconds.

    lap_time_s: raw_time_s plus the penalties (what is ranked). raw_time_s: time on the clock.
    offtrack: times the car left the track in this lap. resets: times it was put back (off-track, reversed,
    immobilised). completed: the car crossed the finish line. valid: completed within the reset limit.
    progress: % of the lap driven (100 when completed).
    """

    lap_time_s: float
    raw_time_s: float
    offtrack: int = 0
    resets: int = 0
    completed: bool = True
    valid: bool = True
    progress: float = 100.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lap_time_with_penalties(raw_time_s: float, offtrack: int, rules: RaceRules) -> float:
    """Lap time (s) with every off-track's penalty counted inside it."""
    return raw_time_s + offtrack * rules.offtrack_penalty_s


def make_lap(
    raw_time_s: float,
    offtrack: int,
    resets: int,
    rules: RaceRules,
    *,
    completed: bool = True,
    progress: float = 100.0,
) -> LapRecord:
    """A LapRecord with its penalties applied and its validity judged by `rules`."""
    within_limit = not (
        rules.max_resets is not None and rules.max_resets_scope == "lap" and resets > rules.max_resets
    )
    return LapRecord(
        lap_time_s=lap_time_with_penalties(raw_time_s, offtrack, rules),
        raw_time_s=raw_time_s,
        offtrack=offtrack,
        resets=resets,
        completed=completed,
        valid=completed and within_limit,
        progress=100.0 if completed else progress,
    )


def rank_key(laps: list[LapRecord], rules: RaceRules) -> tuple[float, ...] | None:
    """A score to sort entries by, ascending (smaller ranks first), or None when it cannot be ranked.

    best_lap: (best valid lap s,) — None without a valid lap.
    best_average_of: (best mean of `ranked_laps` consecutive valid laps, s) — None without such a run.
    total_time: (sum of the first `ranked_laps` laps, s) — None unless that many laps exist, all valid.
    most_laps_in: (-valid laps finished within the window, finish time of the last of them s) — None when
        no lap finished within the window.
    Sort a field with `sorted(entries, key=lambda e: sortable(rank_key(e.laps, rules)))`.
    """
    n = rules.ranked_laps
    if rules.ranking == "best_lap":
        times = [lap.lap_time_s for lap in laps if lap.valid]
        return (min(times),) if times else None
    if rules.ranking == "best_average_of":
        best = None
        for start in range(len(laps) - n + 1):
            window = laps[start : start + n]
            if all(lap.valid for lap in window):
                mean = sum(lap.lap_time_s for lap in window) / n
                best = mean if best is None else min(best, mean)
        return None if best is None else (best,)
    if rules.ranking == "total_time":
        first = laps[:n]
        if len(first) < n or not all(lap.valid for lap in first):
            return None
        return (sum(lap.lap_time_s for lap in first),)
    # most_laps_in: the clock runs over every lap (valid or not) from the start
    assert rules.time_window_s is not None
    elapsed, count, last_finish = 0.0, 0, 0.0
    for lap in laps:
        elapsed += lap.lap_time_s
        if elapsed > rules.time_window_s + 1e-9:
            break
        if lap.valid:
            count, last_finish = count + 1, elapsed
    return (-float(count), last_finish) if count else None


def sortable(key: tuple[float, ...] | None) -> tuple[bool, tuple[float, ...]]:
    """A sort key that puts unranked entries (None) last."""
    return (key is None, key or ())


def summarise(laps: list[LapRecord], laps_planned: int | None = None) -> dict[str, Any]:
    """The summary every evaluation reports (JSON-ready).

    laps: [{lap_time_s, raw_time_s, offtrack, resets, completed, valid, progress}] in driving order.
    completed_laps: valid laps. best_lap_s, mean_lap_s: over valid laps (None without one), s.
    completion_rate: completed_laps / laps_planned (default: the laps in the list), 0..1.
    offtrack, resets: totals. total_time_s: sum of all lap times (penalties included).
    """
    valid = [lap.lap_time_s for lap in laps if lap.valid]
    planned = laps_planned if laps_planned is not None else len(laps)
    return {
        "laps": [lap.to_dict() for lap in laps],
        "completed_laps": len(valid),
        "best_lap_s": min(valid) if valid else None,
        "mean_lap_s": sum(valid) / len(valid) if valid else None,
        "completion_rate": len(valid) / planned if planned else 0.0,
        "offtrack": sum(lap.offtrack for lap in laps),
        "resets": sum(lap.resets for lap in laps),
        "total_time_s": sum(lap.lap_time_s for lap in laps),
    }
