"""Simtrace files replay episode by episode: the reader splits rows into episodes by the `episode` column (or a
fall of `steps`), knows whether the file holds an episode from its start, and gives a lap time only for a whole
episode that ends `lap_complete`. The regression: a file beginning with the last rows of the previous episode
(which then completed its lap) showed "best lap 0.07 s"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.tracks import load_track
from sim.viewer import ReplaySession, SimTraceError, best_lap_s, read_simtrace

HEADER = (
    "episode,steps,X,Y,yaw,steer,throttle,action,reward,done,all_wheels_on_track,progress,closest_waypoint,"
    "track_len,tstamp,episode_status,pause_duration,obstacle_crash_counter,wall_clock"
)
DT_S = 1.0 / 15.0


def rows(
    episode: int | None, steps: range, t0_s: float, *, last_status: str = "in_progress", pause_s: float = 0.0
) -> list[str]:
    """Rows of one episode driving along reinvent_base's first straight: steps, time stamps at 15 Hz."""
    track = load_track("reinvent_base")
    out = []
    for k, step in enumerate(steps):
        x, y, yaw = track.pose_at(0.5 + 0.1 * k)
        last = k == len(steps) - 1
        status = last_status if last else "in_progress"
        progress = 100.0 if status == "lap_complete" else 1.0 + k
        ep = "" if episode is None else str(episode)
        out.append(
            f"{ep},{step},{x:.4f},{y:.4f},{np.degrees(yaw):.4f},0.00,2.00,1,1.0,{last},True,{progress:.4f},1,"
            f"17.71,{t0_s + k * DT_S:.4f},{status},{pause_s if last else 0.0:.2f},0,1700000000.0"
        )
    return out


def write(tmp_path: Path, lines: list[str], name: str = "1-iteration.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_file_that_begins_inside_an_episode_has_no_lap_from_it(tmp_path: Path) -> None:
    # the file's first two rows are the end of episode 7 (its lap was completed); then episode 8 laps in 6.0 s
    tail = rows(7, range(95, 97), 30.0, last_status="lap_complete")
    whole = rows(8, range(2, 92), 30.2, last_status="lap_complete")
    trace = read_simtrace(write(tmp_path, tail + whole))
    first, second = trace.episodes()
    assert (first.number, first.start, first.stop, first.whole) == (7, 0, 2, False)
    assert first.lap_time_s is None and first.status == "lap_complete"
    assert (second.number, second.whole, len(second)) == (8, True, 90)
    # 90 rows from step 2: the lap took 90 control steps (the first row is one step after the start)
    assert second.lap_time_s == pytest.approx(90 * DT_S, abs=2e-4)
    assert best_lap_s(trace.episodes()) == second.lap_time_s


def test_the_replay_never_shows_a_partial_episode_as_a_lap(tmp_path: Path) -> None:
    tail = rows(7, range(95, 97), 30.0, last_status="lap_complete")
    whole = rows(8, range(2, 40), 30.2, last_status="off_track")
    session = ReplaySession(read_simtrace(write(tmp_path, tail + whole)), load_track("reinvent_base"))
    session.advance()
    session.advance()
    hud = dict(session.hud())
    assert hud["best lap"] == "-" and session.laps == 0
    assert "time (partial)" in hud
    assert len(session.trails[0]) == 2
    session.advance()  # episode 8 begins: its own trail, its own clock
    assert len(session.trails[0]) == 1
    assert dict(session.hud())["time"] == "0.07 s"
    while session.advance():
        pass
    assert session.best_lap_s is None and dict(session.hud())["best lap"] == "-"


def test_laps_of_whole_episodes_count_and_the_best_is_shown(tmp_path: Path) -> None:
    lines = rows(0, range(2, 92), 0.0, last_status="lap_complete") + rows(
        1, range(2, 80), 6.1, last_status="lap_complete"
    )
    session = ReplaySession(read_simtrace(write(tmp_path, lines)), load_track("reinvent_base"))
    while session.advance():
        pass
    assert session.laps == 2
    assert session.best_lap_s == pytest.approx(78 * DT_S, abs=2e-4)
    assert dict(session.hud())["best lap"] == "5.20 s"


def test_episodes_split_on_a_fall_of_steps_without_an_episode_column(tmp_path: Path) -> None:
    lines = rows(None, range(2, 10), 0.0, last_status="off_track") + rows(
        None, range(2, 6), 0.6, last_status="lap_complete"
    )
    episodes = read_simtrace(write(tmp_path, lines)).episodes()
    assert [(e.number, e.start, e.stop, e.whole) for e in episodes] == [
        (None, 0, 8, True),
        (None, 8, 12, True),
    ]
    assert episodes[1].lap_time_s == pytest.approx(4 * DT_S, abs=2e-4)


def test_an_evaluation_lap_counts_its_off_track_penalty(tmp_path: Path) -> None:
    # DeepRacer's clock runs on while the car is held: pause_duration on the off-track row, then a 2 s jump
    held = rows(0, range(2, 32), 0.0, last_status="off_track", pause_s=2.0)
    lines = held + rows(0, range(32, 62), 30 * DT_S + 2.0, last_status="lap_complete")
    (episode,) = read_simtrace(write(tmp_path, lines)).episodes()
    assert episode.lap_time_s == pytest.approx(60 * DT_S + 2.0, abs=2e-4)


def test_deepracer_evaluation_laps_run_on_in_one_file(tmp_path: Path) -> None:
    """DeepRacer-for-Cloud's evaluation: a `prepare` row, then laps as episodes 0, 1, 2 whose steps and clock
    run on; a lap that is not the last ends `in_progress` at progress 100."""

    def lap(episode: int, first_step: int, t0_s: float, n: int, status: str) -> list[str]:
        out = rows(episode, range(first_step, first_step + n), t0_s, last_status=status)
        fields = out[-1].split(",")
        fields[11] = "100"  # progress column
        return [*out[:-1], ",".join(fields)]

    prepare = rows(0, range(1, 2), 0.0)[0].replace("in_progress", "prepare")
    first = lap(0, 2, DT_S, 40, "in_progress")
    second = lap(1, 42, 41 * DT_S, 30, "in_progress")
    third = lap(2, 72, 71 * DT_S, 35, "lap_complete")
    episodes = read_simtrace(
        write(tmp_path, [prepare, *first, *second, *third], "0-iteration.csv")
    ).episodes()
    assert [e.whole for e in episodes] == [True, True, True]
    assert [e.lap_time_s for e in episodes] == pytest.approx([40 * DT_S, 30 * DT_S, 35 * DT_S], abs=2e-4)


def test_one_episode_can_be_replayed(tmp_path: Path) -> None:
    lines = rows(3, range(2, 12), 0.0, last_status="off_track") + rows(4, range(2, 7), 0.7)
    trace = read_simtrace(write(tmp_path, lines))
    session = ReplaySession(trace, load_track("reinvent_base"), episode=4)
    assert len(session) == 5
    assert session.advance() and dict(session.hud())["episode / step"] == "4 / 2"
    with pytest.raises(SimTraceError, match=r"no episode 9 \(episodes in the file: 3-4\)"):
        ReplaySession(trace, load_track("reinvent_base"), episode=9)
