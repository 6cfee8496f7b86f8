"""Virtual races in the database (SQLite and PostgreSQL): a roster with tokens shown once, submissions that
are idempotent, capped and windowed, jobs that one worker claims, that survive a restart and run again once,
and finished evaluations whose laps the one ranking code ranks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contracts.virtual_race import VirtualRaceSpec
from league_server.broker.mosquitto import load_users
from league_server.crud import leagues, races, virtual
from league_server.errors import ConflictError, RuleError
from league_server.models import utc_now
from league_server.ranking import race_laps, rank_entries

SPEC = VirtualRaceSpec(track="reinvent_base", rules={"laps": 3, "offtrack_penalty_s": 5.0})


def lap(raw_s: float, offtrack: int = 0, completed: bool = True) -> dict[str, Any]:
    return {"lap_time_s": raw_s + 5.0 * offtrack, "raw_time_s": raw_s, "offtrack": offtrack, "resets": offtrack,
            "completed": completed, "valid": completed, "progress": 100.0 if completed else 40.0}  # fmt: skip


def upload(sha: str) -> virtual.Upload:
    return virtual.Upload(
        sha256=sha * 64, size_bytes=1000, stored_path=f"uploads/{sha}", card={"car": "deepracer"}
    )


@pytest.fixture
def race(session: Any) -> Any:
    league = leagues.create_league(session, "class-7b", "Class 7B")
    event = leagues.create_event(session, league.id, "Autumn round")
    race = races.create_race(session, event.id, "Virtual sprint")
    return virtual.make_virtual(session, race, SPEC, max_submissions=2)


def test_a_roster_gets_one_token_per_racer_shown_once(session: Any, race: Any) -> None:
    rows = [
        virtual.RosterRow("Ada", "Red", "falcon"),
        virtual.RosterRow("Ben", "Red"),
        virtual.RosterRow("Cy"),
    ]
    issued = virtual.import_roster(session, race.event.league_id, rows)
    tokens = [token for _, token in issued]
    assert len(set(tokens)) == 3 and all(len(t) >= 40 for t in tokens)
    ada, ben, _ = (racer for racer, _ in issued)
    assert ada.team_id == ben.team_id is not None and ada.alias == "falcon"
    assert all(token not in (racer.token_hash or "") for racer, token in issued)  # only the digest is stored
    assert virtual.racer_by_token(session, tokens[1]).id == ben.id
    assert virtual.racer_by_token(session, "not-a-token") is None
    with pytest.raises(ConflictError, match="already on the league's roster: Ada"):
        virtual.import_roster(session, race.event.league_id, [virtual.RosterRow("Ada")])
    with pytest.raises(ConflictError, match="lists Dee more than once"):
        virtual.import_roster(
            session, race.event.league_id, [virtual.RosterRow("Dee"), virtual.RosterRow("Dee")]
        )


def test_submissions_are_idempotent_capped_and_windowed(session: Any, race: Any) -> None:
    (ada, _), (ben, _) = virtual.import_roster(
        session, race.event.league_id, [virtual.RosterRow("Ada"), virtual.RosterRow("Ben")]
    )
    first, new = virtual.record_submission(session, race, ada, upload("a"))
    again, new_again = virtual.record_submission(session, race, ada, upload("a"))
    assert new and not new_again and again.id == first.id and first.status == "queued"
    virtual.record_submission(session, race, ada, upload("b"))
    with pytest.raises(ConflictError, match="at most 2 submissions per racer"):
        virtual.record_submission(session, race, ada, upload("c"))
    virtual.record_submission(session, race, ben, upload("a"))  # the same file from another racer is theirs
    race.window_end = utc_now() - timedelta(minutes=1)
    with pytest.raises(virtual.SubmissionWindowError, match="submissions closed at"):
        virtual.record_submission(session, race, ben, upload("d"))
    assert virtual.record_submission(session, race, ada, upload("a"))[0].id == first.id  # still idempotent


def test_a_physical_race_takes_no_submissions(session: Any, race: Any) -> None:
    physical = races.create_race(session, race.event_id, "Final on the real track")
    ((ada, _),) = virtual.import_roster(session, race.event.league_id, [virtual.RosterRow("Ada")])
    with pytest.raises(RuleError, match="not a virtual race"):
        virtual.record_submission(session, physical, ada, upload("a"))


def test_jobs_are_claimed_once_run_again_once_after_a_restart_and_ranked(session: Any, race: Any) -> None:
    roster = virtual.import_roster(
        session, race.event.league_id, [virtual.RosterRow("Ada"), virtual.RosterRow("Ben")]
    )
    (ada, _), (ben, _) = roster
    sub_a, _ = virtual.record_submission(session, race, ada, upload("a"))
    sub_b, _ = virtual.record_submission(session, race, ben, upload("b"))
    claimed = virtual.claim_next_job(session)
    assert claimed.id == sub_a.id and claimed.status == "running" and claimed.attempts == 1
    # the server stops while the job runs: at start-up it runs again, once
    assert virtual.requeue_interrupted(session) == (1, 0)
    assert virtual.claim_next_job(session).id == sub_a.id
    assert virtual.requeue_interrupted(session) == (0, 1)
    session.refresh(sub_a)
    assert sub_a.status == "failed" and "stopped twice" in sub_a.reason
    job_b = virtual.claim_next_job(session)
    assert job_b.id == sub_b.id and virtual.claim_next_job(session) is None
    virtual.finish_job(
        session,
        job_b.id,
        {"status": "finished", "laps": [lap(9.0), lap(8.0, offtrack=1), lap(3.0, completed=False)]},
        None,
    )
    virtual.finish_job(
        session, job_b.id, {"status": "finished", "laps": [lap(9.0), lap(8.0, offtrack=1)]}, None
    )
    laps = race_laps(session, race.id)  # the uncompleted lap is not stored; the second finish adds nothing
    assert sorted((lap.lap_time_ms, lap.offtrack) for lap in laps) == [(8000, 1), (9000, 0)]
    (entry,) = rank_entries(laps, races.rules_of(race))
    assert entry.racer_id == ben.id
    assert entry.key == (9.0,)  # best lap: 9 s clean beats 8 s + the race's 5 s off-track penalty


def test_the_simulator_car_gets_no_broker_login(session: Any, race: Any) -> None:
    car = virtual.simulator_car(session, race.event.league_id)
    assert car.simulated and virtual.simulator_car(session, race.event.league_id).id == car.id
    cars, _ = load_users(session)
    assert car.car_id not in {user.car_id for user in cars}


@pytest.mark.parametrize(("counts", "expected_s"), [("best", 30.0), ("last", 49.0)])
def test_a_racer_ranks_by_one_evaluation_never_laps_pooled_across_models(
    session: Any, counts: str, expected_s: float
) -> None:
    from league_server.ranking import leaderboard

    league = leagues.create_league(session, "co", "Company league")
    event = leagues.create_event(session, league.id, "Virtual round")
    spec = VirtualRaceSpec(track="reinvent_base", rules={"ranking": "total_time", "ranked_laps": 3})
    race = virtual.make_virtual(
        session, races.create_race(session, event.id, "Three laps"), spec, counts=counts
    )
    ((ada, _),) = virtual.import_roster(session, league.id, [virtual.RosterRow("Ada")])
    for sha, times in (("a", (10.0, 10.0, 10.0)), ("b", (9.0, 20.0, 20.0))):  # steady, then a fast-lap gamble
        virtual.record_submission(session, race, ada, upload(sha))
        job = virtual.claim_next_job(session)
        virtual.finish_job(session, job.id, {"status": "finished", "laps": [lap(t) for t in times]}, None)
    (entry,) = leaderboard(session, race.id).entries
    # pooled, the racer's laps would make 9 + 10 + 10 = 29 s; one evaluation's three laps count
    assert entry.ranking_value_s == pytest.approx(expected_s) and entry.laps == 3


def test_a_league_that_shows_aliases_never_shows_names_in_public(session: Any) -> None:
    from league_server.ranking import leaderboard

    league = leagues.create_league(session, "class-8", "Class 8")
    league.public_aliases = True
    event = leagues.create_event(session, league.id, "Round")
    race = virtual.make_virtual(session, races.create_race(session, event.id, "Sprint"), SPEC)
    roster = [virtual.RosterRow("Ada Lovelace", alias="falcon"), virtual.RosterRow("Ben Ng")]
    (ada, _), (ben, _) = virtual.import_roster(session, league.id, roster)
    for racer, sha, raw_s in ((ada, "a", 9.0), (ben, "b", 10.0)):
        virtual.record_submission(session, race, racer, upload(sha))
        virtual.finish_job(
            session, virtual.claim_next_job(session).id, {"status": "finished", "laps": [lap(raw_s)]}, None
        )
    shown = [entry.racer for entry in leaderboard(session, race.id).entries]
    assert shown == ["falcon", f"racer {ben.id}"]
    assert [entry.name for entry in virtual.replay_entries(session, race)] == shown
    league.public_aliases = False
    assert [entry.racer for entry in leaderboard(session, race.id).entries] == ["Ada Lovelace", "Ben Ng"]
