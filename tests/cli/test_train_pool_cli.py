"""`pitlane train`'s training pool and randomisation flags, in-process with typer's CliRunner (real training,
a few thousand steps): what they write into the run's config, the model card's tracks, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitlane.cli import app

runner = CliRunner()


def _resolved(run: Path) -> dict:
    return json.loads((run / "config.resolved.json").read_text(encoding="utf-8"))


def test_pool_flags_reach_the_run_and_the_card_lists_every_training_track(tmp_path: Path) -> None:
    run = tmp_path / "pooled"
    result = runner.invoke(app, ["train", "--track", "oval", "--pool-track", "tiny_loop", "--one-direction",
                                 "--randomization", "light", "--steps", "1024", "-n", "4", "--out", str(run),
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    resolved = _resolved(run)
    assert (resolved["track_pool"], resolved["both_directions"], resolved["randomization"]) == (
        ["tiny_loop"],
        False,
        "light",
    )
    from trainer.config import load_run_dir_config

    assert load_run_dir_config(run).training_tracks == ["oval", "tiny_loop"]


def test_no_pool_trains_the_track_alone_and_the_defaults_are_the_robust_recipe(tmp_path: Path) -> None:
    from trainer.config import ROBUST_TRACK_POOL, RunConfig

    alone = RunConfig.from_flags(track="oval", track_pool=[])
    assert alone.training_tracks == ["oval"] and alone.randomization == "strong"
    default = RunConfig.from_flags(track="oval")
    assert default.track_pool == list(ROBUST_TRACK_POOL) and default.both_directions


def test_a_run_written_before_the_pool_reads_back_as_one_track_unperturbed(tmp_path: Path) -> None:
    """An older run's config.resolved.json has none of the new keys: it trained one track, unperturbed, and
    resuming or exporting it must not pick up today's defaults."""
    from trainer.config import RunConfig, load_run_dir_config

    run = tmp_path / "old"
    run.mkdir()
    data = RunConfig(track="oval").to_json_dict()
    for key in ("track_pool", "both_directions", "randomization"):
        data.pop(key)
    (run / "config.resolved.json").write_text(json.dumps(data), encoding="utf-8")
    old = load_run_dir_config(run)
    assert (old.track_pool, old.both_directions, old.randomization) == ([], False, "none")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--randomization", "eval-shift"], "randomization"),
        (["--pool-track", "no_such_track"], "no_such_track"),
        (["--no-pool", "--pool-track", "oval"], "--no-pool"),
    ],
)
def test_bad_pool_input_names_the_flag(tmp_path: Path, args: list[str], expected: str) -> None:
    result = runner.invoke(app, ["train", "--track", "oval", *args, "--steps", "64", "-n", "2",
                                 "--out", str(tmp_path / "bad")])  # fmt: skip
    assert result.exit_code != 0
    assert expected in result.output, result.output
