"""The gymnasium environments: API conformance, determinism, batched == single, autoreset, errors."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import sim
from sim.envs.time_trial import TimeTrialEnv
from sim.envs.vector import TimeTrialVectorEnv
from sim.errors import EnvConfigError, RewardFunctionError, TrackError
from sim.rules import EpisodeStatus
from tests.deepracer_files import CONTINUOUS_METADATA, REWARD_DIR

ENV_ID = "pitlane/TimeTrial-v0"


@pytest.fixture(scope="module")
def continuous_metadata():
    return CONTINUOUS_METADATA


@pytest.mark.parametrize("env_id", sim.ENV_IDS)
def test_check_env_passes_without_warnings_discrete(env_id: str) -> None:
    env = gym.make(env_id, track="oval")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)


def test_check_env_passes_without_warnings_continuous(continuous_metadata) -> None:
    env = gym.make(ENV_ID, track="reinvent_base", action_space=str(continuous_metadata))
    assert isinstance(env.action_space, gym.spaces.Box)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)


def test_make_vec_uses_the_native_batched_env() -> None:
    envs = gym.make_vec(ENV_ID, num_envs=8, vectorization_mode="vector_entry_point", track="oval")
    assert isinstance(envs.unwrapped, TimeTrialVectorEnv)
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    obs, _info = envs.reset(seed=0)
    assert obs.shape == (8, 11) and obs.dtype == np.float32
    assert envs.observation_space.contains(obs)


def rollout(env, actions) -> tuple[np.ndarray, np.ndarray]:
    observations, rewards = [], []
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            obs, _ = env.reset()
        observations.append(obs)
        rewards.append(reward)
    return np.array(observations), np.array(rewards)


def test_same_seed_same_run() -> None:
    actions = np.random.default_rng(3).integers(0, 10, size=300)
    runs = []
    for _ in range(2):
        env = TimeTrialEnv(track="technical", start="round_robin")
        env.reset(seed=42)
        runs.append(rollout(env, actions))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_different_seeds_start_in_different_places() -> None:
    starts = set()
    for seed in range(8):
        env = TimeTrialEnv(track="oval")
        env.reset(seed=seed)
        starts.add(round(float(env.sim.start_ndist[0]), 6))
    assert len(starts) > 1


@pytest.mark.parametrize("reward", ["centerline", "python"])
def test_batched_env_equals_n_single_envs(reward: str) -> None:
    if reward == "python":
        reward = str(REWARD_DIR / "progress_gain.py")
    n, steps, seed = 4, 250, 7
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 10, size=(steps, n))
    batched = TimeTrialVectorEnv(num_envs=n, track="reinvent_base", reward=reward, alternate_direction=True)
    obs_b, _ = batched.reset(seed=seed)
    singles = [TimeTrialEnv(track="reinvent_base", reward=reward, alternate_direction=True) for _ in range(n)]
    obs_s = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(singles)])
    np.testing.assert_allclose(obs_b, obs_s, rtol=0, atol=1e-9)
    ends = 0
    for k in range(steps):
        obs_b, rew_b, term_b, trunc_b, info = batched.step(actions[k])
        for i, env in enumerate(singles):
            obs, rew, term, trunc, _ = env.step(actions[k, i])
            assert (term, trunc) == (term_b[i], trunc_b[i]), f"car {i} step {k}"
            assert rew == pytest.approx(rew_b[i], abs=1e-9)
            if term or trunc:
                ends += 1
                np.testing.assert_allclose(info["final_obs"][i], obs, atol=1e-9)
                obs, _ = env.reset()
            np.testing.assert_allclose(obs_b[i], obs, atol=1e-9)
    assert ends >= n  # random actions: every car ended at least one episode on the way


def test_same_step_autoreset_reports_the_final_observation() -> None:
    env = TimeTrialVectorEnv(num_envs=3, track="oval", start="start_line")
    obs, _ = env.reset(seed=0)
    start_obs = obs[0].copy()
    hard_left = np.array([8, 9, 9])  # 30 deg left: leaves the road within a few seconds
    for _ in range(200):
        obs, _, terminated, truncated, info = env.step(hard_left)
        if (terminated | truncated).any():
            break
    done = terminated | truncated
    assert info["_final_obs"].tolist() == done.tolist()
    i = int(np.flatnonzero(done)[0])
    assert info["final_info"]["episode_status"][i] == EpisodeStatus.OFF_TRACK
    assert info["final_obs"][i][0] > 0.5  # the car was moving when it went off
    np.testing.assert_array_equal(obs[i], start_obs)  # and the returned obs is the next episode's first


def test_single_env_info_reports_status_progress_and_params() -> None:
    env = TimeTrialEnv(track="oval", info_params=True)
    _, info = env.reset(seed=1)
    assert info["episode_status"] == "in_progress"
    _, _, _, _, info = env.step(4)
    assert info["params"]["steps"] == 2.0
    assert set(info["params"]) >= {"x", "y", "progress", "waypoints", "closest_waypoints", "track_width"}


def test_reward_file_module_state_is_per_car() -> None:
    path = REWARD_DIR / "progress_gain.py"
    env = TimeTrialVectorEnv(num_envs=2, track="oval", reward=str(path), start="start_line")
    env.reset(seed=0)
    # car 0 drives, car 1 crawls: shared module state would mix their progress
    for _ in range(15):
        _, rewards, *_ = env.step(np.array([5, 4]))
    # each car's reward is its own progress gain (x10): about 2 m/s and 1 m/s over one step
    gain_per_step = 10 * 100 / (15 * env.sim.forward.length_m)
    assert rewards == pytest.approx([2.0 * gain_per_step, 1.0 * gain_per_step], rel=0.1)


def test_a_broken_reward_file_stops_with_its_name_line_and_params() -> None:
    path = REWARD_DIR / "broken_returns_none.py"
    env = TimeTrialEnv(track="reinvent_base", reward=str(path))
    env.reset(seed=0)
    with pytest.raises(RewardFunctionError) as info:
        for _ in range(300):
            _, _, terminated, truncated, _ = env.step(8)
            if terminated or truncated:
                env.reset()
    message = str(info.value)
    assert "broken_returns_none.py" in message and "line 3" in message and "None" in message
    assert "distance_from_center" in message


def test_a_batched_reward_returning_nan_is_refused() -> None:
    from sim.reward.builtin import batched_reward

    @batched_reward
    def nan_reward(p):
        return np.full(p.n, np.nan)

    env = TimeTrialEnv(track="oval", reward=nan_reward)
    env.reset(seed=0)
    with pytest.raises(RewardFunctionError, match="nan_reward"):
        env.step(0)


def test_plain_callable_rewards_get_deepracer_dicts() -> None:
    seen = []

    def reward_function(params):
        seen.append(params)
        return params["speed"]

    env = TimeTrialEnv(track="oval", reward=reward_function)
    env.reset(seed=0)
    _, reward, *_ = env.step(9)
    assert reward == 2.0 and seen[0]["steering_angle"] == 30.0


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"track": "no_such_track"}, TrackError, "no_such_track"),
        ({"observation": "radar"}, EnvConfigError, "observation"),
        ({"time_limit_s": -1}, EnvConfigError, "time_limit_s"),
        ({"start": "anywhere"}, EnvConfigError, "start"),
        ({"top_speed": 3}, EnvConfigError, "top_speed"),
        ({"reward": "no_such_reward"}, RewardFunctionError, "no_such_reward"),
        ({"car": "no_such_car"}, ValueError, "no_such_car"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, text) -> None:
    with pytest.raises(error, match=text):
        TimeTrialEnv(**kwargs)


def test_vector_env_seeds_car_i_like_a_single_env_seeded_seed_plus_i() -> None:
    env = TimeTrialVectorEnv(num_envs=3, track="oval")
    env.reset(seed=100)
    single = TimeTrialEnv(track="oval")
    single.reset(seed=102)
    assert env.sim.start_ndist[2] == single.sim.start_ndist[0]
