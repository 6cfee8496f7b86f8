"""Observation kinds through the environments: spaces, check_env, Dict combinations, repeatable noise."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from sim.envs.time_trial import TimeTrialEnv
from sim.envs.vector import TimeTrialVectorEnv
from sim.errors import EnvConfigError
from sim.observations import parse_observation

LIDAR_KINDS = ["lidar", "sector_lidar", "discretized_sector_lidar", "scan"]


def test_parse_accepts_deepracer_sensor_names_and_combinations() -> None:
    assert parse_observation(["FRONT_FACING_CAMERA", "LIDAR"]) == ("camera", "lidar")
    assert parse_observation("state+SECTOR_LIDAR") == ("state", "sector_lidar")
    with pytest.raises(EnvConfigError, match="at most one lidar"):
        parse_observation("lidar+scan")
    with pytest.raises(EnvConfigError, match="sonar"):
        parse_observation("camera+sonar")


@pytest.mark.parametrize("kind", LIDAR_KINDS)
def test_check_env_passes_for_every_lidar_kind(kind: str) -> None:
    env = TimeTrialEnv(track="oval", observation=kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


def test_state_plus_lidar_is_a_dict() -> None:
    env = TimeTrialEnv(track="oval", observation="state+lidar")
    assert isinstance(env.observation_space, spaces.Dict)
    assert set(env.observation_space.spaces) == {"state", "lidar"}
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


def test_batched_lidar_with_noise_equals_single_envs() -> None:
    n, seed = 3, 5
    kwargs = {"track": "oval", "observation": "state+lidar", "randomization": "light"}
    batched = TimeTrialVectorEnv(num_envs=n, **kwargs)
    obs_b, _ = batched.reset(seed=seed)
    singles = [TimeTrialEnv(**kwargs) for _ in range(n)]
    firsts = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    for i in range(n):
        np.testing.assert_allclose(obs_b["lidar"][i], firsts[i]["lidar"], atol=1e-6)
    assert (batched.sim.randomization.lidar_noise_m > 0).all()  # every car's scans are noisy
    actions = np.random.default_rng(2).integers(0, 10, size=(60, n))
    for k in range(len(actions)):
        obs_b, *_ = batched.step(actions[k])
        for i, env in enumerate(singles):
            obs, _, term, trunc, _ = env.step(actions[k, i])
            if term or trunc:
                obs, _ = env.reset()
            np.testing.assert_allclose(obs_b["lidar"][i], obs["lidar"], atol=1e-6)
            np.testing.assert_allclose(obs_b["state"][i], obs["state"], atol=1e-9)


def test_same_seed_same_noisy_scans() -> None:
    scans = []
    for _ in range(2):
        env = TimeTrialEnv(track="oval", observation="lidar", randomization="strong")
        env.reset(seed=9)
        scans.append(np.stack([env.step(4)[0] for _ in range(10)]))
    np.testing.assert_array_equal(scans[0], scans[1])


@pytest.mark.parametrize("kind", ["camera", "stereo_camera"])
def test_check_env_passes_for_camera_kinds(kind: str) -> None:
    env = TimeTrialEnv(track="oval", observation=kind)
    shape = (120, 160) if kind == "camera" else (120, 160, 2)
    assert env.observation_space.shape == shape and env.observation_space.dtype == np.uint8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


def test_camera_plus_lidar_is_deepracers_sensor_pair() -> None:
    env = TimeTrialEnv(track="oval", observation=["FRONT_FACING_CAMERA", "LIDAR"])
    assert set(env.observation_space.spaces) == {"camera", "lidar"}
    obs, _ = env.reset(seed=0)
    assert obs["camera"].shape == (120, 160) and obs["lidar"].shape == (64,)
    obs, *_ = env.step(4)
    assert env.observation_space.contains(obs)


def test_batched_camera_frames_equal_single_env_frames() -> None:
    n, seed = 2, 3
    batched = TimeTrialVectorEnv(num_envs=n, track="oval", observation="camera", randomization="light")
    obs_b, _ = batched.reset(seed=seed)
    singles = [TimeTrialEnv(track="oval", observation="camera", randomization="light") for _ in range(n)]
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(env.reset(seed=seed + i)[0], obs_b[i])
    for k in range(20):
        obs_b, *_ = batched.step(np.array([5, 4]))
        for i, env in enumerate(singles):
            obs, _, term, trunc, _ = env.step([5, 4][i])
            if term or trunc:
                obs, _ = env.reset()
            np.testing.assert_array_equal(obs, obs_b[i], err_msg=f"car {i} step {k}")


def test_rendering_shows_the_lidar_along_its_real_beam_angles() -> None:
    env = TimeTrialEnv(track="oval", observation="lidar", render_mode="rgb_array")
    env.reset(seed=0)
    env.step(4)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3
    (inset,) = env._viewer.insets
    sensor = env._parts.observe.sensor("lidar")
    assert inset.kind == "lidar"
    np.testing.assert_array_equal(
        inset.angles_rad, sensor.beam_angles_rad
    )  # DeepRacer's lidar looks backwards
    env.close()
