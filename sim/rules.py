"""Episode rules, as DeepRacer's simulator applies them, batched over n cars.

An episode ends when a car
- completes the lap (progress reaches 100),
- goes off track (all four wheel centres off the road polygon),
- is reversed (progress fell on `REVERSED_STEPS` consecutive steps),
- is immobilised (moved less than `IMMOBILIZED_DISTANCE_M` on `IMMOBILIZED_STEPS` consecutive steps),
- or runs out of time (`time_limit_s`; a truncation, not a termination).
When several happen on one step, the first in this list names the episode's end.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from sim.fastmath import ARRAYS, Math

REVERSED_STEPS = 15
IMMOBILIZED_STEPS = 15
IMMOBILIZED_DISTANCE_M = 0.0003


class EpisodeStatus(IntEnum):
    """Why an episode ended (or `IN_PROGRESS`); names are DeepRacer's `episode_status` strings."""

    IN_PROGRESS = 0
    LAP_COMPLETE = 1
    OFF_TRACK = 2
    REVERSED = 3
    IMMOBILIZED = 4
    TIME_UP = 5

    @property
    def label(self) -> str:
        """DeepRacer's spelling, as written to simtrace logs (`in_progress`, `off_track`, ...)."""
        return "immobilized" if self is EpisodeStatus.IMMOBILIZED else self.name.lower()


STATUS_LABELS = tuple(s.label for s in EpisodeStatus)
# the codes as np.int8 scalars for the step: an IntEnum member costs microseconds to look up and convert
_IN_PROGRESS, _LAP_COMPLETE, _OFF_TRACK, _REVERSED, _IMMOBILIZED, _TIME_UP = (
    np.int8(s) for s in EpisodeStatus
)
TIME_UP_CODE = _TIME_UP


class EpisodeCounters:
    """Per-car counters behind the reversed and immobilised rules; arrays of shape (n,)."""

    def __init__(self, n: int) -> None:
        self.reversed_steps = np.zeros(n, dtype=np.int32)
        self.immobile_steps = np.zeros(n, dtype=np.int32)

    def clear(self, idx: np.ndarray) -> None:
        self.reversed_steps[idx] = 0
        self.immobile_steps[idx] = 0


def judge(
    counters: EpisodeCounters,
    progress: np.ndarray,
    prev_progress: np.ndarray,
    any_wheel_on_road: np.ndarray,
    travelled_m: np.ndarray,
    episode_time_s: np.ndarray,
    time_limit_s: float,
    m: Math = ARRAYS,
) -> np.ndarray:
    """Update the counters with this step and return each car's `EpisodeStatus` code (n,) int8 (one np.int8
    for one car's floats with `m=SCALARS`)."""
    reversed_steps = m.where(progress < prev_progress, m.unbox(counters.reversed_steps) + 1, 0)
    counters.reversed_steps = m.store(counters.reversed_steps, reversed_steps)
    immobile_steps = m.where(travelled_m < IMMOBILIZED_DISTANCE_M, m.unbox(counters.immobile_steps) + 1, 0)
    counters.immobile_steps = m.store(counters.immobile_steps, immobile_steps)
    # first matching rule wins: assign in reverse order of priority
    status = m.where(episode_time_s >= time_limit_s - 1e-9, _TIME_UP, _IN_PROGRESS)
    status = m.where(immobile_steps >= IMMOBILIZED_STEPS, _IMMOBILIZED, status)
    status = m.where(reversed_steps >= REVERSED_STEPS, _REVERSED, status)
    status = m.where(any_wheel_on_road, status, _OFF_TRACK)
    return m.where(progress >= 100.0, _LAP_COMPLETE, status)


def is_terminal(status: np.ndarray) -> np.ndarray:
    """Ends that are terminations in the MDP sense (everything but `TIME_UP` and `IN_PROGRESS`)."""
    return (status != _IN_PROGRESS) & (status != _TIME_UP)
