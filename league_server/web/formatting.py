"""How the pages label ranking methods and print values (Jinja2 filters; static/leaderboard.js mirrors
`seconds`, `gap` and `ranking_value` for live updates)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# Column headers / descriptions per sim.race ranking method; {n} = ranked_laps, {t} = time_window_s.
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


def gap(entry: Any) -> str:
    """Gap to the leader: '—' for the leader or an unranked entry, '+2 laps' when a lap count behind
    (most_laps_in), '+1.234' (s) otherwise. ``entry``: a schemas.LeaderboardEntry."""
    if entry.position is None or entry.position == 1:
        return "—"
    if entry.gap_laps:
        return f"+{entry.gap_laps} lap{'' if entry.gap_laps == 1 else 's'}"
    return "—" if entry.gap_s is None else f"+{entry.gap_s:.3f}"


def ranking_value(entry: Any, method: str) -> str:
    """The ranking column: laps counted for most_laps_in, else the ranked time in seconds."""
    if method == "most_laps_in":
        return "—" if entry.counted_laps is None else str(entry.counted_laps)
    return seconds(entry.ranking_value_s)


def clock(value: datetime | None) -> str:
    """A UTC time as HH:MM:SS UTC."""
    return "—" if value is None else value.strftime("%H:%M:%S UTC")
