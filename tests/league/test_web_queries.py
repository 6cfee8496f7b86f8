"""The lap page's and races list's queries on SQLite and PostgreSQL: penalties and validity as the ranking judges
them, soft-deleted laps left out, lap counts per race."""

from __future__ import annotations

from typing import Any

import pytest

from league_server.crud import cars, laps, leagues, races
from league_server.web import queries


@pytest.fixture
def race(session: Any) -> Any:
    league = leagues.create_league(session, "q", "Q league")
    event = leagues.create_event(session, league.id, "Q event")
    race = races.create_race(session, event.id, "Q race", offtrack_penalty_s=5.0, max_resets=1)
    team = leagues.create_team(session, league.id, "Q team")
    racer = leagues.create_racer(session, league.id, "Quinn", team_id=team.id)
    cars.provision_car(session, league.id, "q-car", racer_id=racer.id, race_id=race.id)
    cars.provision_car(session, league.id, "q-anon", race_id=race.id)
    session.commit()
    return race


def _lap(session: Any, race: Any, car_id: str, seq: int, ms: int, **extra: Any) -> int:
    car = cars.require_car(session, car_id)
    lap, _ = laps.insert_lap_idempotent(
        session, race_id=race.id, car_id=car_id, run_id="r", seq=seq, lap_number=seq + 1, lap_time_ms=ms,
        source="car", racer_id=car.racer_id, **extra,
    )  # fmt: skip
    session.commit()
    return lap.id


def test_lap_rows_carry_penalties_validity_and_names(session: Any, race: Any) -> None:
    _lap(session, race, "q-car", 0, 10_000, offtrack_count=1)
    over = _lap(session, race, "q-car", 1, 9_000, reset_count=2)
    marshal = _lap(session, race, "q-car", 2, 9_500)
    deleted = _lap(session, race, "q-car", 3, 8_000)
    _lap(session, race, "q-anon", 0, 12_000)
    laps.invalidate_lap(session, marshal, reason="cut the chicane", actor="t")
    laps.set_penalty(session, marshal, penalty_ms=1_500, reason="pushing", actor="t")
    laps.delete_lap(session, deleted, reason="test lap", actor="t")
    session.commit()

    rows = queries.race_laps(session, races.get_race(session, race.id))
    assert [r.lap_number for r in rows if r.car_id == "q-car"] == [1, 2, 3]
    first, over_limit, invalidated = rows[:3]
    assert (first.raw_time_s, first.penalty_s, first.counted_s, first.valid) == (10.0, 5.0, 15.0, True)
    assert (first.racer, first.team) == ("Quinn", "Q team")
    assert not over_limit.valid and over_limit.invalid_reason == "2 resets, over the limit of 1 per lap"
    assert over_limit.lap_id == over
    assert not invalidated.valid and invalidated.invalid_reason == "cut the chicane"
    assert invalidated.penalty_s == pytest.approx(1.5) and invalidated.counted_s == pytest.approx(11.0)
    anon = rows[3]
    assert (anon.racer, anon.team) == ("q-anon", None)  # a car without a racer shows its car id

    (summary,) = [s for s in queries.race_summaries(session) if s.id == race.id]
    assert summary.laps == 4 and summary.event == "Q event" and summary.last_lap_at is not None
    assert summary.ranking_text == "best lap"
