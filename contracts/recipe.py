"""A recipe: everything that made a model, as a plain TOML file a person can read, diff, share and remix —
and the training job the league server's console hands a worker, with what the job reports back.

    recipe = Recipe(name="centre line, faster")          # DeepRacer's console defaults
    text = recipe.to_toml()                              # what `pitlane recipe export RUN` prints
    recipe = Recipe.from_toml(text, source="recipe.toml")  # RecipeError naming the source and each field

A recipe holds the track (and direction), the car, the action space in DeepRacer's `model_metadata.json` form,
the reward function's Python source, the algorithm and its hyperparameters under DeepRacer's names and
defaults (`hyperparameters.json`), the observation, the training budget, and the recipe it was remixed from.
The trainer turns one into a run config (`trainer.recipe`); the league server stores and shows them without
importing the trainer.

Training jobs: the server writes `TrainingJob` as `job.json` in a job folder; `python -m trainer.job job.json`
trains, appends one `TrainingProgress` JSON line to `out/progress.jsonl` every few seconds, then exports and
evaluates the model and writes `TrainingOutcome` to `out/result.json`. `python -m trainer.job --check job.json`
only checks the recipe (its reward function run on realistic params) and writes `RecipeCheck` to
`out/check.json`.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from contracts.errors import ContractError, RecipeError, validation_items, validation_problems
from contracts.job_file import JobFile
from contracts.vocabulary import OBSERVATION_KINDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

#: the recipe file format this code writes (a newer one is refused with a message to upgrade)
RECIPE_FORMAT = 1
#: the most discrete actions a recipe may have: DeepRacer's console offered at most 21 (7 steering x 3 speed);
#: every action is an output of the policy, and hundreds would only slow training down
MAX_DISCRETE_ACTIONS = 50
#: DeepRacer's physical limits for a commanded action (its simulator clips to these)
STEERING_LIMIT_DEG = 30.0
SPEED_RANGE_MPS = (0.1, 4.0)
#: what a recipe's track and car may be: names only. A recipe is shared and trained on a server, where a path
#: would name the server's files (and be read before the job is locked down)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"
#: the reward function source a recipe may hold (bytes of UTF-8)
MAX_REWARD_SOURCE_BYTES = 64_000
#: the training budget a recipe may ask for, minutes (DeepRacer's console: 5 to 1440)
MIN_TRAINING_MINUTES = 0.25
MAX_TRAINING_MINUTES = 1440.0

_TEMPLATES = "contracts.reward_templates"
#: the reward function a new recipe starts with (DeepRacer's console default, its example 1)
DEFAULT_TEMPLATE = "follow_centerline"


def reward_templates() -> dict[str, str]:
    """DeepRacer's example reward functions (and pitlane's progress example) by name: the source of each."""
    folder = resources.files(_TEMPLATES)
    return {
        entry.name.removesuffix(".py"): entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".py") and not entry.name.startswith("_")
    }


def templates_dir() -> Path:
    """The folder of the template files (for tools that take a path, e.g. `pitlane reward check`)."""
    return Path(str(resources.files(_TEMPLATES)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------------ action space


class DiscreteAction(_Strict):
    """One action: steering in degrees (positive = left, DeepRacer's sign) and speed in m/s."""

    steering_angle: float = Field(ge=-STEERING_LIMIT_DEG, le=STEERING_LIMIT_DEG, description="degrees")
    speed: float = Field(ge=SPEED_RANGE_MPS[0], le=SPEED_RANGE_MPS[1], description="m/s")


class Range(_Strict):
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"expected low < high, got low {self.low:g}, high {self.high:g}")
        return self


class ContinuousActions(_Strict):
    """DeepRacer's continuous action space: steering in degrees, speed in m/s, each a [low, high] range."""

    steering_angle: Range
    speed: Range

    @model_validator(mode="after")
    def _within_limits(self) -> ContinuousActions:
        steer, speed = self.steering_angle, self.speed
        if steer.low < -STEERING_LIMIT_DEG or steer.high > STEERING_LIMIT_DEG:
            raise ValueError(f"steering_angle: expected within ±{STEERING_LIMIT_DEG:g} degrees")
        if speed.low < SPEED_RANGE_MPS[0] or speed.high > SPEED_RANGE_MPS[1]:
            raise ValueError(f"speed: expected within {SPEED_RANGE_MPS[0]:g}-{SPEED_RANGE_MPS[1]:g} m/s")
        return self


#: DeepRacer console's classic default: 5 steering angles x 2 speeds, steering-major
DEFAULT_DISCRETE_ACTIONS: tuple[DiscreteAction, ...] = tuple(
    DiscreteAction(steering_angle=steer, speed=speed)
    for steer in (-30.0, -15.0, 0.0, 15.0, 30.0)
    for speed in (1.0, 2.0)
)
_DISCRETE = TypeAdapter(tuple[DiscreteAction, ...])
_CONTINUOUS = TypeAdapter(ContinuousActions)

#: DeepRacer console's default continuous ranges
DEFAULT_CONTINUOUS_ACTIONS = ContinuousActions(
    steering_angle=Range(low=-30.0, high=30.0), speed=Range(low=0.5, high=1.0)
)


# ---------------------------------------------------------------------------------------- hyperparameters


class DeepRacerHyperparameters(_Strict):
    """Learning settings under DeepRacer's names, with its console's defaults and ranges
    (`hyperparameters.json`). PPO reads all but `sac_alpha`; SAC reads batch_size, discount_factor, lr,
    num_epochs and sac_alpha."""

    batch_size: Literal[32, 64, 128, 256, 512] = Field(64, description="gradient descent batch size, samples")
    beta_entropy: float = Field(0.01, ge=0, le=1, description="entropy bonus")
    discount_factor: float = Field(0.999, ge=0, le=1)
    loss_type: Literal["huber", "mean squared error"] = "huber"
    lr: float = Field(0.0003, ge=1e-8, le=1e-3, description="learning rate")
    num_episodes_between_training: int = Field(20, ge=5, le=100, description="experience episodes per update")
    num_epochs: int = Field(10, ge=3, le=10, description="passes over each batch of experience")
    sac_alpha: float = Field(0.2, ge=0, le=1, description="SAC's entropy weight (SAC only)")

    def to_deepracer_json(self) -> dict[str, Any]:
        """DeepRacer's `hyperparameters.json` keys and values (for the trainer's DeepRacer mapping)."""
        return self.model_dump()


class StopCondition(_Strict):
    """When training stops: after `minutes` of training (DeepRacer's stop condition), or earlier once the
    model has driven `until_clean_laps` consecutive clean evaluation laps (None: use the whole time; TOML,
    which has no None, writes 0)."""

    minutes: float = Field(10.0, ge=MIN_TRAINING_MINUTES, le=MAX_TRAINING_MINUTES, description="minutes")
    until_clean_laps: int | None = Field(3, ge=1, le=20)

    @field_validator("until_clean_laps", mode="before")
    @classmethod
    def _zero_is_none(cls, value: Any) -> Any:
        return None if value == 0 and not isinstance(value, bool) else value


class RemixedFrom(_Strict):
    """The recipe this one was remixed from: its name, who made it, and where it is (a URL or file)."""

    name: str
    author: str | None = None
    url: str | None = None


# ------------------------------------------------------------------------------------------------ recipe


class Recipe(_Strict):
    """What made a model; see the module docstring. `observation`: an observation kind (or kinds joined by
    '+'); a camera recipe trains a `state` teacher and distils it into the camera student."""

    format: int = RECIPE_FORMAT
    name: str = Field("my model", min_length=1, max_length=64)
    description: str = Field("", max_length=2000)
    track: str = Field(
        "reinvent_base",
        pattern=NAME_PATTERN,
        description="a track name (built-in, DeepRacer's or imported with `pitlane tracks import`), not a path",
    )
    reverse: bool = Field(False, description="drive the track the other way round")
    car: str = Field("deepracer", pattern=NAME_PATTERN, description="a shipped car model's name, not a path")
    observation: str = "state"
    action_space_type: Literal["discrete", "continuous"] = "discrete"
    action_space: tuple[DiscreteAction, ...] | ContinuousActions = DEFAULT_DISCRETE_ACTIONS
    training_algorithm: Literal["clipped_ppo", "sac"] = "clipped_ppo"
    hyperparameters: DeepRacerHyperparameters = DeepRacerHyperparameters()
    reward_function: str = Field(default_factory=lambda: reward_templates()[DEFAULT_TEMPLATE])
    stop: StopCondition = StopCondition()
    seed: int = Field(0, ge=0, le=2**31 - 1)
    remixed_from: RemixedFrom | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: int) -> int:
        if value > RECIPE_FORMAT:
            raise ValueError(
                f"recipe format {value} is newer than this pitlane reads ({RECIPE_FORMAT}): upgrade"
            )
        return value

    @field_validator("observation")
    @classmethod
    def _known_observation(cls, value: str) -> str:
        unknown = [kind for kind in value.split("+") if kind not in OBSERVATION_KINDS]
        if unknown:
            raise ValueError(f"expected one of {', '.join(OBSERVATION_KINDS)} (joined by '+'), got {value!r}")
        return value

    @field_validator("action_space", mode="wrap")
    @classmethod
    def _by_type(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        """Validate the action space in the form `action_space_type` names, so a problem is reported once,
        at its key (`action_space.0.speed`), not once per form the union could have taken."""
        kind = info.data.get("action_space_type")
        if kind is None:  # action_space_type itself is invalid (reported there)
            return handler(value)
        form = "continuous" if isinstance(value, dict | ContinuousActions) else "discrete"
        if form != kind:
            raise ValueError(f"action_space_type is {kind!r} but action_space is written in the {form} form")
        # a ValidationError raised here is merged into the recipe's, under this key
        return (_DISCRETE if kind == "discrete" else _CONTINUOUS).validate_python(value)

    @field_validator("reward_function")
    @classmethod
    def _reward_size(cls, value: str) -> str:
        size = len(value.encode("utf-8"))
        if size > MAX_REWARD_SOURCE_BYTES:
            raise ValueError(f"expected at most {MAX_REWARD_SOURCE_BYTES:,} bytes of Python, got {size:,}")
        if "def reward_function" not in value:
            raise ValueError("expected Python source defining `def reward_function(params):`")
        # as a file's text: lines end in "\n" (TOML's multi-line strings read CRLF as LF), the last one too
        return _ending_newline(value.replace("\r\n", "\n"))

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        discrete = isinstance(self.action_space, tuple)
        if discrete != (self.action_space_type == "discrete"):
            raise ValueError(
                f"action_space_type is {self.action_space_type!r} but action_space is written in the "
                f"{'discrete' if discrete else 'continuous'} form"
            )
        if discrete and not 2 <= len(self.action_space) <= MAX_DISCRETE_ACTIONS:
            raise ValueError(
                f"action_space: expected 2 to {MAX_DISCRETE_ACTIONS} discrete actions, got {len(self.action_space)}"
            )
        if self.training_algorithm == "sac" and discrete:
            raise ValueError("training_algorithm 'sac' needs a continuous action space (as in DeepRacer)")
        return self

    # -------------------------------------------------------------------------------------- files

    def action_space_json(self) -> list[dict[str, float]] | dict[str, Any]:
        """The action space in `model_metadata.json`'s form."""
        if isinstance(self.action_space, tuple):
            return [action.model_dump() for action in self.action_space]
        return self.action_space.model_dump()

    def to_toml(self) -> str:
        """The recipe as TOML: top-level keys first, the reward function as a multi-line string, tables last."""
        import tomlkit  # writing only: reading is the standard library's tomllib

        data = self.model_dump(mode="json", exclude_none=True)
        data["stop"].setdefault("until_clean_laps", 0)  # None: TOML has no null
        doc = tomlkit.document()
        doc.add(tomlkit.comment("a pitlane recipe: train it with `pitlane train --remix THIS_FILE`"))
        for key in ("format", "name", "description", "track", "reverse", "car", "observation",
                    "action_space_type", "training_algorithm", "seed"):  # fmt: skip
            doc.add(key, data[key])
        doc.add("reward_function", _multiline(self.reward_function))
        if isinstance(self.action_space, tuple):
            actions = tomlkit.aot()
            for action in data["action_space"]:
                actions.append(_table(action))
            doc.add("action_space", actions)
        else:
            doc.add("action_space", _table(data["action_space"]))
        for key in ("hyperparameters", "stop", "remixed_from"):
            if key in data:
                doc.add(key, _table(data[key]))
        return tomlkit.dumps(doc)

    @classmethod
    def from_toml(cls, text: str, *, source: str = "recipe") -> Recipe:
        """A recipe from TOML text; RecipeError naming `source` and each invalid key."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RecipeError(f"{source}: not valid TOML ({exc})") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "recipe") -> Recipe:
        """A recipe from parsed TOML/JSON; RecipeError naming `source` and each invalid key."""
        if not isinstance(data, dict):
            raise RecipeError(f"{source}: expected a table of recipe keys, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise RecipeError(
                f"{source}: {validation_problems(exc, quote=True)}", problems=tuple(validation_items(exc))
            ) from None

    @classmethod
    def read(cls, path: str | Path) -> Recipe:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RecipeError(f"{path}: cannot read the recipe ({exc})") from None
        return cls.from_toml(text, source=str(path))


def _ending_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _multiline(text: str) -> Any:
    """`text` as a TOML multi-line string that begins on its own line (TOML drops that first newline):
    literal (written as is, no escapes) when it can be, else basic (with escapes) for text that holds three
    single quotes or control characters a literal string may not."""
    import tomlkit
    from tomlkit.exceptions import InvalidStringError
    from tomlkit.items import String, Trivia

    try:
        item = tomlkit.string(text, literal=True, multiline=True)
    except InvalidStringError:
        item = tomlkit.string(text, multiline=True)
    body = item.as_string()[3:-3]  # the escaped text between the delimiters
    # tomlkit writes the text right after the delimiter (or, for text that begins with a newline, the
    # newline TOML trims first); one more newline of ours is trimmed on reading
    return String(item.type, text, body if body.startswith("\n") else "\n" + body, Trivia())


def _table(values: dict[str, Any]) -> Any:
    import tomlkit

    table = tomlkit.table()
    for key, value in values.items():
        table.add(key, _table(value) if isinstance(value, dict) else value)
    return table


# ------------------------------------------------------------------------------------------ training jobs


class TrainingJob(JobFile):
    """One training job: the recipe, where to write (relative to the job file), and how much of the machine
    it may use. `n_envs`: simulated cars training at once; `torch_threads`: CPU threads for the network
    (several jobs share a server's cores); `progress_every_s`: seconds between progress lines."""

    recipe: Recipe
    out_dir: str = "out"
    n_envs: int = Field(64, ge=1, le=1024)
    torch_threads: int = Field(1, ge=1, le=64)
    progress_every_s: float = Field(2.0, gt=0)

    file_error: ClassVar[type[ContractError]] = RecipeError


Phase = Literal["starting", "training", "exporting", "evaluating", "done"]


class TrainingProgress(_Strict):
    """One line of `out/progress.jsonl`. Times in seconds since the job started; `steps`: car-steps of all
    cars; `mean_reward`: mean return of the recent episodes; `lap_completion_pct`: share of the recent episodes
    that completed a lap, percent; `best_lap_s`: the fastest training lap so far; `eval_clean_laps`: clean
    laps in the latest evaluation; `best_eval_lap_s`: its fastest lap."""

    phase: Phase
    t_s: float = Field(ge=0)
    steps: int = Field(0, ge=0)
    steps_per_s: float = Field(0.0, ge=0)
    episodes: int = Field(0, ge=0)
    mean_reward: float | None = None
    lap_completion_pct: float | None = Field(None, ge=0, le=100)
    best_lap_s: float | None = None
    eval_clean_laps: int | None = Field(None, ge=0)
    best_eval_lap_s: float | None = None


class ProblemAt(_Strict):
    """One problem with a recipe: the recipe key it is about and, for the reward function, the line (1-based)."""

    field: str
    message: str
    line: int | None = None


class RecipeCheck(_Strict):
    """What `python -m trainer.job --check` wrote to `out/check.json`: `ok`, or the problems; for a reward
    function that ran, a summary of its rewards (min/mean/max over realistic params) and microseconds per
    call."""

    ok: bool
    problems: tuple[ProblemAt, ...] = ()
    reward_summary: dict[str, Any] | None = None


#: the files a finished training job leaves in its out folder, by role
TRAINING_FILES = {
    "onnx": "model.onnx",
    "int8": "model.int8.onnx",
    "card": "model.json",
    "parity": "parity.json",
    "png": "evaluation.png",
    "replay": "replay.json",
    "recipe": "recipe.toml",
}


class TrainingOutcome(_Strict):
    """What a training job wrote to `out/result.json`: `finished` (a model exported and evaluated) or `failed`
    with the reason a racer can act on (naming the reward function's line when it was the cause).
    `stopped_by`: what ended training ("minutes", "until_clean_laps", ...); `laps`: the evaluation's laps
    (contracts.race LapRecord dicts, seconds); `parity`: the export's parity summary; `files`: role -> file
    name inside out_dir (`TRAINING_FILES`)."""

    status: Literal["finished", "failed"]
    reason: str | None = None
    line: int | None = None
    steps: int = 0
    training_s: float = 0.0
    stopped_by: str | None = None
    best_eval_lap_s: float | None = None
    laps: tuple[dict[str, Any], ...] = ()
    parity: dict[str, Any] | None = None
    files: dict[str, str] = Field(default_factory=dict)
