"""The on-disk track geometry cache (`sim.tracks.cache`): a cache hit answers exactly as a fresh build, a
changed track never reads stale geometry, bad files are rebuilt, an unwritable folder still works."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from sim.tracks import cache
from sim.tracks.arc_table import ArcTable
from sim.tracks.geometry import RoadField, SegmentLocator
from sim.tracks.library import resolve_track
from sim.tracks.track import Track

COMPONENTS = ("centre_locator", "inner_locator", "outer_locator", "road", "border_table")


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "tracks"


@pytest.fixture(scope="module")
def route() -> np.ndarray:
    return np.load(resolve_track("tiny_loop"))


def build_everything(track: Track) -> Track:
    for name in (*COMPONENTS, "width_table"):
        getattr(track, name)
    return track


def forbid_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every expensive build step fail, so only the cache can answer."""

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("built instead of read from the cache")

    monkeypatch.setattr(SegmentLocator, "_build_cell_segments", fail)
    monkeypatch.setattr(SegmentLocator, "certify", fail)
    monkeypatch.setattr(RoadField, "_measure_errors", fail)
    monkeypatch.setattr(ArcTable, "_locate_jumps", fail)


def answers(track: Track) -> dict[str, np.ndarray]:
    """Query answers of every component at fixed points on, beside and off the road."""
    rng = np.random.default_rng(7)
    lo = np.minimum(track.inner.min(axis=0), track.outer.min(axis=0)) - 0.5
    hi = np.maximum(track.inner.max(axis=0), track.outer.max(axis=0)) + 0.5
    x, y = rng.uniform(lo[0], hi[0], 4000), rng.uniform(lo[1], hi[1], 4000)
    s = rng.uniform(0.0, track.length_m, 4000)
    out = {}
    for name in ("centre_locator", "inner_locator", "outer_locator"):
        proj = getattr(track, name).project(x, y)
        out[name] = np.column_stack([proj.segment, proj.t, proj.distance_m])
    out["signed_distance"] = track.road.signed_distance(x, y)
    out["on_road"] = track.on_road(x, y)
    out["border"] = track.border_table.at(s)
    out["width"] = track.width_table.at(s)
    return out


def assert_same_answers(a: Track, b: Track) -> None:
    got, want = answers(a), answers(b)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_a_cache_hit_gives_the_arrays_and_answers_of_a_fresh_build(
    cache_dir: Path, route: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = build_everything(Track(route, "tiny"))
    assert len(list(cache_dir.glob("*.npz"))) == len(COMPONENTS)
    forbid_building(monkeypatch)
    cached = build_everything(Track(route, "tiny"))
    for name in COMPONENTS:
        stored, built = getattr(cached, name).arrays(), getattr(fresh, name).arrays()
        assert stored.keys() == built.keys()
        for key in built:
            np.testing.assert_array_equal(stored[key], built[key], err_msg=f"{name}.{key}")
            assert stored[key].dtype == built[key].dtype
    assert_same_answers(cached, fresh)


def test_a_changed_track_or_direction_never_reads_stale_geometry(
    cache_dir: Path, route: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_everything(Track(route, "tiny"))
    moved = route.copy()
    moved[5, 0:2] += 0.01  # one centre point moved by 1 cm
    parameters = {"cell_m": 0.02, "margin_m": 1.0}
    for component in ("centre", "inner", "outer", "road", "border"):
        keys = {
            cache.geometry_key(route, component, parameters),
            cache.geometry_key(moved, component, parameters),
            cache.geometry_key(route[::-1].copy(), component, parameters),
            cache.geometry_key(route, component, {**parameters, "cell_m": 0.01}),
        }
        assert len(keys) == 4, component
    changed = build_everything(Track(moved, "tiny"))
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "elsewhere"))
    assert_same_answers(changed, build_everything(Track(moved, "tiny")))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other arrays"])
def test_corrupt_or_truncated_cache_files_are_rebuilt(
    cache_dir: Path, route: np.ndarray, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = build_everything(Track(route, "tiny"))
    files = sorted(cache_dir.glob("*.npz"))
    for path in files:
        data = path.read_bytes()
        if damage == "truncated":
            path.write_bytes(data[: len(data) // 2])
        elif damage == "garbage":
            path.write_bytes(bytes(range(256)) * 4)
        elif damage == "empty":
            path.write_bytes(b"")
        else:  # a valid .npz of the wrong shapes (another format version, say)
            np.savez(path, cell_segment=np.zeros(3, np.int32), sdf_m=np.zeros(3), values=np.zeros((2, 2)))
    with caplog.at_level(logging.WARNING, logger="sim.tracks.cache"):
        rebuilt = build_everything(Track(route, "tiny"))
    assert_same_answers(rebuilt, fresh)
    assert len([r for r in caplog.records if "rebuilding" in r.getMessage()]) == len(COMPONENTS)
    for path in files:  # replaced by good files
        with np.load(path) as stored:
            assert stored.files


def test_an_unwritable_cache_dir_builds_in_memory_with_one_warning(
    tmp_path: Path, route: np.ndarray, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # works as root too, unlike a read-only folder
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(blocker))
    with caplog.at_level(logging.WARNING, logger="sim.tracks.cache"):
        first = build_everything(Track(route, "tiny"))
        build_everything(Track(route[::-1].copy(), "tiny reversed"))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and cache.CACHE_DIR_ENV in warnings[0].getMessage()
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "writable"))
    assert_same_answers(first, build_everything(Track(route, "tiny")))


def _build_in_child(route: np.ndarray) -> float:
    track = build_everything(Track(route, "tiny"))
    return float(track.road.signed_distance(np.array([0.0]), np.array([0.0]))[0])


def test_processes_building_the_same_track_at_once_leave_whole_files(
    cache_dir: Path, route: np.ndarray
) -> None:
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_build_in_child, [route] * 4)
    assert len(set(results)) == 1
    assert sorted(p.suffix for p in cache_dir.iterdir()) == [".npz"] * len(COMPONENTS)  # no temporary files
    for path in cache_dir.glob("*.npz"):
        assert cache.load(path.stem) is not None


def test_files_unused_for_a_month_are_deleted_when_a_new_one_is_stored(cache_dir: Path) -> None:
    arrays = {"values": np.arange(3.0)}
    old, used = cache.store("a" * 64, arrays), cache.store("b" * 64, arrays)
    assert old is not None and used is not None
    month_ago = time.time() - (cache.MAX_UNUSED_DAYS + 1) * 86400
    for path in (old, used):
        os.utime(path, (month_ago, month_ago))
    assert cache.load("b" * 64) is not None  # reading marks it used
    cache.store("c" * 64, arrays)
    assert not old.exists() and used.exists() and cache.path_of("c" * 64).exists()


def test_camera_ground_is_painted_once_per_variant_and_read_back(
    cache_dir: Path, route: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The camera's painted ground (1-2 s per track variant) comes back from the cache byte for byte, and
    another texture or line width is painted anew rather than read from a neighbour's file."""
    from sim.sensors import ground

    painted = ground.GroundRaster(Track(route, "tiny"), texture=1, line_width_scale=1.1)
    monkeypatch.setattr(ground, "_track_fields", lambda track: pytest.fail("painted instead of read back"))
    again = ground.GroundRaster(Track(route, "tiny"), texture=1, line_width_scale=1.1)
    np.testing.assert_array_equal(again.far.data, painted.far.data)
    np.testing.assert_array_equal(again.near.data, painted.near.data)
    for other in ({"texture": 2, "line_width_scale": 1.1}, {"texture": 1, "line_width_scale": 0.9}):
        with pytest.raises(pytest.fail.Exception, match="painted instead"):
            ground.GroundRaster(Track(route, "tiny"), **other)
