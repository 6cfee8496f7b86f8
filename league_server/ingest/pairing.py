"""Timer crossings into laps, inside the ingest writer's transaction (it needs the stored crossings, so it
runs after decide(), which is pure).

Rules, per crossing of car C on timer T in race R (decide.py has already checked signature, timer, race
open, window, and that C is registered and in R):

- Idempotent: a crossing whose (timer_id, run_id, seq) is stored is a duplicate (acknowledged, nothing new).
- No car_id: stored, no lap (kept for an operator).
- It pairs with the latest stored crossing of C on T in R *at or before it in time* (not the last to
  arrive), making a lap of the difference of their crossed_at: source "timer", run_id `timer_lap_run_id`,
  seq = the closing crossing's seq, so a redelivery can never make a second lap. If the next stored
  crossing after it is still unpaired (it arrived first, out of order), that one gets its lap now too.
- The race's lap rules (decide.check_lap: min lap time, window) apply to every lap it would make; a lap
  they refuse refuses the crossing (dead letter, not stored): a double reading of the beam a few hundred ms
  after the real crossing never becomes the start of the next lap.
- Late: if the next stored crossing after it has already closed a lap, this crossing lies inside that lap.
  Laps already on the leaderboard are not rewritten: it is refused as `timer_crossing_late` (dead letter,
  verbatim, naming the lap) and an operator splits the lap by hand if the crossing was real.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from league_server.crud import crossings, laps
from league_server.ingest import reasons
from league_server.ingest.decide import TIMER_RUN_PREFIXES, CrossingRow, Rejected, check_lap
from league_server.models import SLUG, Lap, TimerCrossing

_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Paired:
    """What storing one crossing did. stored: it was new and is now stored; laps: lap rows stored now
    (`crud.laps.LAP_FIELDS`); rejected: why it was refused instead (then nothing is stored)."""

    stored: bool
    laps: list[dict[str, Any]] = field(default_factory=list)
    rejected: Rejected | None = None


def timer_lap_run_id(timer_id: str, run_id: str) -> str:
    """The run_id of laps made from a timer run: ``timer:<timer_id>:<run_id>``; ':' is not allowed in a timer
    id, so two (timer, run) pairs never share one (a '-' would: timer 'a-b' run 'c' vs timer 'a' run 'b-c').
    Longer than the 64-character column: ``timer#<sha256 of both>`` (58 hex digits), still deterministic."""
    plain = f"{TIMER_RUN_PREFIXES[0]}{timer_id}:{run_id}"
    if len(plain) <= SLUG:
        return plain
    digest = hashlib.sha256(f"{timer_id}:{run_id}".encode()).hexdigest()
    hashed = TIMER_RUN_PREFIXES[1]
    return f"{hashed}{digest[: SLUG - len(hashed)]}"


def _key(crossing: TimerCrossing) -> dict[str, Any]:
    return {"run_id": crossing.run_id, "seq": crossing.seq, "crossed_at": crossing.crossed_at.isoformat()}


def _lap_ms(start: datetime, end: datetime) -> int:
    return round((end - start) / _MS)


def store_crossing(session: Session, row: CrossingRow) -> Paired:
    """Store `row` and the laps it makes, or refuse it (module doc). Flushed, not committed."""
    if crossings.get_crossing(session, row.timer_id, row.run_id, row.seq) is not None:
        return Paired(stored=False)
    new = TimerCrossing(
        timer_id=row.timer_id,
        run_id=row.run_id,
        seq=row.seq,
        car_id=None if row.car is None else row.car.car_id,
        race_id=row.race.race_id,
        crossed_at=row.crossed_at,
        received_at=row.received_at,
    )
    if row.car is None:
        crossings.add_crossing(session, new)
        return Paired(stored=True)
    car_id, race = row.car.car_id, row.race
    before, after = crossings.neighbours(session, row.timer_id, race.race_id, car_id, row.crossed_at)
    if after is not None and after.lap_id is not None:
        return Paired(
            stored=False,
            rejected=Rejected(
                reasons.TIMER_LATE,
                f"crossed_at {row.crossed_at.isoformat()} of car {car_id!r} lies inside lap {after.lap_id}, "
                "already paired from the crossings around it; laps are not rewritten (split it by hand)",
            ),
        )
    spans = [(before, None)] if before is not None else []
    if after is not None:
        spans.append((None, after))
    for start, end in spans:
        start_at = row.crossed_at if start is None else start.crossed_at
        end_at = row.crossed_at if end is None else end.crossed_at
        refused = check_lap(race, _lap_ms(start_at, end_at), end_at, f"crossed_at {end_at.isoformat()}")
        if refused is not None:
            detail = f"{refused.detail} (timer {row.timer_id!r}, car {car_id!r}: a double reading?)"
            return Paired(stored=False, rejected=Rejected(refused.reason, detail))
    crossings.add_crossing(session, new)
    made = []
    for start, end in spans:
        first = new if start is None else start
        last = new if end is None else end
        made.extend(_make_lap(session, row, first, last))
    return Paired(stored=True, laps=made)


def _make_lap(
    session: Session, row: CrossingRow, first: TimerCrossing, last: TimerCrossing
) -> list[dict[str, Any]]:
    """Insert the lap first -> last (ending at `last`), link it from `last`; [its row] if it is new."""
    assert row.car is not None and last.car_id is not None
    lap = {
        "race_id": row.race.race_id,
        "car_id": last.car_id,
        "racer_id": row.car.racer_id,
        "run_id": timer_lap_run_id(last.timer_id, last.run_id),
        "seq": last.seq,
        "lap_number": crossings.count_before(
            session, last.timer_id, row.race.race_id, last.car_id, last.crossed_at
        ),
        "lap_time_ms": _lap_ms(first.crossed_at, last.crossed_at),
        "source": "timer",
        "raw_payload": {"timer_id": last.timer_id, "from": _key(first), "to": _key(last)},
        "sent_at": last.crossed_at,
        "received_at": row.received_at,
    }
    (created,) = laps.insert_laps_idempotent(session, [lap])
    last.lap_id = session.scalar(
        select(Lap.id).where(Lap.car_id == lap["car_id"], Lap.run_id == lap["run_id"], Lap.seq == lap["seq"])
    )
    session.flush()
    return [lap] if created else []
