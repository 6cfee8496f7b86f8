"""`pitlane league admin add-timer | assign-timer | rotate-timer | list-timers` over the same crud as the API."""

from __future__ import annotations

import json

from tests.league.test_cli_league import run


def test_timer_admin_cli(sqlite_url: str) -> None:
    assert run("admin", "create-league", "acme", "ACME", "--db", sqlite_url).exit_code == 0
    assert run("admin", "create-event", "Fri", "--league", "acme", "--db", sqlite_url).exit_code == 0
    assert run("admin", "create-race", "TT", "--event", "1", "--db", sqlite_url).exit_code == 0
    added = run("admin", "add-timer", "gate-1", "--league", "acme", "--json", "--db", sqlite_url)
    assert added.exit_code == 0, added.output
    creds = json.loads(added.output)
    assert (
        creds["mqtt_username"] == "timer-gate-1"
        and creds["crossing_topic"] == "pitlane/acme/timers/gate-1/crossings"
    )
    assert creds["race_id"] is None and len(creds["hmac_secret"]) == 64
    twice = run("admin", "add-timer", "gate-1", "--league", "acme", "--db", sqlite_url)
    assert twice.exit_code != 0 and "gate-1" in twice.output
    assert run("admin", "assign-timer", "gate-1", "--db", sqlite_url).exit_code != 0  # neither option
    assigned = run("admin", "assign-timer", "gate-1", "--race", "1", "--db", sqlite_url)
    assert assigned.exit_code == 0 and "race 1" in assigned.output
    rotated = json.loads(run("admin", "rotate-timer", "gate-1", "--json", "--db", sqlite_url).output)
    assert rotated["hmac_secret"] != creds["hmac_secret"] and rotated["race_id"] == 1
    listed = json.loads(run("admin", "list-timers", "--league", "acme", "--json", "--db", sqlite_url).output)
    assert [(t["timer_id"], t["race_id"]) for t in listed] == [("gate-1", 1)]
    assert "hmac_secret" not in listed[0]
    table = run("admin", "list-timers", "--db", sqlite_url)
    assert table.exit_code == 0 and "gate-1" in table.output
    unassigned = run("admin", "assign-timer", "gate-1", "--no-race", "--db", sqlite_url)
    assert unassigned.exit_code == 0 and "race None" in unassigned.output
