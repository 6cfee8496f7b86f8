"""A run described in DeepRacer's own files, where DeepRacer's log-analysis tools look for them.

    <run>/model/model_metadata.json   action space, sensors, network, algorithm (DeepRacer's keys)
    <run>/ip/hyperparameters.json     DeepRacer's hyperparameter names, with this run's values

deepracer-utils' `DeepRacerLog` (and the community's analysis notebooks on it) reads these beside
`training-simtrace/` to show action-space and hyperparameter views; a run folder without them loads with
"model_metadata.json not found" and "hyperparameters.json not found" warnings.

What has no DeepRacer equivalent is written in DeepRacer's shape and said: the privileged `state`
observation has no DeepRacer sensor (an empty `sensor` list), an MLP is `neural_network` "MLP", and the keys
of DeepRacer's epsilon-greedy exploration carry DeepRacer's defaults (PPO here samples from its policy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contracts.vocabulary import DEEPRACER_SENSORS
from trainer.callbacks import write_json
from trainer.config import DEEPRACER_DIRECT, DEEPRACER_NETWORKS, RunConfig

#: DeepRacer's simapp version the files follow (model_metadata.json `version`)
SIMAPP_VERSION = "5"
#: DeepRacer's defaults for the keys whose meaning pitlane's PPO/SAC does not have
_DEEPRACER_ONLY = {
    "e_greedy_value": 0.05,
    "epsilon_steps": 10000,
    "exploration_type": "categorical",
    "loss_type": "mean squared error",
    "stack_size": 1,
}
#: DeepRacer's "no limit" for its stop conditions
_NO_LIMIT = 100000


def model_metadata(config: RunConfig) -> dict[str, Any]:
    """DeepRacer's `model_metadata.json` object for the run `config` describes."""
    space = config.resolved_action_space()
    actions = space.to_json()
    if isinstance(actions, list):  # DeepRacer numbers discrete actions
        actions = [{**action, "index": i} for i, action in enumerate(actions)]
    kinds = config.observation.split("+")
    sensors = [
        name for kind in kinds for name, sensor_kind in DEEPRACER_SENSORS.items() if sensor_kind == kind
    ]
    networks = {ours: theirs for theirs, ours in DEEPRACER_NETWORKS.items()}
    network = config.resolved_network()
    return {
        "action_space": actions,
        "action_space_type": space.kind,
        "training_algorithm": "sac" if config.algorithm == "sac" else "clipped_ppo",
        "neural_network": networks.get(network, network.upper()),
        "sensor": sensors,
        "version": SIMAPP_VERSION,
    }


def hyperparameters(config: RunConfig) -> dict[str, Any]:
    """DeepRacer's `hyperparameters.json` object: this run's values under DeepRacer's names."""
    ours = config.hyperparameters.model_dump()
    out: dict[str, Any] = {theirs: ours[field] for theirs, field in DEEPRACER_DIRECT.items()}
    out.update(_DEEPRACER_ONLY)
    out["num_episodes_between_training"] = config.simtrace_episodes
    out["term_cond_avg_score"] = config.stop.mean_episode_reward or float(_NO_LIMIT)
    out["term_cond_max_episodes"] = config.stop.max_episodes or _NO_LIMIT
    return dict(sorted(out.items()))


def write_deepracer_files(config: RunConfig, run_dir: Path) -> None:
    """model/model_metadata.json and ip/hyperparameters.json in `run_dir`."""
    (run_dir / "model").mkdir(parents=True, exist_ok=True)
    (run_dir / "ip").mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "model" / "model_metadata.json", model_metadata(config))
    write_json(run_dir / "ip" / "hyperparameters.json", hyperparameters(config))
