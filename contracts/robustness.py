"""The robustness card: how an exported model drove where it was never trained, under a held-out shift.

`pitlane export` drives the exported file (int8 when there is one: what a car runs) on DeepRacer tracks that
are not in its training pool, once per seed, each seed drawing its own `eval-shift` perturbation (steering
trim of either sign, 70-100 ms more latency, ~0.67x grip, darker low-contrast light, a lower camera: beyond
anything training draws). It counts *clean* laps: finished without leaving the track, because on a real car
an off-track is a crash. The card (`model.json` key `robustness`) keeps the summary; `parity.json` keeps
every seed's row.

How to read it before a first real drive (`robustness_verdict`):
- `ready`: completion >= 90 % (ROBUST_COMPLETION) — it coped with what it never saw; still start slow.
- `fragile`: 50-90 % — it leaves the track under some of the shifts: cap the throttle, stay by the car.
- `not ready`: below 50 %, or no card — expect it to leave the track.

Only the standard library and pydantic: the car runtime, the trainer and the league server all import it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: clean-lap completion at or above which a model is called ready for a real car
ROBUST_COMPLETION = 0.90
#: below this a model is not ready; between the two, fragile
FRAGILE_COMPLETION = 0.50

Verdict = Literal["ready", "fragile", "not ready"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RobustTrack(_Strict):
    """One held-out track: clean laps of attempted ones, their share (0-1) with its 95 % Wilson interval,
    the best completed lap (s) and its ratio to the car's physical limit on the track."""

    track: str
    clean_laps: int = Field(ge=0)
    attempted_laps: int = Field(ge=0)
    completion: float = Field(ge=0, le=1)
    ci_low: float = Field(ge=0, le=1)
    ci_high: float = Field(ge=0, le=1)
    best_lap_s: float | None = None
    best_over_limit: float | None = None


class RobustnessCard(_Strict):
    """`model.json`'s `robustness`: clean-lap completion (0-1) under `randomization` on `tracks`, none of
    which the model trained on (`held_out`), `seeds` seeds x `laps_per_seed` laps each; `completion_with_resets`
    is DeepRacer's figure (laps finished with off-track resets allowed); `model_file` is the file driven."""

    randomization: str
    completion: float = Field(ge=0, le=1)
    completion_ci95: tuple[float, float]
    completion_with_resets: float = Field(ge=0, le=1)
    tracks: tuple[RobustTrack, ...]
    held_out: bool
    seeds: int = Field(ge=1)
    laps_per_seed: int = Field(ge=1)
    model_file: str

    @property
    def verdict(self) -> Verdict:
        return robustness_verdict(self)

    @classmethod
    def from_evaluation(cls, data: dict[str, Any], *, held_out: bool, model_file: str) -> RobustnessCard:
        """The card of a shift evaluation's JSON form (`trainer.shift_eval.ShiftEvaluation.to_dict()`)."""
        return cls(
            randomization=data["randomization"],
            completion=data["completion"],
            completion_ci95=tuple(data["completion_ci95"]),
            completion_with_resets=data["completion_with_resets"],
            tracks=tuple(RobustTrack(**{k: t[k] for k in RobustTrack.model_fields}) for t in data["tracks"]),
            held_out=held_out,
            seeds=len(data["seeds"]),
            laps_per_seed=data["laps_per_seed"],
            model_file=model_file,
        )

    def summary(self) -> str:
        """One line with units: '83 % clean laps (95 % CI 70-91 %) under eval-shift on A, B (held out; 5 seeds
        x 2 laps)'."""
        low, high = self.completion_ci95
        names = ", ".join(t.track for t in self.tracks)
        where = "held out" if self.held_out else "some trained on"
        return (
            f"{100 * self.completion:.0f} % clean laps (95 % CI {100 * low:.0f}-{100 * high:.0f} %) under "
            f"{self.randomization} on {names} ({where}; {_count(self.seeds, 'seed')} x "
            f"{_count(self.laps_per_seed, 'lap')})"
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def robustness_verdict(card: RobustnessCard | None) -> Verdict:
    """`ready`, `fragile` or `not ready` (see the module docstring); no card is `not ready`."""
    if card is None or card.completion < FRAGILE_COMPLETION:
        return "not ready"
    return "ready" if card.completion >= ROBUST_COMPLETION else "fragile"


def robustness_warning(card: RobustnessCard | None) -> str | None:
    """What to tell a car owner before a real drive, or None for a `ready` model."""
    if card is None:
        return (
            "this model has no robustness card: nobody measured how it copes with a real car's steering trim, "
            "latency, grip and light. Export it again with `pitlane export` (which measures it), or run "
            "`pitlane evaluate MODEL --randomization eval-shift --seeds 20 --track TRACK`"
        )
    verdict = card.verdict
    if verdict == "ready":
        return None
    advice = (
        "expect it to leave the track"
        if verdict == "not ready"
        else "it leaves the track under some shifts: cap the throttle and stay by the car"
    )
    return f"robustness {verdict}: {card.summary()}; {advice}"
