"""A training run's configuration: `RunConfig`, read from TOML (`load_run_config`) or built from CLI flags.

Everything a run needs is here and validated up front (unknown keys are errors naming the file and the dotted
key), so a typo fails in a second, not after ten minutes of training. Paths in a TOML file are relative to it.

DeepRacer's `hyperparameters.json` can be given as `deepracer_hyperparameters = "path"`: its keys are mapped
onto ours (`deepracer_mapping`); keys with no counterpart are accepted and reported in `notes`.
"""

from __future__ import annotations

import difflib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.vocabulary import DEEPRACER_SENSORS
from sim.action_space import (
    CAMERA_SENSORS,
    ActionSpace,
    ModelMetadata,
    load_model_metadata,
    parse_action_space,
)
from sim.errors import SimError
from sim.observations import parse_observation
from sim.reward.builtin import BUILTIN_REWARDS
from trainer.errors import RunConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

logger = logging.getLogger(__name__)


_STRICT = ConfigDict(extra="forbid", frozen=True)


class Hyperparameters(BaseModel):
    """Learning settings, stable-baselines3's names. PPO uses the first block; SAC the shared ones and its own.

    Defaults are the default recipe for the `state` observation (see `RunConfig`): rollouts of 64 steps from
    each of many cars, minibatches of 512, 4 epochs, a 64x64 MLP.
    """

    model_config = _STRICT

    learning_rate: float = Field(3e-4, gt=0)
    batch_size: int = Field(512, ge=2, description="minibatch size, samples")
    n_epochs: int = Field(4, ge=1)
    gamma: float = Field(0.99, gt=0, le=1)
    gae_lambda: float = Field(0.95, ge=0, le=1)
    clip_range: float = Field(0.2, gt=0)
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus; for SAC 0 means tuned automatically")
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    n_steps: int = Field(64, ge=1, description="rollout length per car, steps")
    net_arch: tuple[int, ...] = (64, 64)
    # SAC only
    buffer_size: int = Field(200_000, ge=1)
    learning_starts: int = Field(1_000, ge=0)
    tau: float = Field(0.005, gt=0, le=1)
    gradient_steps: int = Field(1, ge=1)


class StopCondition(BaseModel):
    """When to stop before `total_steps`. Any condition met stops the run."""

    model_config = _STRICT

    minutes: float | None = Field(
        None, gt=0, description="wall-clock minutes of training (DeepRacer's stop condition)"
    )
    until_clean_laps: int | None = Field(
        None, ge=1, description="stop after this many consecutive clean evaluation laps"
    )
    max_episodes: int | None = Field(None, ge=1, description="training episodes, all cars together")
    mean_episode_reward: float | None = Field(None, description="mean reward of the last 100 episodes")


class DistillSettings(BaseModel):
    """How much DAgger does (`trainer/distill.py`). Frames are control steps (15 Hz) of one car;
    `teacher_mix` in [0, 1]. The defaults take about 1.5 CPU-minutes (measured 75-90 s on each DeepRacer
    track, see docs/benchmarks.md): the camera CNN's
    gradient steps are most of it (~550 frames per CPU-second for cnn_shallow), so the budget is
    rounds x epochs x frames_per_round = 32,000 frames of training."""

    model_config = _STRICT

    rounds: int = Field(4, ge=1)
    frames_per_round: int = Field(4_000, ge=1, description="car-steps of driving per round")
    n_cars: int = Field(16, ge=1, description="cars driving at once while frames are collected")
    epochs: int = Field(2, ge=1, description="passes per round, each over a round's worth of frames")
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(3e-4, gt=0)
    teacher_mix: float = Field(0.5, ge=0, le=1)
    eval_laps: int = Field(3, ge=1)


#: The default recipe's other training tracks (with `track`, both directions each): DeepRacer tracks of
#: several lengths, widths and corner mixes and two built-in technical ones. None of them is one of
#: `trainer.robustness.HELD_OUT_TRACKS`, where robustness is measured.
ROBUST_TRACK_POOL: tuple[str, ...] = (
    "2022_summit_speedway",
    "Tokyo_Training_track",
    "China_track",
    "Bowtie_track",
    "technical",
    "hairpin",
)


#: DeepRacer's kind of training (and every run before the pool existed): `track` alone, one direction, no
#: domain randomisation. `RunConfig(**ONE_TRACK, ...)`.
ONE_TRACK: dict[str, Any] = {"track_pool": [], "both_directions": False, "randomization": "none"}


class RunConfig(BaseModel):
    """One training run. Build with `load_run_config(path)` or `RunConfig.from_flags(...)`.

    The defaults are the default recipe: 64 cars split over `track` and `ROBUST_TRACK_POOL`, both ways round
    each, every episode under the `strong` domain randomisation (steering trim, latency, grip, camera, light),
    2,000,000 car-steps, the `state` observation, the `progress_rate` reward, the 5-action
    `DEFAULT_TRAINING_ACTION_SPACE` (steering ±25/±10/0 deg at 1.5/3/4 m/s) and PPO with `Hyperparameters()`.
    `pitlane bench train` measures how soon it laps, `pitlane bench robust` how it copes with tracks and a car
    it never saw (docs/benchmarks.md). `track_pool = []`, `both_directions = false`, `randomization = "none"`
    train on one track as DeepRacer does.
    """

    model_config = _STRICT

    track: str = "reinvent_base"
    reverse: bool = False
    track_pool: list[str] = Field(
        default_factory=lambda: list(ROBUST_TRACK_POOL),
        description="more training tracks: the cars are split evenly over `track` and these (trainer/pool.py); "
        "[] trains on `track` alone",
    )
    both_directions: bool = Field(
        True, description="drive every training track both ways (half the cars each)"
    )
    car: str = "deepracer"
    observation: str = "state"
    action_space: list[dict[str, Any]] | dict[str, Any] | None = Field(
        None, description="DeepRacer's JSON form; None = the default recipe's space"
    )
    model_metadata: Path | None = None
    reward: str = "progress_rate"
    algorithm: Literal["ppo", "sac"] = "ppo"
    hyperparameters: Hyperparameters = Hyperparameters()
    deepracer_hyperparameters: Path | None = None
    total_steps: int = Field(2_000_000, ge=1, description="car-steps, all cars together")
    stop: StopCondition = StopCondition()
    n_envs: int = Field(64, ge=1, description="parallel cars")
    seed: int = 0
    eval_every_steps: int = Field(20_000, ge=1)
    checkpoint_every_steps: int = Field(50_000, ge=1)
    eval_laps: int = Field(3, ge=1, description="laps per evaluation")
    time_limit_s: float = Field(180.0, gt=0, description="episode time limit, simulated s")
    randomization: Literal["none", "light", "strong"] = Field(
        "strong",
        description="domain randomisation of training episodes (sim.randomization: steering trim, latency, "
        "grip, camera and light drawn per car per episode); `eval-shift` is held out for evaluation",
    )
    simtrace_episodes: int = Field(
        20,
        ge=1,
        description="car 0's episodes per training-simtrace/<N>-iteration.csv: DeepRacer's iteration "
        "(num_episodes_between_training), as its log-analysis tools count episodes",
    )
    network: Literal["mlp", "cnn_shallow", "cnn", "cnn_deep"] | None = Field(
        None,
        description="None = mlp for state/lidar, else model_metadata's neural_network or cnn_shallow "
        "(trainer/networks.py)",
    )
    training: Literal["auto", "direct", "distill"] = Field(
        "auto",
        description="how the policy learns: `direct` = `algorithm` on the observation itself; `distill` = a "
        "`state` teacher trained with `algorithm`, then DAgger into a student that sees the observation "
        "(trainer/distill.py; one sensor); `auto` = distill for a camera alone (PPO on camera frames runs "
        "at ~60 car-steps/s on a laptop CPU: hours; distillation: minutes), direct otherwise",
    )
    distill: DistillSettings = DistillSettings()

    @field_validator("observation")
    @classmethod
    def _known_observation(cls, value: str) -> str:
        try:
            parse_observation(value)
        except SimError as exc:
            raise ValueError(str(exc).removeprefix("observation: ")) from None
        return value

    @field_validator("track_pool")
    @classmethod
    def _known_pool_tracks(cls, value: list[str]) -> list[str]:
        from sim.tracks.library import resolve_track

        for name in value:
            try:
                if not resolve_track(name).is_file():
                    raise ValueError(f"no such track file {name!r}")
            except SimError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("reward")
    @classmethod
    def _known_reward(cls, value: str) -> str:
        if value in BUILTIN_REWARDS or value.endswith(".py"):
            if value.endswith(".py") and not Path(value).is_file():
                raise ValueError(f"no such reward file {value!r}")
            return value
        raise ValueError(f"expected a built-in reward ({', '.join(BUILTIN_REWARDS)}) or a path to a .py file")

    @field_validator("action_space")
    @classmethod
    def _valid_action_space(cls, value: Any) -> Any:
        if value is not None:
            try:
                parse_action_space(value, source="action_space")
            except SimError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("model_metadata", "deepracer_hyperparameters")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file {str(value)!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _merge_deepracer(cls, data: Any) -> Any:
        """Fill hyperparameters and stop conditions from a DeepRacer file; explicit own keys win."""
        if not isinstance(data, dict) or not data.get("deepracer_hyperparameters"):
            return data
        path = Path(data["deepracer_hyperparameters"])
        if not path.is_file():
            return data  # the field validator reports it
        deepracer = read_deepracer_hyperparameters(path)
        mapped, stop, _ = deepracer_mapping(deepracer)
        data = dict(data)
        if "num_episodes_between_training" in deepracer:
            data.setdefault("simtrace_episodes", deepracer["num_episodes_between_training"])
        data["hyperparameters"] = {**mapped, **dict(data.get("hyperparameters") or {})}
        data["stop"] = {**stop, **dict(data.get("stop") or {})}
        return data

    @model_validator(mode="before")
    @classmethod
    def _observe_model_metadata(cls, data: Any) -> Any:
        """A DeepRacer model_metadata.json describes the model, not only its actions: its `sensor` list gives
        the observation (unless `observation` is given; `notes()` says when it differs) and its
        `neural_network` the CNN. Sensor lists pitlane cannot train a car's model for are refused here,
        naming the file, the key and the value."""
        if not isinstance(data, dict) or not data.get("model_metadata"):
            return data
        path = Path(data["model_metadata"])
        if not path.is_file():
            return data  # the field validator reports it
        try:
            metadata = load_model_metadata(path)
        except SimError as exc:
            raise ValueError(str(exc)) from None
        if "observation" in data:
            return data
        observation = metadata_observation(metadata, path)
        return {**data, "observation": observation}

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.action_space is not None and self.model_metadata is not None:
            raise ValueError("give `action_space` or `model_metadata`, not both")
        if self.algorithm == "sac" and self.resolved_action_space().kind != "continuous":
            raise ValueError(
                "algorithm 'sac' needs a continuous action space ({steering_angle: {low, high}, speed: "
                "{low, high}}); this run's action space is discrete"
            )
        kinds = parse_observation(self.observation)
        camera = any("camera" in kind for kind in kinds)
        if self.network is not None and (self.network != "mlp") != camera:
            raise ValueError(
                f"network {self.network!r} does not fit observation {self.observation!r}: camera observations "
                "need a CNN (cnn_shallow, cnn, cnn_deep), state and lidar alone use mlp"
            )
        if self.training == "distill" and (len(kinds) != 1 or kinds[0] == "state"):
            raise ValueError(
                f"training 'distill' needs one sensor to distil a `state` teacher into (camera, stereo_camera, "
                f"lidar, ...); observation is {self.observation!r}: use training = 'direct'"
            )
        return self

    def training_route(self) -> Literal["direct", "distill"]:
        """`training` resolved: `distill` for `auto` when the observation is one camera (mono or stereo)."""
        if self.training != "auto":
            return self.training
        kinds = parse_observation(self.observation)
        return "distill" if len(kinds) == 1 and "camera" in kinds[0] else "direct"

    def teacher_config(self) -> RunConfig:
        """The `state` teacher of a distilled run: this run with the `state` observation and an MLP, trained
        directly; the action space spelled out (the teacher is not a model for the car, so a
        model_metadata.json's sensor list does not apply to it)."""
        data = self.model_dump(exclude_unset=True)
        for key in ("observation", "network", "model_metadata", "training", "distill"):
            data.pop(key, None)
        hyper = dict(data.get("hyperparameters") or {})
        if self.resolved_network() != "mlp" and "net_arch" not in self.hyperparameters.model_fields_set:
            hyper.pop("net_arch", None)  # a CNN's empty heads are not the teacher's MLP
        data.update(observation="state", action_space=self.resolved_action_space().to_json(),
                    training="direct", hyperparameters=hyper)  # fmt: skip
        return _validate(data, "distillation teacher")

    # ------------------------------------------------------------------ derived

    def resolved_action_space(self) -> ActionSpace:
        """The action space this run trains with (inline, from model_metadata, or the recipe's default)."""
        if self.model_metadata is not None:
            return load_model_metadata(self.model_metadata).action_space
        if self.action_space is not None:
            return parse_action_space(self.action_space, source="action_space")
        return DEFAULT_TRAINING_ACTION_SPACE

    def resolved_network(self) -> str:
        """`network`, or mlp without a camera, else model_metadata's `neural_network`, else cnn_shallow."""
        if self.network is not None:
            return self.network
        if not any("camera" in kind for kind in parse_observation(self.observation)):
            return "mlp"
        if self.model_metadata is not None:
            return DEEPRACER_NETWORKS[load_model_metadata(self.model_metadata).neural_network]
        return "cnn_shallow"

    def resolved_net_arch(self) -> list[int]:
        """SB3's `net_arch` after the features extractor: `hyperparameters.net_arch`, except that CNN networks
        end in DeepRacer's middleware, whose heads are single output layers (`[]`) unless net_arch is given."""
        h = self.hyperparameters
        if self.resolved_network() != "mlp" and "net_arch" not in h.model_fields_set:
            return []
        return list(h.net_arch)

    @property
    def training_tracks(self) -> list[str]:
        """The tracks the run's `n_envs` cars drive: `track`, then `track_pool`'s, each once (with fewer
        cars than (track, direction) pairs, only those that get a car: `trainer.pool`)."""
        from trainer.pool import pool_members

        return list(dict.fromkeys(track for track, _, _ in pool_members(self, self.n_envs)))

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `TimeTrialVectorEnv` / `TimeTrialEnv` (training episodes: round-robin starts)."""
        return {
            "track": self.track,
            "car": self.car,
            "observation": self.observation,
            "action_space": self.resolved_action_space(),
            "reward": self.reward,
            "reverse": self.reverse,
            "time_limit_s": self.time_limit_s,
            "randomization": self.randomization,
        }

    def notes(self, *, route: bool = True) -> list[str]:
        """What DeepRacer files (hyperparameters.json, model_metadata.json) asked for that this run does
        differently, and (with `route`) how a sensor observation is trained (empty if nothing to say)."""
        notes: list[str] = []
        if self.deepracer_hyperparameters is not None:
            notes += deepracer_mapping(read_deepracer_hyperparameters(self.deepracer_hyperparameters))[2]
        if self.model_metadata is not None:
            notes += self._metadata_notes()
        from trainer.pool import pool_note

        if (pool := pool_note(self, self.n_envs)) is not None:
            notes.append(pool)
        if route and self.training_route() == "distill":
            notes.append(
                f"{self.observation} policy ({self.resolved_network()}) trained by distillation: first a `state` "
                f"teacher ({self.algorithm.upper()}, {self.total_steps:,} car-steps) in teacher/, then "
                f"{self.distill.rounds} DAgger rounds of {self.distill.frames_per_round:,} frames into the "
                f'{self.observation} student (training = "direct" runs {self.algorithm.upper()} on the '
                "frames instead: hours on a laptop CPU)"
            )
        return notes

    def _metadata_notes(self) -> list[str]:
        """Where this run departs from its model_metadata.json (an explicit `observation`, `network` or
        `algorithm` wins over the file), said rather than silently done."""
        path = self.model_metadata
        metadata = load_model_metadata(path)
        notes: list[str] = []
        wanted = metadata_observation(metadata, path, refuse=False)
        if self.observation != wanted:
            notes.append(
                f"{path}: `sensor` {list(metadata.sensor)} not used: this run's observation is "
                f"{self.observation!r} (given explicitly)"
                + (
                    "; a `state` policy drives only in the simulator (no car has these features): leave "
                    f"`observation` out to train the {wanted} model the file describes"
                    if self.observation == "state"
                    else ""
                )
            )
        named = DEEPRACER_NETWORKS[metadata.neural_network]
        if (
            any("camera" in k for k in parse_observation(self.observation))
            and self.resolved_network() != named
        ):
            notes.append(
                f"{path}: `neural_network` {metadata.neural_network!r} ({named}) not used: this run's network "
                f"is {self.resolved_network()!r} (given explicitly)"
            )
        if {"clipped_ppo": "ppo", "sac": "sac"}[metadata.training_algorithm] != self.algorithm:
            notes.append(
                f"{path}: `training_algorithm` {metadata.training_algorithm!r} not used: this run trains with "
                f"{self.algorithm!r} (set `algorithm` to change it)"
            )
        return notes

    def to_json_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON types (the action space spelled out)."""
        data = self.model_dump(mode="json")
        data["resolved_action_space"] = self.resolved_action_space().to_json()
        data["resolved_network"] = self.resolved_network()
        data["hyperparameters"]["net_arch"] = self.resolved_net_arch()  # explicit: a reload builds the same
        return data

    @classmethod
    def from_flags(
        cls,
        base: RunConfig | None = None,
        *,
        track: str | None = None,
        observation: str | None = None,
        reward: str | None = None,
        action_space: Path | None = None,
        steps: int | None = None,
        n_envs: int | None = None,
        seed: int | None = None,
        until_clean_laps: int | None = None,
        network: str | None = None,
        track_pool: list[str] | None = None,
        both_directions: bool | None = None,
        randomization: str | None = None,
    ) -> RunConfig:
        """`base` (or the defaults) with the CLI flags that were given applied; raises RunConfigError."""
        # the DeepRacer file stays (for `notes()`); merging it again changes nothing: the merged values are
        # now explicit, and explicit keys win
        data = base.model_dump(exclude_unset=True) if base is not None else {}
        flags = {
            "track": track,
            "observation": observation,
            "reward": reward,
            "total_steps": steps,
            "n_envs": n_envs,
            "seed": seed,
            "network": network,
            "track_pool": track_pool,
            "both_directions": both_directions,
            "randomization": randomization,
        }
        data.update({k: v for k, v in flags.items() if v is not None})
        if action_space is not None:
            data.pop("action_space", None)
            data["model_metadata"] = action_space
        if until_clean_laps is not None:
            data["stop"] = {**dict(data.get("stop") or {}), "until_clean_laps": until_clean_laps}
        return _validate(data, "command-line flags")


#: DeepRacer model_metadata `neural_network` -> `RunConfig.network` (topologies: trainer/networks.py)
DEEPRACER_NETWORKS = {
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": "cnn_shallow",
    "DEEP_CONVOLUTIONAL_NETWORK": "cnn",
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP": "cnn_deep",
}


def metadata_observation(metadata: ModelMetadata, path: Path, *, refuse: bool = True) -> str:
    """The observation a model_metadata.json's `sensor` list asks for: `camera` or `stereo_camera`.

    A list with a lidar (camera + LIDAR / SECTOR_LIDAR / DISCRETIZED_SECTOR_LIDAR) is refused (ValueError
    naming the file, the key and the value) unless `refuse` is False: pitlane trains such a combined
    observation only in the simulator (`observation = "camera+lidar"`, PPO on frames) and exports one sensor
    per model, so no car could run the model the file describes."""
    cameras = [DEEPRACER_SENSORS[s] for s in metadata.sensor if s in CAMERA_SENSORS]
    lidars = [s for s in metadata.sensor if s not in CAMERA_SENSORS]
    if lidars and refuse:
        raise ValueError(
            f"{path}: `sensor` {list(metadata.sensor)}: a camera combined with {lidars[0]} is not supported for "
            f"a car model (pitlane exports one sensor per model); keep only the camera in `sensor` "
            f'(["{next(s for s in metadata.sensor if s in CAMERA_SENSORS)}"]) '
            f"to train a camera model, or set `observation` (e.g. --observation "
            f'"{cameras[0] if cameras else "camera"}+{DEEPRACER_SENSORS[lidars[0]]}") to train the combined '
            "observation in the simulator only"
        )
    return cameras[0] if cameras else "camera"


#: The default recipe's action space: few, fast actions (up to the DeepRacer car's 4 m/s) learn fastest with
#: the progress reward, which picks the fastest that stays on the road (measured: `pitlane bench train`).
DEFAULT_TRAINING_ACTION_SPACE = parse_action_space(
    [
        {"steering_angle": -25, "speed": 1.5},
        {"steering_angle": -10, "speed": 3.0},
        {"steering_angle": 0, "speed": 4.0},
        {"steering_angle": 10, "speed": 3.0},
        {"steering_angle": 25, "speed": 1.5},
    ],
    source="default training action space",
)

# ---------------------------------------------------------------------- DeepRacer hyperparameters.json

#: DeepRacer key -> our key (same meaning, same units).
DEEPRACER_DIRECT = {
    "batch_size": "batch_size",
    "lr": "learning_rate",
    "discount_factor": "gamma",
    "beta_entropy": "ent_coef",
    "num_epochs": "n_epochs",
}
_DEEPRACER_NOT_APPLICABLE = {
    "e_greedy_value": "epsilon-greedy exploration is not used: PPO samples from its policy distribution",
    "epsilon_steps": "epsilon-greedy exploration is not used: PPO samples from its policy distribution",
    "exploration_type": "exploration comes from the policy's own distribution (categorical or Gaussian)",
    "stack_size": "frame stacking is not applied (DeepRacer also uses 1 frame)",
    "sac_alpha": "SAC here tunes its entropy coefficient automatically",
}


def read_deepracer_hyperparameters(path: Path) -> dict[str, Any]:
    """The JSON object of a DeepRacer `hyperparameters.json`; RunConfigError naming the file otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunConfigError(f"{path}: not a readable hyperparameters.json ({exc})") from None
    if not isinstance(data, dict):
        raise RunConfigError(f"{path}: expected a JSON object of DeepRacer hyperparameters")
    return data


def deepracer_mapping(dr: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """DeepRacer hyperparameters -> (our hyperparameters, stop conditions, notes for the user)."""
    hyper: dict[str, Any] = {}
    stop: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in dr.items():
        if key in DEEPRACER_DIRECT:
            hyper[DEEPRACER_DIRECT[key]] = value
        elif key == "loss_type":
            if str(value).lower() == "huber":
                notes.append(
                    "loss_type 'huber': stable-baselines3's PPO uses a mean-squared-error value loss; "
                    "training uses mean squared error"
                )
            elif str(value).lower() not in ("mean squared error", "mse"):
                notes.append(f"loss_type {value!r}: unknown; training uses mean squared error")
        elif key == "num_episodes_between_training":
            notes.append(
                f"num_episodes_between_training {value}: mapped to simtrace_episodes (episodes per "
                "training-simtrace iteration file); rollouts are `hyperparameters.n_steps` steps per car x "
                "n_envs cars, not a number of episodes"
            )
        elif key == "term_cond_max_episodes":
            stop["max_episodes"] = int(value)
            notes.append(f"term_cond_max_episodes {value}: mapped to stop.max_episodes (all cars together)")
        elif key == "term_cond_avg_score":
            stop["mean_episode_reward"] = float(value)
            notes.append(
                f"term_cond_avg_score {value}: mapped to stop.mean_episode_reward (mean of the last 100 episodes)"
            )
        elif key in _DEEPRACER_NOT_APPLICABLE:
            notes.append(f"{key} {value!r}: not applicable ({_DEEPRACER_NOT_APPLICABLE[key]})")
        else:
            notes.append(f"{key} {value!r}: unknown DeepRacer hyperparameter, ignored")
    return hyper, stop, notes


# ---------------------------------------------------------------------- loading


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a run's TOML file. Relative paths inside are relative to the file.

    Raises RunConfigError naming the file and the dotted key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunConfigError(f"{path}: no such run config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunConfigError(f"{path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RunConfigError(f"{path}: TOML syntax error: {exc}") from None
    base = path.parent
    for key in ("model_metadata", "deepracer_hyperparameters"):
        if isinstance(data.get(key), str):
            data[key] = str(_relative_to(base, data[key]))
    for key, suffix in (("reward", ".py"), ("track", ".npy")):
        value = data.get(key)
        if isinstance(value, str) and value.endswith(suffix):
            data[key] = str(_relative_to(base, value))
    if isinstance(data.get("deepracer_hyperparameters"), str):
        dr_path = Path(data["deepracer_hyperparameters"])
        if dr_path.is_file():
            read_deepracer_hyperparameters(dr_path)  # a broken JSON file is named as such
    return _validate(data, str(path))


def _relative_to(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _validate(data: dict[str, Any], source: str) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(err) for err in exc.errors()]
        raise RunConfigError(f"{source}: invalid run config:\n  " + "\n  ".join(lines)) from None


_TABLES: dict[str, type[BaseModel]] = {
    "hyperparameters": Hyperparameters,
    "stop": StopCondition,
    "distill": DistillSettings,
}


def _describe(err: Any) -> str:
    """One line per pydantic error: the dotted key, what is wrong, a suggestion for a misspelt key."""
    loc = tuple(str(p) for p in err["loc"])
    key = ".".join(loc) if loc else "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        model = _TABLES.get(loc[0]) if len(loc) == 2 else RunConfig if len(loc) == 1 else None
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        return f"unknown key `{key}`{hint}"
    if not loc:
        return msg
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    return f"`{key}`: {msg}{shown}"


def read_resolved_config(run: str | Path) -> dict[str, Any]:
    """A run directory's `config.resolved.json` as written (the config's fields and what the trainer wrote
    beside them); RunConfigError naming the folder or file."""
    path = Path(run) / "config.resolved.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunConfigError(f"{run}: not a run directory (no config.resolved.json)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RunConfigError(f"{path}: not a readable run config ({exc})") from None
    return data


def load_run_dir_config(run: str | Path, *, portable: bool = False) -> RunConfig:
    """The RunConfig a run directory was trained with, from its `config.resolved.json`.

    portable: for using the trained policy elsewhere (evaluation): the action space as resolved then replaces
    any model_metadata/hyperparameters file references, and a reward file that has moved is replaced by the
    built-in `centerline` (the reward only colours an evaluation's curve, never the driving).
    """
    data = read_resolved_config(run)
    resolved_actions = data.get("resolved_action_space")
    # what the trainer writes beside the fields (resolved_action_space, notes, ...) is not config
    data = {k: v for k, v in data.items() if k in RunConfig.model_fields}
    # a run trained before the pool and randomisation existed drove its one track, unperturbed
    data = {**ONE_TRACK, **data}
    if portable:
        data["model_metadata"] = None
        data["deepracer_hyperparameters"] = None
        if resolved_actions is not None:
            data["action_space"] = resolved_actions
        reward = data.get("reward")
        if isinstance(reward, str) and reward.endswith(".py") and not Path(reward).is_file():
            data["reward"] = "centerline"
    try:
        return RunConfig.model_validate(data)
    except ValueError as exc:
        raise RunConfigError(
            f"{Path(run) / 'config.resolved.json'}: not a usable run config ({' '.join(str(exc).split())})"
        ) from None
