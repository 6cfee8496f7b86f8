"""Domain randomisation: presets, reproducible per-car draws, and their effect on the physics."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_configs import load_car
from sim import dynamics
from sim.core import BatchedSim, EpisodeOptions
from sim.envs.time_trial import TimeTrialEnv
from sim.envs.vector import TimeTrialVectorEnv
from sim.errors import EnvConfigError
from sim.randomization import PRESETS, TRAINING_PRESETS, EpisodeRandomization, get_preset
from sim.tracks import load_track


def test_presets_exist_and_eval_shift_is_held_out() -> None:
    assert set(PRESETS) == {"none", "light", "strong", "eval-shift"}
    assert "eval-shift" not in TRAINING_PRESETS
    shift = PRESETS["eval-shift"]
    for name in ("light", "strong"):
        train = PRESETS[name]
        assert shift.ground_texture[0] > train.ground_texture[1]  # a texture training never sees
        assert shift.brightness[1] < train.brightness[0]  # darker than any training draw
        assert shift.grip_scale[1] < train.grip_scale[0]


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(EnvConfigError, match="randomization"):
        get_preset("medium")
    with pytest.raises(EnvConfigError, match="randomization"):
        TimeTrialEnv(track="oval", randomization="medium")


def test_none_draws_nothing_and_is_neutral() -> None:
    rnd = EpisodeRandomization(3, "none")
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    rnd.draw(np.arange(3), [rng] * 3)
    assert rng.bit_generator.state == state
    assert rnd.brightness.tolist() == [1.0] * 3 and rnd.grip_scale.tolist() == [1.0] * 3


@pytest.mark.parametrize("name", ["light", "strong", "eval-shift"])
def test_draws_stay_in_range_and_repeat_with_the_seed(name: str) -> None:
    preset = PRESETS[name]
    draws = []
    for _ in range(2):
        rnd = EpisodeRandomization(50, name)
        rnd.draw(np.arange(50), [np.random.default_rng(i) for i in range(50)])
        draws.append(rnd)
    for quantity in preset.quantities:
        low, high = getattr(preset, quantity)
        values = getattr(draws[0], quantity)
        assert (values >= low).all() and (values <= high).all(), quantity
        np.testing.assert_array_equal(values, getattr(draws[1], quantity))
        if low < high and quantity != "ground_texture":
            assert len(np.unique(values)) > 1, quantity


def straight_drive(randomization: str, seed: int, steps: int = 40) -> BatchedSim:
    sim = BatchedSim(
        1,
        load_track("long_straight"),
        load_car("deepracer").vehicle_params(),
        EpisodeOptions(start="start_line", randomization=randomization),
    )
    sim.seed(0, np.random.default_rng(seed))
    sim.reset(np.array([0]))
    for _ in range(steps):
        sim.step(np.zeros(1), np.full(1, 1.5))
    return sim


def test_steering_trim_curves_a_straight_command() -> None:
    start_yaw = straight_drive("none", 0, steps=0).state.yaw_rad[0]
    plain = straight_drive("none", 0)
    trimmed = straight_drive("eval-shift", 0)  # +3.5 deg trim: the car turns left on a straight command
    assert plain.state.yaw_rad[0] == pytest.approx(start_yaw, abs=1e-12)
    assert trimmed.state.yaw_rad[0] - start_yaw > 0.2


def test_latency_is_drawn_per_car() -> None:
    sim = BatchedSim(
        8,
        load_track("oval"),
        load_car("deepracer").vehicle_params(),
        EpisodeOptions(start="start_line", randomization="strong"),
    )
    for i in range(8):
        sim.seed(i, np.random.default_rng(i))
    sim.reset(np.arange(8))
    expected = np.round((sim.vehicle.latency_s + sim.randomization.latency_ms / 1000) * 15).astype(int)
    np.testing.assert_array_equal(sim.delay.lag, expected)
    assert len(np.unique(sim.delay.lag)) > 1
    # a command reaches the wheels exactly `lag` steps later
    speeds = []
    for k in range(4):
        sim.step(np.zeros(8), np.full(8, 1.0 if k == 0 else 0.0))
        speeds.append(sim.state.speed_mps > 0)
    first_move = np.argmax(np.array(speeds), axis=0)
    np.testing.assert_array_equal(first_move, sim.delay.lag)


def test_less_grip_runs_wider_in_a_fast_corner() -> None:
    tracks = {}
    for scale in (1.0, 0.5):
        sim = BatchedSim(
            1, load_track("oval"), load_car("deepracer").vehicle_params(), EpisodeOptions(start="start_line")
        )
        sim.reset(np.array([0]))
        sim.randomization.grip_scale[:] = scale
        sim.randomization.neutral = False  # as if drawn by a preset
        turned = 0.0
        for _ in range(30):
            before = sim.state.yaw_rad[0]
            sim.step(np.full(1, 30.0), np.full(1, 3.0))
            turned += dynamics.wrap_angle(np.array([sim.state.yaw_rad[0] - before]))[0]
        tracks[scale] = turned
    assert tracks[1.0] > 1.5 * tracks[0.5] > 0


def test_batched_randomized_env_equals_single_envs() -> None:
    n, seed = 3, 11
    actions = np.random.default_rng(1).integers(0, 10, size=(120, n))
    batched = TimeTrialVectorEnv(num_envs=n, track="oval", randomization="strong")
    obs_b, _ = batched.reset(seed=seed)
    singles = [TimeTrialEnv(track="oval", randomization="strong") for _ in range(n)]
    for i, env in enumerate(singles):
        np.testing.assert_allclose(env.reset(seed=seed + i)[0], obs_b[i], atol=1e-9)
    for k in range(len(actions)):
        obs_b, rew_b, *_ = batched.step(actions[k])
        for i, env in enumerate(singles):
            obs, rew, term, trunc, _ = env.step(actions[k, i])
            if term or trunc:
                obs, _ = env.reset()
            np.testing.assert_allclose(obs, obs_b[i], atol=1e-9)
            assert rew == pytest.approx(rew_b[i])
    np.testing.assert_array_equal(
        batched.sim.randomization.grip_scale, [env.sim.randomization.grip_scale[0] for env in singles]
    )
