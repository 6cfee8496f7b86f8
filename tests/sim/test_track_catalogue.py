"""`python -m sim.tracks.catalogue OUT_DIR`: tracks.json and one thumbnail per track, as the league server
runs it (a child process). PITLANE_HOME points at a temporary folder holding one imported track."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from sim.tracks import import_track, list_tracks
from sim.tracks.library import DATA_DIR

ROAD_RGB = np.array([0x5A, 0x5A, 0x5A]) / 255
START_RGB = np.array([0xE0, 0x26, 0x2B]) / 255


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PITLANE_HOME with an imported track, `my_oval` (the oval shifted 1 m in x)."""
    home = tmp_path / "pitlane-home"
    monkeypatch.setenv("PITLANE_HOME", str(home))
    route = np.load(DATA_DIR / "oval.npy")
    route[:, 0::2] += 1.0
    np.save(tmp_path / "my_oval.npy", route)
    import_track(tmp_path / "my_oval.npy", "my_oval")
    return home


def catalogue(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sim.tracks.catalogue", str(out), *args],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip


def share_of(image: np.ndarray, rgb: np.ndarray) -> float:
    """The share of the image's pixels within 2 % of colour `rgb`."""
    return float(np.mean(np.all(np.abs(image[..., :3] - rgb) < 0.02, axis=-1)))


def test_every_track_is_listed_with_a_thumbnail(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "catalogue"
    done = catalogue(out, "--size", "120")
    assert done.returncode == 0, done.stderr
    entries = json.loads((out / "tracks.json").read_text(encoding="utf-8"))
    known = {info.name: info for info in list_tracks()}
    assert [e["name"] for e in entries] == list(known) and "my_oval" in known
    for entry in entries:
        info = known[entry["name"]]
        assert set(entry) == {"name", "length_m", "width_m", "source"}
        assert entry["source"] == info.kind
        assert entry["length_m"] == pytest.approx(info.length_m, abs=0.005)
        assert entry["width_m"] == pytest.approx(info.mean_width_m, abs=0.005)
        image = imread(out / f"{entry['name']}.png")
        height, width = image.shape[:2]
        assert width == 120 and 60 <= height <= 120
        assert share_of(image, ROAD_RGB) > 0.005  # the road (AWS_track, 69 m long, at 120 px: ~1 %)
        assert share_of(image, START_RGB) > 0.001  # the start line
    sources = {e["name"]: e["source"] for e in entries}
    assert (sources["my_oval"], sources["oval"], sources["reinvent_base"]) == (
        "imported",
        "builtin",
        "deepracer",
    )
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f"{n}.png" for n in known), "tracks.json"])


def test_an_unusable_size_is_refused(home: Path, tmp_path: Path) -> None:
    done = catalogue(tmp_path / "out", "--size", "4")
    assert done.returncode == 2 and "--size" in done.stderr
    assert not (tmp_path / "out").exists()
