"""The model card carries the camera's lens: old cards read as pinhole, and a car with another lens (or
another fisheye calibration) is reported by `card_mismatches`."""

from __future__ import annotations

import json

from contracts.car_file import CarConfig
from contracts.model_card import (
    ActionSpaceCard,
    CameraGeometry,
    ModelCard,
    ObservationCard,
    TrainingCard,
    card_mismatches,
)
from firmware_configs import load_car

PINHOLE = load_car("deepracer")


def with_camera(**changes: object) -> CarConfig:
    camera = PINHOLE.camera.model_dump() | changes
    return CarConfig.model_validate(PINHOLE.model_dump() | {"camera": camera})


FISHEYE = with_camera(lens="fisheye", hfov_deg=120.0, fisheye_k=[0.01, -0.002, 0.0, 0.0])


def card_for(car: CarConfig) -> ModelCard:
    return ModelCard(
        observation=ObservationCard(
            kind="camera",
            input_name="camera",
            shape=(1, 1, 120, 160),
            dtype="uint8",
            camera=CameraGeometry.from_camera(car.camera),
        ),
        action_space=ActionSpaceCard(
            type="continuous",
            deepracer={"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 1, "high": 3}},
        ),
        car="deepracer",
        tracks=("oval",),
        training=TrainingCard(algorithm="ppo", network="cnn_shallow", steps=1, seed=0, run="runs/x"),
        pitlane_version="0",
        created_at="2026-01-01T00:00:00Z",
    )


def test_the_card_carries_the_lens_and_round_trips() -> None:
    card = card_for(FISHEYE)
    assert card.observation.camera.lens == "fisheye"
    assert card.observation.camera.fisheye_k == (0.01, -0.002, 0.0, 0.0)
    back = ModelCard.model_validate_json(card.model_dump_json())
    assert back == card
    assert card_mismatches(back, FISHEYE) == []


def test_a_card_without_a_lens_reads_as_a_pinhole() -> None:
    data = json.loads(card_for(PINHOLE).model_dump_json())
    for key in ("lens", "fisheye_k"):
        del data["observation"]["camera"][key]
    old = ModelCard.model_validate(data)
    assert old.observation.camera.lens == "pinhole"
    assert card_mismatches(old, PINHOLE) == []


def test_a_lens_mismatch_is_reported_both_ways() -> None:
    (pinhole_on_fisheye,) = [
        d
        for d in card_mismatches(
            card_for(PINHOLE), with_camera(lens="fisheye", fisheye_k=[0.0, 0.0, 0.0, 0.0])
        )
        if d.startswith("lens")
    ]
    assert "model pinhole" in pinhole_on_fisheye and "fisheye" in pinhole_on_fisheye
    diffs = card_mismatches(card_for(FISHEYE), PINHOLE)
    assert any(d.startswith("lens: model fisheye") and d.endswith("pinhole") for d in diffs)


def test_another_fisheye_calibration_is_reported_with_its_pixel_error() -> None:
    assert (
        card_mismatches(
            card_for(FISHEYE),
            with_camera(lens="fisheye", hfov_deg=120.0, fisheye_k=[0.0101, -0.002, 0.0, 0.0]),
        )
        == []
    )  # a re-measured lens: a hundredth of a pixel
    diffs = card_mismatches(
        card_for(FISHEYE), with_camera(lens="fisheye", hfov_deg=120.0, fisheye_k=[0.08, -0.002, 0.0, 0.0])
    )
    assert len(diffs) == 1 and diffs[0].startswith("fisheye_k") and "px apart" in diffs[0]
