"""Everything a training job loads, loaded before `trainer.guard.lock_down` (no reads outside an allow-list,
no writes outside the job folder, no network, no subprocesses) and before the racer's reward file: imports,
and the track's cached geometry; and what of pitlane's data the job still reads after the lock
(`read_after_lock`).

Why before: a module imported later may want to write (its bytecode cache, a font cache), read a cache or
configuration outside the allow-list, or start a process (a compiler probe), which the locked-down process
refuses; and the track geometry cache (`sim.tracks.cache`) lives outside the job folder: built and stored
now, only read back later.
"""

from __future__ import annotations

import importlib
from pathlib import Path

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
    for track, reverse in _other_tracks(recipe):  # the cache is read-only once the job is locked down
        other = build_parts(1, track=track, car=recipe.car, reward="centerline", reverse=reverse).sim
        race_line(other.backward if reverse else other.forward, recipe.car)


def _other_tracks(recipe: Recipe) -> list[tuple[str, bool]]:
    """The training pool's other (track, direction) pairs and the robustness card's held-out tracks."""
    from trainer.config import RunConfig
    from trainer.pool import all_members
    from trainer.robustness import held_out_tracks

    config = RunConfig(track=recipe.track, reverse=recipe.reverse, car=recipe.car)
    pool = [m for m in all_members(config) if m != (recipe.track, recipe.reverse)]
    return pool + [(track, False) for track in held_out_tracks(config.training_tracks)]


def read_after_lock() -> tuple[Path, ...]:
    """What the job reads after `lock_down` beyond its folder, Python and pitlane's packages (its
    `read_also`): the imported-track folder (`load_track` lists it to find an imported track) and the track
    geometry cache (read back, never written after the lock). Neither holds anything of another racer's."""
    from sim.tracks.cache import cache_dir
    from sim.tracks.library import user_track_dir

    return (user_track_dir(), cache_dir())
