"""Pydantic models of the HTTP API (inputs are strict: unknown fields are rejected with their names).

Times shown to clients are seconds (floats, `_s`); stored lap times are milliseconds (`_ms`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.robustness import Verdict
from contracts.vocabulary import LapSource

SlugStr = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="letters, digits, '-' and '_' (1-64)")
Ranking = Literal["best_lap", "best_average_of", "total_time", "most_laps_in"]
RaceStatus = Literal["open", "closed"]

_Id = Field(ge=1, le=2**31 - 1)
_OptId = Field(default=None, ge=1, le=2**31 - 1)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        """Text without NUL (PostgreSQL text cannot hold it); datetimes as UTC (naive ones are taken as UTC)."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if isinstance(value, datetime):
            try:
                aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
                return aware.astimezone(timezone.utc)
            except (OverflowError, ValueError):
                raise ValueError("date out of range once converted to UTC") from None
        return value


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: `detail` says what is wrong; `field` names the offending input when there is one."""

    detail: str
    field: str | None = None


class ValidationErrorItem(BaseModel):
    field: str = Field(description="dotted location, e.g. body.ranked_laps or query.limit")
    message: str
    type: str


class ValidationErrorResponse(BaseModel):
    """422 body: one item per bad field."""

    detail: str
    errors: list[ValidationErrorItem]


# ------------------------------------------------------------------------------------- league structure


class LeagueIn(_In):
    slug: str = SlugStr
    name: str = Field(min_length=1, max_length=200)


class LeagueOut(_Out):
    id: int
    slug: str
    name: str
    created_at: datetime


class SeasonIn(_In):
    name: str = Field(min_length=1, max_length=200)


class SeasonOut(_Out):
    id: int
    league_id: int
    name: str


class TrackIn(_In):
    slug: str = SlugStr
    name: str = Field(min_length=1, max_length=200)
    length_m: float | None = Field(default=None, gt=0, le=100_000)


class TrackOut(_Out):
    id: int
    slug: str
    name: str
    length_m: float | None


class EventIn(_In):
    name: str = Field(min_length=1, max_length=200)
    season_id: int | None = _OptId
    location: str | None = Field(default=None, max_length=200)
    starts_at: datetime | None = None


class EventOut(_Out):
    id: int
    league_id: int
    season_id: int | None
    name: str
    location: str | None
    starts_at: datetime | None


class RaceIn(_In):
    """A race and its rules (checked by contracts.race.RaceRules). max_resets counts per lap (None = unlimited)."""

    name: str = Field(min_length=1, max_length=200)
    track_id: int | None = _OptId
    format: Literal["time_trial"] = "time_trial"
    ranking: Ranking = "best_lap"
    ranked_laps: int = Field(default=3, ge=1, le=1000)
    laps: int = Field(default=3, ge=1, le=10_000)
    offtrack_penalty_s: float = Field(default=2.0, ge=0, le=3600)
    max_resets: int | None = Field(default=None, ge=0, le=10_000)
    min_lap_time_s: float = Field(default=1.0, ge=0, le=24 * 3600)
    time_window_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    window_start: datetime | None = None
    window_end: datetime | None = None
    status: RaceStatus = "open"


class RaceOut(_Out):
    id: int
    event_id: int
    track_id: int | None
    track: str | None = Field(
        default=None, validation_alias="track_slug", description="the track's slug (lap reports name it)"
    )
    name: str
    format: str
    ranking: str
    ranked_laps: int
    laps: int
    offtrack_penalty_s: float
    max_resets: int | None
    min_lap_time_s: float
    time_window_s: float | None
    window_start: datetime | None
    window_end: datetime | None
    status: str
    kind: str = Field(
        default="physical",
        description="physical (laps from cars and timers) or virtual (the server's simulator)",
    )
    created_at: datetime


class TeamIn(_In):
    name: str = Field(min_length=1, max_length=200)


class TeamOut(_Out):
    id: int
    league_id: int
    name: str


class RacerIn(_In):
    name: str = Field(min_length=1, max_length=200)
    team_id: int | None = _OptId


class RacerOut(_Out):
    id: int
    league_id: int
    team_id: int | None
    name: str


# ----------------------------------------------------------------------------------------------- cars


CarNumber = Field(default=None, ge=0, le=9999, description="racing number, unique within the league")


class CarIn(_In):
    car_id: str = SlugStr
    name: str | None = Field(default=None, max_length=200)
    number: int | None = CarNumber
    racer_id: int | None = _OptId
    race_id: int | None = _OptId


class CarOut(_Out):
    """A car without its secrets."""

    id: int
    league_id: int
    car_id: str
    name: str | None
    number: int | None = None
    mqtt_username: str
    racer_id: int | None
    race_id: int | None
    created_at: datetime


class CarAssign(_In):
    """Omitted fields are kept; null clears."""

    race_id: int | None = _OptId
    racer_id: int | None = _OptId
    number: int | None = CarNumber


# --------------------------------------------------------------------------------------------- timers


class TimerIn(_In):
    timer_id: str = SlugStr
    name: str | None = Field(default=None, max_length=200)
    race_id: int | None = _OptId


class TimerOut(_Out):
    """A trackside timer without its secrets. race_id: the race its crossings are laps of."""

    id: int
    league_id: int
    timer_id: str
    name: str | None
    mqtt_username: str
    race_id: int | None
    created_at: datetime


class TimerProvisioned(TimerOut):
    """Returned once, at provisioning (or rotation): the only time the password and HMAC secret are shown."""

    mqtt_password: str
    hmac_secret: str
    league: str = Field(description="league slug (the <league> of the timer's MQTT topic)")
    crossing_topic: str


class TimerAssign(_In):
    """The race the timer times (null: none; its crossings are then refused)."""

    race_id: int | None = _OptId


class CrossingOut(_Out):
    """A stored timer crossing. lap_id: the lap it closed (None: a car's first crossing, or no car_id)."""

    id: int
    timer_id: str
    run_id: str
    seq: int
    car_id: str | None
    race_id: int | None
    crossed_at: datetime
    received_at: datetime
    lap_id: int | None


# ----------------------------------------------------------------------------------------------- laps


class LapOut(_Out):
    id: int
    race_id: int
    car_id: str
    racer_id: int | None
    run_id: str
    seq: int
    lap_number: int
    lap_time_ms: int
    penalty_ms: int
    offtrack_count: int
    reset_count: int
    source: LapSource
    sent_at: datetime | None
    received_at: datetime
    valid: bool
    invalid_reason: str | None
    deleted_at: datetime | None
    deleted_reason: str | None


class LapEdit(_In):
    """An audited lap edit. Who made it is the authenticated admin (the bearer token), never a body field:
    a body `actor` is refused (422) rather than ignored, so a client that sets one learns it is not used."""

    reason: str = Field(min_length=1, max_length=500, description="why (written to the audit log)")


class LapPenalty(LapEdit):
    penalty_ms: int = Field(ge=0, le=3_600_000)


class ManualLapIn(_In):
    car_id: str = SlugStr
    lap_time_ms: int = Field(gt=0, le=24 * 3600 * 1000)
    offtrack_count: int = Field(default=0, ge=0, le=10_000)
    reset_count: int = Field(default=0, ge=0, le=10_000)
    lap_number: int | None = Field(default=None, ge=1, le=2**31 - 1)
    reason: str = Field(min_length=1, max_length=500, description="why (written to the audit log)")


class AuditEntryOut(_Out):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class DeadLetterOut(_Out):
    """A broker message ingest refused, with the reason (`models.DeadLetter`, payload as text)."""

    id: int
    topic: str
    payload: str = Field(description="the payload as UTF-8 text (undecodable bytes replaced)")
    reason: str
    received_at: datetime

    @field_validator("payload", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        """Stored payloads are bytes (a refused message need not be UTF-8)."""
        return value.decode("utf-8", errors="replace") if isinstance(value, bytes | bytearray) else value


# ---------------------------------------------------------------------------------------- leaderboard


class RobustnessBadge(BaseModel):
    """A virtual race entry's model, as its card's robustness rates it (`contracts.robustness`): `verdict`,
    `completion` (0-1: share of laps finished without leaving the track under a held-out shift on tracks it
    never trained on) with its 95 % interval, and `summary` (the card's one line with units)."""

    verdict: Verdict
    completion: float = Field(ge=0, le=1)
    completion_ci95: tuple[float, float]
    summary: str


class LeaderboardEntry(BaseModel):
    """One row. ranking_value_s: the ranked value (best lap / best average / total time; for most_laps_in the
    race time at which the last counted lap finished); counted_laps: laps counted by most_laps_in.
    gap_s: to the leader (same lap count for most_laps_in; else None with gap_laps set). Unranked rows
    (no qualifying laps yet) have position None and come after the ranked ones; DNF rows (a car assigned to
    the race whose entry has no lap at all) come last."""

    position: int | None
    status: Literal["ranked", "unranked", "dnf"] = Field(
        default="ranked",
        description="ranked: has a position; unranked: laps, none that qualify yet; "
        "dnf: a car assigned to the race without a single lap",
    )
    racer_id: int | None
    racer: str | None
    team: str | None
    car_id: str
    car_number: int | None = Field(default=None, description="the car's racing number (None: no number)")
    ranking_value_s: float | None
    counted_laps: int | None = None
    best_lap_s: float | None
    gap_s: float | None
    gap_laps: int | None = None
    gap_ahead_s: float | None = Field(
        default=None,
        description="gap to the entry one position up (s); None for the leader and unranked rows",
    )
    gap_ahead_laps: int | None = Field(
        default=None, description="most_laps_in: laps behind the entry one position up, when it counted more"
    )
    laps: int
    valid_laps: int
    offtrack: int
    resets: int
    last_lap_s: float | None
    last_lap_at: datetime | None
    ranked_at: datetime | None = Field(description="when the ranking value was set (first tie-break)")
    robustness: RobustnessBadge | None = Field(
        default=None,
        description="virtual races: the counted model's robustness from its card (None: not measured, or "
        "not a virtual race)",
    )


class Leaderboard(BaseModel):
    race_id: int
    race_name: str
    ranking: str
    ranked_laps: int
    time_window_s: float | None
    offtrack_penalty_s: float
    window_start: datetime | None = Field(
        default=None, description="laps are accepted from (UTC; None: open)"
    )
    window_end: datetime | None = Field(default=None, description="laps are accepted until (UTC; None: open)")
    updated_at: datetime
    entries: list[LeaderboardEntry]


class RaceResults(BaseModel):
    race: RaceOut
    leaderboard: Leaderboard
    laps: list[LapOut]


class FullExport(BaseModel):
    """Everything public about a race: rules, standings, every lap (invalid and deleted ones flagged, with
    their reasons) and cars (no secrets). Not the audit log (who edited what): admins read it at
    `GET /api/admin/races/{race_id}/audit`."""

    race: RaceOut
    leaderboard: Leaderboard
    laps: list[LapOut]
    cars: list[CarOut]


class HealthOut(BaseModel):
    status: Literal["ok"]
    ingest_connected: bool | None = Field(description="None when ingest is not running in this process")
    broker_url: str | None


class RaceUpdate(_In):
    """Fields to change (omitted: kept). Rules are re-checked by contracts.race."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    ranking: Ranking | None = None
    ranked_laps: int | None = Field(default=None, ge=1, le=1000)
    laps: int | None = Field(default=None, ge=1, le=10_000)
    offtrack_penalty_s: float | None = Field(default=None, ge=0, le=3600)
    max_resets: int | None = Field(default=None, ge=0, le=10_000)
    min_lap_time_s: float | None = Field(default=None, ge=0, le=24 * 3600)
    time_window_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    window_start: datetime | None = None
    window_end: datetime | None = None
    status: RaceStatus | None = None
