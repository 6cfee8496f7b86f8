"""`pitlane tracks list | show | import`, run in-process with typer's CliRunner.

PITLANE_HOME points at a temporary folder, so the user's own track folder is never touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pitlane.commands.tracks import app
from sim.tracks.builtin import BUILTIN_NAMES
from sim.tracks.library import DATA_DIR, DEEPRACER_NAMES

runner = CliRunner()


@pytest.fixture(autouse=True)
def pitlane_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "pitlane-home"
    monkeypatch.setenv("PITLANE_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")  # rich: no wrapped table cells or messages
    return home


def test_list_shows_every_shipped_track() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in [*BUILTIN_NAMES, *DEEPRACER_NAMES]:
        assert name in result.output
    assert "length (m)" in result.output and "width (m)" in result.output
    assert "17.71" in result.output  # reinvent_base's length


def test_show_prints_facts_with_units() -> None:
    result = runner.invoke(app, ["show", "reinvent_base"])
    assert result.exit_code == 0, result.output
    assert "17.71 m" in result.output
    assert "0.762 m mean" in result.output
    assert "counter-clockwise" in result.output
    assert "119" in result.output


def test_show_json_reversed() -> None:
    result = runner.invoke(app, ["show", "reInvent2019_track", "--reverse", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["name"] == "reInvent2019_track"
    assert facts["kind"] == "deepracer"
    assert facts["reversed"] is True
    assert facts["direction"] == "clockwise"
    assert facts["length_m"] == pytest.approx(23.118, abs=1e-3)
    assert facts["n_waypoints"] == 154
    assert set(facts["start"]) == {"x_m", "y_m", "heading_deg"}


def test_show_png_draws_a_picture(tmp_path: Path) -> None:
    import matplotlib.image

    png = tmp_path / "hairpin.png"
    result = runner.invoke(app, ["show", "hairpin", "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 20  # road, borders, centre line, start line, arrow, text ...


def test_show_png_into_a_missing_folder_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["show", "oval", "--png", str(tmp_path / "nope" / "oval.png")])
    assert result.exit_code == 2
    assert "cannot write" in result.output
    assert "Traceback" not in result.output


def test_import_then_show_by_name(tmp_path: Path, pitlane_home: Path) -> None:
    source = tmp_path / "my_track.npy"
    np.save(source, np.load(DATA_DIR / "technical.npy"))
    result = runner.invoke(app, ["import", str(source), "--name", "club_track"])
    assert result.exit_code == 0, result.output
    assert "imported" in result.output and "club_track" in result.output
    assert (pitlane_home / "tracks" / "club_track.npy").is_file()

    shown = runner.invoke(app, ["show", "club_track", "--json"])
    assert shown.exit_code == 0, shown.output
    facts = json.loads(shown.output)
    assert facts["kind"] == "imported"
    assert facts["mean_width_m"] == pytest.approx(0.6)
    assert "club_track" in runner.invoke(app, ["list"]).output

    again = runner.invoke(app, ["import", str(source), "--name", "club_track"])
    assert again.exit_code == 2
    assert "exists" in again.output
    replaced = runner.invoke(app, ["import", str(source), "--name", "club_track", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output


def test_show_unknown_name_exits_2_with_a_clear_message() -> None:
    result = runner.invoke(app, ["show", "ovl"])
    assert result.exit_code == 2
    assert "error:" in result.output
    assert "unknown track 'ovl'" in result.output
    assert "Did you mean 'oval'" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_import_bad_file_and_bad_name_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npy"
    bad.write_text("not a numpy file")
    result = runner.invoke(app, ["import", str(bad), "--name", "bad"])
    assert result.exit_code == 2
    assert "bad.npy" in result.output
    result = runner.invoke(app, ["import", str(DATA_DIR / "oval.npy"), "--name", "oval"])
    assert result.exit_code == 2
    assert "shipped track" in result.output


def test_show_raceline_prints_limit_laps_and_draws_the_line_by_speed(tmp_path: Path) -> None:
    import matplotlib.image

    png = tmp_path / "reinvent_raceline.png"
    result = runner.invoke(app, ["show", "reinvent_base", "--raceline", "--png", str(png)])
    assert result.exit_code == 0, result.output
    rows = [line.strip() for line in result.output.splitlines()]
    lines = {
        key: next(r for r in rows if r.startswith(key)) for key in ("race line", "limit lap", "centre lap")
    }
    assert lines["race line"].endswith("m (minimum curvature, deepracer)")
    assert " s (race line)" in lines["limit lap"]
    assert " s (centre line" in lines["centre lap"]
    limit_s = float(lines["limit lap"].split()[2])
    centre_s = float(lines["centre lap"].split()[2])
    assert 0 < limit_s < centre_s
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300
    # the speed-coloured line and its colour bar: about 4,000 colours; the plain picture has about 1,000
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 2000

    as_json = json.loads(runner.invoke(app, ["show", "reinvent_base", "--raceline", "--json"]).output)
    assert as_json["raceline"]["limit_lap_s"] == pytest.approx(limit_s, abs=0.006)
    assert as_json["raceline"]["car"] == "deepracer"
    bad_car = runner.invoke(app, ["show", "reinvent_base", "--raceline", "--car", "nope"])
    assert bad_car.exit_code == 2 and "unknown car" in bad_car.output
