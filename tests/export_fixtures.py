"""Reusable test helper: a real, tiny exported model (a few seconds of PPO training, then `pitlane export`'s
pipeline), for the export tests and the car runtime's tests.

    model_dir = make_exported_model(tmp_path / "m", "camera", int8=True)
    policy = OnnxPolicy(model_dir / "model.onnx", load_car("deepracer"))

The directory holds model.onnx (+ model.int8.onnx), model.json, parity.json and the run in `run/`. A call
with a directory that already holds an export of the same kind returns it at once (cache it in a
session-scoped fixture across tests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: training car-steps by observation kind: seconds on 2 cores, enough for a policy that is not constant
DEFAULT_STEPS = {"state": 20_000, "camera": 2_048, "stereo_camera": 2_048, "lidar": 8_192}


def make_exported_model(
    out_dir: Path,
    observation: str = "state",
    *,
    int8: bool = False,
    steps: int | None = None,
    car: str = "deepracer",
    track: str = "reinvent_base",
    action_space: list[dict[str, float]] | dict[str, dict[str, float]] | None = None,
    agreement_frames: int = 300,
) -> Path:
    """Train `observation` PPO for `steps` car-steps (default DEFAULT_STEPS) on `track` with `car`, export it
    into `out_dir` (with the int8 model when `int8`) and return `out_dir`. Parity driving is kept short
    (`agreement_frames` frames, one evaluation lap of at most 30 simulated s): this is for tests."""
    from trainer.config import ONE_TRACK, RunConfig
    from trainer.export.pipeline import ExportSettings, export_run
    from trainer.robustness import RobustnessSettings
    from trainer.train import train

    out_dir = Path(out_dir)
    card = out_dir / "model.json"
    done = card.is_file() and (not int8 or (out_dir / "model.int8.onnx").is_file())
    if done and json.loads(card.read_text(encoding="utf-8"))["observation"]["kind"] == observation:
        return out_dir
    n_steps = steps if steps is not None else DEFAULT_STEPS.get(observation, 4_096)
    kwargs: dict[str, object] = {
        "observation": observation,
        "track": track,
        "car": car,
        "total_steps": n_steps,
        "eval_every_steps": 10**9,  # one evaluation at the end (best.zip)
        "checkpoint_every_steps": 10**9,
        "eval_laps": 1,
        "time_limit_s": 30.0,
        "simtrace_episodes": 2,  # car 0's episodes per training-simtrace file: several files in a short run
        **ONE_TRACK,
    }
    if action_space is not None:
        kwargs["action_space"] = action_space
    if observation != "state":  # sensor observations: fewer cars, short rollouts, one epoch (seconds)
        kwargs["n_envs"] = 16
        kwargs["hyperparameters"] = {"n_steps": 32, "batch_size": 128, "n_epochs": 1}
        kwargs["training"] = "direct"  # PPO on the sensor itself (a camera would otherwise be distilled)
    run = out_dir / "run"
    train(RunConfig.model_validate(kwargs), run, progress=False)
    settings = ExportSettings(
        int8=int8,
        calibration_frames=200,
        agreement_frames=agreement_frames,
        eval_laps=1,
        eval_max_time_s=30.0,
        latency_seconds=0.05,
        robustness=RobustnessSettings(seeds=2, laps=1, n_tracks=1, max_lap_s=20.0),
    )
    export_run(run, out_dir, settings)
    return out_dir


# Session-wide exports for the export and policy tests. Import these fixtures into a test module or conftest;
# each lives in a fixed folder under pytest's base temp dir, so modules that import them share one export.


def _shared(tmp_path_factory: pytest.TempPathFactory, name: str, observation: str, **kwargs: Any) -> Path:
    return make_exported_model(tmp_path_factory.getbasetemp() / f"exported-{name}", observation, **kwargs)


@pytest.fixture(scope="session")
def exported_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state model trained on reinvent_base (discrete actions), fp32 + int8."""
    return _shared(tmp_path_factory, "state", "state", int8=True)


@pytest.fixture(scope="session")
def exported_camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cnn_shallow camera model for the deepracer car's camera, fp32 + int8."""
    return _shared(tmp_path_factory, "camera", "camera", int8=True)


@pytest.fixture(scope="session")
def exported_lidar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lidar (64 ranges, m) MLP model, fp32 + int8."""
    return _shared(tmp_path_factory, "lidar", "lidar", int8=True)


@pytest.fixture(scope="session")
def exported_continuous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state model with a continuous action space (steering ±25 deg, 1-3 m/s), fp32 + int8."""
    space = {"steering_angle": {"low": -25.0, "high": 25.0}, "speed": {"low": 1.0, "high": 3.0}}
    return _shared(tmp_path_factory, "continuous", "state", int8=True, action_space=space, steps=8_192)
