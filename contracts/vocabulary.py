"""The shared vocabulary: observation kinds, HAL backend names and lap sources, each spelled once.

A new observation kind, HAL backend or lap source is added here first; the simulator, the trainer, the car
runtime and the league server read these names and refuse any other with a message listing them.
"""

from __future__ import annotations

from typing import Literal, get_args

# ----------------------------------------------------------------------------- observation kinds

ObservationKind = Literal[
    "state",
    "camera",
    "stereo_camera",
    "lidar",
    "sector_lidar",
    "discretized_sector_lidar",
    "scan",
]
#: every observation kind a policy can read; "state" is the simulator's privileged vector (no real car has
#: it), the camera kinds are uint8 images, the lidar kinds are ranges in metres or DeepRacer's sector codes
OBSERVATION_KINDS: tuple[ObservationKind, ...] = get_args(ObservationKind)
#: the kinds a camera gives (mono (H, W), stereo (H, W, 2))
CAMERA_KINDS: tuple[ObservationKind, ...] = ("camera", "stereo_camera")
#: the kinds a lidar gives: ranges (`lidar`, F1TENTH's `scan`) or DeepRacer's sector filters
LIDAR_KINDS: tuple[ObservationKind, ...] = ("lidar", "sector_lidar", "discretized_sector_lidar", "scan")
#: the kinds only the simulator can give (privileged state): a model reading one drives on the `sim` HAL only
SIMULATOR_ONLY_KINDS: tuple[ObservationKind, ...] = ("state",)
#: the Dict key ("slot") each kind fills when kinds are combined ("camera+lidar"): one kind per slot
SLOT: dict[str, str] = {
    kind: "camera" if kind in CAMERA_KINDS else ("lidar" if kind in LIDAR_KINDS else "state")
    for kind in OBSERVATION_KINDS
}
#: DeepRacer's model_metadata.json `sensor` names and the kind each one is
DEEPRACER_SENSORS: dict[str, ObservationKind] = {
    "FRONT_FACING_CAMERA": "camera",
    "STEREO_CAMERAS": "stereo_camera",
    "LIDAR": "lidar",
    "SECTOR_LIDAR": "sector_lidar",
    "DISCRETIZED_SECTOR_LIDAR": "discretized_sector_lidar",
}

# ----------------------------------------------------------------------------- HAL backends

HalBackend = Literal["sim", "mock", "pi", "jetson", "usb"]
#: every HAL backend a car file's `[runtime] backend` or `pitlane drive --hal` may name: `sim` (the simulator
#: stands in for camera, drive and lap timer), `mock` (no hardware, for tests), and the hardware backends
HAL_BACKENDS: tuple[HalBackend, ...] = get_args(HalBackend)
#: the backends that open real hardware (camera, PCA9685 drive, GPIO lap gate)
HARDWARE_BACKENDS: tuple[HalBackend, ...] = ("pi", "jetson", "usb")

# ----------------------------------------------------------------------------- lap sources

LapSource = Literal["car", "timer", "sim", "manual"]
#: who measured a lap: the car's own HAL lap timer (`car`), a trackside timer (`timer`), the simulator
#: (`sim`), or a marshal entering it by hand (`manual`)
LAP_SOURCES: tuple[LapSource, ...] = get_args(LapSource)
