"""The SB3 adapter over the batched simulator, and short training runs that must learn.

Kept under ~60 s in total on a 2-core machine: the learning run is ~40k car-steps on the `oval`.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecCheckNan, VecEnv
from typer.testing import CliRunner

from sim.envs.vector import TimeTrialVectorEnv
from sim.simtrace import read_simtrace
from trainer.config import ONE_TRACK, RunConfig, RunConfigError
from trainer.train import train
from trainer.vec_env import BatchedVecEnv

# One xdist worker runs these tests (--dist loadgroup): this module's training runs are built once.
pytestmark = pytest.mark.xdist_group("training-runs")


def adapter(n: int = 8, **kwargs: object) -> BatchedVecEnv:
    return BatchedVecEnv(TimeTrialVectorEnv(num_envs=n, track="oval", **kwargs))


def read_metrics(path: Path) -> list[dict[str, float]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: float(v) if v else math.nan for k, v in row.items()} for row in csv.DictReader(handle)]


def test_the_adapter_is_an_sb3_vecenv_with_same_step_autoreset() -> None:
    env = adapter(8, time_limit_s=0.5)  # 7-8 steps: every car is truncated
    assert isinstance(env, VecEnv) and env.num_envs == 8
    checked = VecCheckNan(env, raise_exception=True)
    env.seed(5)
    obs = checked.reset()
    assert obs.shape == (8, *env.observation_space.shape) and obs.dtype == np.float32
    straight = np.full(8, 2)  # the default space's straight-ahead action
    for _ in range(20):
        obs, rewards, dones, infos = checked.step(straight)
        assert rewards.shape == (8,) and rewards.dtype == np.float32 and dones.shape == (8,)
        assert len(infos) == 8
        for done, info in zip(dones, infos, strict=True):
            if not done:
                assert info == {}  # running cars get no info: cheap
                continue
            assert info["terminal_observation"].shape == env.observation_space.shape
            assert info["TimeLimit.truncated"] is (info["episode_status"] == "time_up")
            assert set(info["episode"]) == {"r", "l", "t"} and info["episode"]["l"] >= 1
            assert 0.0 <= info["progress"] <= 100.0
        if dones.any():
            break
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    # the observation returned for a finished car is its next episode's first one
    assert not np.array_equal(obs[0], infos[0]["terminal_observation"])
    assert env.get_attr("render_mode") == [None] * 8
    assert env.get_attr("num_envs", [0, 1]) == [8, 8]
    assert env.env_is_wrapped(object) == [False] * 8
    env.close()


def test_seeded_resets_repeat() -> None:
    first, second = adapter(4), adapter(4)
    first.seed(11)
    second.seed(11)
    np.testing.assert_array_equal(first.reset(), second.reset())


def test_ppo_learns_through_the_adapter_with_dict_observations() -> None:
    env = adapter(4, observation="state+lidar")
    model = PPO("MultiInputPolicy", env, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    assert model.num_timesteps == 128


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, object, Path]:
    """~40k car-steps on the oval (about 5-10 s), with the per-step centre-line reward and slow actions, whose
    mean episode progress climbs steadily (the default progress reward's climbs in fewer, larger jumps)."""
    config = RunConfig(
        **ONE_TRACK,
        track="oval",
        reward="centerline_speed",
        action_space=[
            {"steering_angle": -25, "speed": 1.0},
            {"steering_angle": -10, "speed": 1.5},
            {"steering_angle": 0, "speed": 2.0},
            {"steering_angle": 10, "speed": 1.5},
            {"steering_angle": 25, "speed": 1.0},
        ],
        total_steps=40_000,
        n_envs=32,
        seed=0,
        eval_every_steps=10_000,
        checkpoint_every_steps=20_000,
    )
    out = tmp_path_factory.mktemp("runs") / "oval"
    return config, train(config, out, progress=False), out


def test_a_short_ppo_run_improves(short_run: tuple[RunConfig, object, Path]) -> None:
    _, result, out = short_run
    rows = read_metrics(out / "metrics.csv")
    assert len(rows) >= 10
    first = np.nanmean([r["mean_progress"] for r in rows[:3]])
    last = np.nanmean([r["mean_progress"] for r in rows[-3:]])
    assert last > first + 25.0, f"mean episode progress {first:.1f} % -> {last:.1f} %: did not learn"
    first_reward = np.nanmean([r["mean_episode_reward"] for r in rows[:3]])
    last_reward = np.nanmean([r["mean_episode_reward"] for r in rows[-3:]])
    assert last_reward > 2 * first_reward
    assert result.steps >= 40_000 and result.stopped_by == "total_steps"
    assert rows[-1]["steps"] == result.steps and rows[-1]["episodes"] == result.episodes


def test_the_run_directory_describes_itself(short_run: tuple[RunConfig, object, Path]) -> None:
    config, _, out = short_run
    resolved = json.loads((out / "config.resolved.json").read_text(encoding="utf-8"))
    assert resolved["track"] == "oval" and resolved["seed"] == 0
    assert resolved["resolved_action_space"] == config.resolved_action_space().to_json()
    versions = json.loads((out / "versions.json").read_text(encoding="utf-8"))
    assert {"pitlane", "numpy", "torch", "stable-baselines3", "python"} <= set(versions)
    assert (out / "checkpoints" / "step_20000.zip").is_file() or list(
        (out / "checkpoints").glob("step_*.zip")
    )
    assert (out / "best.zip").is_file() and (out / "final.zip").is_file()
    assert (out / "sb3" / "progress.csv").is_file()
    assert list((out / "tb").glob("events.out.tfevents.*")), "no TensorBoard events file in tb/"
    PPO.load(out / "best.zip", device="cpu")
    traces = sorted((out / "training-simtrace").glob("*-iteration.csv"))
    assert traces and traces[0].name == "0-iteration.csv"
    trace = read_simtrace(traces[0])
    # car 0 only, whole episodes (the last unfinished one dropped), each from its `prepare` row at step 1
    assert trace.status[0] == "prepare" and trace.steps[0] == 1 and trace.status[-1] != "in_progress"
    assert all(e.whole for e in trace.episodes())
    assert np.all(np.diff(trace.tstamp_s[trace.episode == trace.episode[0]]) > 0)
    assert set(trace.status) <= {
        "prepare",
        "in_progress",
        "lap_complete",
        "off_track",
        "reversed",
        "immobilized",
        "time_up",
    }


def test_until_clean_laps_stops_the_run(tmp_path: Path) -> None:
    config = RunConfig(
        **ONE_TRACK,
        track="oval",
        total_steps=300_000,
        n_envs=32,
        eval_every_steps=5_000,
        stop={"until_clean_laps": 3},
    )
    result = train(config, tmp_path / "run", progress=False)
    assert result.stopped_by == "until_clean_laps"
    assert result.steps < 300_000 and result.first_eval_lap_step is not None
    assert result.best_eval_lap_s is not None and result.best_eval_lap_s > 0


def test_sac_runs_on_a_continuous_space(tmp_path: Path) -> None:
    config = RunConfig(
        **ONE_TRACK,
        track="oval",
        algorithm="sac",
        action_space={"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 2.0}},
        total_steps=400,
        n_envs=4,
        hyperparameters={"learning_starts": 100, "batch_size": 64},
        eval_every_steps=200,
    )
    result = train(config, tmp_path / "sac", progress=False)
    assert result.steps >= 400 and (tmp_path / "sac" / "final.zip").is_file()


def test_unfit_networks_are_refused_clearly_and_out_dirs_are_not_overwritten(tmp_path: Path) -> None:
    with pytest.raises(RunConfigError, match="camera observations need a CNN"):
        RunConfig.from_flags(observation="camera", network="mlp")
    with pytest.raises(RunConfigError, match="state and lidar alone use mlp"):
        RunConfig.from_flags(observation="state", network="cnn")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(RunConfigError, match="not empty"):
        train(RunConfig(**ONE_TRACK, track="oval"), tmp_path / "full", progress=False)


def test_cli_trains_and_reports_errors_on_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pitlane.commands.train import app

    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    bad = tmp_path / "bad.toml"
    bad.write_text("n_env = 3\n", encoding="utf-8")
    result = runner.invoke(app, [str(bad), "--out", str(tmp_path / "r0")])
    assert result.exit_code == 2
    assert "unknown key `n_env` (did you mean `n_envs`?)" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["--track", "oval", "--steps", "2000", "--n-envs", "8", "--json"])
    assert result.exit_code == 2 and "--out is required" in result.output
    out = tmp_path / "r1"
    args = [
        "--track",
        "tiny_loop",
        "--steps",
        "1000",
        "--n-envs",
        "8",
        "--seed",
        "2",
        "--out",
        str(out),
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] >= 1000 and summary["out_dir"] == str(out)
    assert json.loads((out / "config.resolved.json").read_text())["track"] == "tiny_loop"
    assert (out / "best.zip").is_file()  # shorter than one evaluation period: evaluated once at the end


# ---------------------------------------------------------------------- camera networks (trainer/networks.py)

#: extractor parameters for one 120x160 grayscale camera (documented in trainer/networks.py)
CAMERA_PARAMETERS = {"cnn_shallow": (5_839_520, 512), "cnn": (3_682_848, 512), "cnn_deep": (1_105_472, 128)}


@pytest.mark.parametrize("network", sorted(CAMERA_PARAMETERS))
def test_deepracer_topologies_build_for_120x160(network: str) -> None:
    import torch
    from gymnasium import spaces

    from trainer.networks import DeepRacerCNN, parameter_count

    extractor = DeepRacerCNN(spaces.Box(0, 255, (120, 160), np.uint8), network)
    n_params, n_out = CAMERA_PARAMETERS[network]
    assert parameter_count(extractor) == n_params and extractor.features_dim == n_out
    assert extractor(torch.zeros(3, 120, 160)).shape == (3, n_out)


def test_camera_pixels_are_scaled_once_and_dict_observations_combine() -> None:
    import torch
    from gymnasium import spaces

    from trainer.networks import DeepRacerCombinedExtractor, policy_kwargs

    env = adapter(2, observation="camera", time_limit_s=1.0)
    assert env.observation_space.shape == (120, 160) and env.observation_space.dtype == np.uint8
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=16, device="cpu",
                policy_kwargs={"net_arch": [], **policy_kwargs("cnn_shallow", env.observation_space)})  # fmt: skip
    obs = env.reset()
    tensor, _ = model.policy.obs_to_tensor(obs)
    features = model.policy.extract_features(tensor, model.policy.features_extractor)
    cnn = model.policy.features_extractor
    by_hand = cnn.middleware(
        cnn.embedder.dense(cnn.embedder.convs(torch.as_tensor(obs[:, None] / 255.0).float()))
    )
    torch.testing.assert_close(features, by_hand)
    dict_space = spaces.Dict(
        {"camera": spaces.Box(0, 255, (120, 160), np.uint8), "state": spaces.Box(-1, 1, (11,), np.float32)}
    )
    combined = DeepRacerCombinedExtractor(dict_space, "cnn_deep")
    out = combined({"camera": torch.zeros(2, 120, 160), "state": torch.zeros(2, 11)})
    assert out.shape == (2, 128)
    env.close()


def test_network_defaults_and_model_metadata(tmp_path: Path) -> None:
    assert RunConfig().resolved_network() == "mlp"
    assert RunConfig(**ONE_TRACK, observation="camera").resolved_network() == "cnn_shallow"
    assert RunConfig(**ONE_TRACK, observation="camera+lidar", network="cnn").resolved_network() == "cnn"
    # CNN runs end in DeepRacer's middleware (no extra hidden layers) unless net_arch is given; the resolved
    # config spells it out, so --init-from and --resume rebuild the same network from config.resolved.json
    assert RunConfig(**ONE_TRACK, observation="camera").to_json_dict()["hyperparameters"]["net_arch"] == []
    assert RunConfig().to_json_dict()["hyperparameters"]["net_arch"] == [64, 64]
    explicit = RunConfig(**ONE_TRACK, observation="camera", hyperparameters={"net_arch": [32]})
    assert explicit.resolved_net_arch() == [32]
    metadata = tmp_path / "model_metadata.json"
    metadata.write_text(
        json.dumps(
            {
                "action_space": [{"steering_angle": 0, "speed": 1.0}, {"steering_angle": 20, "speed": 1.0}],
                "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_DEEP",
                "sensor": ["FRONT_FACING_CAMERA"],
            }
        ),
        encoding="utf-8",
    )
    assert (
        RunConfig(**ONE_TRACK, observation="camera", model_metadata=metadata).resolved_network() == "cnn_deep"
    )
    # the file's camera is the observation unless one is given: a camera model with the CNN it names
    from_file = RunConfig(**ONE_TRACK, model_metadata=metadata)
    assert (from_file.observation, from_file.resolved_network()) == ("camera", "cnn_deep")
    assert RunConfig(**ONE_TRACK, observation="state", model_metadata=metadata).resolved_network() == "mlp"


def test_a_camera_ppo_run_steps_with_8_cars(tmp_path: Path) -> None:
    config = RunConfig(
        **ONE_TRACK,
        track="oval",
        observation="camera",
        n_envs=8,
        total_steps=8 * 32,
        eval_laps=1,
        time_limit_s=2.0,
        hyperparameters={"n_steps": 32, "batch_size": 64, "n_epochs": 1},
        training="direct",  # PPO on the frames themselves (the default for a camera distils a teacher)
    )
    result = train(config, tmp_path / "cam", progress=False)
    assert result.steps == 256 and (tmp_path / "cam" / "final.zip").is_file()
    resolved = json.loads((tmp_path / "cam" / "config.resolved.json").read_text(encoding="utf-8"))
    assert resolved["resolved_network"] == "cnn_shallow"


def test_learning_outside_a_run_leaves_no_stray_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pitlane bench train` and distillation call learn() again and again on a model without a run's logger:
    each call used to leave an empty SB3-<time> folder in the temp directory."""
    import tempfile

    from trainer.train import build_model

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    config = RunConfig(**ONE_TRACK, track="oval", n_envs=4, hyperparameters={"n_steps": 16, "batch_size": 32})
    model = build_model(config, BatchedVecEnv(TimeTrialVectorEnv(num_envs=4, **config.env_kwargs())))
    for _ in range(3):
        model.learn(total_timesteps=64, reset_num_timesteps=False, progress_bar=False)
    assert list(tmp_path.glob("SB3-*")) == []
