"""The track library: resolves a track name or a `.npy` path to a `Track`, lists tracks, imports new ones.

Three kinds of tracks:

- `builtin` — made by this project (`sim.tracks.builtin`), shipped in `sim/tracks/data/`;
- `deepracer` — every AWS DeepRacer route file of the DeepRacer simulator (126, both directions' variants
  included, under DeepRacer's own names) shipped unchanged in `sim/tracks/data/` (Apache-2.0, see NOTICE;
  `deepracer_routes.sha256` lists them with their SHA-256, so `sha256sum -c` proves they are unchanged);
- `imported` — added by the user with `import_track` (`pitlane tracks import`), stored in the user track
  directory: `$PITLANE_HOME/tracks`, else `$XDG_DATA_HOME/pitlane/tracks`, else
  `~/.local/share/pitlane/tracks`.

Loaded tracks are cached per (file, the file's inode/modification time/size, direction, duplicate handling):
a `Track` is read-only; a replaced file is re-read. Its spatial rasters are built on first use and kept on
disk across processes (`sim.tracks.cache`).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from sim.errors import TrackError
from sim.tracks.track import Track

log = logging.getLogger(__name__)

#: Where the shipped route files live (package data).
DATA_DIR = Path(__file__).resolve().parent / "data"
#: The manifest of the DeepRacer route files shipped unchanged in `sim/tracks/data/` (`sha256sum` format).
DEEPRACER_MANIFEST = DATA_DIR / "deepracer_routes.sha256"


def _manifest_names() -> tuple[str, ...]:
    lines = DEEPRACER_MANIFEST.read_text(encoding="utf-8").splitlines()
    return tuple(Path(line.split()[1]).stem for line in lines if line.strip())


#: DeepRacer route files shipped unchanged in `sim/tracks/data/`, by their DeepRacer names.
DEEPRACER_NAMES: tuple[str, ...] = _manifest_names()
#: Allowed track names: letters, digits, `_`, `.` and `-`, not starting with `.` or `-`.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

TrackKind = Literal["builtin", "deepracer", "imported"]


@dataclass(frozen=True)
class TrackInfo:
    """One row of `list_tracks()`: lengths in metres, `n_waypoints` counts DeepRacer's closing point."""

    name: str
    kind: TrackKind
    path: Path
    length_m: float
    mean_width_m: float
    n_waypoints: int


# --------------------------------------------------------------------------- where tracks live


def user_track_dir() -> Path:
    """Folder of imported tracks (not created here): `$PITLANE_HOME/tracks`, else
    `$XDG_DATA_HOME/pitlane/tracks`, else `~/.local/share/pitlane/tracks`."""
    if home := os.environ.get("PITLANE_HOME"):
        return Path(home).expanduser() / "tracks"
    if xdg := os.environ.get("XDG_DATA_HOME"):
        return Path(xdg).expanduser() / "pitlane" / "tracks"
    return Path.home() / ".local" / "share" / "pitlane" / "tracks"


def _shipped() -> dict[str, tuple[TrackKind, Path]]:
    from sim.tracks.builtin import BUILTIN_NAMES  # not at import: `python -m sim.tracks.builtin` runs it

    kinds: list[tuple[str, TrackKind]] = [(n, "builtin") for n in BUILTIN_NAMES]
    kinds += [(n, "deepracer") for n in DEEPRACER_NAMES]
    return {name: (kind, DATA_DIR / f"{name}.npy") for name, kind in kinds}


def _imported() -> dict[str, Path]:
    folder = user_track_dir()
    if not folder.is_dir():
        return {}
    shipped = _shipped()
    found = {}
    for path in sorted(folder.glob("*.npy")):
        if path.stem in shipped:
            log.warning("ignoring %s: it has the name of a shipped track", path)
        elif NAME_PATTERN.fullmatch(path.stem):
            found[path.stem] = path
    return found


def track_names() -> list[str]:
    """Every name `load_track` accepts: built-in, DeepRacer, then imported (sorted)."""
    return [*_shipped(), *_imported()]


def _looks_like_path(spec: str | Path) -> bool:
    return isinstance(spec, Path) or spec.endswith(".npy") or "/" in spec or os.sep in spec


def resolve_track(spec: str | Path) -> Path:
    """The route file a track name or path stands for (a path is returned resolved, unchecked)."""
    if _looks_like_path(spec):
        return Path(spec).expanduser().resolve()
    if spec in (shipped := _shipped()):
        return shipped[spec][1]
    if spec in (imported := _imported()):
        return imported[spec]
    names = [*shipped, *imported]
    close = difflib.get_close_matches(spec, names, n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    builtin = [n for n, (kind, _) in shipped.items() if kind == "builtin"]
    mine = f", yours: {', '.join(imported)}" if imported else ""
    raise TrackError(
        f"unknown track {spec!r}.{hint} Built in: {', '.join(builtin)}; {len(DEEPRACER_NAMES)} DeepRacer "
        f"tracks under their DeepRacer names (e.g. reinvent_base, reInvent2019_track){mine}; "
        "`pitlane tracks list` shows them all; a path to a DeepRacer route file (.npy) also works."
    )


# --------------------------------------------------------------------------- loading


@lru_cache(maxsize=32)
def _load_cached(
    path: Path, version: tuple[int, ...], reverse: bool, keep_duplicate_waypoints: bool
) -> Track:
    """`version` (inode, modification time, size) makes a replaced file a new cache entry."""
    if reverse:
        return _load_cached(path, version, False, keep_duplicate_waypoints).reversed()
    log.debug("loading track %s", path)
    try:
        return Track.from_npy(path, path.stem, keep_duplicate_waypoints=keep_duplicate_waypoints)
    except EOFError:  # numpy's answer to an empty or truncated file
        raise TrackError(f"{path}: not a readable .npy route file (empty or truncated)") from None


def _load_path(path: Path, reverse: bool = False, keep_duplicate_waypoints: bool = False) -> Track:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise TrackError(f"{path}: no such track file") from None
    except OSError as exc:
        raise TrackError(f"{path}: cannot read the track file ({exc})") from exc
    if path.is_dir():
        raise TrackError(f"{path}: is a folder, expected a DeepRacer route file (.npy)")
    version = (st.st_ino, st.st_mtime_ns, st.st_size)
    return _load_cached(path, version, reverse, keep_duplicate_waypoints)


def load_track(spec: str | Path, *, reverse: bool = False, keep_duplicate_waypoints: bool = False) -> Track:
    """The track named `spec` (built-in, DeepRacer or imported name), or read from a `.npy` route file.

    `reverse=True` gives the same road driven the other way (DeepRacer's reversed direction);
    `keep_duplicate_waypoints=True` keeps consecutive duplicated waypoints (older DeepRacer indexing).
    The result is cached and shared: do not modify it. Raises TrackError for an unknown name (listing
    the available ones) or an unusable file (naming it).
    """
    return _load_path(resolve_track(spec), reverse, keep_duplicate_waypoints)


def list_tracks() -> list[TrackInfo]:
    """Every available track with its centre-line length and mean width (m); unreadable imported files are
    skipped with a warning. Cheap: no spatial rasters are built."""
    entries: list[tuple[str, TrackKind, Path]] = [(n, k, p) for n, (k, p) in _shipped().items()]
    entries += [(n, "imported", p) for n, p in _imported().items()]
    infos = []
    for name, kind, path in entries:
        try:
            track = _load_path(path)
        except TrackError as exc:
            log.warning("skipping track %s: %s", name, exc)
            continue
        infos.append(TrackInfo(name, kind, path, track.length_m, track.mean_width_m, track.n_waypoints))
    return infos


# --------------------------------------------------------------------------- importing


def check_track_name(name: str) -> None:
    """Raise TrackError unless `name` can name an imported track."""
    if not NAME_PATTERN.fullmatch(name):
        raise TrackError(
            f"invalid track name {name!r}: use letters, digits, '_', '.' and '-' "
            "(not starting with '.' or '-')"
        )
    if name.endswith(".npy"):
        raise TrackError(f"invalid track name {name!r}: give the name without '.npy'")
    shipped = {n.lower(): n for n in _shipped()}
    if name.lower() in shipped:
        raise TrackError(f"track name {name!r} is taken by the shipped track {shipped[name.lower()]!r}")


def _atomic_copy(source: Path, target: Path) -> None:
    """Copy bytes to a hidden temporary file beside `target`, then rename it over `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def import_track(path: str | Path, name: str, *, overwrite: bool = False) -> Path:
    """Validate the DeepRacer route file `path` and store a byte-for-byte copy as imported track `name`.

    Refuses a name of a shipped track, and an existing imported name unless `overwrite=True`. Returns the
    stored file's path (in `user_track_dir()`). Raises TrackError naming the file or the name.
    """
    check_track_name(name)
    source = Path(path).expanduser()
    _load_path(source.resolve())  # validates: shape, numbers, finite, enough distinct waypoints
    target = user_track_dir() / f"{name}.npy"
    if target.exists() and not overwrite:
        raise TrackError(f"an imported track named {name!r} exists ({target}); use overwrite to replace it")
    try:
        _atomic_copy(source, target)
    except OSError as exc:
        raise TrackError(f"cannot store track {name!r} as {target}: {exc}") from exc
    log.info("imported %s as %r (%s)", source, name, target)
    return target
