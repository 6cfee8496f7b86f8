"""The robustness card: its verdict thresholds, the advice a car owner reads, old cards without one, and the
warning `pitlane drive` shows only on a real car."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.model_card import load_card
from contracts.robustness import (
    FRAGILE_COMPLETION,
    ROBUST_COMPLETION,
    RobustnessCard,
    robustness_verdict,
    robustness_warning,
)
from device.drive import robustness_note


def minimal_card_dict() -> dict:
    """A state model's model.json as an export before the robustness card wrote it."""
    return {
        "schema_version": 1,
        "observation": {"kind": "state", "input_name": "state", "shape": [1, 11], "dtype": "float32"},
        "action_space": {"type": "discrete", "deepracer": [{"steering_angle": 0.0, "speed": 1.0}]},
        "car": "deepracer",
        "tracks": ["reinvent_base"],
        "training": {"algorithm": "ppo", "network": "mlp", "steps": 1000, "seed": 0, "run": "runs/x"},
        "pitlane_version": "0.0",
        "created_at": "2026-12-08T00:00:00Z",
    }


def card_with(completion: float) -> RobustnessCard:
    clean = round(20 * completion)
    return RobustnessCard(
        randomization="eval-shift",
        completion=clean / 20,
        completion_ci95=(max(0.0, clean / 20 - 0.2), min(1.0, clean / 20 + 0.1)),
        completion_with_resets=1.0,
        tracks=(
            {
                "track": "Vegas_track",
                "clean_laps": clean,
                "attempted_laps": 20,
                "completion": clean / 20,
                "ci_low": 0.0,
                "ci_high": 1.0,
                "best_lap_s": 6.4,
                "best_over_limit": 1.31,
            },
        ),
        held_out=True,
        seeds=10,
        laps_per_seed=2,
        model_file="model.int8.onnx",
    )


@pytest.mark.parametrize(
    ("completion", "verdict"),
    [(1.0, "ready"), (ROBUST_COMPLETION, "ready"), (0.85, "fragile"), (FRAGILE_COMPLETION, "fragile"),
     (0.45, "not ready"), (0.0, "not ready")],
)  # fmt: skip
def test_the_verdict_follows_clean_lap_completion(completion: float, verdict: str) -> None:
    assert card_with(completion).verdict == verdict == robustness_verdict(card_with(completion))


def test_the_advice_names_the_figures_with_units_and_what_to_do() -> None:
    assert robustness_warning(card_with(0.95)) is None
    fragile = robustness_warning(card_with(0.7))
    assert fragile is not None and fragile.startswith("robustness fragile: 70 % clean laps (95 % CI 50-80 %)")
    assert (
        "under eval-shift on Vegas_track (held out; 10 seeds x 2 laps)" in fragile
        and "cap the throttle" in fragile
    )
    poor = robustness_warning(card_with(0.1))
    assert poor is not None and "not ready" in poor and "expect it to leave the track" in poor
    missing = robustness_warning(None)
    assert missing is not None and "no robustness card" in missing and "pitlane export" in missing


def test_a_card_written_before_robustness_existed_still_loads(tmp_path: Path) -> None:
    data = minimal_card_dict()
    data.pop("robustness", None)
    (tmp_path / "model.json").write_text(json.dumps(data), encoding="utf-8")
    assert load_card(tmp_path / "model.json").robustness is None
    data["robustness"] = card_with(0.5).model_dump(mode="json") | {"completion": 1.5}
    (tmp_path / "model.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=r"robustness\.completion"):
        load_card(tmp_path / "model.json")


def test_drive_warns_only_on_a_real_car() -> None:
    from contracts.model_card import ModelCard

    weak = ModelCard.model_validate(
        minimal_card_dict() | {"robustness": card_with(0.3).model_dump(mode="json")}
    )
    strong = ModelCard.model_validate(
        minimal_card_dict() | {"robustness": card_with(1.0).model_dump(mode="json")}
    )
    none = ModelCard.model_validate(minimal_card_dict())
    for backend in ("pi", "jetson", "usb"):
        assert "not ready" in robustness_note(weak, backend)
        assert "no robustness card" in robustness_note(none, backend)
        assert robustness_note(strong, backend) is None
    for backend in ("sim", "mock"):
        assert robustness_note(weak, backend) is None and robustness_note(none, backend) is None
