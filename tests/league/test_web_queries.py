"""The lap page's and races list's queries on SQLite and PostgreSQL: penalties and validity as the ranking judges
them, soft-deleted laps left out, lap counts per race; pages of laps newest first; the laps changed since a data
version (new laps, and edits found through the audit log whoever made them); the cars on track."""

from __future__ import annotations

from typing import Any

import pytest

from league_server.crud import cars, laps, leagues, presence, races
from league_server.leaderboard_cache import data_version
from league_server.web import queries


@pytest.fixture
def race(session: Any) -> Any:
    league = leagues.create_league(session, "q", "Q league")
    event = leagues.create_event(session, league.id, "Q event")
    race = races.create_race(session, event.id, "Q race", offtrack_penalty_s=5.0, max_resets=1)
    team = leagues.create_team(session, league.id, "Q team")
    racer = leagues.create_racer(session, league.id, "Quinn", team_id=team.id)
    cars.provision_car(session, league.id, "q-car", number=42, racer_id=racer.id, race_id=race.id)
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

    page = queries.lap_page(session, races.get_race(session, race.id))
    rows = page.rows[::-1]  # the page is newest first
    assert page.total == 4 and page.older_before is None and page.newer_after is None and page.newest
    assert [r.lap_number for r in rows if r.car_id == "q-car"] == [1, 2, 3]
    first, over_limit, invalidated = rows[:3]
    assert first.car_number == 42
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


def test_pages_of_laps_newest_first_link_to_older_and_newer(session: Any, race: Any) -> None:
    ids = [_lap(session, race, "q-car", seq, 10_000 + seq) for seq in range(7)]
    deleted = ids[3]
    laps.delete_lap(session, deleted, reason="bogus", actor="t")
    session.commit()
    shown = [i for i in ids if i != deleted][::-1]  # newest first: 6 laps
    race_row = races.get_race(session, race.id)
    first = queries.lap_page(session, race_row, size=4)
    assert [r.lap_id for r in first.rows] == shown[:4] and first.total == 6
    assert (first.older_before, first.newer_after, first.newest) == (shown[3], None, True)
    older = queries.lap_page(session, race_row, before=first.older_before, size=4)
    assert [r.lap_id for r in older.rows] == shown[4:] and older.older_before is None
    assert older.newer_after == shown[4] and not older.newest
    # paging back up from the oldest page: the newest laps are the newest page again
    newer = queries.lap_page(session, race_row, after=older.newer_after, size=4)
    assert [r.lap_id for r in newer.rows] == shown[:4] and newer.newest
    assert [r.lap_id for r in queries.recent_laps(session, race_row, 2)] == shown[:2]


def test_lap_changes_finds_new_laps_and_edits_from_the_audit_log(session: Any, race: Any) -> None:
    old = _lap(session, race, "q-car", 0, 10_000)
    since = data_version(session)
    race_row = races.get_race(session, race.id)
    nothing = queries.lap_changes(session, race_row, since)
    assert nothing.laps == [] and not nothing.board_changed and nothing.version == since

    new = _lap(session, race, "q-car", 1, 9_000)
    laps.invalidate_lap(session, old, reason="cut", actor="cli")  # as the CLI would, in its own session
    session.commit()
    changes = queries.lap_changes(session, race_row, since)
    assert [(r.lap_id, r.valid, r.deleted) for r in changes.laps] == [(new, True, False), (old, False, False)]
    assert changes.board_changed and not changes.race_edited and not changes.overflow and changes.total == 2
    assert changes.version == data_version(session)

    laps.delete_lap(session, new, reason="bogus", actor="cli")
    session.commit()
    deleted = queries.lap_changes(session, race_row, changes.version)
    assert [(r.lap_id, r.deleted) for r in deleted.laps] == [(new, True)] and deleted.total == 1

    races.update_race(session, race.id, actor="t", offtrack_penalty_s=1.0)
    session.commit()
    assert queries.lap_changes(session, race_row, deleted.version).race_edited

    for seq in range(2, 6):
        _lap(session, race, "q-car", seq, 10_000)
    assert queries.lap_changes(session, race_row, deleted.version, limit=3).overflow


def test_lap_changes_of_another_race_are_not_this_races(session: Any, race: Any) -> None:
    other = races.create_race(session, race.event_id, "Other race")
    cars.provision_car(session, cars.require_car(session, "q-car").league_id, "q-other", race_id=other.id)
    session.commit()
    since = data_version(session)
    _lap(session, other, "q-other", 0, 10_000)
    changes = queries.lap_changes(session, races.get_race(session, race.id), since)
    assert changes.laps == [] and not changes.board_changed


def test_on_track_lists_driving_and_online_cars_of_the_race_by_number(session: Any, race: Any) -> None:
    league_id = cars.require_car(session, "q-car").league_id
    cars.provision_car(session, league_id, "q-seven", number=7, race_id=race.id)
    cars.provision_car(session, league_id, "q-away", number=8)  # not in the race
    for car_id, state in (
        ("q-car", "driving"),
        ("q-seven", "online"),
        ("q-anon", "offline"),
        ("q-away", "driving"),
    ):
        presence.set_state(session, car_id, state)
    session.commit()
    track = queries.on_track(session, [race.id, 999])
    assert [(c.car_id, c.number, c.racer, c.state) for c in track[race.id]] == [
        ("q-seven", 7, None, "online"),
        ("q-car", 42, "Quinn", "driving"),
    ]
    assert track[999] == []


def test_the_live_source_pushes_laps_a_leaderboard_and_the_track(session_factory: Any) -> None:
    """What the live pages' feed reads, on both databases: after a version, the new lap as a row for the lap
    page and the ticker, the leaderboard with its DNF rows (only when asked for), the cars on track."""
    import json

    from league_server.web.feed import LiveSource
    from tests.league.ingest_support import add_lap, provision

    fleet = provision(session_factory, n_cars=2)
    source = LiveSource(session_factory)
    since = source.version()
    with session_factory() as s:
        add_lap(s, fleet.race_id, "car-0", 0, 10_000)
    update = source.update(fleet.race_id, since)
    assert update.version[0] > since[0] and not update.laps_resync
    laps_message = json.loads(update.laps_json)
    # (ingest_support's laps carry no racer: shown by car id, and car-0 is not a DNF of its racer)
    assert [(lap["racer"], lap["counted"], lap["valid"]) for lap in laps_message["laps"]] == [
        ("car-0", "10.000", True)
    ]
    board = json.loads(update.board_json)
    assert [(e["car_id"], e["status"]) for e in board["entries"]] == [("car-0", "ranked"), ("car-1", "dnf")]
    assert source.update(fleet.race_id, update.version).laps_json is None, "nothing new: nothing to push"
    with session_factory() as s:
        add_lap(s, fleet.race_id, "car-1", 0, 9_000)
    assert source.update(fleet.race_id, update.version, board=False).board_json is None
    version, text, resync = source.catch_up(fleet.race_id, since)
    assert version == source.version() and not resync and len(json.loads(text)["laps"]) == 2
    with session_factory() as s:
        presence.set_state(s, "car-1", "driving")
        s.commit()
    version, track = source.poll([fleet.race_id])
    assert [car["car_id"] for car in json.loads(track[fleet.race_id])] == ["car-1"]
