"""`pitlane bench sim`: simulator steps per second, measured on this machine.

Each row steps a `TimeTrialVectorEnv` of `n_envs` cars with uniformly random actions (the policy's cost is
not counted; episodes end and autoreset often, as early in training) for at least `seconds` of wall time,
after a short warm-up, in this one process.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from sim.envs.vector import TimeTrialVectorEnv
from sim.reward.examples import FOLLOW_CENTERLINE

REWARDS = {"batched": "centerline", "python": str(FOLLOW_CENTERLINE)}
DEFAULT_N_ENVS = (1, 64, 1024)
#: What `pitlane bench sim` measures by default: (observation, reward kind, batch sizes). Camera rows stop
#: at 256 cars (a batch of 256 frames of 160x120 is ~5 MB per step).
PLAN: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("state", "batched", DEFAULT_N_ENVS),
    ("state", "python", DEFAULT_N_ENVS),
    ("camera", "batched", (1, 64, 256)),
    ("lidar", "batched", DEFAULT_N_ENVS),
)


def planned(
    observations: list[str] | None, rewards: list[str] | None, n_envs: list[int] | None
) -> list[tuple[str, str, int]]:
    """The (observation, reward, n_envs) rows to measure, filtered by the given lists (None = all)."""
    return [
        (obs, reward, n)
        for obs, reward, sizes in PLAN
        if (observations is None or obs in observations) and (rewards is None or reward in rewards)
        for n in (n_envs or sizes)
    ]


@dataclass(frozen=True)
class SimBenchRow:
    observation: str
    reward: str
    n_envs: int
    steps_per_s: float
    steps: int
    seconds: float
    track: str


def measure(
    n_envs: int,
    reward: str,
    *,
    observation: str = "state",
    track: str = "reinvent_base",
    seconds: float = 2.0,
    on_step: Callable[[float], None] | None = None,
) -> SimBenchRow:
    """Steps per second (car-steps, i.e. env steps summed over cars) for one configuration."""
    env = TimeTrialVectorEnv(num_envs=n_envs, track=track, observation=observation, reward=REWARDS[reward])
    # a frame per car-step: for camera and lidar rows steps/s is frames (or scans) per second
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(64)]
    for k in range(20):  # warm-up: caches, first resets
        env.step(actions[k % 64])
    steps, start = 0, time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds:
        env.step(actions[steps % 64])
        steps += 1
        elapsed = time.perf_counter() - start
        if on_step is not None:
            on_step(min(elapsed / seconds, 1.0))
    env.close()
    rate = steps * n_envs / elapsed
    return SimBenchRow(observation, reward, n_envs, rate, steps * n_envs, elapsed, track)


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    import os

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }


def row_dict(row: SimBenchRow) -> dict[str, object]:
    return asdict(row)
