"""Public exports of a race: every lap as CSV, the standings as CSV, everything as JSON. The numbers come from
the same ranking code as the leaderboard (league_server.ranking). Never a secret, never the audit log (who
edited what is for admins: `GET /api/admin/races/{race_id}/audit`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from league_server import ranking
from league_server.api.deps import RaceId, SessionDep
from league_server.api.errors import PUBLIC_RESPONSES
from league_server.api.ratelimit import rate_limited
from league_server.crud import cars as cars_crud
from league_server.crud import laps as laps_crud
from league_server.crud import races as races_crud
from league_server.models import Lap
from league_server.schemas import CarOut, FullExport, LapOut, RaceOut

router = APIRouter(
    prefix="/api/races/{race_id}/export",
    tags=["exports"],
    dependencies=[Depends(rate_limited)],
    responses=PUBLIC_RESPONSES,
)

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV with a header row"}
}

LAP_COLUMNS = (
    "lap_id", "race_id", "car_id", "racer_id", "racer", "run_id", "seq", "lap_number", "source",
    "lap_time_s", "offtrack_count", "reset_count", "penalty_s", "ranked_time_s", "counts",
    "invalid_reason", "deleted", "deleted_reason", "sent_at", "received_at",
)  # fmt: skip
STANDING_COLUMNS = (
    "position", "status", "car_number", "racer", "team", "car_id", "ranking_value_s", "counted_laps",
    "best_lap_s", "gap_s", "gap_laps", "gap_ahead_s", "laps", "valid_laps", "offtrack", "resets", "last_lap_s",
    "last_lap_at",
)  # fmt: skip


def _cell(value: Any) -> Any:
    """Spreadsheet-safe: a text cell starting with = + - @ would run as a formula in Excel/LibreOffice."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def _csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _lap_row(lap: Lap, rules: Any, racer_names: dict[int, str]) -> list[Any]:
    ranked = ranking.lap_record(ranking.RankedLap.from_lap(lap), rules)
    counts = ranked.valid and lap.deleted_at is None
    return [
        lap.id, lap.race_id, lap.car_id, lap.racer_id, racer_names.get(lap.racer_id) if lap.racer_id else None,
        lap.run_id, lap.seq, lap.lap_number, lap.source, f"{lap.lap_time_ms / 1000:.3f}", lap.offtrack_count,
        lap.reset_count, f"{ranked.lap_time_s - lap.lap_time_ms / 1000:.3f}", f"{ranked.lap_time_s:.3f}",
        "yes" if counts else "no", lap.invalid_reason, "yes" if lap.deleted_at else "no", lap.deleted_reason,
        lap.sent_at.isoformat() if lap.sent_at else None, lap.received_at.isoformat(),
    ]  # fmt: skip


@router.get("/laps.csv", response_class=Response, responses=CSV_RESPONSE, summary="Every lap as CSV")
def laps_csv(race_id: RaceId, session: SessionDep) -> Response:
    race = races_crud.get_race(session, race_id)
    rules = races_crud.rules_of(race)
    laps = laps_crud.list_laps(session, race_id, include_deleted=True)
    shown = ranking.racer_names(session, {lap.racer_id for lap in laps if lap.racer_id is not None})
    names = {racer_id: name for racer_id, (name, _team) in shown.items()}
    rows = (_lap_row(lap, rules, names) for lap in laps)
    return _csv(LAP_COLUMNS, rows, f"race-{race_id}-laps.csv")


def _standing_row(entry: Any) -> list[Any]:
    """The entry's values in STANDING_COLUMNS order (the column names are the entry's field names)."""
    values = [getattr(entry, column) for column in STANDING_COLUMNS]
    return [v.isoformat() if hasattr(v, "isoformat") else v for v in values]


@router.get("/standings.csv", response_class=Response, responses=CSV_RESPONSE, summary="Standings as CSV")
def standings_csv(race_id: RaceId, session: SessionDep) -> Response:
    board = ranking.leaderboard(session, race_id)
    rows = (_standing_row(e) for e in board.entries)
    return _csv(STANDING_COLUMNS, rows, f"race-{race_id}-standings.csv")


@router.get(
    "/full.json", response_model=FullExport, summary="Race, standings, all laps and cars (no secrets)"
)
def full_json(race_id: RaceId, session: SessionDep) -> FullExport:
    race = races_crud.get_race(session, race_id)
    laps = laps_crud.list_laps(session, race_id, include_deleted=True)
    car_ids = {lap.car_id for lap in laps}
    cars = [c for c in cars_crud.list_cars(session) if c.race_id == race_id or c.car_id in car_ids]
    return FullExport(
        race=RaceOut.model_validate(race),
        leaderboard=ranking.leaderboard(session, race_id),
        laps=[LapOut.model_validate(x) for x in laps],
        cars=[CarOut.model_validate(c) for c in cars],
    )
