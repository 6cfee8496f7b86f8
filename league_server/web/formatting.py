"""How the pages label ranking methods and print values (Jinja2 filters and helpers). static/leaderboard.js
mirrors `seconds`, `gap`, `gap_ahead`, `position`, `ranking_value`, `robustness_label` and `subline` for
live updates, and static/bigscreen.js mirrors `race_clock`; lap rows are formatted here only (`lap_cells`),
also for the rows pushed to open pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Column headers / descriptions per contracts.race ranking method; {n} = ranked_laps, {t} = time_window_s.
_RANKING_LABELS = {
    "best_lap": ("Best lap (s)", "best lap"),
    "best_average_of": ("Best avg of {n} (s)", "best average of {n} consecutive valid laps"),
    "total_time": ("Total of {n} laps (s)", "total time of the first {n} laps"),
    "most_laps_in": ("Laps in {t:g} s", "most valid laps in {t:g} s"),
}


def ranking_header(method: str, ranked_laps: int, time_window_s: float | None) -> str:
    """The leaderboard's ranking-value column header, with its unit."""
    header, _ = _RANKING_LABELS.get(method, (f"{method} (s)", method))
    return header.format(n=ranked_laps, t=time_window_s or 0.0)


def ranking_description(method: str, ranked_laps: int, time_window_s: float | None) -> str:
    """One phrase saying how the race is ranked, e.g. 'best average of 3 consecutive valid laps'."""
    _, text = _RANKING_LABELS.get(method, (method, method))
    return text.format(n=ranked_laps, t=time_window_s or 0.0)


def seconds(value: float | None) -> str:
    """12.3456 -> '12.346'; None -> '—' (the unit is in the column header)."""
    return "—" if value is None else f"{value:.3f}"


def _behind(gap_s: float | None, gap_laps: int | None) -> str:
    if gap_laps:
        return f"+{gap_laps} lap{'' if gap_laps == 1 else 's'}"
    return "—" if gap_s is None else f"+{gap_s:.3f}"


def gap(entry: Any) -> str:
    """Gap to the leader: '—' for the leader or an unranked entry, '+2 laps' when a lap count behind
    (most_laps_in), '+1.234' (s) otherwise. ``entry``: a schemas.LeaderboardEntry."""
    if entry.position is None or entry.position == 1:
        return "—"
    return _behind(entry.gap_s, entry.gap_laps)


def gap_ahead(entry: Any) -> str:
    """Gap to the entry one position up, as `gap` prints the gap to the leader."""
    if entry.position is None or entry.position == 1:
        return "—"
    return _behind(entry.gap_ahead_s, entry.gap_ahead_laps)


def position(entry: Any) -> str:
    """The position column: the position, 'DNF' for a car without a lap, '—' for an unranked entry."""
    if entry.status == "dnf":
        return "DNF"
    return "—" if entry.position is None else str(entry.position)


def ranking_value(entry: Any, method: str) -> str:
    """The ranking column: laps counted for most_laps_in, else the ranked time in seconds."""
    if method == "most_laps_in":
        return "—" if entry.counted_laps is None else str(entry.counted_laps)
    return seconds(entry.ranking_value_s)


def robustness_label(badge: Any) -> str:
    """A virtual race entry's robustness cell: 'fragile 83 %' (the verdict, then clean-lap completion), '—'
    when the model's card has none. ``badge``: a schemas.RobustnessBadge or None."""
    return "—" if badge is None else f"{badge.verdict} {100 * badge.completion:.0f}\u00a0%"


def subline(entry: Any, robustness: bool = False) -> str:
    """The racer cell's second line, shown where the secondary columns give way (phones): 'fragile 83 % ·
    3 laps · last 12.345 s · Team', the robustness part (first: the line may be cut) on a virtual race's page
    (`robustness`) only."""
    parts = []
    if robustness and entry.robustness is not None:
        parts.append(robustness_label(entry.robustness))
    if entry.laps:
        parts.append(f"{entry.laps} lap{'' if entry.laps == 1 else 's'} · last {seconds(entry.last_lap_s)} s")
    if entry.team:
        parts.append(entry.team)
    return " · ".join(parts)


def car_number(number: int | None) -> str:
    """A racing number as shown beside a name ('' when the car has none)."""
    return "" if number is None else str(number)


def clock(value: datetime | None) -> str:
    """A UTC time as HH:MM:SS UTC."""
    return "—" if value is None else value.strftime("%H:%M:%S UTC")


def time_of_day(value: datetime) -> str:
    """A UTC time as HH:MM:SS (the column header says UTC)."""
    return value.strftime("%H:%M:%S")


def duration(total_s: float) -> str:
    """Seconds as M:SS, or H:MM:SS from an hour up (rounded up: a clock counting down reaches 0:00 at the
    end, not a second early)."""
    whole_s = max(0, int(-(-total_s // 1)))
    hours, rest = divmod(whole_s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class RaceClock:
    """The big screen's race clock. state: before | running | finished; label: what the time means."""

    state: str
    label: str
    text: str


def race_clock(window_start: datetime | None, window_end: datetime | None, now: datetime) -> RaceClock | None:
    """Countdown to the start before the window opens, time left to its end while it is open, 'finished'
    after it; None for a race without a window (nothing to count)."""
    if window_start is not None and now < window_start:
        return RaceClock("before", "starts in", duration((window_start - now).total_seconds()))
    if window_end is not None and now >= window_end:
        return RaceClock("finished", "race", "finished")
    if window_end is not None:
        return RaceClock("running", "time left", duration((window_end - now).total_seconds()))
    if window_start is not None:
        return RaceClock("running", "race", "running")
    return None


def lap_status(row: Any) -> str:
    """'valid', or 'invalid: <why>' (``row``: a queries.LapRow)."""
    return "valid" if row.valid else f"invalid: {row.invalid_reason}"


def lap_cells(row: Any) -> list[tuple[str, str]]:
    """The lap page's cells of one lap, as (CSS class, text) in column order (``row``: a queries.LapRow).
    The template and the rows pushed to open pages both use this, so a live row looks like a loaded one."""
    return [
        ("num id", str(row.lap_id)),
        ("num received", time_of_day(row.received_at)),
        ("num no", car_number(row.car_number)),
        ("racer", row.racer),
        ("team", row.team or ""),
        ("car", row.car_id),
        ("num lap", str(row.lap_number)),
        ("num time", seconds(row.raw_time_s)),
        ("num offtrack", str(row.offtrack_count)),
        ("num resets", str(row.reset_count)),
        ("num penalty", seconds(row.penalty_s)),
        ("num counted", seconds(row.counted_s)),
        ("source", row.source),
        ("lap-status", lap_status(row)),
    ]


def lap_json(row: Any) -> dict[str, Any]:
    """A lap as pushed to open pages (``row``: a queries.LapRow): its cells for the lap page and what the
    big screen's ticker shows (number, racer, counted time in s)."""
    return {
        "lap_id": row.lap_id,
        "valid": row.valid,
        "deleted": row.deleted,
        "cells": lap_cells(row),
        "car_number": row.car_number,
        "racer": row.racer,
        "counted": seconds(row.counted_s),
    }
