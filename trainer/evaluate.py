"""Evaluate a trained run: load its policy (`load_policy`) and drive it with `sim.evaluation.evaluate`.

A run is named by its directory (its `best.zip`, else `final.zip`) or by one of its stable-baselines3 `.zip`
models (`runs/x/final.zip`, `runs/x/checkpoints/step_N.zip`): the run's `config.resolved.json`, found beside
the model or one folder up, gives the observation, action space, car, track and reward the policy was
trained with. An exported `.onnx` model is driven by `device.policy.OnnxPolicy` (ONNX Runtime, as on the car);
its model card (`model.json` beside it) gives the observation, action space, car and track, so fp32, int8 and
the checkpoint are evaluated by the same race loop and rules.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from contracts.race import RaceRules
from trainer.config import RunConfig, load_run_dir_config
from trainer.errors import EvaluateError, RunConfigError

ONNX_SUFFIX = ".onnx"


def resolve_model(run_or_model: str | Path) -> tuple[Path, Path]:
    """(the SB3 .zip to load, the run directory holding its config.resolved.json)."""
    path = Path(run_or_model)
    if path.suffix.lower() == ONNX_SUFFIX:
        if not path.is_file():
            raise EvaluateError(f"{path}: no such ONNX model file")
        return path, path.parent  # an exported model: its card beside it; the evaluation is written there
    if not path.exists():
        raise EvaluateError(f"{path}: no such run directory or model file")
    if path.is_dir():
        for name in ("best.zip", "final.zip"):
            if (path / name).is_file():
                return path / name, _run_dir_of(path, path)
        raise EvaluateError(f"{path}: not a run directory (no best.zip or final.zip in it)")
    if path.suffix.lower() != ".zip":
        raise EvaluateError(
            f"{path}: expected a run directory, a stable-baselines3 .zip model or an .onnx model"
        )
    return path, _run_dir_of(path.parent, path)


def _run_dir_of(start: Path, shown: Path) -> Path:
    for folder in (start, start.parent):
        if (folder / "config.resolved.json").is_file():
            return folder
    raise EvaluateError(
        f"{shown}: no config.resolved.json beside it or one folder up; the model must stay in its run directory"
    )


def load_policy(
    run_or_model: str | Path, *, car: str | None = None
) -> tuple[Callable[[Any], Any], RunConfig]:
    """(policy(obs) -> action, the run's config): the deterministic policy of a run directory, .zip model or
    exported .onnx model (then the config is made from its model card; `car`, if given, must fit the card's
    observation or the model refuses to load)."""
    if Path(run_or_model).suffix.lower() == ONNX_SUFFIX:
        return load_onnx_policy(run_or_model, car=car)
    model, config, _, _ = load_sb3_run(run_or_model)
    return predict_fn(model), config


def load_sb3_run(run_or_model: str | Path) -> tuple[Any, RunConfig, Path, Path]:
    """(SB3 model on the CPU, portable RunConfig, the model's .zip, the run directory) of a run directory or
    one of its .zip models; EvaluateError naming the path when it is not one."""
    from stable_baselines3 import PPO, SAC

    model_path, run_dir = resolve_model(run_or_model)
    if model_path.suffix.lower() == ONNX_SUFFIX:
        raise EvaluateError(f"{run_or_model}: an exported ONNX model; give the run directory or its .zip")
    config = load_run_dir_config(run_dir, portable=True)
    algorithm = SAC if config.algorithm == "sac" else PPO
    try:
        model = algorithm.load(model_path, device="cpu")
    except (OSError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile) as exc:  # not an SB3 model
        raise EvaluateError(
            f"{model_path}: cannot load as a {config.algorithm.upper()} model ({exc})"
        ) from None
    return model, config, model_path, run_dir


def load_onnx_policy(path: str | Path, *, car: str | None = None) -> tuple[Callable[[Any], Any], RunConfig]:
    """(policy(obs) -> env action, RunConfig from the model card) of an exported model, through OnnxPolicy."""
    from contracts.errors import CarFileError
    from device.errors import ModelError
    from device.policy import OnnxPolicy
    from firmware_configs import load_car

    model_path, _ = resolve_model(path)
    try:
        onnx_policy = OnnxPolicy(model_path, load_car(car) if car is not None else None)
    except (ModelError, CarFileError) as exc:
        raise EvaluateError(str(exc)) from None
    config = config_from_card(onnx_policy.card, model_path)
    from sim.drivers import onnx_driver

    return onnx_driver(onnx_policy, config.resolved_action_space()), config


def config_from_card(card: Any, model_path: Path) -> RunConfig:
    """What an evaluation needs of a run (observation, action space, car, track) from a model card."""
    try:
        return RunConfig(
            track=card.tracks[0],
            reverse=card.reverse,
            car=card.car,
            observation=card.observation.kind,
            action_space=card.action_space.deepracer,
            reward="centerline",  # the reward only colours the evaluation's curve, never the driving
            algorithm=card.training.algorithm,
            network=card.training.network,
            seed=card.training.seed,
        )
    except ValueError as exc:
        raise EvaluateError(f"{model_path}: its model card does not describe a usable run ({exc})") from None


def predict_fn(model: Any) -> Callable[[Any], Any]:
    """`policy(obs) -> action` for one car from an SB3 model, deterministic."""

    def policy(obs: Any) -> Any:
        action, _ = model.predict(obs, deterministic=True)
        return action

    return policy


def evaluation_dir(run_dir: str | Path, now: datetime | None = None) -> Path:
    """A new folder for one evaluation of a run, named as DeepRacer-for-Cloud names them
    (`evaluation-YYYYMMDDHHMMSS`, UTC), where deepracer-utils' `DeepRacerLog` looks for evaluation traces
    (`evaluation-*/evaluation-simtrace/0-iteration.csv`). An evaluation within the same second takes the next
    free second's name. The folder is not created."""
    stamp = now or datetime.now(timezone.utc)
    while True:
        folder = Path(run_dir) / f"evaluation-{stamp:%Y%m%d%H%M%S}"
        if not folder.exists():
            return folder
        stamp += timedelta(seconds=1)


def evaluate_policy(
    policy: Callable[[Any], Any],
    config: RunConfig,
    *,
    track: str | None = None,
    car: str | None = None,
    laps: int = 3,
    offtrack_penalty_s: float = 2.0,
    max_resets: int | None = None,
    seed: int | None = None,
    max_time_s: float | None = None,
    out_dir: str | Path | None = None,
    randomization: str = "none",
) -> Any:
    """`sim.evaluation.evaluate` of `policy` with the run's observation, action space and reward; `track` and
    `car` default to the run's; `randomization` is a `sim.randomization` preset drawn from `seed`. Returns the
    EvaluationResult."""
    from sim.evaluation import evaluate

    rules = RaceRules(laps=laps, offtrack_penalty_s=offtrack_penalty_s, max_resets=max_resets)
    return evaluate(
        policy,
        track=track or config.track,
        car=car or config.car,
        rules=rules,
        observation=config.observation,
        action_space=config.resolved_action_space(),
        reward=config.reward,
        reverse=config.reverse,
        seed=config.seed if seed is None else seed,
        max_time_s=max_time_s,
        out_dir=out_dir,
        randomization=randomization,
    )


__all__ = [
    "EvaluateError",
    "RunConfigError",
    "evaluate_policy",
    "evaluation_dir",
    "load_onnx_policy",
    "load_policy",
    "load_run_dir_config",
    "load_sb3_run",
    "predict_fn",
    "resolve_model",
]
