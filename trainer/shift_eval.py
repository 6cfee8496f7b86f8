"""Evaluation under shift: a run or exported model driven with DeepRacer's time-trial rules on several tracks,
once per seed, each seed drawing its own domain-randomisation perturbation (`sim.randomization`).

Seeds are `base, base + 1, ...` with `base` the run's (or model card's) seed unless given, so `randomization
="none"` with one seed and the run's track is exactly `pitlane evaluate`'s plain evaluation. Times in s.

Completion is *clean* laps / attempted laps (`laps` per seed): a clean lap is finished without leaving the
track. DeepRacer's rules put a car that left the track back on it with a 2 s penalty, so nearly every lap
"completes" in the simulator; a real car that leaves the track has crashed, which is what a robustness
figure must count. DeepRacer's own figure (laps finished, resets allowed) is kept beside it as
`completion_with_resets`. Both per track (the clean one with a 95 % Wilson score interval) and over all tracks
and seeds. Each lap's best time is also compared with the car's physical limit on that track
(`sim.raceline`): `best_over_limit` 1.25 means 25 % slower than the fastest lap the car model can drive.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import EvaluateError
from trainer.evaluate import evaluate_policy, load_policy

log = logging.getLogger(__name__)

#: confidence level of the completion intervals
CONFIDENCE = 0.95


@dataclass(frozen=True)
class SeedRow:
    """One evaluation: a track, a seed and the perturbation it drew (quantity -> value; empty for `none`).
    completed_laps: finished under DeepRacer's rules (resets allowed); clean_laps: finished without leaving the
    track. lap_times_s: the completed laps' times with penalties. limit_lap_s: the car's physical limit on
    the track. ended: why driving stopped."""

    track: str
    seed: int
    perturbation: dict[str, float]
    attempted_laps: int
    completed_laps: int
    clean_laps: int
    lap_times_s: list[float]
    offtrack: int
    resets: int
    limit_lap_s: float | None
    ended: str


@dataclass(frozen=True)
class TrackRow:
    """All seeds on one track: clean-lap completion (0-1) with its 95 % Wilson interval [ci_low, ci_high],
    DeepRacer's completion (resets allowed), best and mean completed lap (s, None when no lap was completed),
    the car's physical limit (s) and best lap / limit, off-tracks summed over the seeds."""

    track: str
    attempted_laps: int
    completed_laps: int
    clean_laps: int
    completion: float
    ci_low: float
    ci_high: float
    completion_with_resets: float
    best_lap_s: float | None
    mean_lap_s: float | None
    limit_lap_s: float | None
    best_over_limit: float | None
    offtrack: int


@dataclass
class ShiftEvaluation:
    """The per-seed rows (`runs`), their per-track summary (`tracks`) and the overall completion."""

    randomization: str
    laps_per_seed: int
    seeds: list[int]
    runs: list[SeedRow] = field(default_factory=list)
    tracks: list[TrackRow] = field(default_factory=list)

    @property
    def attempted_laps(self) -> int:
        return sum(r.attempted_laps for r in self.runs)

    @property
    def completed_laps(self) -> int:
        return sum(r.completed_laps for r in self.runs)

    @property
    def clean_laps(self) -> int:
        return sum(r.clean_laps for r in self.runs)

    @property
    def completion(self) -> float:
        """Clean / attempted laps over every track and seed, 0 to 1."""
        return self.clean_laps / self.attempted_laps if self.attempted_laps else 0.0

    @property
    def completion_with_resets(self) -> float:
        """Laps finished under DeepRacer's rules (resets allowed) / attempted, 0 to 1."""
        return self.completed_laps / self.attempted_laps if self.attempted_laps else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: clean-lap completion (0-1, all seeds and tracks) and its interval, DeepRacer's
        completion, then the per-track and per-seed rows."""
        low, high = wilson_interval(self.clean_laps, self.attempted_laps)
        return {
            "completion": self.completion,
            "completion_ci95": [low, high],
            "completion_with_resets": self.completion_with_resets,
            "clean_laps": self.clean_laps,
            "completed_laps": self.completed_laps,
            "attempted_laps": self.attempted_laps,
            "randomization": self.randomization,
            "laps_per_seed": self.laps_per_seed,
            "seeds": self.seeds,
            "tracks": [asdict(t) for t in self.tracks],
            "runs": [asdict(r) for r in self.runs],
        }

    def plot(self, path: str | Path) -> Path:
        """Write a PNG: completion per track with its 95 % interval, beside the completed laps' times."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [t.track for t in self.tracks]
        x = list(range(len(names)))
        fig, (ax_rate, ax_laps) = plt.subplots(1, 2, figsize=(12, 5))
        rates = [100 * t.completion for t in self.tracks]
        errors = [
            [100 * (t.completion - t.ci_low) for t in self.tracks],
            [100 * (t.ci_high - t.completion) for t in self.tracks],
        ]
        ax_rate.bar(x, rates, color="tab:blue", alpha=0.7)
        ax_rate.errorbar(x, rates, yerr=errors, fmt="none", ecolor="black", capsize=6)
        ax_rate.set_ylim(0, 105)
        ax_rate.set_ylabel("clean laps (%), 95 % Wilson interval")
        ax_rate.set_title(f"completion under {self.randomization}, {len(self.seeds)} seed(s)")
        times = [[t for r in self.runs if r.track == name for t in r.lap_times_s] for name in names]
        for i, lap_times in enumerate(times):
            if lap_times:
                ax_laps.scatter([i] * len(lap_times), lap_times, color="tab:orange", s=18, alpha=0.7)
                ax_laps.hlines(sum(lap_times) / len(lap_times), i - 0.25, i + 0.25, color="black")
        ax_laps.set_ylabel("completed lap time (s), line = mean")
        ax_laps.set_title("lap times")
        for ax in (ax_rate, ax_laps):
            ax.set_xticks(x, names, rotation=15)
            ax.set_xlim(-0.6, len(names) - 0.4)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion (scipy's); (0, 1) when there were no trials."""
    if trials == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest

    ci = binomtest(successes, trials).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


def check_tracks(tracks: Sequence[str]) -> None:
    """EvaluateError naming the first track that is neither a known name nor a DeepRacer route file."""
    from sim.errors import TrackError
    from sim.tracks import load_track

    for name in tracks:
        try:
            load_track(name)
        except TrackError as exc:
            raise EvaluateError(f"track {name!r}: {exc}") from None


def check_options(randomization: str, seeds: int) -> None:
    """EvaluateError naming `randomization` or `seeds` when it is not usable."""
    from sim.randomization import PRESETS

    if randomization not in PRESETS:
        raise EvaluateError(f"randomization: expected one of {', '.join(PRESETS)}, got {randomization!r}")
    if seeds < 1:
        raise EvaluateError(f"seeds: expected at least 1 seed, got {seeds}")


def evaluate_under_shift(
    run_or_model: str | Path,
    *,
    randomization: str = "none",
    seeds: int = 1,
    tracks: Sequence[str] | None = None,
    laps: int = 3,
    offtrack_penalty_s: float = 2.0,
    car: str | None = None,
    seed: int | None = None,
    max_lap_s: float | None = None,
) -> ShiftEvaluation:
    """Drive the run's (or exported model's) deterministic policy `laps` laps on each of `tracks` (default: its
    own) once per seed `seed, seed + 1, ...` (default start: its config's seed) under the `randomization`
    preset, and summarise completion per track and overall. `max_lap_s` bounds each evaluation to `laps` x
    that much simulated time (default: `sim.evaluation`'s 180 s a lap), so a model that cannot drive costs
    little."""
    check_options(randomization, seeds)
    policy, config = load_policy(run_or_model, car=car)
    return shift_evaluation(policy, config, randomization=randomization, seeds=seeds, tracks=tracks, laps=laps,
                            offtrack_penalty_s=offtrack_penalty_s, car=car, seed=seed,
                            max_lap_s=max_lap_s)  # fmt: skip


def shift_evaluation(
    policy: Any,
    config: Any,
    *,
    randomization: str,
    seeds: int,
    tracks: Sequence[str] | None = None,
    laps: int = 3,
    offtrack_penalty_s: float = 2.0,
    car: str | None = None,
    seed: int | None = None,
    max_lap_s: float | None = None,
) -> ShiftEvaluation:
    """`evaluate_under_shift` of a loaded `policy(obs) -> action` and its RunConfig."""
    names = list(tracks) if tracks else [config.track]
    check_tracks(names)
    base = config.seed if seed is None else seed
    result = ShiftEvaluation(randomization, laps, [base + k for k in range(seeds)])
    for name in names:
        for s in result.seeds:
            ev = evaluate_policy(
                policy,
                config,
                track=name,
                car=car,
                laps=laps,
                offtrack_penalty_s=offtrack_penalty_s,
                seed=s,
                randomization=randomization,
                max_time_s=None if max_lap_s is None else laps * max_lap_s,
            )
            result.runs.append(_seed_row(ev, s, laps))
        result.tracks.append(_track_row(ev.track, [r for r in result.runs[-seeds:]]))
        log.info("under %s on %s: completion %.2f", randomization, name, result.tracks[-1].completion)
    return result


def _seed_row(ev: Any, seed: int, laps: int) -> SeedRow:
    done = [lap for lap in ev.laps if lap.completed and lap.valid]
    return SeedRow(
        track=ev.track,
        seed=seed,
        perturbation=dict(ev.perturbation),
        attempted_laps=laps,
        completed_laps=len(done),
        clean_laps=sum(lap.offtrack == 0 and lap.resets == 0 for lap in done),
        lap_times_s=[lap.lap_time_s for lap in done],
        offtrack=int(ev.summary["offtrack"]),
        resets=int(ev.summary["resets"]),
        limit_lap_s=ev.summary.get("limit_lap_s"),
        ended=ev.ended,
    )


def _track_row(track: str, rows: list[SeedRow]) -> TrackRow:
    attempted = sum(r.attempted_laps for r in rows)
    completed = sum(r.completed_laps for r in rows)
    clean = sum(r.clean_laps for r in rows)
    times = [t for r in rows for t in r.lap_times_s]
    low, high = wilson_interval(clean, attempted)
    limit = rows[0].limit_lap_s
    best = min(times) if times else None
    return TrackRow(
        track=track,
        attempted_laps=attempted,
        completed_laps=completed,
        clean_laps=clean,
        completion=clean / attempted,
        ci_low=low,
        ci_high=high,
        completion_with_resets=completed / attempted,
        best_lap_s=best,
        mean_lap_s=sum(times) / len(times) if times else None,
        limit_lap_s=limit,
        best_over_limit=None if best is None or not limit else best / limit,
        offtrack=sum(r.offtrack for r in rows),
    )
