"""`pitlane evaluate` under shift: per-seed perturbations, per-track completion with a Wilson interval, the PNG,
the plain evaluation unchanged with `none` and one seed, and errors that name the option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.randomization import PRESETS, EpisodeRandomization
from trainer.evaluate import evaluate_policy, load_policy
from trainer.shift_eval import evaluate_under_shift

pytestmark = pytest.mark.xdist_group("evaluate-shift-run")


def _evaluate(*args: str) -> object:
    from pitlane.commands.evaluate import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})  # wide: rich wraps no header


def _draw(seed: int) -> dict[str, float]:
    rnd = EpisodeRandomization(1, "eval-shift")
    rnd.draw(np.array([0]), [np.random.default_rng(seed)])
    return {q: float(getattr(rnd, q)[0]) for q in rnd.preset.quantities}


def test_eval_shift_draws_differ_between_seeds_and_repeat_for_a_seed() -> None:
    draws = [_draw(seed) for seed in range(6)]
    assert draws[3] == _draw(3)
    for quantity in ("steering_trim_deg", "latency_ms", "grip_scale", "brightness"):
        assert len({d[quantity] for d in draws}) == 6, quantity
    # held out: trims of either sign, never as small as training's strongest (|trim| <= 3 deg)
    trims = [d["steering_trim_deg"] for d in draws]
    assert min(trims) < 0 < max(trims) and min(abs(t) for t in trims) >= 3.5
    assert all(d["latency_ms"] > PRESETS["strong"].latency_ms[1] for d in draws)


def test_none_with_one_seed_gives_todays_laps(tiny_run: Path) -> None:
    policy, config = load_policy(tiny_run)
    today = evaluate_policy(policy, config, laps=1)
    shifted = evaluate_under_shift(tiny_run, randomization="none", seeds=1, laps=1)
    (row,) = shifted.runs
    assert row.seed == config.seed and row.perturbation == {}
    assert row.lap_times_s == [lap.lap_time_s for lap in today.laps if lap.completed and lap.valid]
    assert row.offtrack == today.summary["offtrack"] and row.completed_laps == today.summary["completed_laps"]
    clean_today = [lap for lap in today.laps if lap.valid and lap.offtrack == 0 and lap.resets == 0]
    assert row.clean_laps == len(clean_today)
    assert row.limit_lap_s == pytest.approx(today.summary["limit_lap_s"])


def test_seeds_on_two_tracks_give_rows_completion_interval_and_png(tiny_run: Path, tmp_path: Path) -> None:
    png = tmp_path / "shift.png"
    result = _evaluate(
        str(tiny_run),
        "--randomization", "eval-shift",
        "--seeds", "3",
        "--track", "oval",
        "--track", "tiny_loop",
        "--laps", "1",
        "--json",
        "--png", str(png),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [t["track"] for t in data["tracks"]] == ["oval", "tiny_loop"]
    assert len(data["runs"]) == 6 and {r["seed"] for r in data["runs"]} == {0, 1, 2}
    trims = {r["seed"]: r["perturbation"]["steering_trim_deg"] for r in data["runs"]}
    assert len(set(trims.values())) == 3  # one perturbation per seed, the same on both tracks
    completed = sum(r["completed_laps"] for r in data["runs"])
    clean = sum(r["clean_laps"] for r in data["runs"])
    assert sum(r["attempted_laps"] for r in data["runs"]) == 6
    assert 0.0 <= data["completion"] <= 1.0 and data["completion"] == pytest.approx(clean / 6)
    assert data["completion_with_resets"] == pytest.approx(completed / 6)
    for run in data[
        "runs"
    ]:  # a clean lap is a completed lap, and a seed with no off-track has only clean ones
        assert run["clean_laps"] <= run["completed_laps"]
        if run["offtrack"] == 0 and run["resets"] == 0:
            assert run["clean_laps"] == run["completed_laps"]
    for track in data["tracks"]:
        assert track["attempted_laps"] == 3
        assert track["ci_low"] <= track["completion"] <= track["ci_high"]
        assert track["ci_high"] - track["ci_low"] > 0.3  # three laps cannot pin a rate down
    low, high = data["completion_ci95"]
    assert low <= data["completion"] <= high
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and data["png"] == str(png)


def test_the_text_output_has_units(tiny_run: Path, tmp_path: Path) -> None:
    result = _evaluate(str(tiny_run), "--seeds", "2", "--laps", "1", "--png", str(tmp_path / "p.png"))
    assert result.exit_code == 0, result.output
    assert "lap times s" in result.output and "95 % CI" in result.output and "completion" in result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--randomization", "medium"], "--randomization"),
        (["--seeds", "0"], "--seeds"),
        (["--track", "oval", "--track", "no_such_track"], "--track"),
    ],
)
def test_bad_input_names_the_option(tiny_run: Path, args: list[str], option: str) -> None:
    result = _evaluate(str(tiny_run), *args)
    assert result.exit_code != 0
    assert option in result.output, result.output


def test_a_lap_with_an_off_track_completes_under_deepracer_rules_but_is_not_clean() -> None:
    """On a real car an off-track is a crash: the robustness figure counts only laps that never left the
    track, DeepRacer's figure (resets allowed) is kept beside it."""
    from types import SimpleNamespace

    from contracts.race import LapRecord
    from trainer.shift_eval import _seed_row, _track_row

    laps = [
        LapRecord(lap_time_s=6.0, raw_time_s=6.0),
        LapRecord(lap_time_s=9.5, raw_time_s=7.5, offtrack=1, resets=1),
        LapRecord(
            lap_time_s=4.0, raw_time_s=4.0, offtrack=1, resets=1, completed=False, valid=False, progress=40
        ),
    ]
    summary = {"offtrack": 2, "resets": 2, "limit_lap_s": 5.0}
    ev = SimpleNamespace(track="oval", laps=laps, summary=summary, perturbation={}, ended="laps_done")
    row = _seed_row(ev, seed=7, laps=3)
    assert (row.completed_laps, row.clean_laps, row.lap_times_s) == (2, 1, [6.0, 9.5])
    track = _track_row("oval", [row, row])
    assert track.completion == pytest.approx(2 / 6) and track.completion_with_resets == pytest.approx(4 / 6)
    assert track.best_over_limit == pytest.approx(6.0 / 5.0)
    assert track.ci_low < track.completion < track.ci_high
