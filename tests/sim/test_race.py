"""Race rules on scripted lap lists: penalties inside the lap time, the four ranking methods, and the cases
with too few laps to rank."""

from __future__ import annotations

import pytest

from contracts.race import (
    LapRecord,
    RaceRules,
    lap_time_with_penalties,
    make_lap,
    rank_key,
    sortable,
    summarise,
)


def lap(t: float, *, offtrack: int = 0, valid: bool = True, rules: RaceRules | None = None) -> LapRecord:
    rules = rules or RaceRules()
    record = make_lap(t, offtrack, offtrack, rules)
    return (
        record if valid else LapRecord(record.lap_time_s, t, offtrack, offtrack, completed=False, valid=False)
    )


def test_penalties_are_counted_inside_the_lap_time() -> None:
    console, league = RaceRules(offtrack_penalty_s=2.0), RaceRules(offtrack_penalty_s=5.0)
    assert lap_time_with_penalties(10.0, 2, console) == pytest.approx(14.0)
    assert lap_time_with_penalties(10.0, 2, league) == pytest.approx(20.0)
    record = make_lap(10.0, 1, 1, console)
    assert (record.lap_time_s, record.raw_time_s, record.valid) == (pytest.approx(12.0), 10.0, True)


def test_best_lap_ranks_the_fastest_valid_lap_with_its_penalty() -> None:
    rules = RaceRules(ranking="best_lap")
    laps = [lap(10.0, offtrack=1), lap(11.0), lap(9.0, valid=False)]
    assert rank_key(laps, rules) == (pytest.approx(11.0),)  # 10 s + 2 s penalty loses to a clean 11 s
    assert rank_key([lap(9.0, valid=False)], rules) is None
    assert rank_key([], rules) is None


def test_best_average_of_needs_consecutive_valid_laps() -> None:
    rules = RaceRules(ranking="best_average_of", ranked_laps=3)
    laps = [lap(10.0), lap(10.0), lap(9.0, valid=False), lap(12.0), lap(11.0), lap(13.0), lap(10.0)]
    # windows of three valid laps: (12, 11, 13) = 12 and (11, 13, 10) = 11.33; the invalid lap breaks 10, 10
    assert rank_key(laps, rules) == (pytest.approx(34.0 / 3.0),)
    assert rank_key([lap(10.0), lap(10.0), lap(9.0, valid=False), lap(10.0)], rules) is None
    assert rank_key([lap(10.0), lap(10.0)], rules) is None


def test_total_time_sums_the_first_n_laps_all_valid() -> None:
    rules = RaceRules(ranking="total_time", ranked_laps=3)
    assert rank_key([lap(10.0), lap(11.0, offtrack=1), lap(12.0), lap(5.0)], rules) == (pytest.approx(35.0),)
    assert rank_key([lap(10.0), lap(11.0)], rules) is None  # not enough laps
    assert rank_key([lap(10.0), lap(11.0, valid=False), lap(12.0)], rules) is None


def test_most_laps_in_counts_laps_finished_in_the_window() -> None:
    rules = RaceRules(ranking="most_laps_in", time_window_s=30.0)
    three = rank_key([lap(9.0), lap(9.0), lap(9.0), lap(9.0)], rules)  # the 4th ends at 36 s: outside
    two_fast = rank_key([lap(8.0), lap(8.0), lap(20.0)], rules)
    two_slow = rank_key([lap(9.0), lap(9.0, offtrack=1)], rules)  # penalties run the clock too
    assert three == (-3.0, pytest.approx(27.0))
    assert two_fast == (-2.0, pytest.approx(16.0))
    assert two_slow == (-2.0, pytest.approx(20.0))
    assert rank_key([lap(31.0)], rules) is None
    order = sorted([two_slow, None, three, two_fast], key=sortable)
    assert order == [three, two_fast, two_slow, None]


def test_per_lap_reset_limit_makes_a_lap_invalid() -> None:
    rules = RaceRules(max_resets=1, max_resets_scope="lap")
    assert make_lap(10.0, 1, 1, rules).valid
    assert not make_lap(10.0, 2, 2, rules).valid


def test_summary_has_the_reported_keys() -> None:
    laps = [lap(10.0, offtrack=1), lap(11.0), lap(4.0, valid=False)]
    summary = summarise(laps, laps_planned=3)
    assert summary["completed_laps"] == 2
    assert summary["best_lap_s"] == pytest.approx(11.0)
    assert summary["mean_lap_s"] == pytest.approx(11.5)
    assert summary["completion_rate"] == pytest.approx(2 / 3)
    assert [entry["offtrack"] for entry in summary["laps"]] == [1, 0, 0]
    assert {"lap_time_s", "offtrack", "resets"} <= set(summary["laps"][0])
    empty = summarise([])
    assert (empty["best_lap_s"], empty["mean_lap_s"], empty["completion_rate"]) == (None, None, 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"laps": 0},
        {"offtrack_penalty_s": -1.0},
        {"ranking": "fastest"},
        {"ranking": "most_laps_in"},
        {"max_resets": -1},
    ],
)
def test_bad_rules_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RaceRules(**kwargs)


def test_race_rules_import_without_gymnasium() -> None:
    # the league server imports the race rules and installs neither gymnasium nor torch
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['gymnasium'] = None; sys.modules['torch'] = None\n"
        "import contracts.race as r\n"
        "laps = [r.make_lap(10.0, offtrack=1, resets=1, rules=r.RaceRules())]\n"
        "print(r.summarise(laps)['best_lap_s'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "12.0"
