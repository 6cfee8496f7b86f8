"""The training callbacks (`trainer/callbacks.py`) and the vector env's per-step hook they read through
`BatchedVecEnv`. Short runs on the oval: about 15 s."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from sim.core import StepOutcome
from sim.envs.vector import TimeTrialVectorEnv
from trainer.config import ONE_TRACK, RunConfig
from trainer.train import train
from trainer.vec_env import BatchedVecEnv


def short_config(**kwargs: object) -> RunConfig:
    data: dict[str, object] = {
        **ONE_TRACK,
        "track": "oval",
        "n_envs": 8,
        "total_steps": 200_000,  # a stop condition ends these runs long before
        "eval_every_steps": 100_000,
        "checkpoint_every_steps": 100_000,
        "eval_laps": 1,
        "time_limit_s": 2.0,
        "seed": 5,
    }
    return RunConfig.model_validate({**data, **kwargs})


def last_metrics_row(run: Path) -> dict[str, str]:
    with (run / "metrics.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))[-1]


def test_step_hook_gets_each_steps_measured_params() -> None:
    env = TimeTrialVectorEnv(num_envs=4, track="oval", time_limit_s=1.0)
    seen: list[StepOutcome] = []
    env.step_hook = seen.append
    env.reset(seed=0)
    env.action_space.seed(0)
    for step in range(1, 31):  # 1 s at 15 Hz: the time limit ends every episode within these steps
        _, _, terminated, truncated, infos = env.step(env.action_space.sample())
        assert len(seen) == step
        outcome = seen[-1]
        assert outcome.params.x.shape == (4,)
        np.testing.assert_array_equal(outcome.status, infos["episode_status"])
        np.testing.assert_array_equal(outcome.terminated | outcome.truncated, terminated | truncated)


def test_batched_vec_env_traces_car0_through_the_hook(tmp_path: Path) -> None:
    from sim.simtrace import SimTraceWriter, read_simtrace

    vec = BatchedVecEnv(TimeTrialVectorEnv(num_envs=4, track="oval", time_limit_s=1.0), trace_car0=True)
    assert vec.env.step_hook is not None
    vec.car0_trace = SimTraceWriter(tmp_path / "0-iteration.csv")
    vec.reset()
    vec.env.action_space.seed(0)
    for _ in range(40):
        vec.step(vec.env.action_space.sample())
    vec.car0_trace.close()
    trace = read_simtrace(tmp_path / "0-iteration.csv")
    episodes = trace.episodes()
    assert len(episodes) >= 2  # the 1 s limit ended car 0's first episode
    # one row a step, car 0 only, and DeepRacer's prepare row (step 1, at the start) opening each episode
    assert [trace.status[e.start] for e in episodes] == ["prepare"] * len(episodes)
    assert len(trace) == 40 + len(episodes)
    assert [e.number for e in episodes] == list(range(len(episodes)))


def test_max_episodes_stops_the_run(tmp_path: Path) -> None:
    result = train(short_config(stop={"max_episodes": 12}), tmp_path / "run", progress=False)
    assert result.stopped_by == "max_episodes"
    assert 12 <= result.episodes < 12 + 8  # all cars together; the stop comes in the step that reaches it
    assert result.steps < 200_000
    assert int(float(last_metrics_row(result.out_dir)["episodes"])) == result.episodes
    assert (result.out_dir / "best.zip").is_file()  # shorter than one evaluation period: evaluated at the end


def test_mean_episode_reward_stops_after_100_episodes(tmp_path: Path) -> None:
    # A threshold every return reaches: the stop waits for the window of the last 100 episodes to fill.
    result = train(short_config(stop={"mean_episode_reward": -1e9}), tmp_path / "run", progress=False)
    assert result.stopped_by == "mean_episode_reward"
    assert 100 <= result.episodes < 100 + 8
