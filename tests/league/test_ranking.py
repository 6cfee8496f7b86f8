"""The leaderboard on hand-made lap sets: every ranking method, penalties, resets, invalid laps, ties."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from contracts.race import RaceRules
from league_server.crud import cars, laps, leagues, races
from league_server.ranking import RaceCar, RankedLap, build_entries, dnf_entries, leaderboard, rank_entries

T0 = datetime(2026, 11, 27, 20, 0, tzinfo=timezone.utc)
_ids = iter(range(1, 10_000))


def lap(racer: int | None, ms: int, at_s: float, *, car: str | None = None, **kw: object) -> RankedLap:
    return RankedLap(
        lap_id=next(_ids),
        car_id=car or f"car-{racer}",
        racer_id=racer,
        lap_time_ms=ms,
        at=T0 + timedelta(seconds=at_s),
        **kw,  # type: ignore[arg-type]
    )


def board(lap_set: list[RankedLap], rules: RaceRules, names: dict | None = None):  # type: ignore[no-untyped-def]
    return build_entries(rank_entries(lap_set, rules), rules, names or {})


def test_best_lap_with_offtrack_penalty_and_marshal_penalty() -> None:
    rules = RaceRules(ranking="best_lap", offtrack_penalty_s=2.0)
    entries = board(
        [
            lap(1, 9_000, 10, offtrack=1),  # 11.0 s with the penalty
            lap(1, 10_500, 20),
            lap(2, 10_000, 15),
            lap(3, 9_500, 12, penalty_ms=1_000),  # marshal penalty: 10.5 s
        ],
        rules,
        {1: ("Ada", "Red"), 2: ("Bo", None)},
    )
    # racers 1 and 3 tie at 10.5 s: racer 3 set it at t=12 s, racer 1 only at t=20 s
    assert [(e.racer_id, e.ranking_value_s, e.gap_s, e.position) for e in entries] == [
        (2, 10.0, 0.0, 1),
        (3, 10.5, 0.5, 2),
        (1, 10.5, 0.5, 3),
    ]
    first = {e.racer_id: e for e in entries}
    assert first[1].racer == "Ada" and first[1].team == "Red" and first[1].offtrack == 1
    assert first[1].laps == 2 and first[1].last_lap_s == 10.5 and first[1].best_lap_s == 10.5


def test_tie_on_value_goes_to_who_set_it_first_then_racer_id() -> None:
    rules = RaceRules(ranking="best_lap")
    entries = board([lap(5, 10_000, 30), lap(4, 10_000, 40), lap(7, 10_000, 30)], rules)
    # 5 and 7 set 10.000 s at the same moment -> lower racer id; 4 set it later
    assert [e.racer_id for e in entries] == [5, 7, 4]
    assert [e.position for e in entries] == [1, 2, 3]
    assert entries[0].ranked_at == T0 + timedelta(seconds=30)


def test_ranked_at_is_when_the_best_was_first_set() -> None:
    rules = RaceRules(ranking="best_lap")
    # racer 1: 10 s at t=10, then 10 s again at t=50; racer 2: 10 s at t=20 -> racer 1 leads (set first)
    entries = board([lap(1, 10_000, 10), lap(1, 10_000, 50), lap(2, 10_000, 20)], rules)
    assert [e.racer_id for e in entries] == [1, 2]
    assert entries[0].ranked_at == T0 + timedelta(seconds=10)


def test_resets_over_the_per_lap_limit_make_a_lap_invalid() -> None:
    rules = RaceRules(ranking="best_lap", max_resets=1, max_resets_scope="lap")
    entries = board([lap(1, 8_000, 10, resets=2), lap(1, 9_000, 20, resets=1), lap(2, 8_500, 10)], rules)
    assert [(e.racer_id, e.ranking_value_s, e.valid_laps, e.resets) for e in entries] == [
        (2, 8.5, 1, 0),
        (1, 9.0, 1, 3),
    ]


def test_invalidated_laps_do_not_count_but_break_consecutive_runs() -> None:
    rules = RaceRules(ranking="best_average_of", ranked_laps=2)
    # racer 1: 10, 9 (invalidated), 11, 12 -> consecutive valid pairs: (11, 12) = 11.5
    # racer 2: 11, 11.6 -> 11.3
    entries = board(
        [
            lap(1, 10_000, 10),
            lap(1, 9_000, 20, valid=False),
            lap(1, 11_000, 30),
            lap(1, 12_000, 40),
            lap(2, 11_000, 10),
            lap(2, 11_600, 22),
        ],
        rules,
    )
    assert [(e.racer_id, e.ranking_value_s) for e in entries] == [(2, 11.3), (1, 11.5)]
    assert entries[1].best_lap_s == 10.0 and entries[1].valid_laps == 3 and entries[1].laps == 4


def test_best_average_needs_enough_consecutive_laps() -> None:
    rules = RaceRules(ranking="best_average_of", ranked_laps=3)
    entries = board([lap(1, 9_000, 10), lap(1, 9_000, 20), lap(2, 12_000, 5), lap(2, 12_000, 15),
                     lap(2, 12_003, 25)], rules)  # fmt: skip
    assert [(e.racer_id, e.position, e.ranking_value_s) for e in entries] == [(2, 1, 12.001), (1, None, None)]
    assert entries[1].gap_s is None and entries[1].best_lap_s == 9.0


def test_total_time_of_the_first_n_laps() -> None:
    rules = RaceRules(ranking="total_time", ranked_laps=3, offtrack_penalty_s=5.0)
    entries = board(
        [
            lap(1, 10_000, 10),
            lap(1, 10_000, 20, offtrack=1),
            lap(1, 10_000, 30),  # 35 s
            lap(1, 5_000, 40),  # a 4th lap does not count
            lap(2, 11_000, 11),
            lap(2, 11_000, 22),
            lap(2, 11_000, 33),  # 33 s
            lap(3, 9_000, 9),
            lap(3, 9_000, 18, valid=False),
            lap(3, 9_000, 27),  # an invalid lap among the first 3: unranked
        ],
        rules,
    )
    assert [(e.racer_id, e.ranking_value_s, e.gap_s) for e in entries] == [
        (2, 33.0, 0.0),
        (1, 35.0, 2.0),
        (3, None, None),
    ]


def test_most_laps_in_window_then_earliest_finish() -> None:
    rules = RaceRules(ranking="most_laps_in", time_window_s=30.0, offtrack_penalty_s=2.0)
    entries = board(
        [
            *[lap(1, 9_000, 9 * i) for i in range(1, 5)],  # 9, 18, 27 within 30 s; 36 outside -> 3 laps
            *[lap(2, 9_500, 9 * i) for i in range(1, 4)],  # 9.5, 19, 28.5 -> 3 laps, later finish
            lap(3, 8_000, 8),
            lap(3, 8_000, 16, offtrack=1),  # 8, 18 (10 s lap), 26 -> 3 laps finishing at 26 s
            lap(3, 8_000, 24),
            lap(4, 14_000, 14),  # 14, 28 -> 2 laps
            lap(4, 14_000, 28),
        ],
        rules,
    )
    assert [(e.racer_id, e.counted_laps, e.ranking_value_s) for e in entries] == [
        (3, 3, 26.0),
        (1, 3, 27.0),
        (2, 3, 28.5),
        (4, 2, 28.0),
    ]
    assert [e.gap_s for e in entries] == [0.0, 1.0, 2.5, None]
    assert entries[3].gap_laps == 1


def test_laps_without_a_racer_rank_per_car_after_racers_on_ties() -> None:
    rules = RaceRules(ranking="best_lap")
    entries = board(
        [lap(None, 10_000, 10, car="zz"), lap(None, 10_000, 10, car="aa"), lap(9, 10_000, 10)], rules
    )
    assert [(e.racer_id, e.car_id) for e in entries] == [(9, "car-9"), (None, "aa"), (None, "zz")]


def test_no_laps_no_entries() -> None:
    assert board([], RaceRules()) == []


def test_leaderboard_from_the_database_follows_invalidation(session) -> None:  # type: ignore[no-untyped-def]
    league = leagues.create_league(session, "l", "L")
    team = leagues.create_team(session, league.id, "Blue")
    event = leagues.create_event(session, league.id, "E")
    race = races.create_race(session, event.id, "TT", ranking="best_lap", offtrack_penalty_s=2.0)
    ada = leagues.create_racer(session, league.id, "Ada", team_id=team.id)
    bo = leagues.create_racer(session, league.id, "Bo")
    cars.provision_car(session, league.id, "c1", racer_id=ada.id, race_id=race.id)
    cars.provision_car(session, league.id, "c2", racer_id=bo.id, race_id=race.id)
    base = dict(race_id=race.id, run_id="r", source="car")
    fast, _ = laps.insert_lap_idempotent(
        session, car_id="c1", racer_id=ada.id, seq=0, lap_number=1, lap_time_ms=9_000, sent_at=T0, **base
    )
    laps.insert_lap_idempotent(
        session, car_id="c2", racer_id=bo.id, seq=0, lap_number=1, lap_time_ms=9_500,
        sent_at=T0 + timedelta(seconds=1), **base,
    )  # fmt: skip
    session.commit()
    lb = leaderboard(session, race.id)
    assert [(e.racer, e.team, e.ranking_value_s) for e in lb.entries] == [
        ("Ada", "Blue", 9.0),
        ("Bo", None, 9.5),
    ]
    laps.invalidate_lap(session, fast.id, reason="cut", actor="t")
    session.commit()
    lb = leaderboard(session, race.id)
    assert [(e.racer, e.position) for e in lb.entries] == [("Bo", 1), ("Ada", None)]
    laps.restore_lap(session, fast.id, reason="ok", actor="t")
    laps.delete_lap(session, fast.id, reason="duplicate entry", actor="t")
    session.commit()
    # Ada's only lap is gone, her car is still in the race: a DNF row after Bo
    assert [(e.racer, e.status, e.position) for e in leaderboard(session, race.id).entries] == [
        ("Bo", "ranked", 1),
        ("Ada", "dnf", None),
    ]


@pytest.mark.parametrize("n_laps", [1, 7, 40])
def test_ranked_at_binary_search_matches_a_linear_scan(n_laps: int) -> None:
    import random

    from contracts.race import rank_key, sortable
    from league_server.ranking import _first_reached, lap_record

    rng = random.Random(n_laps)
    for ranking in ("best_lap", "best_average_of", "total_time", "most_laps_in"):
        rules = RaceRules(ranking=ranking, ranked_laps=3, time_window_s=200.0)  # type: ignore[arg-type]
        lap_set = [
            lap(1, rng.randint(9_000, 12_000), i * 12, valid=rng.random() > 0.2) for i in range(n_laps)
        ]
        records = [lap_record(x, rules) for x in lap_set]
        final = rank_key(records, rules)
        if final is None:
            continue
        linear = next(k for k in range(1, n_laps + 1) if rank_key(records[:k], rules) == final)
        assert _first_reached(records, rules, sortable(final)) == linear


def test_gap_to_the_car_ahead_and_car_numbers() -> None:
    rules = RaceRules(ranking="best_lap")
    results = rank_entries([lap(1, 10_000, 10), lap(2, 10_250, 11), lap(3, 11_000, 12)], rules)
    entries = build_entries(results, rules, {}, {"car-1": 7, "car-2": None})
    assert [(e.position, e.gap_s, e.gap_ahead_s) for e in entries] == [
        (1, 0.0, None),
        (2, 0.25, 0.25),
        (3, 1.0, 0.75),
    ]
    assert [e.car_number for e in entries] == [7, None, None]
    assert {e.status for e in entries} == {"ranked"}


def test_most_laps_in_gap_ahead_counts_laps_when_the_car_ahead_did_more() -> None:
    rules = RaceRules(ranking="most_laps_in", time_window_s=30.0)
    entries = board(
        [
            *[lap(1, 9_000, 9 * i) for i in range(1, 4)],  # 3 laps, last at 27 s
            *[lap(2, 9_500, 9.5 * i) for i in range(1, 4)],  # 3 laps, last at 28.5 s
            *[lap(3, 14_000, 14 * i) for i in range(1, 3)],  # 2 laps
            lap(4, 14_500, 14.5),  # 1 lap
        ],
        rules,
    )
    assert [(e.racer_id, e.gap_ahead_s, e.gap_ahead_laps) for e in entries] == [
        (1, None, None),
        (2, 1.5, None),
        (3, None, 1),
        (4, None, 1),
    ]


def test_an_unranked_entry_has_no_gap_to_the_car_ahead() -> None:
    rules = RaceRules(ranking="best_average_of", ranked_laps=2)
    entries = board([lap(1, 9_000, 10), lap(1, 9_000, 20), lap(2, 8_000, 5)], rules)
    assert [(e.racer_id, e.status, e.position, e.gap_ahead_s) for e in entries] == [
        (1, "ranked", 1, None),
        (2, "unranked", None, None),
    ]


def test_dnf_rows_one_per_lapless_entry_by_car_number() -> None:
    rules = RaceRules(ranking="best_lap")
    results = rank_entries([lap(1, 10_000, 10), lap(None, 11_000, 11, car="old-laps")], rules)
    cars = [
        RaceCar("old-laps", 9, 8),  # its laps count for no racer (driven before racer 8 took it): not DNF
        RaceCar("car-1", 4, 1),  # racer 1 has a lap: not DNF
        RaceCar("spare-1", 5, 1),  # racer 1's second car: still racer 1's entry
        RaceCar("zeta", None, None),  # no number: last
        RaceCar("car-2", 12, 2),
        RaceCar("car-3", 3, 3),
        RaceCar("car-3b", 30, 3),  # racer 3's second car: one row for racer 3
    ]
    rows = dnf_entries(cars, results, {2: ("Bo", "Blue"), 3: ("Cy", None)})
    assert [(e.car_id, e.car_number, e.racer, e.team, e.status) for e in rows] == [
        ("car-3", 3, "Cy", None, "dnf"),
        ("car-2", 12, "Bo", "Blue", "dnf"),
        ("zeta", None, None, None, "dnf"),
    ]
    assert all(e.position is None and e.laps == 0 and e.gap_s is None for e in rows)


def test_leaderboard_lists_cars_without_laps_as_dnf_after_unranked(session) -> None:  # type: ignore[no-untyped-def]
    league = leagues.create_league(session, "d", "D")
    event = leagues.create_event(session, league.id, "E")
    race = races.create_race(session, event.id, "Avg", ranking="best_average_of", ranked_laps=2)
    other = races.create_race(session, event.id, "Other")
    names = ["Ada", "Bo", "Cy", "Di"]
    racer_ids = [leagues.create_racer(session, league.id, n).id for n in names]
    for i, racer_id in enumerate(racer_ids):
        cars.provision_car(session, league.id, f"d{i}", racer_id=racer_id, race_id=race.id)
        cars.assign_car(session, f"d{i}", actor="t", number=10 + i)
    cars.provision_car(session, league.id, "elsewhere", race_id=other.id)  # another race's car: not here
    base = dict(race_id=race.id, run_id="r", source="car")
    for seq, ms in enumerate((9_000, 9_400)):
        laps.insert_lap_idempotent(
            session, car_id="d1", racer_id=racer_ids[1], seq=seq, lap_number=seq + 1, lap_time_ms=ms, **base
        )
    laps.insert_lap_idempotent(
        session, car_id="d2", racer_id=racer_ids[2], seq=0, lap_number=1, lap_time_ms=8_000, **base
    )
    session.commit()
    lb = leaderboard(session, race.id)
    assert [(e.racer, e.car_number, e.status, e.position, e.laps) for e in lb.entries] == [
        ("Bo", 11, "ranked", 1, 2),
        ("Cy", 12, "unranked", None, 1),
        ("Ada", 10, "dnf", None, 0),
        ("Di", 13, "dnf", None, 0),
    ]
    as_json = lb.model_dump(mode="json")["entries"][2]
    assert as_json["status"] == "dnf" and as_json["car_number"] == 10 and as_json["gap_ahead_s"] is None
