"""A virtual race's evaluation conditions and the limits a submitted model runs under: what the league server
stores for a virtual race and hands to an evaluation job, and what the job reads back.

    spec = VirtualRaceSpec(track="reinvent_base", route_sha256="...", laps=3, seed=7)
    job = EvaluationJob(spec=spec, model="model.onnx", card="model.json", out_dir="out")
    job.write(folder / "job.json")          # the server side
    job = EvaluationJob.read(folder / "job.json")   # the worker side

Every submission of a race meets the same conditions (track, direction, car, rules, randomisation and its seed),
so the same file in the same race gives the same laps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.errors import ContractError, VirtualRaceError
from contracts.job_file import JobFile
from contracts.race import RaceRules
from contracts.vocabulary import OBSERVATION_KINDS

#: the randomisation presets a race can fix (the simulator's names)
RACE_RANDOMIZATION = ("none", "light", "strong", "eval-shift")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubmissionLimits(_Strict):
    """What one submitted model may use. Upload: bytes of the .onnx file. The evaluation process: CPU
    seconds, address space (MiB) and wall-clock seconds before it is stopped and the job fails."""

    max_upload_bytes: int = Field(50_000_000, ge=1, description="bytes of one .onnx upload")
    cpu_s: float = Field(120.0, gt=0, description="CPU seconds of one evaluation process")
    memory_mb: int = Field(2048, ge=256, description="address space of one evaluation process, MiB")
    wall_s: float = Field(300.0, gt=0, description="wall-clock seconds of one evaluation")


class VirtualRaceSpec(_Strict):
    """The conditions every submission of one virtual race is evaluated under.

    track: a track name the simulator knows, or the path of the route file the server keeps for the race;
    route_sha256: that route's hash when the race was made (an evaluation of another route is refused).
    reverse: drive the track backwards. car: the car model (a firmware_configs name or file).
    observation_kinds: the observation kinds a submitted model may read. rules: laps, off-track penalty s,
    reset limit and ranking (`contracts.race`). randomization and seed: fixed for the race.
    """

    track: str
    route_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    reverse: bool = False
    car: str = "deepracer"
    observation_kinds: tuple[str, ...] = OBSERVATION_KINDS
    rules: dict[str, Any] = Field(default_factory=lambda: RaceRules().to_dict())
    randomization: Literal["none", "light", "strong", "eval-shift"] = "none"
    seed: int = 0
    limits: SubmissionLimits = SubmissionLimits()

    @field_validator("observation_kinds")
    @classmethod
    def _known_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in kinds if k not in OBSERVATION_KINDS]
        if unknown or not kinds:
            raise ValueError(f"expected one or more of {', '.join(OBSERVATION_KINDS)}, got {list(kinds)}")
        return kinds

    @field_validator("rules")
    @classmethod
    def _valid_rules(cls, rules: dict[str, Any]) -> dict[str, Any]:
        return RaceRules(**rules).to_dict()  # RaceRulesError (a ValueError) names the field

    def race_rules(self) -> RaceRules:
        return RaceRules(**self.rules)


class EvaluationJob(JobFile):
    """One evaluation: a submitted model (.onnx + its model card) under a race's spec; results go to
    `out_dir` (result.json, the simtrace, a PNG). Paths are absolute or relative to the job file."""

    spec: VirtualRaceSpec
    model: str
    card: str
    out_dir: str
    #: the upload passed the server's check when it was submitted (its graph need not be read again)
    checked: bool = False

    file_error: ClassVar[type[ContractError]] = VirtualRaceError

    def resolve(self, base: Path) -> tuple[Path, Path, Path]:
        """(model, card, out_dir) as paths, relative ones taken from `base` (the job file's folder)."""
        return tuple(
            p if p.is_absolute() else base / p for p in map(Path, (self.model, self.card, self.out_dir))
        )


class EvaluationOutcome(_Strict):
    """What an evaluation job wrote to `out_dir/result.json`: `finished` with its laps (contracts.race
    LapRecord dicts, seconds), or `failed` with the reason a racer can act on; `checked` when the job only
    checked the upload and found nothing wrong."""

    status: Literal["finished", "failed", "checked"]
    reason: str | None = None
    laps: tuple[dict[str, Any], ...] = ()
    model_sha256: str | None = None
    simtrace: str | None = None
    png: str | None = None


class Replay(_Strict):
    """A drive to animate in a browser (the replay and ghost-race pages): the track's borders and the car's
    path, one frame per control step of `dt_s` seconds. Coordinates in metres (DeepRacer's point 0.14 m
    ahead of the chassis), speeds in m/s; `lap`: the lap each frame belongs to (0-based); `off_track`: the
    frames where the car left the track (it is put back on the next); `laps_s`: each lap's time with
    penalties, None for a lap not completed; `max_speed_mps`: the top of the speed colour scale."""

    track: str
    inner: tuple[tuple[float, float], ...]
    outer: tuple[tuple[float, float], ...]
    dt_s: float
    x_m: tuple[float, ...]
    y_m: tuple[float, ...]
    speed_mps: tuple[float, ...]
    lap: tuple[int, ...]
    off_track: tuple[int, ...] = ()
    laps_s: tuple[float | None, ...] = ()
    max_speed_mps: float
