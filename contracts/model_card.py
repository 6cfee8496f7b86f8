"""The model card `model.json` written beside exported ONNX models, and its check against a car config.

A card says what a model needs and what it does (see ../shared/DESIGN.md, "Model card"):

    schema_version   1
    observation      kind (`camera`, `stereo_camera`, `lidar`, ..., `state`), the graph input's name, shape
                     (batch first, e.g. (1, 1, 120, 160)) and dtype (`uint8` camera, `float32` otherwise), the
                     camera geometry it was trained with ([camera] of the car file), lidar beams and range
    action_space     DeepRacer's JSON form (discrete list or continuous ranges), degrees and m/s
    outputs          ("steering_deg", "speed_mps"): the graph's outputs, final commands
    car              the car model name it was trained for (`deepracer`, `donkey-pi`, ...)
    tracks, reverse  where it was trained
    training         algorithm, network, steps, seed, run directory
    evaluation       closed-loop summary (laps, best lap, off-tracks) from the export's parity run, or None
    robustness       clean-lap completion under a held-out shift on tracks it never saw (`contracts.robustness`),
                     or None (an export that skipped it, or one older than the card)
    files            one entry per ONNX file the card describes: file name, precision, sha256, size
    pitlane_version  the pitlane that exported it

`card_mismatches(card, car)` lists what differs between the observation a model was trained on and what a car
config gives; `device.policy.OnnxPolicy` refuses a model when the list is not empty.

Only the standard library, pydantic and the other contracts: the car runtime and the trainer both import it.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.car_file import CameraConfig, CarConfig, fisheye_distorted_angle
from contracts.errors import ModelCardError, validation_problems
from contracts.robustness import RobustnessCard
from contracts.vocabulary import CAMERA_KINDS, SIMULATOR_ONLY_KINDS

SCHEMA_VERSION = 1
CARD_FILE = "model.json"
OUTPUT_NAMES = ("steering_deg", "speed_mps")

# Tolerances of the camera check: a mount measured again by hand differs by a few millimetres and a
# fraction of a degree; a different car differs by centimetres and degrees (deepracer vs donkey-pi: 7 cm
# height, 5 deg pitch).
CAMERA_POSITION_TOL_M = 0.005
CAMERA_ANGLE_TOL_DEG = 0.5
#: Two fisheye calibrations of one lens put a ray within a fraction of a pixel of each other.
FISHEYE_TOL_PX = 0.5


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraGeometry(_Strict):
    """The camera a model was trained with: mount (m, deg), lens and image format, as `[camera]`. Cards
    written before lenses were modelled have no `lens`: they were trained with a pinhole."""

    x_m: float
    y_m: float
    z_m: float
    pitch_deg: float
    hfov_deg: float
    width_px: int = Field(ge=1)
    height_px: int = Field(ge=1)
    grayscale: bool
    stereo_baseline_m: float = 0.0
    lens: Literal["pinhole", "fisheye"] = "pinhole"
    fisheye_k: tuple[float, float, float, float] | None = None

    @classmethod
    def from_camera(cls, camera: CameraConfig) -> CameraGeometry:
        return cls(**{name: getattr(camera, name) for name in cls.model_fields})


class LidarGeometry(_Strict):
    """The lidar a model was trained with: beams over fov_deg, ranges clipped to [min_range_m, max_range_m]."""

    n_beams: int = Field(ge=1)
    fov_deg: float = Field(gt=0)
    min_range_m: float = Field(ge=0)
    max_range_m: float = Field(gt=0)


class ObservationCard(_Strict):
    """The graph's one input: the sensor reading, exactly as the car gives it (batch of one first)."""

    kind: str
    input_name: str
    shape: tuple[int, ...]
    dtype: Literal["uint8", "float32"]
    camera: CameraGeometry | None = None
    lidar: LidarGeometry | None = None

    @property
    def simulator_only(self) -> bool:
        """True for the privileged `state` features: no real car has them."""
        return self.kind in SIMULATOR_ONLY_KINDS


class ActionSpaceCard(_Strict):
    """DeepRacer's action space JSON, unchanged: `type` discrete (a list of {steering_angle, speed}) or
    continuous ({steering_angle: {low, high}, speed: {low, high}}); degrees and m/s."""

    type: Literal["discrete", "continuous"]
    deepracer: list[dict[str, float]] | dict[str, dict[str, float]]


class TrainingCard(_Strict):
    algorithm: str
    network: str
    steps: int = Field(ge=0)
    seed: int
    run: str = Field(description="the run directory the model was exported from")


class ModelFile(_Strict):
    """One ONNX file the card describes."""

    file: str
    precision: Literal["fp32", "int8"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    opset: int
    #: int8 files: the quantised activations' type (int8 weights always): uint8 for camera CNNs, uint16
    #: for feature-vector MLPs (trainer/export/quantize.py says why)
    activations: Literal["uint8", "int8", "uint16"] | None = None


class ModelCard(_Strict):
    """`model.json`: what an exported model needs (its observation) and does (its action space)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    observation: ObservationCard
    action_space: ActionSpaceCard
    outputs: tuple[str, ...] = OUTPUT_NAMES
    car: str
    tracks: tuple[str, ...]
    reverse: bool = False
    training: TrainingCard
    evaluation: dict[str, Any] | None = None
    robustness: RobustnessCard | None = None
    files: tuple[ModelFile, ...] = ()
    pitlane_version: str
    created_at: str

    def file_with_sha256(self, sha256: str) -> ModelFile | None:
        """The entry of `files` whose hash is `sha256`, or None."""
        return next((f for f in self.files if f.sha256 == sha256), None)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    def essentials(self) -> dict[str, str]:
        """The card's essentials as ONNX `metadata_props` (strings), so a lone .onnx still says what it is."""
        obs = self.observation
        props = {
            "pitlane.schema_version": str(self.schema_version),
            "pitlane.observation.kind": obs.kind,
            "pitlane.observation.shape": json.dumps(list(obs.shape)),
            "pitlane.observation.dtype": obs.dtype,
            "pitlane.action_space": json.dumps(self.action_space.model_dump()),
            "pitlane.outputs": json.dumps(list(self.outputs)),
            "pitlane.car": self.car,
            "pitlane.tracks": json.dumps(list(self.tracks)),
            "pitlane.training_steps": str(self.training.steps),
            "pitlane.network": self.training.network,
            "pitlane.version": self.pitlane_version,
        }
        if obs.camera is not None:
            props["pitlane.observation.camera"] = obs.camera.model_dump_json()
        if obs.lidar is not None:
            props["pitlane.observation.lidar"] = obs.lidar.model_dump_json()
        return props


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a `model.json`; ModelCardError naming the file and the field otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelCardError(
            f"{path}: no model card (every exported model has a model.json beside it)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"{path}: not a readable model card ({exc})") from None
    try:
        return ModelCard.model_validate(data)
    except ValidationError as exc:
        raise ModelCardError(f"{path}: invalid model card: {validation_problems(exc, quote=True)}") from None


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_input_shape(kind: str, camera: CameraConfig) -> tuple[int, ...] | None:
    """The graph input a car with this `[camera]` gives for a camera kind (batch 1, NCHW); None otherwise."""
    if kind == "camera":
        return (1, 1, camera.height_px, camera.width_px)
    if kind == "stereo_camera":
        return (1, 2, camera.height_px, camera.width_px)
    return None


def card_mismatches(card: ModelCard, car: CarConfig) -> list[str]:
    """What differs between the observation `card`'s model was trained on and what `car` gives (empty: fits).

    Camera kinds: the car's camera must be mono/stereo as trained, give the same image size and format, and
    sit where the training camera sat (within CAMERA_POSITION_TOL_M, CAMERA_ANGLE_TOL_DEG) and
    have its lens (a fisheye's rays within FISHEYE_TOL_PX of the training calibration's). Lidar and state
    have nothing in the car file to compare (a lidar's beams are the driver's concern; `state` exists only
    in the simulator, which the sim HAL drives).
    """
    obs = card.observation
    if obs.kind not in CAMERA_KINDS:
        return []
    cam, trained = car.camera, obs.camera
    where = f"car `{car.car.name}` [camera]"
    if trained is None:
        return [f"the card has no camera geometry for a {obs.kind} model"]
    diffs: list[str] = []
    if (obs.kind == "stereo_camera") != cam.is_stereo:
        diffs.append(
            f"model takes a {'stereo' if obs.kind == 'stereo_camera' else 'mono'} camera, {where} is "
            f"{'stereo' if cam.is_stereo else 'mono'}"
        )
    shape = expected_input_shape(obs.kind, cam)
    if shape is not None and tuple(obs.shape) != shape:
        diffs.append(f"input shape: model {list(obs.shape)}, {where} gives {list(shape)}")
    if cam.grayscale != trained.grayscale:
        diffs.append(f"grayscale: model {trained.grayscale}, {where} {cam.grayscale}")
    for name, tol, unit in (
        ("x_m", CAMERA_POSITION_TOL_M, "m"),
        ("y_m", CAMERA_POSITION_TOL_M, "m"),
        ("z_m", CAMERA_POSITION_TOL_M, "m"),
        ("stereo_baseline_m", CAMERA_POSITION_TOL_M, "m"),
        ("pitch_deg", CAMERA_ANGLE_TOL_DEG, "deg"),
        ("hfov_deg", CAMERA_ANGLE_TOL_DEG, "deg"),
    ):
        model_value, car_value = getattr(trained, name), getattr(cam, name)
        if not math.isclose(model_value, car_value, rel_tol=0.0, abs_tol=tol):
            diffs.append(f"{name}: model {model_value:g}, {where} {car_value:g} (tolerance ±{tol:g} {unit})")
    for name in ("width_px", "height_px"):
        if getattr(trained, name) != getattr(cam, name):
            diffs.append(f"{name}: model {getattr(trained, name)}, {where} {getattr(cam, name)}")
    if trained.lens != cam.lens:
        diffs.append(f"lens: model {trained.lens}, {where} {cam.lens}")
    elif cam.lens == "fisheye":
        apart = _fisheye_apart_px(trained, cam)
        if apart > FISHEYE_TOL_PX:
            diffs.append(
                f"fisheye_k: model {list(trained.fisheye_k or ())}, {where} {list(cam.fisheye_k or ())} "
                f"(rays land up to {apart:.1f} px apart; tolerance {FISHEYE_TOL_PX:g} px)"
            )
    return diffs


def _fisheye_apart_px(trained: CameraGeometry, cam: CameraConfig) -> float:
    """The farthest apart (pixels) the two fisheye lenses put one ray, out to the car image's corners;
    each lens's focal length from its own hfov_deg (a difference there is reported on its own)."""
    k_model, k_car = trained.fisheye_k or (0.0,) * 4, cam.fisheye_k or (0.0,) * 4
    half = math.radians(trained.hfov_deg) / 2
    f_model = trained.width_px / 2 / fisheye_distorted_angle(half, k_model)
    corner_px = math.hypot(cam.width_px, cam.height_px) / 2
    theta_max = corner_px / cam.focal_px  # a fisheye's theta_d is about theta: a bound for the search
    worst = 0.0
    for i in range(1, 65):
        theta = theta_max * 1.2 * i / 64
        r_car = cam.focal_px * fisheye_distorted_angle(theta, k_car)
        if r_car > corner_px:
            break
        worst = max(worst, abs(f_model * fisheye_distorted_angle(theta, k_model) - r_car))
    return worst


__all__ = [
    "CARD_FILE",
    "OUTPUT_NAMES",
    "SCHEMA_VERSION",
    "ActionSpaceCard",
    "CameraGeometry",
    "LidarGeometry",
    "ModelCard",
    "ModelFile",
    "ObservationCard",
    "TrainingCard",
    "card_mismatches",
    "expected_input_shape",
    "load_card",
    "sha256_file",
]
