"""Evaluation of a scripted policy under time-trial rules: clean laps, an off-track with its reset and
penalty, the reset limit, the PNG and JSON outputs, and the simtrace writer (read back by our reader and,
when installed, by deepracer-utils)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contracts.race import RaceRules
from sim.drivers import PurePursuitDriver
from sim.envs.setup import EnvParts
from sim.evaluation import EvaluationResult, SimPolicy, evaluate, pure_pursuit_policy
from sim.simtrace import SIMTRACE_COLUMNS, read_simtrace

TRACK = "reinvent_base"
LENGTH_M = 17.71
SPEED_MPS = 1.5
#: a continuous space, so the pure-pursuit speed is driven exactly
CONTINUOUS = {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.5, "high": 2.0}}
#: reinvent_base's first left curve starts about 3 m after the start line
CURVE_M = (3.2, 6.0)


def drive_off_in_the_curve(times: int = 1) -> SimPolicy:
    """Pure pursuit, except that it drives straight on into the first curve (`times` times, then behaves)."""

    def make(parts: EnvParts) -> Any:
        driver = PurePursuitDriver(parts.sim, speed_mps=SPEED_MPS)
        car = np.array([0])
        left = {"times": times, "moving": False}

        def policy(_obs: Any) -> Any:
            params = parts.sim.standing(car)
            speed = float(parts.sim.state.speed_mps[0])
            if left["moving"] and speed == 0.0:  # put back at rest: the off-track happened
                left["times"] -= 1
            left["moving"] = speed > 0.0
            steer, target = driver(params)
            if left["times"] > 0 and CURVE_M[0] < params.projection_distance[0] < CURVE_M[1]:
                steer = np.zeros(1)
            return parts.actions.encode_nearest(steer, target)[0]

        return policy

    return SimPolicy(make)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvaluationResult, Path]:
    out = tmp_path_factory.mktemp("eval")
    result = evaluate(
        pure_pursuit_policy(speed_mps=SPEED_MPS), track=TRACK, laps=3, action_space=CONTINUOUS, out_dir=out
    )
    return result, out


def test_pure_pursuit_drives_three_clean_laps(clean: tuple[EvaluationResult, Path]) -> None:
    result, _ = clean
    assert result.ended == "laps_done"
    assert result.summary["completed_laps"] == 3
    assert result.summary["completion_rate"] == 1.0
    assert result.summary["offtrack"] == 0
    nominal_s = LENGTH_M / SPEED_MPS
    for record in result.laps:
        assert record.valid and record.offtrack == 0 and record.lap_time_s == record.raw_time_s
        # a little over length / speed: the start from rest, and the inside of the curves is shorter
        assert 0.9 * nominal_s < record.lap_time_s < 1.25 * nominal_s
    # laps 2 and 3 start at speed (flying laps): not slower than the standing first lap
    assert result.laps[1].lap_time_s <= result.laps[0].lap_time_s
    assert result.mean_progress == 100.0
    assert 0.0 < result.steering_smoothness_deg < 10.0
    assert len(result.trajectory["x"]) == round(sum(r.raw_time_s for r in result.laps) * 15)


def test_off_track_is_reset_and_penalised_inside_the_lap() -> None:
    rules = RaceRules(laps=1, offtrack_penalty_s=2.0)
    result = evaluate(drive_off_in_the_curve(), track=TRACK, rules=rules, action_space=CONTINUOUS)
    assert result.ended == "laps_done"
    (record,) = result.laps
    assert (record.offtrack, record.resets, record.valid) == (1, 1, True)
    assert record.lap_time_s == pytest.approx(record.raw_time_s + 2.0)
    statuses = list(result.trajectory["status"])
    i = statuses.index("off_track")
    # put back near where it left, at rest, and driving on in the same lap
    assert result.trajectory["lap"][i + 1] == 0
    assert result.trajectory["speed"][i + 1] < 0.2
    assert abs(result.trajectory["progress"][i + 1] - result.trajectory["progress"][i]) < 3.0
    assert result.summary["best_lap_s"] == pytest.approx(record.lap_time_s)


def test_max_resets_ends_the_evaluation() -> None:
    rules = RaceRules(laps=3, max_resets=1)
    result = evaluate(drive_off_in_the_curve(times=5), track=TRACK, rules=rules, action_space=CONTINUOUS)
    assert result.ended == "max_resets"
    (record,) = result.laps
    assert not record.completed and not record.valid and record.resets == 2
    assert result.summary["completed_laps"] == 0
    assert result.summary["completion_rate"] == 0.0
    assert result.rank_key is None
    assert 0.0 < result.mean_progress < 50.0


def test_plot_is_written_and_not_blank(clean: tuple[EvaluationResult, Path], tmp_path: Path) -> None:
    import matplotlib.image

    result, _ = clean
    path = result.plot(tmp_path / "eval.png")
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert np.std(image[..., :3]) > 0.05  # drawn, not a flat canvas


def test_json_has_the_required_keys(clean: tuple[EvaluationResult, Path]) -> None:
    result, _ = clean
    data = json.loads(result.to_json())
    required = {"laps", "completed_laps", "best_lap_s", "mean_lap_s", "completion_rate"}
    assert required <= set(data)
    assert {"mean_progress", "steering_smoothness_deg", "offtrack", "resets"} <= set(data)
    assert {"lap_time_s", "offtrack", "resets"} <= set(data["laps"][0])


def test_simtrace_is_written_and_read_back(clean: tuple[EvaluationResult, Path]) -> None:
    result, out = clean
    path = out / "evaluation-simtrace" / "0-iteration.csv"
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(SIMTRACE_COLUMNS)
    trace = read_simtrace(path)
    # DeepRacer's evaluation layout: a prepare row (step 1, the car at the start), then every driven step
    assert trace.status[0] == "prepare" and trace.steps[0] == 1.0 and trace.tstamp_s[0] == 0.0
    assert len(trace) == len(result.trajectory["x"]) + 1
    np.testing.assert_allclose(trace.x_m[1:], result.trajectory["x"], atol=1e-4)
    np.testing.assert_allclose(trace.progress[1:], result.trajectory["progress"], atol=1e-4)
    assert sorted(set(trace.episode.tolist())) == [0.0, 1.0, 2.0]
    # the laps run on: steps never restart; only the race's last row completes it, the others end at 100 %
    assert np.all(np.diff(trace.steps) == 1)
    assert trace.status.count("lap_complete") == 1 and trace.status[-1] == "lap_complete"
    assert int(np.sum(trace.progress == 100.0)) == 3
    assert np.all(trace.track_len_m == pytest.approx(LENGTH_M, abs=0.01))
    # the file's laps are the evaluation's laps
    lap_times = [episode.lap_time_s for episode in trace.episodes()]
    assert lap_times == pytest.approx([lap.lap_time_s for lap in result.laps], abs=1e-3)


def test_discrete_actions_are_written_as_indices(tmp_path: Path) -> None:
    result = evaluate(
        pure_pursuit_policy(speed_mps=1.0), track=TRACK, laps=1, out_dir=tmp_path, max_time_s=3.0
    )
    assert result.ended == "max_time"
    rows = (tmp_path / "evaluation-simtrace" / "0-iteration.csv").read_text(encoding="utf-8").splitlines()
    fields = rows[2].split(",")  # rows[1] is the prepare row
    assert len(fields) == 19 and fields[7].isdigit() and fields[9] in ("True", "False")


def test_deepracer_utils_parses_the_simtrace(clean: tuple[EvaluationResult, Path]) -> None:
    pytest.importorskip(
        "deepracer.logs", reason="deepracer-utils is not installed (pip install deepracer-utils)"
    )
    import pandas as pd
    from deepracer.logs import SimulationLogsIO

    _, out = clean
    path = out / "evaluation-simtrace" / "0-iteration.csv"
    df = pd.read_csv(path)  # how DeepRacerLog reads simtrace CSVs
    assert list(df.columns) == list(SIMTRACE_COLUMNS)
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    parsed = SimulationLogsIO.convert_to_pandas(lines)  # the SIM_TRACE_LOG line parser
    assert len(parsed) == len(df)
    assert parsed["episode_status"].iloc[-1] == "lap_complete"


def test_most_laps_in_drives_until_the_window_closes() -> None:
    rules = RaceRules(ranking="most_laps_in", time_window_s=20.0)
    result = evaluate(
        pure_pursuit_policy(speed_mps=SPEED_MPS), track=TRACK, rules=rules, action_space=CONTINUOUS
    )
    assert result.ended == "time_window"
    first, unfinished = result.laps
    assert first.valid and not unfinished.completed
    assert first.lap_time_s + unfinished.lap_time_s == pytest.approx(20.0, abs=0.1)
    assert result.rank_key == (-1.0, pytest.approx(first.lap_time_s))


def test_simtrace_writer_rows_for_a_batch(tmp_path: Path) -> None:
    from sim.envs.setup import build_parts
    from sim.simtrace import SimTraceWriter, closest_waypoint

    parts = build_parts(2, track=TRACK, start="start_line", action_space=CONTINUOUS)
    parts.sim.is_reversed[1] = True  # one car each way
    parts.sim.reset(np.array([0, 1]))
    params = parts.sim.step(np.array([5.0, -7.5]), np.array([1.0, 2.0])).params
    waypoint = closest_waypoint(params)
    for i in range(2):  # DeepRacer: the next waypoint when nearer than the previous, else the previous
        wps = (params.backward if params.is_reversed[i] else params.forward).waypoints
        prev, nxt = params.closest_waypoints[i]
        dist = [np.hypot(*(wps[k] - (params.x[i], params.y[i]))) for k in (prev, nxt)]
        assert waypoint[i] == (nxt if dist[1] < dist[0] else prev)
    path = tmp_path / "trace.csv"
    with SimTraceWriter(path) as writer:
        writer.write(
            params, np.array([0, 2]), np.zeros((2, 2)), np.array([0.5, 1e-3]), episode=np.array([3, 4])
        )
    fields = [row.split(",") for row in path.read_text(encoding="utf-8").splitlines()[1:]]
    assert [f[7] for f in fields] == ['"[5.00 1.00]"', '"[-7.50 2.00]"']
    assert [f[9] for f in fields] == ["False", "True"]
    assert [f[15] for f in fields] == ["in_progress", "off_track"]
    assert fields[1][8] == "0.0010" and fields[0][5] == "5.00" and fields[1][6] == "2.00"
    trace = read_simtrace(path)
    np.testing.assert_array_equal(trace.episode, [3, 4])
    np.testing.assert_allclose(trace.yaw_deg, np.round(params.heading, 4))
    assert trace.status == ("in_progress", "off_track")


def test_evaluation_reports_the_physical_limit() -> None:
    from sim.evaluation import evaluate, pure_pursuit_policy
    from sim.raceline import race_line
    from sim.tracks import load_track

    result = evaluate(pure_pursuit_policy(speed_mps=1.5), track="reinvent_base", laps=1)
    limit = race_line(load_track("reinvent_base"), "deepracer").lap_time_s
    assert result.summary["limit_lap_s"] == pytest.approx(limit)
    # a 1.5 m/s centre-line driver is far slower than the limit
    assert result.summary["best_over_limit"] == pytest.approx(result.summary["best_lap_s"] / limit)
    assert result.summary["best_over_limit"] > 2.0
