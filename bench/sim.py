"""`pitlane bench sim`: simulator steps per second, measured on this machine.

Each row steps a `TimeTrialVectorEnv` of `n_envs` cars with uniformly random actions (the policy's cost is
not counted; episodes end and autoreset often, as early in training) for at least `seconds` of wall time,
after a short warm-up, in this one process. The first row is one car through `gymnasium.make` (what a user's
own loop, CleanRL's or stable-baselines3's DummyVecEnv, steps), resetting when an episode ends; its ratio to
the batched env's one-car row is the single environment's float path against the array path it replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import gymnasium

from sim.envs.vector import TimeTrialVectorEnv
from sim.reward.examples import FOLLOW_CENTERLINE

REWARDS = {"batched": "centerline", "python": str(FOLLOW_CENTERLINE)}
DEFAULT_N_ENVS = (1, 64, 1024)
#: How a row's cars are stepped: one `gymnasium.make` env, or the batched `TimeTrialVectorEnv`.
SINGLE, VECTOR = "gymnasium.make", "vector env"
#: What `pitlane bench sim` measures by default: (observation, reward kind, batch sizes, api). Camera rows
#: stop at 256 cars (a batch of 256 frames of 160x120 is ~5 MB per step).
PLAN: tuple[tuple[str, str, tuple[int, ...], str], ...] = (
    ("state", "batched", (1,), SINGLE),
    ("state", "batched", DEFAULT_N_ENVS, VECTOR),
    ("state", "python", DEFAULT_N_ENVS, VECTOR),
    ("camera", "batched", (1, 64, 256), VECTOR),
    ("lidar", "batched", DEFAULT_N_ENVS, VECTOR),
)


def planned(
    observations: list[str] | None, rewards: list[str] | None, n_envs: list[int] | None
) -> list[tuple[str, str, int, str]]:
    """The (observation, reward, n_envs, api) rows to measure, filtered by the given lists (None = all); the
    single-env row is kept when the sizes asked for include 1."""
    return [
        (obs, reward, n, api)
        for obs, reward, sizes, api in PLAN
        if (observations is None or obs in observations) and (rewards is None or reward in rewards)
        for n in (n_envs or sizes)
        if api == VECTOR or n == 1
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
    api: str = VECTOR
    #: car-steps per second of this process's CPU time: what the row would reach with a core to itself (other
    #: processes on a shared machine lower steps_per_s, much less this)
    steps_per_cpu_s: float = 0.0


def measure(
    n_envs: int,
    reward: str,
    *,
    observation: str = "state",
    track: str = "reinvent_base",
    seconds: float = 2.0,
    on_step: Callable[[float], None] | None = None,
    api: str = VECTOR,
) -> SimBenchRow:
    """Steps per second (car-steps, i.e. env steps summed over cars) for one configuration."""
    if api == SINGLE:
        return _measure_single(reward, observation=observation, track=track, seconds=seconds, on_step=on_step)
    env = TimeTrialVectorEnv(num_envs=n_envs, track=track, observation=observation, reward=REWARDS[reward])
    # a frame per car-step: for camera and lidar rows steps/s is frames (or scans) per second
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(64)]
    for k in range(20):  # warm-up: caches, first resets
        env.step(actions[k % 64])
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    elapsed = 0.0
    while elapsed < seconds:
        env.step(actions[steps % 64])
        steps += 1
        elapsed = time.perf_counter() - start
        if on_step is not None:
            on_step(min(elapsed / seconds, 1.0))
    env.close()
    rate, cpu_rate = steps * n_envs / elapsed, steps * n_envs / (time.process_time() - cpu_start)
    return SimBenchRow(observation, reward, n_envs, rate, steps * n_envs, elapsed, track, VECTOR, cpu_rate)


def _measure_single(
    reward: str,
    *,
    observation: str,
    track: str,
    seconds: float,
    on_step: Callable[[float], None] | None,
) -> SimBenchRow:
    """One car through `gymnasium.make` (with gymnasium's wrappers), reset whenever an episode ends."""
    env = gymnasium.make("pitlane/TimeTrial-v0", track=track, observation=observation, reward=REWARDS[reward])
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(64)]
    for k in range(20):  # warm-up, as the batched rows
        _, _, terminated, truncated, _ = env.step(actions[k % 64])
        if terminated or truncated:
            env.reset()
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    elapsed = 0.0
    while elapsed < seconds:
        _, _, terminated, truncated, _ = env.step(actions[steps % 64])
        if terminated or truncated:
            env.reset()
        steps += 1
        elapsed = time.perf_counter() - start
        if on_step is not None:
            on_step(min(elapsed / seconds, 1.0))
    env.close()
    cpu_rate = steps / (time.process_time() - cpu_start)
    return SimBenchRow(observation, reward, 1, steps / elapsed, steps, elapsed, track, SINGLE, cpu_rate)


def single_env_ratio(rows: list[SimBenchRow]) -> float | None:
    """Steps/s of the `gymnasium.make` row over the batched env's one-car row of the same observation and
    reward (None when either was not measured)."""
    single = [r for r in rows if r.api == SINGLE]
    for s in single:
        for r in rows:
            if (r.api, r.n_envs, r.observation, r.reward) == (VECTOR, 1, s.observation, s.reward):
                return s.steps_per_s / r.steps_per_s
    return None


def row_dict(row: SimBenchRow) -> dict[str, object]:
    return asdict(row)
