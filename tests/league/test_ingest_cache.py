"""The leaderboard cache (leaderboard_cache.py): reused while nothing changed, refreshed after a new lap
and after an audited edit (invalidate), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from league_server.crud import laps
from league_server.leaderboard_cache import LeaderboardCache
from tests.league.ingest_support import add_lap, provision


def best(body: bytes) -> dict[str, float]:
    """car id -> best lap (s) of the entries with laps (DNF rows of the race's other cars left out)."""
    return {e["car_id"]: e["best_lap_s"] for e in json.loads(body)["entries"] if e["status"] != "dnf"}


def test_cache_follows_laps_and_edits(session_factory: Any) -> None:
    fleet = provision(session_factory, n_cars=2)
    cache = LeaderboardCache()
    with session_factory() as s:
        add_lap(s, fleet.race_id, "car-0", 0, 10_000)
        first = cache.json(s, fleet.race_id)
        assert best(first) == {"car-0": 10.0}
        assert cache.json(s, fleet.race_id) is first and cache.hits == 1  # unchanged: the same bytes
        add_lap(s, fleet.race_id, "car-1", 0, 9_000)
        assert best(cache.json(s, fleet.race_id)) == {"car-0": 10.0, "car-1": 9.0}
        lap_id = laps.list_laps(s, fleet.race_id, car_id="car-1")[0].id
        laps.invalidate_lap(s, lap_id, reason="cut the chicane", actor="marshal")
        s.commit()
        after = json.loads(cache.json(s, fleet.race_id))
        assert after["entries"][0]["car_id"] == "car-0"
        assert cache.misses == 3


def test_fresh_serves_the_last_copy_while_a_background_refresh_picks_up_new_laps(
    session_factory: Any,
) -> None:
    fleet = provision(session_factory, n_cars=1)
    cache = LeaderboardCache(session_factory, recheck_s=60.0)
    with session_factory() as s:
        add_lap(s, fleet.race_id, "car-0", 0, 10_000)
    assert cache.fresh(fleet.race_id) is None  # nothing cached yet
    body = cache.json_in_new_session(fleet.race_id)
    assert cache.fresh(fleet.race_id) is body and cache.stale_served == 0  # served without the database
    with session_factory() as s:
        add_lap(s, fleet.race_id, "car-0", 1, 9_000)  # a new lap ...
    assert cache.fresh(fleet.race_id) is body  # ... is not looked for within the recheck window
    cache.recheck_s = 0.0
    assert cache.fresh(fleet.race_id) is body  # past it, the screen is still not kept waiting ...
    assert cache.stale_served == 1
    cache.wait_for_refreshes()  # ... while the refresher re-ranks in the background
    assert best(cache.fresh(fleet.race_id)) == {"car-0": 9.0}
    assert cache.misses == 2
    cache.close()


def test_a_copy_past_max_stale_is_not_served(session_factory: Any) -> None:
    fleet = provision(session_factory, n_cars=1)
    cache = LeaderboardCache(session_factory, recheck_s=0.0, max_stale_s=0.0)
    with session_factory() as s:
        add_lap(s, fleet.race_id, "car-0", 0, 10_000)
    cache.json_in_new_session(fleet.race_id)
    assert cache.fresh(fleet.race_id) is None  # too old: the request validates before answering


def test_an_audited_edit_in_this_process_is_read_your_writes(session_factory: Any) -> None:
    fleet = provision(session_factory, n_cars=2)
    cache = LeaderboardCache(session_factory, recheck_s=60.0)
    with session_factory() as s:
        add_lap(s, fleet.race_id, "car-0", 0, 10_000)
        add_lap(s, fleet.race_id, "car-1", 0, 9_000)
    cache.json_in_new_session(fleet.race_id)
    with session_factory() as s:
        lap_id = laps.list_laps(s, fleet.race_id, car_id="car-1")[0].id
        laps.invalidate_lap(s, lap_id, reason="cut the chicane", actor="marshal")
        s.commit()
    assert cache.fresh(fleet.race_id) is None  # the marshal's next GET waits for the edit
    after = json.loads(cache.json_in_new_session(fleet.race_id))
    assert after["entries"][0]["car_id"] == "car-0"
    assert cache.fresh(fleet.race_id) is not None


def test_the_ranker_process_refreshes_in_the_background(migrated_url: str, session_factory: Any) -> None:
    import time

    from league_server.ranker_process import RankerProcess

    fleet = provision(session_factory, n_cars=2)
    ranker = RankerProcess(migrated_url).start()
    cache = LeaderboardCache(session_factory, recheck_s=0.0, max_stale_s=60.0, ranker=ranker)
    try:
        with session_factory() as s:
            add_lap(s, fleet.race_id, "car-0", 0, 10_000)
        body = cache.json_in_new_session(fleet.race_id)
        deadline = time.monotonic() + 30
        while not ranker.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ranker.ready, "the ranker process did not start"
        with session_factory() as s:
            add_lap(s, fleet.race_id, "car-1", 0, 9_000)
        assert cache.fresh(fleet.race_id) is body  # stale copy served, refresh started
        cache.wait_for_refreshes()
        assert cache.ranker is ranker  # the child did the work (a failure falls back and drops it)
        assert best(cache.fresh(fleet.race_id)) == {"car-0": 10.0, "car-1": 9.0}
    finally:
        cache.close()
