"""What makes small commands start fast: `pitlane --help` loads no sub-command (nor anything heavy), the
root's lazy listing says what each sub-command's own help says, and `pitlane tracks cache` shows and empties
the track geometry cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pitlane.cli import SUBCOMMANDS, app, load_subcommand
from sim.tracks import cache
from sim.tracks.library import resolve_track
from sim.tracks.track import Track

HEAVY = [
    "torch",
    "stable_baselines3",
    "gymnasium",
    "sqlalchemy",
    "fastapi",
    "matplotlib",
    "pygame",
    "onnxruntime",
    "scipy",
    "numpy",
    "pydantic",
    "sim",
    "trainer",
    "device",
    "league_server",
]


def test_help_imports_no_sub_command_and_nothing_heavy() -> None:
    code = (
        "import json, sys\n"
        "import pitlane.cli\n"
        "try:\n"
        "    pitlane.cli.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('pitlane.commands.')]\n"
        "print(json.dumps(sorted(loaded)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "tracks" in proc.stdout and "reward" in proc.stdout
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"`pitlane --help` imported {loaded}: import them inside the command functions"


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_the_root_listing_says_what_each_sub_command_says(name: str) -> None:
    command = load_subcommand(name)
    assert command.name == name
    first_line = " ".join((command.short_help or command.help or "").split("\n\n")[0].split())
    assert first_line == SUBCOMMANDS[name]


def test_a_mistyped_sub_command_is_suggested() -> None:
    result = CliRunner().invoke(app, ["trakcs"])
    assert result.exit_code == 2
    assert "tracks" in result.output


def test_pitlane_tracks_cache_shows_and_clears_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    track = Track(np.load(resolve_track("tiny_loop")), "tiny")
    track.inner_locator, track.outer_locator  # noqa: B018 - builds and caches two files
    shown = CliRunner().invoke(app, ["tracks", "cache"])
    assert shown.exit_code == 0, shown.output
    assert str(tmp_path / "cache" / "tracks") in shown.output and "2 files" in shown.output
    cleared = CliRunner().invoke(app, ["tracks", "cache", "--clear"])
    assert cleared.exit_code == 0, cleared.output
    assert "removed 2 cached track geometry files" in cleared.output
    assert not list((tmp_path / "cache" / "tracks").glob("*.npz"))


def test_bench_startup_plans_every_command_on_both_tracks(tmp_path: Path) -> None:
    from bench.startup import LONG_TRACK_M, long_track_file, plan

    probes = plan(tmp_path)
    assert [(p.name, p.track) for p in probes][:2] == [
        ("pitlane --help", "-"),
        ("reward params", "reinvent_base"),
    ]
    assert {p.track for p in probes} == {"-", "reinvent_base", f"{LONG_TRACK_M:.0f} m"}
    assert len(probes) == 1 + 2 * 5 + 1
    assert probes[-1].name == "league admin list-races"
    untargeted = {p.name for p in probes if p.target_s is None}
    assert untargeted == {"tracks show --raceline --png"}  # the picture is reported, the answer is targeted
    long_track = Track(np.load(long_track_file(tmp_path)), "long")
    reference = Track(np.load(resolve_track("reInvent2019_track")), "reference")
    assert long_track.length_m == pytest.approx(LONG_TRACK_M)
    np.testing.assert_allclose(long_track.waypoint_widths_m, reference.waypoint_widths_m, atol=1e-9)
