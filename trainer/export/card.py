"""The model card of an export: `contracts.model_card.ModelCard` filled from the run and the exported files."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from pathlib import Path
from typing import Any

from contracts.model_card import (
    ActionSpaceCard,
    ModelCard,
    ModelFile,
    ObservationCard,
    TrainingCard,
    sha256_file,
)
from trainer.config import RunConfig


def pitlane_version() -> str:
    try:
        return importlib.metadata.version("pitlane")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def model_file(path: Path, precision: str, activations: str | None = None) -> ModelFile:
    """The card's entry of the ONNX file at `path` (its opset read from the file: the quantiser may raise it)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return ModelFile(file=path.name, precision=precision, sha256=sha256_file(path), bytes=path.stat().st_size,
                     opset=opset, activations=activations)  # fmt: skip


def build_card(
    config: RunConfig,
    *,
    run_dir: Path,
    car_name: str,
    steps: int,
    observation: ObservationCard,
    files: tuple[ModelFile, ...] = (),
    evaluation: dict[str, Any] | None = None,
) -> ModelCard:
    """The card for a model of `config`'s run (trained `steps` car-steps) on `car_name`."""
    space = config.resolved_action_space()
    return ModelCard(
        observation=observation,
        action_space=ActionSpaceCard(type=space.kind, deepracer=space.to_json()),
        car=car_name,
        tracks=tuple(config.training_tracks),
        reverse=config.reverse,
        training=TrainingCard(
            algorithm=config.algorithm,
            network=config.resolved_network(),
            steps=steps,
            seed=config.seed,
            run=str(run_dir),
        ),
        evaluation=evaluation,
        files=files,
        pitlane_version=pitlane_version(),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
