"""`pitlane drive --hal sim`: the simulated car drives the track the model was trained on (its card's
`tracks`), unless --track says otherwise; lap reports carry the track driven; what the car file's throttle cap
does to the policy's speeds is said before the laps, and what the clipped commands mean after them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts.model_card import ActionSpaceCard, load_card
from device.config import load_runtime_config
from device.drive import sim_track, throttle_cap_effect

# One xdist worker runs these tests (--dist loadgroup), so that
# the session's exported car models (tests/device/conftest.py) are built once.
pytestmark = pytest.mark.xdist_group("device-models")

#: a DeepRacer track other than the simulator's default (reinvent_base), which the state model was trained on
CARD_TRACK = "reInvent2019_track"


def _model_trained_on(state_model: Path, folder: Path, track: str) -> Path:
    """The session's exported state model with a card that names `track` (the graph is unchanged: the
    card's `tracks` is not part of what OnnxPolicy checks against the graph)."""
    folder.mkdir()
    model = folder / state_model.name
    shutil.copy(state_model, model)
    card = json.loads(state_model.with_name("model.json").read_text(encoding="utf-8"))
    assert card["tracks"] == ["reinvent_base"]  # the fixture's: the test below needs another one
    card["tracks"] = [track]
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    return model


def _drive(car: Path, model: Path, *more: str) -> tuple[dict, str]:
    """(the --json summary, stderr with whitespace runs made single spaces) of a fast sim drive."""
    from pitlane.cli import app

    args = ["drive", "--car", str(car), "--model", str(model), "--hal", "sim", "--fast", *more, "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1]), " ".join(result.stderr.split())


def test_drive_sim_drives_the_model_cards_track(write_car, state_model: Path, tmp_path: Path) -> None:
    from sim.tracks import load_track

    model = _model_trained_on(state_model, tmp_path / "model", CARD_TRACK)
    summary, said = _drive(write_car(""), model, "--laps", "1")
    length_m = load_track(CARD_TRACK).length_m
    assert summary["track"]["name"] == CARD_TRACK and summary["track"]["source"] == "model card"
    assert summary["track"]["length_m"] == pytest.approx(length_m, abs=1e-3)
    assert (
        f"track: {CARD_TRACK} ({length_m:.1f} m), from the model card (the model was trained on it)" in said
    )
    # the lap reports (what a league receives, wire schema 2) name the track the car drove
    assert len(summary["laps"]) == 1 and summary["laps"][0]["track"] == CARD_TRACK


def test_drive_sim_track_option_overrides_the_card(write_car, state_model: Path, tmp_path: Path) -> None:
    model = _model_trained_on(state_model, tmp_path / "model", CARD_TRACK)
    summary, said = _drive(write_car(""), model, "--laps", "1", "--track", "oval")
    assert summary["track"]["name"] == "oval" and summary["track"]["source"] == "--track"
    assert (
        f"track: oval ({summary['track']['length_m']:.1f} m), from --track (the model was trained on {CARD_TRACK})"
        in said
    )
    assert [lap["track"] for lap in summary["laps"]] == ["oval"]


def test_drive_prints_what_the_throttle_cap_does(write_car, state_model: Path) -> None:
    from pitlane.cli import app

    shipped = write_car("", name="shipped.toml").read_text(encoding="utf-8")
    assert "throttle_cap_us = 1700" in shipped
    # 1660 µs lies halfway between the speed table's (1620 µs, 1.6 m/s) and (1700 µs, 2.6 m/s): 2.1 m/s
    car = write_car("", name="capped.toml")
    car.write_text(shipped.replace("throttle_cap_us = 1700", "throttle_cap_us = 1660"), encoding="utf-8")
    speeds = sorted(a["speed"] for a in load_card(state_model.with_name("model.json")).action_space.deepracer)
    assert speeds == [1.5, 1.5, 3.0, 3.0, 4.0]  # the recipe's five actions, which the numbers below follow

    args = [
        "drive",
        "--car",
        str(car),
        "--model",
        str(state_model),
        "--hal",
        "sim",
        "--fast",
        "--steps",
        "90",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    before, after = out.split("driving ", 1)
    # before the laps: the capped top speed against the policy's, and how much of its range is cut
    assert (
        "throttle cap: [safety] throttle_cap_us = 1660 µs holds the car to 2.10 m/s; the policy's top speed is "
        "4.00 m/s (its speeds span 1.50-4.00 m/s): the cap cuts 76 % of that range and slows 3 of 5 actions to "
        "2.10 m/s; laps will be slower than `pitlane evaluate`'s, which has no cap" in before
    )
    # after: the count, what it means, and the key to change (with the pulse the policy's top speed needs)
    steps = 90
    clipped = int(after.split(f" of {steps} throttle commands")[0].rsplit(" ", 1)[-1])
    assert clipped > 0
    assert (
        f"{clipped} of {steps} throttle commands ({100 * clipped / steps:.0f} %) asked for more than the throttle cap (2.10 m/s at 1660 µs)"
        in after
    )
    assert f"`throttle_cap_us` in [safety] of {car}: on a real car it is a safety limit" in after
    assert "1800 µs would let the policy's 4.00 m/s through" in after


def test_throttle_cap_effect_of_continuous_and_uncapped_cars(write_car, state_model: Path) -> None:
    card = load_card(state_model.with_name("model.json"))
    continuous = card.model_copy(
        update={
            "action_space": ActionSpaceCard(
                type="continuous",
                deepracer={
                    "steering_angle": {"low": -25.0, "high": 25.0},
                    "speed": {"low": 1.0, "high": 3.0},
                },
            )
        }
    )
    effect = throttle_cap_effect(load_runtime_config(write_car("")), continuous)  # cap 1700 µs = 2.6 m/s
    assert effect is not None and effect.limits
    assert (effect.capped_top_speed_mps, effect.policy_top_speed_mps) == (2.6, 3.0)
    assert effect.cut_fraction == pytest.approx(0.4 / 2.0)
    assert effect.actions_over_cap is None and effect.top_speed_us == 1729  # 1700 + 0.4 / 1.4 x 100 µs

    slow = card.model_copy(
        update={
            "action_space": ActionSpaceCard(
                type="discrete", deepracer=[{"steering_angle": 0.0, "speed": 2.0}]
            )
        }
    )
    effect = throttle_cap_effect(load_runtime_config(write_car("")), slow)
    assert (
        effect is not None
        and not effect.limits
        and effect.cut_fraction == 0.0
        and effect.actions_over_cap == 0
    )

    uncapped = write_car("", name="uncapped.toml")
    uncapped.write_text(
        uncapped.read_text(encoding="utf-8").replace("throttle_cap_us = 1700", ""), encoding="utf-8"
    )
    assert throttle_cap_effect(load_runtime_config(uncapped), card) is None


def test_sim_track_without_a_card_track_is_the_default(state_model: Path) -> None:
    card = load_card(state_model.with_name("model.json")).model_copy(update={"tracks": (), "reverse": True})
    choice = sim_track(card)
    assert (choice.track, choice.source, choice.reverse) == ("reinvent_base", "default", True)
    assert sim_track(card, "oval").source == "--track"
