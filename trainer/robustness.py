"""The robustness card of an export: a shift evaluation (`trainer.shift_eval`) of the exported file on
DeepRacer tracks the model never trained on, turned into `contracts.robustness.RobustnessCard`.

The held-out tracks are the first `n_tracks` of `HELD_OUT_TRACKS` whose road is not one of the training
tracks (a `_cw`/`_ccw` variant is the same road as its base name). They differ in length, width and corner
mix and are short, so the card costs seconds: a state model ~5-10 s, a camera model longer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.robustness import RobustnessCard
from trainer.shift_eval import ShiftEvaluation, shift_evaluation

log = logging.getLogger(__name__)

#: DeepRacer tracks a robustness card drives on, in order of preference: the 2019 championship track
#: (23 m, 1.07 m wide), the Canadian training track (22 m, narrow 0.76 m), Vegas (23 m), a 2022 open
#: track (48 m), the Mexican track (21 m, 0.84 m).
HELD_OUT_TRACKS: tuple[str, ...] = (
    "reInvent2019_track",
    "Canada_Training",
    "Vegas_track",
    "2022_march_open",
    "Mexico_track",
    "New_York_Track",
)
_DIRECTION_SUFFIX = re.compile(r"_(cw|ccw)$")


@dataclass(frozen=True)
class RobustnessSettings:
    """How much driving the card does: `seeds` per track on `n_tracks` held-out tracks, `laps` each, each
    evaluation bounded to `laps` x `max_lap_s` simulated seconds."""

    seeds: int = 5
    laps: int = 2
    n_tracks: int = 3
    max_lap_s: float = 45.0
    randomization: str = "eval-shift"
    tracks: tuple[str, ...] | None = None  # None: the first n_tracks of HELD_OUT_TRACKS not trained on


def road_of(track: str) -> str:
    """The road a track name drives (`2022_march_open_ccw` -> `2022_march_open`)."""
    return _DIRECTION_SUFFIX.sub("", track)


def held_out_tracks(trained_on: Sequence[str], n_tracks: int = 3) -> list[str]:
    """The first `n_tracks` of HELD_OUT_TRACKS whose road is none of `trained_on`'s."""
    trained = {road_of(t) for t in trained_on}
    return [t for t in HELD_OUT_TRACKS if road_of(t) not in trained][:n_tracks]


def robustness_card(
    policy: Callable[[Any], Any],
    config: Any,
    *,
    trained_on: Sequence[str],
    model_file: str,
    settings: RobustnessSettings | None = None,
) -> tuple[RobustnessCard, ShiftEvaluation]:
    """(the card, the whole evaluation) of `policy` (an exported file's driver) with its RunConfig."""
    settings = settings or RobustnessSettings()
    tracks = list(settings.tracks) if settings.tracks else held_out_tracks(trained_on, settings.n_tracks)
    result = shift_evaluation(
        policy,
        config,
        randomization=settings.randomization,
        seeds=settings.seeds,
        tracks=tracks,
        laps=settings.laps,
        max_lap_s=settings.max_lap_s,
    )
    held_out = not {road_of(t) for t in tracks} & {road_of(t) for t in trained_on}
    card = RobustnessCard.from_evaluation(result.to_dict(), held_out=held_out, model_file=model_file)
    log.info("robustness: %s", card.summary())
    return card, result
