"""Run configs: TOML validation errors name the file and the dotted key; DeepRacer files import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.deepracer_files import CONTINUOUS_METADATA, DISCRETE_METADATA, HYPERPARAMETERS
from trainer.config import (
    DEFAULT_TRAINING_ACTION_SPACE,
    RunConfig,
    RunConfigError,
    deepracer_mapping,
    load_run_config,
)


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(RunConfigError) as info:
        load_run_config(path)
    return str(info.value)


def test_an_empty_file_gives_the_default_recipe(tmp_path: Path) -> None:
    cfg = load_run_config(write(tmp_path, ""))
    assert cfg == RunConfig()
    assert cfg.algorithm == "ppo" and cfg.observation == "state"
    assert cfg.resolved_action_space() == DEFAULT_TRAINING_ACTION_SPACE


def test_a_full_file_is_read(tmp_path: Path) -> None:
    cfg = load_run_config(
        write(
            tmp_path,
            """
track = "oval"
reverse = true
observation = "state"
reward = "centerline"
total_steps = 5000
n_envs = 8
seed = 3
action_space = [{steering_angle = -20, speed = 1.0}, {steering_angle = 20, speed = 1.0}]
[hyperparameters]
learning_rate = 1e-3
net_arch = [32, 32]
[stop]
until_clean_laps = 3
""",
        )
    )
    assert (cfg.track, cfg.reverse, cfg.n_envs, cfg.seed, cfg.total_steps) == ("oval", True, 8, 3, 5000)
    assert cfg.hyperparameters.learning_rate == 1e-3 and cfg.hyperparameters.net_arch == (32, 32)
    assert cfg.stop.until_clean_laps == 3
    assert len(cfg.resolved_action_space()) == 2
    assert cfg.env_kwargs()["track"] == "oval"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n_env = 3", "unknown key `n_env` (did you mean `n_envs`?)"),
        ("[hyperparameters]\nlearning_rat = 0.1", "unknown key `hyperparameters.learning_rat`"),
        ("[stop]\nuntil_clean_laps = 0", "`stop.until_clean_laps`"),
        ('n_envs = "many"', "`n_envs`"),
        ("[hyperparameters]\ngamma = 1.5", "`hyperparameters.gamma`"),
        ('algorithm = "dqn"', "`algorithm`"),
        ('observation = "radar"', "`observation`"),
        ('reward = "nope"', "`reward`"),
        ('reward = "missing.py"', "no such reward file"),
        ("action_space = [{steering_angle = 0, speed = 1}]", "`action_space`"),
        ('model_metadata = "nowhere.json"', "`model_metadata`"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert str(path) in message
    assert expected in message


def test_toml_syntax_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "track = ")
    assert f"{path}: TOML syntax error" in error_of(path)
    assert "no such run config file" in error_of(tmp_path / "absent.toml")


def test_sac_needs_a_continuous_action_space(tmp_path: Path) -> None:
    assert "needs a continuous action space" in error_of(write(tmp_path, 'algorithm = "sac"'))
    cfg = load_run_config(
        write(
            tmp_path,
            'algorithm = "sac"\n[action_space]\nsteering_angle = {low = -30, high = 30}\n'
            "speed = {low = 0.5, high = 2.0}",
        )
    )
    assert cfg.resolved_action_space().kind == "continuous"


def test_model_metadata_is_read_relative_to_the_file(tmp_path: Path) -> None:
    source = DISCRETE_METADATA
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "model_metadata.json").write_text(source.read_text(encoding="utf-8"))
    cfg = load_run_config(write(tmp_path, 'model_metadata = "meta/model_metadata.json"'))
    space = cfg.resolved_action_space()
    assert space.kind == "discrete" and len(space) == 7
    assert space.actions[3] == (0.0, 3.5)
    both = 'model_metadata = "meta/model_metadata.json"\naction_space = {steering_angle = {low = -1, high = 1}, speed = {low = 1, high = 2}}'
    assert "not both" in error_of(write(tmp_path, both))


def test_continuous_model_metadata_allows_sac(tmp_path: Path) -> None:
    cfg = load_run_config(write(tmp_path, f'algorithm = "sac"\nmodel_metadata = "{CONTINUOUS_METADATA}"'))
    assert cfg.resolved_action_space().speed_mps_high == 3.2


def test_deepracer_hyperparameters_are_mapped(tmp_path: Path) -> None:
    path = HYPERPARAMETERS
    dr = json.loads(path.read_text(encoding="utf-8"))
    cfg = load_run_config(write(tmp_path, f'deepracer_hyperparameters = "{path}"'))
    h = cfg.hyperparameters
    assert h.batch_size == dr["batch_size"]
    assert h.learning_rate == dr["lr"]
    assert h.gamma == dr["discount_factor"]
    assert h.ent_coef == dr["beta_entropy"]
    assert h.n_epochs == dr["num_epochs"]
    assert cfg.stop.max_episodes == dr["term_cond_max_episodes"]
    assert cfg.stop.mean_episode_reward == dr["term_cond_avg_score"]
    assert cfg.simtrace_episodes == dr["num_episodes_between_training"]  # DeepRacer's iteration in the logs
    notes = "\n".join(cfg.notes())
    assert "loss_type 'huber'" in notes and "mean squared error" in notes  # said, not silently dropped
    for key in ("e_greedy_value", "epsilon_steps", "exploration_type", "stack_size"):
        assert f"{key} " in notes and "not applicable" in notes


def test_own_keys_win_over_deepracer_hyperparameters(tmp_path: Path) -> None:
    path = HYPERPARAMETERS
    cfg = load_run_config(
        write(tmp_path, f'deepracer_hyperparameters = "{path}"\n[hyperparameters]\nlearning_rate = 0.01')
    )
    assert cfg.hyperparameters.learning_rate == 0.01
    assert cfg.hyperparameters.n_epochs == 5  # still from the DeepRacer file


def test_deepracer_mapping_reports_unknown_keys() -> None:
    hyper, stop, notes = deepracer_mapping({"lr": 0.001, "loss_type": "mean squared error", "wibble": 1})
    assert hyper == {"learning_rate": 0.001} and stop == {}
    assert notes == ["wibble 1: unknown DeepRacer hyperparameter, ignored"]


def test_flags_keep_the_deepracer_hyperparameters_of_the_file(tmp_path: Path) -> None:
    path = HYPERPARAMETERS
    base = load_run_config(
        write(tmp_path, f'deepracer_hyperparameters = "{path}"\n[hyperparameters]\nlearning_rate = 0.01')
    )
    cfg = RunConfig.from_flags(base, seed=4)
    assert cfg.seed == 4 and cfg.hyperparameters == base.hyperparameters and cfg.stop == base.stop
    assert cfg.notes() == base.notes() and cfg.notes()


def test_a_broken_hyperparameters_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "hyperparameters.json"
    bad.write_text("{not json", encoding="utf-8")
    message = error_of(write(tmp_path, 'deepracer_hyperparameters = "hyperparameters.json"'))
    assert str(bad) in message and "not a readable hyperparameters.json" in message


def test_flags_override_the_file(tmp_path: Path) -> None:
    base = load_run_config(write(tmp_path, 'track = "oval"\nn_envs = 8\nseed = 1'))
    cfg = RunConfig.from_flags(
        base, n_envs=16, steps=1000, action_space=DISCRETE_METADATA, until_clean_laps=2
    )
    assert (cfg.track, cfg.n_envs, cfg.seed, cfg.total_steps) == ("oval", 16, 1, 1000)
    assert len(cfg.resolved_action_space()) == 7 and cfg.stop.until_clean_laps == 2
    with pytest.raises(RunConfigError, match=r"(?s)command-line flags.*`reward`.*'nope'"):
        RunConfig.from_flags(reward="nope")


def metadata_with(tmp_path: Path, **changes: object) -> Path:
    """The console-style discrete model_metadata.json (a front camera and the shallow CNN) with `changes`."""
    data = {**json.loads(DISCRETE_METADATA.read_text(encoding="utf-8")), **changes}
    path = tmp_path / "model_metadata.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("sensor", "network", "observation", "resolved_network"),
    [
        (["FRONT_FACING_CAMERA"], "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "camera", "cnn_shallow"),
        (["FRONT_FACING_CAMERA"], "DEEP_CONVOLUTIONAL_NETWORK_DEEP", "camera", "cnn_deep"),
        (["STEREO_CAMERAS"], "DEEP_CONVOLUTIONAL_NETWORK", "stereo_camera", "cnn"),
    ],
)
def test_model_metadata_makes_a_camera_run_with_the_cnn_it_names(
    tmp_path: Path, sensor: list[str], network: str, observation: str, resolved_network: str
) -> None:
    """A DeepRacer model is a camera model: `--action-space model_metadata.json` used to train a `state` MLP
    without a word. The file's camera and CNN are the run's, trained by distilling a state teacher, and the
    run says so (the notes go to the output and into config.resolved.json)."""
    path = metadata_with(tmp_path, sensor=sensor, neural_network=network)
    for cfg in (
        RunConfig.from_flags(action_space=path),
        load_run_config(write(tmp_path, f'model_metadata = "{path}"')),
    ):
        assert (cfg.observation, cfg.resolved_network()) == (observation, resolved_network)
        assert cfg.training_route() == "distill"
        assert any("trained by distillation" in note and observation in note for note in cfg.notes())
        teacher = cfg.teacher_config()
        assert (teacher.observation, teacher.resolved_network(), teacher.model_metadata) == (
            "state",
            "mlp",
            None,
        )
        assert teacher.resolved_action_space() == cfg.resolved_action_space()
        assert cfg.to_json_dict()["observation"] == observation  # the run folder's config records it


@pytest.mark.parametrize(
    "sensor",
    [
        ["FRONT_FACING_CAMERA", "LIDAR"],
        ["FRONT_FACING_CAMERA", "SECTOR_LIDAR"],
        ["STEREO_CAMERAS", "DISCRETIZED_SECTOR_LIDAR"],
    ],
)
def test_a_camera_with_a_lidar_is_refused_naming_the_file_key_and_value(
    tmp_path: Path, sensor: list[str]
) -> None:
    path = metadata_with(tmp_path, sensor=sensor)
    with pytest.raises(RunConfigError) as info:
        RunConfig.from_flags(action_space=path)
    text = str(info.value)
    assert str(path) in text and f"`sensor` {sensor}" in text and sensor[1] in text
    assert f'keep only the camera in `sensor` (["{sensor[0]}"])' in text  # what to do
    # asked for by name, the combined observation trains in the simulator (PPO), with a note on the file
    combined = RunConfig.from_flags(action_space=path, observation="camera+lidar")
    assert combined.training_route() == "direct"
    assert any("`sensor`" in note and "not used" in note for note in combined.notes())


def test_metadata_without_a_camera_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = metadata_with(tmp_path, sensor=["LIDAR"])
    message = error_of(write(tmp_path, f'model_metadata = "{path}"'))
    assert str(path) in message and "`sensor`: expected exactly one camera" in message


def test_what_the_file_asks_for_and_the_run_does_not_is_said(tmp_path: Path) -> None:
    path = metadata_with(tmp_path)  # FRONT_FACING_CAMERA, DEEP_CONVOLUTIONAL_NETWORK_SHALLOW
    state = RunConfig.from_flags(action_space=path, observation="state")
    (note,) = state.notes()
    assert str(path) in note and "`sensor` ['FRONT_FACING_CAMERA'] not used" in note
    assert "only in the simulator" in note
    deep = RunConfig.from_flags(action_space=path, network="cnn_deep")
    assert any(
        "`neural_network` 'DEEP_CONVOLUTIONAL_NETWORK_SHALLOW'" in n and "'cnn_deep'" in n
        for n in deep.notes()
    )
    sac = load_run_config(write(tmp_path, f'model_metadata = "{CONTINUOUS_METADATA}"'))
    assert any("`training_algorithm` 'sac' not used" in n for n in sac.notes())


def test_training_routes(tmp_path: Path) -> None:
    assert RunConfig().training_route() == "direct"
    assert RunConfig(observation="camera").training_route() == "distill"
    assert RunConfig(observation="camera", training="direct").training_route() == "direct"
    assert RunConfig(observation="lidar", training="distill").training_route() == "distill"
    assert RunConfig(observation="camera+lidar").training_route() == "direct"
    assert "training 'distill' needs one sensor" in error_of(write(tmp_path, 'training = "distill"'))
    cfg = load_run_config(write(tmp_path, 'observation = "camera"\n[distill]\nrounds = 2\nepochs = 1'))
    assert (cfg.distill.rounds, cfg.distill.epochs, cfg.distill.frames_per_round) == (2, 1, 4_000)
    assert "unknown key `distill.round` (did you mean `rounds`?)" in error_of(
        write(tmp_path, "[distill]\nround = 2")
    )
