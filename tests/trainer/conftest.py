"""Fixtures the trainer's tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.config import ONE_TRACK, RunConfig
from trainer.train import train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few seconds of training on the oval: enough for best.zip, final.zip and config.resolved.json."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    config = RunConfig(
        track="oval", total_steps=2_000, n_envs=8, eval_every_steps=100_000, eval_laps=1, **ONE_TRACK
    )
    train(config, out, progress=False)
    return out
