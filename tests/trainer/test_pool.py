"""The training pool: cars split over tracks and directions, one SB3 VecEnv of one batched simulator per pool
member, seeded as SB3 promises (car i gets seed + i), car 0 the simtrace car on the run's own track."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecEnv

from trainer.config import RunConfig
from trainer.pool import pool_members, pool_note, training_vec_env
from trainer.vec_env import BatchedVecEnv, PooledVecEnv


def test_cars_are_split_evenly_the_first_members_taking_the_rest() -> None:
    config = RunConfig(track="oval", track_pool=["hairpin", "oval", "tiny_loop"], both_directions=True)
    assert config.training_tracks == ["oval", "hairpin", "tiny_loop"]  # the track once
    members = pool_members(config, 8)
    assert [(t, r) for t, r, _ in members] == [
        ("oval", False), ("oval", True), ("hairpin", False), ("hairpin", True), ("tiny_loop", False),
        ("tiny_loop", True),
    ]  # fmt: skip
    assert [n for *_, n in members] == [2, 2, 1, 1, 1, 1]
    assert pool_note(config, 6) is None


def test_too_few_cars_drive_the_first_pairs_and_a_note_says_which_are_left_out() -> None:
    config = RunConfig(track="oval", track_pool=["hairpin", "tiny_loop"], both_directions=True, n_envs=3)
    assert pool_members(config, 3) == [("oval", False, 1), ("oval", True, 1), ("hairpin", False, 1)]
    assert config.training_tracks == ["oval", "hairpin"]  # what the model card will list
    note = pool_note(config, 3)
    assert note is not None and "left out: hairpin reversed, tiny_loop, tiny_loop reversed" in note
    assert "--n-envs 6" in note and note in config.notes()


def test_the_default_recipe_pool_is_none_of_the_held_out_tracks() -> None:
    from trainer.config import ROBUST_TRACK_POOL
    from trainer.robustness import HELD_OUT_TRACKS, road_of

    config = RunConfig()
    assert config.randomization == "strong" and config.both_directions and config.n_envs == 64
    assert config.training_tracks == ["reinvent_base", *ROBUST_TRACK_POOL]
    assert not {road_of(t) for t in config.training_tracks} & {road_of(t) for t in HELD_OUT_TRACKS}


def test_one_track_one_direction_is_the_plain_batched_env() -> None:
    vec = training_vec_env(RunConfig(track="oval", track_pool=[], both_directions=False), 4)
    assert isinstance(vec, BatchedVecEnv) and vec.num_envs == 4
    vec.close()


def test_the_pool_steps_every_car_on_its_own_track_and_reports_finished_episodes() -> None:
    config = RunConfig(track="oval", track_pool=["tiny_loop"], both_directions=True, time_limit_s=2.0,
                       randomization="light")  # fmt: skip
    vec = training_vec_env(config, 6, trace_car0=True)
    assert isinstance(vec, PooledVecEnv) and isinstance(vec, VecEnv) and vec.num_envs == 6
    tracks = [(env.env.sim.forward.name, bool(env.env.sim.is_reversed[0])) for env in vec.envs]
    assert tracks == [("oval", False), ("oval", True), ("tiny_loop", False), ("tiny_loop", True)]
    assert vec.envs[0]._trace_car0 and not any(env._trace_car0 for env in vec.envs[1:])
    vec.seed(10)
    obs = vec.reset()
    assert obs.shape == (6, 11)
    assert [env._seeds for env in vec.envs] == [
        [None, None],
        [None, None],
        [None],
        [None],
    ]  # used, then cleared
    finished = 0
    for _ in range(40):  # 2 s episodes at 15 Hz: every car finishes at least once
        obs, rewards, dones, infos = vec.step(np.zeros(6, dtype=np.int64))
        assert obs.shape == (6, 11) and rewards.shape == dones.shape == (6,) and len(infos) == 6
        for i in np.flatnonzero(dones):
            assert infos[i]["terminal_observation"].shape == (11,) and "episode" in infos[i]
            finished += 1
    assert finished >= 6
    vec.close()


def test_the_pool_repeats_for_a_seed() -> None:
    config = RunConfig(track="oval", track_pool=["tiny_loop"], randomization="strong")

    def rollout() -> np.ndarray:
        vec = training_vec_env(config, 4)
        vec.seed(3)
        first = vec.reset()
        rng = np.random.default_rng(0)
        out = [first] + [vec.step(rng.integers(0, 5, size=4))[0] for _ in range(20)]
        vec.close()
        return np.stack(out)

    np.testing.assert_array_equal(rollout(), rollout())


def test_spaces_must_agree() -> None:
    state = training_vec_env(RunConfig(track="oval", track_pool=[], both_directions=False), 2)
    lidar = training_vec_env(
        RunConfig(track="oval", track_pool=[], both_directions=False, observation="lidar"), 2
    )
    with pytest.raises(ValueError, match="same spaces"):
        PooledVecEnv([state, lidar])


def test_distillation_rounds_visit_the_pool_a_track_at_a_time() -> None:
    from trainer.pool import round_member

    config = RunConfig(track="oval", track_pool=["hairpin", "tiny_loop"], both_directions=True)
    rounds = [round_member(config, k) for k in range(7)]
    assert rounds == [("oval", False), ("hairpin", False), ("tiny_loop", False), ("oval", True),
                      ("hairpin", True), ("tiny_loop", True), ("oval", False)]  # fmt: skip
    alone = RunConfig(track="oval", track_pool=[], both_directions=False, reverse=True)
    assert {round_member(alone, k) for k in range(4)} == {("oval", True)}
