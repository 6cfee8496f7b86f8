"""The training pool: a run's cars split evenly over its tracks (`track` + `track_pool`) and, with
`both_directions`, both ways round each, as one SB3 VecEnv (`trainer.vec_env.PooledVecEnv`) of one batched
simulator per (track, direction). Car 0 (the simtrace car) drives `track` in the run's direction.
"""

from __future__ import annotations

from typing import Any

from trainer.config import RunConfig
from trainer.vec_env import BatchedVecEnv, PooledVecEnv


def pool_tracks(config: RunConfig) -> list[str]:
    """`track`, then `track_pool`'s tracks, each once."""
    return list(dict.fromkeys([config.track, *config.track_pool]))


def all_members(config: RunConfig) -> list[tuple[str, bool]]:
    """Every (track, reverse) pair the config asks for: `track` first, in the run's direction first."""
    directions = (config.reverse, not config.reverse) if config.both_directions else (config.reverse,)
    return [(track, reverse) for track in pool_tracks(config) for reverse in directions]


def pool_members(config: RunConfig, n_cars: int) -> list[tuple[str, bool, int]]:
    """(track, reverse, cars) of each pool member driven, in order; the first members take the remainder
    cars. With fewer cars than pairs, the first `n_cars` pairs get one car each (`pool_note` says which are
    left out)."""
    members = all_members(config)[:n_cars]
    share, extra = divmod(n_cars, len(members))
    return [(track, reverse, share + (i < extra)) for i, (track, reverse) in enumerate(members)]


def round_member(config: RunConfig, k: int) -> tuple[str, bool]:
    """The (track, reverse) a camera student's distillation round `k` (0-based) drives: each round the next
    track of the pool, both directions taking turns once every track has had a round; round 0 is `track`
    in the run's direction. Cameras build ~100 MB of tables per track, so a round drives one track, not the
    whole pool at once."""
    tracks = pool_tracks(config)
    track = tracks[k % len(tracks)]
    flipped = config.both_directions and (k // len(tracks)) % 2 == 1
    return track, config.reverse != flipped


def pool_note(config: RunConfig, n_cars: int) -> str | None:
    """A sentence for the user when `n_cars` cars are too few for every (track, direction) pair."""
    wanted = all_members(config)
    if n_cars >= len(wanted):
        return None
    left = ", ".join(f"{t}{' reversed' if r else ''}" for t, r in wanted[n_cars:])
    return (
        f"{n_cars} cars for {len(wanted)} (track, direction) pairs of the training pool: one car each on the "
        f"first {n_cars}; left out: {left} (give --n-envs {len(wanted)} or more to drive them all)"
    )


def training_vec_env(config: RunConfig, n_cars: int, *, trace_car0: bool = False) -> Any:
    """The run's training cars as one VecEnv: a `BatchedVecEnv` for a single track and direction, else a
    `PooledVecEnv` of one per pool member."""
    from sim.envs.vector import TimeTrialVectorEnv

    members = pool_members(config, n_cars)
    envs = [
        BatchedVecEnv(
            TimeTrialVectorEnv(num_envs=cars, **{**config.env_kwargs(), "track": track, "reverse": reverse}),
            trace_car0=trace_car0 and i == 0,
        )
        for i, (track, reverse, cars) in enumerate(members)
    ]
    return envs[0] if len(envs) == 1 else PooledVecEnv(envs)
