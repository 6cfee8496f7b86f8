"""On-disk cache of track geometry: the rasters and tables a `Track` builds once per track file, and what is
computed from them alone (the race line per car margin, the camera's painted ground per texture and line width).

Building a track's spatial indexes (`SegmentLocator` rasters, `RoadField`, the border `ArcTable`) costs
0.5-2 s per track and per process; reading them back costs milliseconds. So each is stored once as an
`.npz` file in `cache_dir()`: `$PITLANE_CACHE_DIR/tracks`, else `$XDG_CACHE_HOME/pitlane/tracks`, else
`~/.cache/pitlane/tracks`. Deleting the folder (or `pitlane tracks cache --clear`) is always safe; files
unread for `MAX_UNUSED_DAYS` are deleted when a new one is written.

A file's name is a SHA-256 of everything its arrays depend on: the track's route array (after closing and
duplicate handling, in its driving direction), the component and its build parameters, `FORMAT_VERSION`, the
source of the modules that build them, and the numpy and scipy versions. A changed track file or changed build
code gives another name, so stale geometry is never read.

Writes go to a temporary file in the same folder, renamed over the target (`os.replace` is atomic), so
processes building the same track at once (vector-env workers, Ray actors) never read half a file. A file
that cannot be read or does not fit (truncated, corrupt, another format) is logged and rebuilt; a folder that
cannot be written is warned about once, and geometry is then built in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

log = logging.getLogger(__name__)

#: Raise when the meaning or layout of the stored arrays changes (the key changes with it).
FORMAT_VERSION = 1
#: Environment variable naming the cache root; track geometry goes in its `tracks` folder.
CACHE_DIR_ENV = "PITLANE_CACHE_DIR"
#: Modules whose code decides the stored arrays: any edit to them changes every key.
_BUILD_MODULES = (
    "sim.tracks.geometry",
    "sim.tracks.arc_table",
    "sim.tracks.track",
    "sim.tracks.cache",
    "sim.raceline",
    "sim.sensors.ground",
)
#: A file nobody has read for this long is deleted when a new one is stored (old versions, deleted tracks).
MAX_UNUSED_DAYS = 30.0
#: Whatever np.load / zipfile raise for a file that is not a complete .npz of plain arrays.
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)

_unwritable_warned: set[Path] = set()


class Stored(Protocol):
    """A built object that can give back the arrays it computed."""

    def arrays(self) -> Mapping[str, np.ndarray]: ...


T = TypeVar("T", bound=Stored)


def cache_dir() -> Path:
    """Folder of cached track geometry (not created here): `$PITLANE_CACHE_DIR/tracks`, else
    `$XDG_CACHE_HOME/pitlane/tracks`, else `~/.cache/pitlane/tracks`."""
    if root := os.environ.get(CACHE_DIR_ENV):
        return Path(root).expanduser() / "tracks"
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "pitlane" / "tracks"
    try:
        return Path.home() / ".cache" / "pitlane" / "tracks"
    except RuntimeError:  # no home directory (some containers): the temporary folder still shares builds
        return Path(tempfile.gettempdir()) / "pitlane-cache" / "tracks"


@cache
def _code_digest() -> bytes:
    """SHA-256 of the build modules' source and the numpy/scipy versions (once per process)."""
    import importlib.util

    digest = hashlib.sha256()
    for name in _BUILD_MODULES:
        # the source file, found without importing the module (sim.raceline would import scipy)
        spec = importlib.util.find_spec(name)
        try:
            digest.update(Path(spec.origin if spec and spec.origin else "").read_bytes())
        except OSError:  # no source beside the module (a frozen build): the versions below still count
            digest.update(name.encode())
    digest.update(f"numpy=={np.__version__}".encode())
    # scipy's version without importing scipy (~0.2 s, which a cache hit never needs otherwise)
    spec = importlib.util.find_spec("scipy")
    if spec is not None and spec.origin:
        with contextlib.suppress(OSError):
            digest.update((Path(spec.origin).parent / "version.py").read_bytes())
    return digest.digest()


def geometry_key(route: np.ndarray, component: str, parameters: Mapping[str, float | int | str]) -> str:
    """The cache key (64 hex digits) of `component` built from `route` (N, 6) with `parameters`."""
    route = np.ascontiguousarray(route, dtype=np.float64)
    digest = hashlib.sha256()
    digest.update(f"pitlane-track-geometry/{FORMAT_VERSION}/{component}/".encode())
    digest.update(json.dumps(dict(parameters), sort_keys=True).encode())
    digest.update(_code_digest())
    digest.update(str(route.shape).encode())
    digest.update(route.tobytes())
    return digest.hexdigest()


def path_of(key: str) -> Path:
    """Where the arrays of `key` are stored."""
    return cache_dir() / f"{key}.npz"


def load(key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under `key`, or None when there is no readable file (logged when unreadable)."""
    path = path_of(key)
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        with contextlib.suppress(OSError):  # a read-only shared cache still works
            os.utime(path)  # the modification time says when it was last used (see _prune)
        return arrays
    except (FileNotFoundError, NotADirectoryError):  # the folder may not be a folder: store() warns once
        log.debug("track geometry cache miss: %s", path)
    except _UNREADABLE as exc:
        log.warning("ignoring unreadable track geometry cache file %s (%s): rebuilding it", path, exc)
    return None


def store(key: str, arrays: Mapping[str, np.ndarray]) -> Path | None:
    """Write `arrays` under `key` atomically; returns the path, or None (warned once per folder) when the
    cache folder cannot be written."""
    path = path_of(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}.", suffix=".tmp")
    except OSError as exc:
        _warn_unwritable(path.parent, exc)
        return None
    try:
        with os.fdopen(fd, "wb") as out:
            # compressed: raster indexes and bounds shrink ~200x (long runs, mostly inf), distances ~2x;
            # reading them back costs a few ms more
            np.savez_compressed(out, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the geometry is no secret
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        _warn_unwritable(path.parent, exc)
        return None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.debug("stored track geometry %s", path)
    _prune(path.parent)
    return path


def _prune(folder: Path) -> None:
    """Delete cache files unused for `MAX_UNUSED_DAYS` (a store is rare, so this costs little)."""
    too_old = time.time() - MAX_UNUSED_DAYS * 86400.0
    for path in folder.glob("*.npz"):
        with contextlib.suppress(OSError):  # removed by another process, or not ours to remove
            if path.stat().st_mtime < too_old:
                path.unlink()
                log.debug("removed unused track geometry %s", path)


def _warn_unwritable(folder: Path, exc: OSError) -> None:
    if folder not in _unwritable_warned:
        _unwritable_warned.add(folder)
        log.warning(
            "cannot write the track geometry cache in %s (%s): building track geometry in memory each time; "
            "set %s to a writable folder",
            folder,
            exc,
            CACHE_DIR_ENV,
        )


def load_or_build(key: str, build: Callable[[], T], restore: Callable[[Mapping[str, np.ndarray]], T]) -> T:
    """`restore(arrays)` from the file of `key` when it exists and fits; else `build()`, stored for next time.

    `restore` raises KeyError or ValueError when the arrays do not fit (a file of another format): the file
    is then logged and replaced."""
    arrays = load(key)
    if arrays is not None:
        try:
            return restore(arrays)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            log.warning("ignoring track geometry cache file %s (%s): rebuilding it", path_of(key), exc)
    built = build()
    store(key, built.arrays())
    return built


def clear() -> int:
    """Delete every cached track geometry file (and temporary files left by killed writers, an hour old);
    returns how many files were deleted."""
    folder = cache_dir()
    if not folder.is_dir():
        return 0
    removed = 0
    an_hour_ago = time.time() - 3600.0
    for path in [*folder.glob("*.npz"), *folder.glob(".*.tmp")]:
        try:
            if path.suffix == ".tmp" and path.stat().st_mtime > an_hour_ago:
                continue  # another process may be writing it right now
            path.unlink()
            removed += 1
        except FileNotFoundError:  # another process removed or replaced it first
            pass
    return removed


def usage() -> tuple[int, int]:
    """(files, bytes) in the cache folder."""
    folder = cache_dir()
    files = list(folder.glob("*.npz")) if folder.is_dir() else []
    total = 0
    for path in files:
        with contextlib.suppress(FileNotFoundError):  # removed by another process meanwhile
            total += path.stat().st_size
    return len(files), total
