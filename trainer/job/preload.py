"""Everything a training job loads, loaded before `trainer.guard.lock_down` (no writes outside the job folder,
no network, no subprocesses) and before the racer's reward file: imports, and the track's cached geometry.

Why before: a module imported later may want to write (its bytecode cache, a font cache) or start a process
(a compiler probe), which the locked-down process refuses; and the track geometry cache (`sim.tracks.cache`)
lives outside the job folder: built and stored now, read back later.
"""

from __future__ import annotations

import importlib

from contracts.recipe import Recipe

#: modules training, distillation, export and evaluation import, some lazily inside functions
HEAVY_MODULES = (
    "torch",
    "stable_baselines3",
    "stable_baselines3.common.logger",
    "onnx",
    "onnx.numpy_helper",
    "onnxruntime",
    "onnxruntime.quantization",
    "onnxruntime.quantization.shape_inference",
    "scipy.optimize",
    "PIL.Image",
    "PIL.ImageDraw",
    "rich.console",
    "rich.progress",
    "device.policy",
    "sim.drivers",
    "sim.envs.setup",
    "sim.envs.vector",
    "sim.evaluation",
    "sim.raceline",
    "sim.replay",
    "sim.viewer.trajectory",
    "trainer.train",
    "trainer.distill",
    "trainer.networks",
    "trainer.evaluate",
    "trainer.export.pipeline",
    "trainer.export.latency",
    "trainer.export.quantize",
    "trainer.job.deadline_env",
)
#: imported when present: SB3 writes TensorBoard files when tensorboard is installed (`trainer.train`)
OPTIONAL_MODULES = ("tensorboard", "torch.utils.tensorboard")
#: the camera sensor, for a recipe that sees through one
CAMERA_MODULES = ("sim.sensors.camera",)


def preload(observation: str) -> None:
    """Import the modules a job of `observation` uses."""
    for name in HEAVY_MODULES + (CAMERA_MODULES if "camera" in observation else ()):
        importlib.import_module(name)
    for name in OPTIONAL_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


def warm_track(recipe: Recipe) -> None:
    """Build (or read from the cache) the geometry the recipe's track and car need: the environment's parts
    (the camera's painted ground too) and the race line an evaluation reports against. Raises the simulator's
    TrackError / EnvConfigError, or CarFileError, for a recipe the simulator cannot build."""
    from sim.envs.setup import build_parts
    from sim.raceline import race_line

    parts = build_parts(
        1, track=recipe.track, car=recipe.car, observation=recipe.observation, reward="centerline",
        reverse=recipe.reverse,
    )  # fmt: skip
    sim = parts.sim
    race_line(sim.backward if recipe.reverse else sim.forward, recipe.car)
