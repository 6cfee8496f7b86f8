"""Model cards with and without a robustness card, and the server state that shows them (test_robustness_*):
a finished console model whose exported model.json is written by hand (no training), and a virtual race
whose submissions' stored cards carry one (no evaluation job: their laps go in through `finish_job`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts.recipe import Recipe
from contracts.robustness import RobustnessCard, RobustTrack
from contracts.virtual_race import VirtualRaceSpec

#: 8 of 10 clean laps: `fragile` under contracts.robustness's thresholds
FRAGILE = RobustnessCard(
    randomization="eval-shift",
    completion=0.8,
    completion_ci95=(0.49, 0.94),
    completion_with_resets=1.0,
    tracks=(
        RobustTrack(track="reInvent2019_track", clean_laps=5, attempted_laps=5, completion=1.0, ci_low=0.57,
                    ci_high=1.0, best_lap_s=11.84, best_over_limit=1.31),
        RobustTrack(track="Canada_Training", clean_laps=3, attempted_laps=5, completion=0.6, ci_low=0.23,
                    ci_high=0.88, best_lap_s=12.5, best_over_limit=1.47),
    ),
    held_out=True,
    seeds=5,
    laps_per_seed=1,
    model_file="model.int8.onnx",
)  # fmt: skip
#: 19 of 20 clean laps: `ready`
READY = FRAGILE.model_copy(update={"completion": 0.95, "completion_ci95": (0.76, 0.99)})
SPEC = VirtualRaceSpec(track="reinvent_base", rules={"laps": 3, "offtrack_penalty_s": 2.0})


def card_dict(robustness: RobustnessCard | None) -> dict[str, Any]:
    """A model.json dict (the keys the server reads), with `robustness` when given."""
    card: dict[str, Any] = {"schema_version": 1, "car": "deepracer", "tracks": ["reinvent_base"]}
    if robustness is not None:
        card["robustness"] = robustness.model_dump(mode="json")
    return card


def finished_console_model(
    session: Any, data_dir: Path, racer: Any, name: str, card: dict[str, Any] | None
) -> int:
    """A console model of `racer` that finished and exported `card` as its model.json (none: no card file)."""
    from league_server.crud import console
    from league_server.jobs.dispatch import training_output

    model = console.create_model(session, racer, Recipe(name=name))
    out = training_output(data_dir, model.id, "card").parent
    out.mkdir(parents=True, exist_ok=True)
    if card is not None:
        (out / "model.json").write_text(json.dumps(card), encoding="utf-8")
    (out / "model.onnx").write_bytes(b"onnx")
    outcome = {"status": "finished", "steps": 1000, "training_s": 60.0, "best_eval_lap_s": 10.0, "laps": [],
               "parity": None, "files": {"onnx": "model.onnx", "card": "model.json"}}  # fmt: skip
    console.finish_training(session, model.id, outcome, None)
    return model.id


def lap(raw_s: float) -> dict[str, Any]:
    """An evaluation lap (contracts.race LapRecord's dict), clean."""
    return {"lap_time_s": raw_s, "raw_time_s": raw_s, "offtrack": 0, "resets": 0, "completed": True,
            "valid": True, "progress": 100.0}  # fmt: skip


def evaluated(
    session: Any, race: Any, racer: Any, sha: str, card: dict[str, Any], laps_s: list[float]
) -> Any:
    """A finished evaluation of `racer`'s model (stored card `card`) in virtual race `race`."""
    from league_server.crud import virtual

    upload = virtual.Upload(sha256=sha * 64, size_bytes=1000, stored_path=f"uploads/{sha}", card=card)
    sub, _ = virtual.record_submission(session, race, racer, upload)
    return virtual.finish_job(session, sub.id, {"laps": [lap(s) for s in laps_s]}, None)


def virtual_race(session: Any, league_id: int, name: str = "Virtual sprint") -> Any:
    """An open virtual race (SPEC, counts each racer's best evaluation) in a new event of the league."""
    from league_server.crud import leagues, races, virtual

    event = leagues.create_event(session, league_id, "Robust round")
    return virtual.make_virtual(session, races.create_race(session, event.id, name), SPEC)
