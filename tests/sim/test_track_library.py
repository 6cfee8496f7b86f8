"""The track library: names and paths to Tracks, listing, importing, and clear errors for bad files.

Every test points PITLANE_HOME at a temporary folder, so the user's own track folder is never touched.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sim.errors import TrackError
from sim.tracks import Track, TrackInfo, import_track, list_tracks, load_track
from sim.tracks.builtin import BUILTIN_NAMES
from sim.tracks.library import DATA_DIR, DEEPRACER_NAMES, user_track_dir


@pytest.fixture(autouse=True)
def pitlane_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "pitlane-home"
    monkeypatch.setenv("PITLANE_HOME", str(home))
    return home


@pytest.fixture
def route_file(tmp_path: Path) -> Path:
    """A valid route file that is not shipped: the oval, shifted 1 m in x."""
    route = np.load(DATA_DIR / "oval.npy")
    route[:, 0::2] += 1.0
    path = tmp_path / "my_oval.npy"
    np.save(path, route)
    return path


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize("name", [*BUILTIN_NAMES, *DEEPRACER_NAMES])
def test_every_shipped_name_loads(name: str) -> None:
    track = load_track(name)
    assert track.name == name
    assert track.source == str(DATA_DIR / f"{name}.npy")
    assert track.length_m > 5


def test_every_deepracer_route_file_is_shipped_unchanged_and_listed() -> None:
    """The manifest's SHA-256 of each file (the DeepRacer simulator's bytes) holds, and every shipped .npy is
    either built-in or in the manifest: a file added without its licence line would fail here."""
    import hashlib

    from sim.tracks.library import DEEPRACER_MANIFEST

    assert len(DEEPRACER_NAMES) == 126
    for line in DEEPRACER_MANIFEST.read_text(encoding="utf-8").splitlines():
        digest, filename = line.split()
        assert hashlib.sha256((DATA_DIR / filename).read_bytes()).hexdigest() == digest, filename
    shipped = {p.stem for p in DATA_DIR.glob("*.npy")}
    assert shipped == {*BUILTIN_NAMES, *DEEPRACER_NAMES}
    for name in ("2022_march_open_ccw", "Monaco", "reInvent2019_wide_mirrored", "2024_reinvent_champ_cw"):
        assert name in DEEPRACER_NAMES


def test_an_open_route_is_refused_with_its_gap(tmp_path: Path) -> None:
    """DeepRacer's Straight_track is a line, not a loop: closing it would fold the road onto itself."""
    x = np.linspace(0.7, 6.4, 22)
    route = np.column_stack([x, np.full(22, 1.2), x, np.full(22, 1.5), x, np.full(22, 0.9)])
    np.save(tmp_path / "Straight_track.npy", route)
    with pytest.raises(TrackError, match=r"Straight_track.npy: not a closed loop: .* ends 5.70 m from"):
        load_track(tmp_path / "Straight_track.npy")
    unclosed_square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], dtype=float)
    square = np.hstack([unclosed_square, unclosed_square * 0.9 + 0.1, unclosed_square * 1.1 - 0.1])
    np.save(tmp_path / "square.npy", square)
    assert load_track(tmp_path / "square.npy").length_m == pytest.approx(8.0)  # closed by one more side


def test_shipped_deepracer_files_have_the_documented_facts() -> None:
    assert load_track("reinvent_base").length_m == pytest.approx(17.71, abs=0.01)
    assert load_track("reInvent2019_track").length_m == pytest.approx(23.12, abs=0.01)
    assert load_track("2022_summit_speedway").length_m == pytest.approx(25.17, abs=0.01)


def test_load_by_path_equals_load_by_name() -> None:
    by_path = load_track(DATA_DIR / "reinvent_base.npy")
    by_str = load_track(str(DATA_DIR / "reinvent_base.npy"))
    by_name = load_track("reinvent_base")
    assert by_path is by_name is by_str  # one cached Track per file
    np.testing.assert_array_equal(by_path.waypoints, by_name.waypoints)


def test_load_by_relative_path(route_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(route_file.parent)
    track = load_track("my_oval.npy")
    assert track.name == "my_oval"
    assert track.waypoints[0, 0] == pytest.approx(load_track("oval").waypoints[0, 0] + 1.0)


def test_reverse_and_duplicates_are_cached_separately() -> None:
    fwd = load_track("reInvent2019_track")
    rev = load_track("reInvent2019_track", reverse=True)
    assert rev is load_track("reInvent2019_track", reverse=True)
    assert rev is not fwd
    assert rev.is_reversed and not fwd.is_reversed
    assert rev.is_ccw is not fwd.is_ccw
    assert rev.length_m == pytest.approx(fwd.length_m)
    assert load_track("reInvent2019_track", keep_duplicate_waypoints=True).n_waypoints == 155
    assert fwd.n_waypoints == 154


def test_unknown_name_lists_the_available_names_and_mentions_paths() -> None:
    with pytest.raises(TrackError) as info:
        load_track("no_such_track")
    message = str(info.value)
    assert "'no_such_track'" in message
    for name in BUILTIN_NAMES:
        assert name in message
    assert "126 DeepRacer tracks" in message and "`pitlane tracks list` shows them all" in message
    assert ".npy" in message and "path" in message and len(message) < 600


def test_a_near_miss_suggests_the_name() -> None:
    with pytest.raises(TrackError, match="Did you mean 'reinvent_base'"):
        load_track("reinvent_bse")


# --------------------------------------------------------------------------- bad files


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    files["wrong shape"] = tmp_path / "five_columns.npy"
    np.save(files["wrong shape"], np.zeros((20, 5)))
    route = np.load(DATA_DIR / "oval.npy")
    route[7, 3] = np.nan
    files["NaN"] = tmp_path / "nan.npy"
    np.save(files["NaN"], route)
    files["text"] = tmp_path / "text.npy"
    files["text"].write_text("x,y\n1,2\n")
    files["empty"] = tmp_path / "empty.npy"
    files["empty"].write_bytes(b"")
    files["too few"] = tmp_path / "three.npy"
    np.save(files["too few"], np.load(DATA_DIR / "oval.npy")[:3])
    files["missing"] = tmp_path / "missing.npy"
    files["folder"] = tmp_path / "folder.npy"
    files["folder"].mkdir()
    return files


@pytest.mark.parametrize("kind", ["wrong shape", "NaN", "text", "empty", "too few", "missing", "folder"])
def test_bad_files_give_a_track_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(TrackError) as info:
        load_track(path)
    assert path.name in str(info.value)
    with pytest.raises(TrackError, match=re.escape(path.name)):
        import_track(path, "bad")
    assert not (user_track_dir() / "bad.npy").exists()


def test_wrong_shape_message_says_what_was_expected(tmp_path: Path) -> None:
    path = _bad_files(tmp_path)["wrong shape"]
    with pytest.raises(TrackError, match=r"\(N, 6\).*\(20, 5\)"):
        load_track(path)


# --------------------------------------------------------------------------- listing and importing


def test_user_track_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pitlane_home: Path
) -> None:
    assert user_track_dir() == pitlane_home / "tracks"
    monkeypatch.delenv("PITLANE_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert user_track_dir() == tmp_path / "xdg" / "pitlane" / "tracks"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_track_dir() == tmp_path / "home" / ".local" / "share" / "pitlane" / "tracks"


def test_list_tracks_shows_every_shipped_track_with_its_facts() -> None:
    infos = list_tracks()
    assert all(isinstance(i, TrackInfo) for i in infos)
    by_name = {i.name: i for i in infos}
    assert list(by_name) == [*BUILTIN_NAMES, *DEEPRACER_NAMES]
    assert {by_name[n].kind for n in BUILTIN_NAMES} == {"builtin"}
    assert {by_name[n].kind for n in DEEPRACER_NAMES} == {"deepracer"}
    summit = by_name["2022_summit_speedway"]
    assert summit.length_m == pytest.approx(25.17, abs=0.01)
    assert summit.mean_width_m == pytest.approx(1.067, abs=0.001)
    assert summit.n_waypoints == 126
    assert summit.path == DATA_DIR / "2022_summit_speedway.npy"
    with pytest.raises(AttributeError):
        summit.name = "other"  # type: ignore[misc]


def test_import_then_load_and_list(route_file: Path, pitlane_home: Path) -> None:
    stored = import_track(route_file, "my-oval_2.0")
    assert stored == pitlane_home / "tracks" / "my-oval_2.0.npy"
    assert stored.read_bytes() == route_file.read_bytes()  # an unchanged copy
    track = load_track("my-oval_2.0")
    assert track.name == "my-oval_2.0"
    assert track.length_m == pytest.approx(load_track("oval").length_m)
    info = {i.name: i for i in list_tracks()}["my-oval_2.0"]
    assert (info.kind, info.path, info.n_waypoints) == ("imported", stored, track.n_waypoints)
    assert load_track("my-oval_2.0", reverse=True).is_reversed


def test_import_refuses_to_overwrite_unless_asked(route_file: Path, tmp_path: Path) -> None:
    import_track(route_file, "mine")
    with pytest.raises(TrackError, match=r"exists.*overwrite"):
        import_track(route_file, "mine")
    other = tmp_path / "other.npy"
    np.save(other, np.load(DATA_DIR / "tiny_loop.npy"))
    import_track(other, "mine", overwrite=True)
    assert load_track("mine").length_m == pytest.approx(load_track("tiny_loop").length_m)


@pytest.mark.parametrize("name", ["oval", "reinvent_base", "Reinvent_Base", "OVAL"])
def test_import_refuses_shipped_names_even_with_overwrite(route_file: Path, name: str) -> None:
    with pytest.raises(TrackError, match="shipped track"):
        import_track(route_file, name, overwrite=True)
    assert not user_track_dir().exists()


@pytest.mark.parametrize("name", ["", "has space", "a/b", "../up", ".hidden", "-dash", "é", "x.npy"])
def test_import_refuses_bad_names(route_file: Path, name: str) -> None:
    with pytest.raises(TrackError, match="invalid track name"):
        import_track(route_file, name)


def test_import_does_not_touch_the_store_when_the_file_is_bad(route_file: Path, tmp_path: Path) -> None:
    import_track(route_file, "keep")
    before = (user_track_dir() / "keep.npy").read_bytes()
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 2)))
    with pytest.raises(TrackError, match=r"bad\.npy"):
        import_track(bad, "keep", overwrite=True)
    assert (user_track_dir() / "keep.npy").read_bytes() == before
    assert [p.name for p in user_track_dir().iterdir()] == ["keep.npy"]  # no temporary files left


def test_reimport_is_seen_by_load_despite_the_cache(route_file: Path, tmp_path: Path) -> None:
    import_track(route_file, "changing")
    first = load_track("changing")
    other = tmp_path / "other.npy"
    np.save(other, np.load(DATA_DIR / "technical.npy"))
    import_track(other, "changing", overwrite=True)
    second = load_track("changing")
    assert second is not first
    assert second.length_m == pytest.approx(load_track("technical").length_m)


def test_a_broken_file_in_the_user_folder_is_skipped_by_list(route_file: Path) -> None:
    import_track(route_file, "good")
    (user_track_dir() / "broken.npy").write_text("not numpy")
    names = [i.name for i in list_tracks()]
    assert "good" in names and "broken" not in names
    with pytest.raises(TrackError, match=r"broken\.npy"):
        load_track("broken")


def test_tracks_are_read_only() -> None:
    track: Track = load_track("oval")
    with pytest.raises(ValueError):
        track.route[0, 0] = 0.0
