"""The single environment's step on Python floats (`sim.fastmath.SCALARS`) is the batched step, bit for bit.

`TimeTrialEnv` steps its one car with the simulator's code run on floats; `TimeTrialVectorEnv` runs the same
code on arrays. Here two simulators of one car get the same seed and actions, one stepped each way, and every
reward param, status, observation, reward and state value must be identical (not merely close), through
resets, reverse driving, domain randomisation (grip, steering trim, latency) and continuous actions.
"""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the environment)
from sim import dynamics
from sim.envs.setup import build_parts, run_step
from sim.fastmath import ARRAYS, SCALARS
from sim.measure import Measurements
from sim.reward.params import params_dicts
from tests.deepracer_files import CONTINUOUS_METADATA, REWARD_DIR

DERIVED = ("heading", "closest_waypoints", "track_width", "is_left_of_center", "is_crashed")
STATE = ("x_m", "y_m", "yaw_rad", "cos_yaw", "sin_yaw", "speed_mps", "steer_rad")


def _assert_same_params(one: Measurements, batch: Measurements, where: str) -> None:
    arrays = one.as_arrays()
    for field in dataclasses.fields(Measurements):
        if field.name in ("forward", "backward", "m"):
            continue
        got, want = getattr(arrays, field.name), getattr(batch, field.name)
        assert got.dtype.kind == want.dtype.kind, f"{where}: {field.name} {got.dtype} != {want.dtype}"
        np.testing.assert_array_equal(got, want, err_msg=f"{where}: {field.name}")
    for name in DERIVED:  # computed from the params in each kind
        np.testing.assert_array_equal(
            np.reshape(getattr(one, name), np.shape(getattr(batch, name))),
            getattr(batch, name),
            err_msg=f"{where}: {name}",
        )
    # DeepRacer dicts: the same keys, values and Python types
    d_one, d_batch = params_dicts(one)[0], params_dicts(batch)[0]
    assert list(d_one) == list(d_batch), where
    for key, value in d_batch.items():
        assert d_one[key] == value and type(d_one[key]) is type(value), f"{where}: {key}"


CONFIGS = {
    "default": {"track": "reinvent_base"},
    "reversed_randomized_continuous": {
        "track": "technical",
        "alternate_direction": True,
        "randomization": "strong",
        "action_space": str(CONTINUOUS_METADATA),
        "reward": "progress_rate",
    },
    "slow_control_rate_python_reward": {
        # 3 Hz: a step's half yaw change can pass 0.5 rad, where the exact trigonometry takes over
        "track": "hairpin",
        "control_rate_hz": 3.0,
        "reverse": True,
        "reward": str(REWARD_DIR / "progress_gain.py"),
    },
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_the_float_step_equals_the_array_step_bit_for_bit(config: str) -> None:
    kwargs = CONFIGS[config]
    fast, batched = build_parts(1, **kwargs), build_parts(1, **kwargs)
    for parts in (fast, batched):
        parts.sim.seed(0, np.random.default_rng(11))
        parts.sim.reset(np.array([0]))
    space = fast.actions.gym_space()
    space.seed(5)
    ends = 0
    for k in range(400):
        action = space.sample()
        obs_one, reward_one, out_one = run_step(fast, action, SCALARS)
        obs_b, rewards_b, out_b = run_step(batched, np.asarray(action)[None, ...], ARRAYS)
        where = f"{config} step {k}"
        _assert_same_params(out_one.params, out_b.params, where)
        assert out_one.status == out_b.status[0], where
        assert bool(out_one.terminated) == bool(out_b.terminated[0]), where
        assert bool(out_one.truncated) == bool(out_b.truncated[0]), where
        assert reward_one == rewards_b[0], where
        np.testing.assert_array_equal(obs_one, obs_b[0], err_msg=where)
        for name in STATE:
            np.testing.assert_array_equal(
                getattr(fast.sim.state, name), getattr(batched.sim.state, name), err_msg=f"{where}: {name}"
            )
        np.testing.assert_array_equal(fast.sim.prev_progress, batched.sim.prev_progress, err_msg=where)
        np.testing.assert_array_equal(
            fast.sim.counters.reversed_steps, batched.sim.counters.reversed_steps, err_msg=where
        )
        np.testing.assert_array_equal(
            fast.sim.counters.immobile_steps, batched.sim.counters.immobile_steps, err_msg=where
        )
        if out_b.terminated[0] or out_b.truncated[0]:
            ends += 1
            for parts in (fast, batched):
                parts.sim.reset(np.array([0]))
            _assert_same_params(fast.sim.standing(0, SCALARS), batched.sim.standing(np.array([0])), where)
    assert ends >= 3  # random actions: several episodes, so resets were crossed too


def test_large_yaw_changes_use_the_same_trigonometry_in_both_kinds() -> None:
    for h in (-1.3, -0.5000001, 0.2, 0.5, 0.73, 2.9):
        got = dynamics.small_angle_trig(h, SCALARS)
        want = dynamics.small_angle_trig(np.array([h]))
        assert [type(v) for v in got] == [float, float, float]
        assert list(got) == [float(w[0]) for w in want], h


def test_the_single_env_builds_its_track_tables_before_the_first_step() -> None:
    env = gym.make("pitlane/TimeTrial-v0", track="oval")
    # built (or read from the track cache) by make(): not inside the user's first timed steps
    assert "width_table" in vars(env.unwrapped.sim.forward)
    obs, _ = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(0)
    assert obs.shape == (11,) and obs.dtype == np.float32
    assert type(reward) is float and type(terminated) is bool and type(truncated) is bool
    assert type(info["progress"]) is float


def test_bench_sim_reports_the_single_env_beside_the_batched_rows() -> None:
    from typer.testing import CliRunner

    from pitlane.commands.bench import app

    args = ["sim", "-o", "state", "--reward", "batched", "-n", "1", "--seconds", "0.1", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    apis = [(row["api"], row["n_envs"]) for row in data["results"]]
    assert apis == [("gymnasium.make", 1), ("vector env", 1)]
    assert all(row["steps"] > 0 and row["steps_per_cpu_s"] > 0 for row in data["results"])
    assert data["single_env_vs_vector_1"] > 0
    assert data["machine"]["cpu"]
