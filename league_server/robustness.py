"""A model card's robustness as the server shows it: the console's model page (the whole card) and a virtual
race's leaderboard (a badge per submitted model).

The card, its verdict and its advice are `contracts.robustness` (`RobustnessCard`, `robustness_verdict`,
`robustness_warning`): this module only reads the `robustness` key of a `model.json` the server keeps (a
console model's exported card, a submission's uploaded card) and shapes it for the API. A submitted card's
robustness is what the racer's export measured; the server does not drive the model under shift itself.

    card = robustness_of(card_dict, where="submission 7's model.json")   # RobustnessCard | None
    RobustnessOut.of(card)     # the console: verdict, summary, advice and the card, or `measured` False
    badge_of(card)             # the leaderboard: verdict, completion 0-1 and its 95 % CI, summary
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from contracts.robustness import RobustnessCard, Verdict, robustness_warning
from league_server.schemas import RobustnessBadge

log = logging.getLogger(__name__)

#: the key of `model.json` that holds the card (`contracts.model_card.ModelCard.robustness`)
CARD_KEY = "robustness"
#: cards already warned about (by `where`), so a leaderboard re-ranked 5 times a second logs one line
_warned: set[str] = set()
_MAX_WARNED = 10_000


def robustness_of(card: Mapping[str, Any] | None, *, where: str) -> RobustnessCard | None:
    """The robustness card inside a model card dict, or None when it has none. A malformed one (a card
    stored before the server checked it) is logged, naming `where`, and read as none: a page never fails
    on it."""
    data = card.get(CARD_KEY) if isinstance(card, Mapping) else None
    if data is None:
        return None
    try:
        return RobustnessCard.model_validate(data)
    except ValidationError as exc:
        if where not in _warned and len(_warned) < _MAX_WARNED:  # the leaderboard re-reads it every re-rank
            _warned.add(where)
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            log.warning(
                "%s: `%s` is not a robustness card (%s); shown as not measured", where, CARD_KEY, problems
            )
        return None


class RobustnessOut(BaseModel):
    """The console's robustness panel of a finished model. Measured: `verdict` (contracts.robustness),
    `summary` (one line with units), `advice` (what to do before a real drive; None for a ready model) and the
    `card` itself (shares 0-1, lap times in s, `best_over_limit` = best lap / the car's fastest possible lap).
    Not measured (`measured` False): no verdict, no card, and the contract's advice for a model without one."""

    measured: bool
    verdict: Verdict | None
    summary: str | None
    advice: str | None
    card: RobustnessCard | None

    @classmethod
    def of(cls, card: RobustnessCard | None) -> RobustnessOut:
        if card is None:
            return cls(measured=False, verdict=None, summary=None, advice=robustness_warning(None), card=None)
        return cls(
            measured=True,
            verdict=card.verdict,
            summary=card.summary(),
            advice=robustness_warning(card),
            card=card,
        )


def badge_of(card: RobustnessCard | None) -> RobustnessBadge | None:
    """A leaderboard entry's badge (None: not measured)."""
    if card is None:
        return None
    low, high = card.completion_ci95
    return RobustnessBadge(
        verdict=card.verdict,
        completion=card.completion,
        completion_ci95=(low, high),
        summary=card.summary(),
    )
