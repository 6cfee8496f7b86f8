"""The console's third-party JavaScript (CodeMirror 5, uPlot), fetched from the npm registry at install or serve
time into the server's data folder, never committed to the repository.

    status = ensure_assets(settings.data_dir / WEB_ASSETS_DIR, cache=shared_cache_dir())
    status.ok, status.message()        # what `pitlane league assets` prints

`assets.lock.json` pins each package: its version, the tarball URL, the registry's sha512 `integrity` of the
tarball (what `npm view codemirror@5.65.21 dist.integrity` prints) and the sha256 of each file the pages use.
`ensure_assets` downloads a tarball only when its files are missing or differ from the lock, refuses a tarball
whose sha512 is not the pinned one, and extracts only the listed files into `folder/<package>/<path>` through
a temporary folder renamed into place (a reader never sees half a package). Offline, it returns a status whose
`problem` says what failed and how to fetch later; the pages then fall back to a plain textarea and tables.

Written over urllib, tarfile and hashlib because no Python package fetches npm packages without Node, and a
league server should not need Node to serve two JavaScript files.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from league_server.errors import LeagueError

log = logging.getLogger(__name__)

LOCK_PATH = Path(__file__).resolve().parent / "assets.lock.json"
#: the assets' folder inside the server's data_dir
WEB_ASSETS_DIR = "web-assets"
#: the command that fetches them (named in every message about missing assets)
FETCH_COMMAND = "pitlane league assets"
#: seconds to wait for the registry before calling it unreachable
FETCH_TIMEOUT_S = 30.0
#: the most a tarball may weigh, bytes (CodeMirror 5's is 0.8 MB): a bigger answer is not the pinned file
MAX_TARBALL_BYTES = 20_000_000
#: npm tarballs keep the package's files under this folder
_TAR_ROOT = "package/"


class AssetsError(LeagueError, ValueError):
    """The lock file is unusable (missing, not JSON, a package without its keys), or a package could not be
    fetched or is not the pinned one; the message names the file or URL. `ensure_assets` reports the latter in
    its status rather than raising."""


@dataclass(frozen=True)
class PinnedPackage:
    """One npm package as the lock pins it: `files` maps a path inside the package to its sha256 (hex)."""

    name: str
    version: str
    tarball: str
    integrity: str
    files: dict[str, str]


@dataclass(frozen=True)
class AssetLock:
    packages: tuple[PinnedPackage, ...]

    def package(self, name: str) -> PinnedPackage | None:
        return next((p for p in self.packages if p.name == name), None)


@dataclass(frozen=True)
class AssetStatus:
    """What is in `folder`: `ok` when every pinned file is there and matches the lock. `versions`: package ->
    version verified in place; `fetched`: the packages this call downloaded or copied; `problem`: why not ok,
    ending with what to do."""

    folder: Path
    ok: bool
    versions: dict[str, str] = field(default_factory=dict)
    fetched: tuple[str, ...] = ()
    problem: str | None = None

    def message(self) -> str:
        """One line for a person: what is in place, what was fetched, or what went wrong."""
        pinned = ", ".join(f"{name} {version}" for name, version in sorted(self.versions.items()))
        if not self.ok:
            return f"web assets in {self.folder} are incomplete: {self.problem}"
        if self.fetched:
            return f"fetched {', '.join(self.fetched)} into {self.folder} (verified: {pinned})"
        return f"web assets in {self.folder} are in place (verified: {pinned})"


# ------------------------------------------------------------------------------------------------- the lock


def load_lock(path: Path = LOCK_PATH) -> AssetLock:
    """The pinned packages of `path`; AssetsError naming the file and the key when it is malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        packages = tuple(
            PinnedPackage(
                name=name,
                version=entry["version"],
                tarball=entry["tarball"],
                integrity=entry["integrity"],
                files=dict(entry["files"]),
            )
            for name, entry in data["packages"].items()
        )
    except (OSError, ValueError) as exc:
        raise AssetsError(f"{path}: cannot read the asset lock ({exc})") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise AssetsError(
            f"{path}: expected packages.<name>.{{version, tarball, integrity, files}} ({exc})"
        ) from None
    for package in packages:
        if not package.integrity.startswith("sha512-"):
            raise AssetsError(f"{path}: packages.{package.name}.integrity: expected 'sha512-<base64>'")
    return AssetLock(packages)


def lock_entry(
    name: str, version: str, files: Iterable[str], registry: str = "https://registry.npmjs.org"
) -> dict[str, Any]:
    """A lock entry for `name@version` (how assets.lock.json was written; run again to move a pin):
    the registry's tarball URL and integrity, and the sha256 of each of `files` in the verified tarball."""
    meta = json.loads(_download(f"{registry}/{name}/{version}", limit=MAX_TARBALL_BYTES))
    dist = meta["dist"]
    tarball = _download(dist["tarball"])
    if not integrity_matches(tarball, dist["integrity"]):
        raise AssetsError(f"{dist['tarball']}: the download does not match the registry's own integrity")
    contents = _members(tarball, files, source=dist["tarball"])
    return {
        "version": version,
        "tarball": dist["tarball"],
        "integrity": dist["integrity"],
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in contents.items()},
    }


# ------------------------------------------------------------------------------------------ verifying


def integrity_matches(data: bytes, integrity: str) -> bool:
    """True when `data` has the Subresource Integrity value `integrity` ('sha512-<base64>')."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        return False
    return base64.b64encode(hashlib.sha512(data).digest()).decode("ascii") == expected


def _file_problem(folder: Path, package: PinnedPackage) -> str | None:
    """None when every pinned file of `package` is in `folder/<name>` with its pinned sha256, else what is not."""
    for path, sha256 in package.files.items():
        file = folder / package.name / path
        try:
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
        except FileNotFoundError:
            return f"{package.name}/{path} is missing"
        except OSError as exc:
            return f"{package.name}/{path} cannot be read ({exc})"
        if digest != sha256:
            return (
                f"{package.name}/{path} differs from {package.name} {package.version} (sha256 {digest[:12]}…)"
            )
    return None


def verify_assets(folder: Path, lock: AssetLock | None = None) -> AssetStatus:
    """The state of `folder` against the lock, reading only local files (no network)."""
    lock = lock if lock is not None else load_lock()
    versions: dict[str, str] = {}
    problems: list[str] = []
    for package in lock.packages:
        problem = _file_problem(folder, package)
        if problem is None:
            versions[package.name] = package.version
        else:
            problems.append(problem)
    if problems:
        return AssetStatus(folder, False, versions, problem=f"{'; '.join(problems)}: run `{FETCH_COMMAND}`")
    return AssetStatus(folder, True, versions)


# ------------------------------------------------------------------------------------------ fetching


def shared_cache_dir() -> Path:
    """A per-user folder of verified assets that data folders are filled from (so several servers and test
    runs download once): `$PITLANE_CACHE_DIR/web-assets`, else `$XDG_CACHE_HOME/pitlane/web-assets`, else
    `~/.cache/pitlane/web-assets` (as the track cache, sim/tracks/cache.py)."""
    if root := os.environ.get("PITLANE_CACHE_DIR"):
        return Path(root).expanduser() / WEB_ASSETS_DIR
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "pitlane" / WEB_ASSETS_DIR
    try:
        return Path.home() / ".cache" / "pitlane" / WEB_ASSETS_DIR
    except RuntimeError:  # no home directory (some containers)
        return Path(tempfile.gettempdir()) / "pitlane-cache" / WEB_ASSETS_DIR


def ensure_assets(folder: Path, *, cache: Path | None = None, lock: AssetLock | None = None) -> AssetStatus:
    """Every pinned file in `folder`, verified; fetches only the packages that are missing or differ.

    With `cache`, a package is copied from there (itself filled from the registry when needed), so the
    registry is asked once per cache. Never raises for a network or integrity failure: the status says what
    failed (the pages keep working without the assets)."""
    lock = lock if lock is not None else load_lock()
    fetched: list[str] = []
    problems: list[str] = []
    for package in lock.packages:
        if _file_problem(folder, package) is None:
            continue
        try:
            if cache is not None and cache.resolve() != folder.resolve():
                _fill_from_cache(folder, cache, package)
            else:
                _fetch(folder, package)
        except (AssetsError, OSError) as exc:
            log.warning("web assets: %s", exc)
            problems.append(str(exc))
            continue
        fetched.append(f"{package.name} {package.version}")
    status = verify_assets(folder, lock)
    if problems:
        return AssetStatus(folder, False, status.versions, tuple(fetched),
                           problem=f"{'; '.join(problems)}. When the registry is reachable, run `{FETCH_COMMAND}`")  # fmt: skip
    return AssetStatus(folder, status.ok, status.versions, tuple(fetched), status.problem)


def _fill_from_cache(folder: Path, cache: Path, package: PinnedPackage) -> None:
    if _file_problem(cache, package) is not None:
        _fetch(cache, package)

    def copy(staging: Path) -> None:
        for path in package.files:
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cache / package.name / path, staging / path)

    _install(folder, package, copy)


def _fetch(folder: Path, package: PinnedPackage) -> None:
    """Download `package`'s tarball, check its sha512, and put its listed files in `folder/<name>`."""
    try:
        tarball = _download(package.tarball)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AssetsError(
            f"cannot download {package.name} {package.version} from {package.tarball} ({reason})"
        ) from None
    if not integrity_matches(tarball, package.integrity):
        raise AssetsError(
            f"{package.tarball}: refused, its sha512 is not the pinned integrity of {package.name} {package.version}"
        )
    contents = _members(tarball, package.files, source=package.tarball)
    for path, data in contents.items():
        if hashlib.sha256(data).hexdigest() != package.files[path]:
            raise AssetsError(f"{package.tarball}: {path} is not the file assets.lock.json pins")

    def write(staging: Path) -> None:
        for path, data in contents.items():
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            (staging / path).write_bytes(data)

    _install(folder, package, write)
    log.info("web assets: fetched %s %s into %s", package.name, package.version, folder)


def _download(url: str, limit: int = MAX_TARBALL_BYTES) -> bytes:
    if not url.startswith(("https://", "http://")):
        raise AssetsError(f"{url}: expected an http(s) URL")
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:  # the scheme is checked above
        data: bytes = response.read(limit + 1)
    if len(data) > limit:
        raise AssetsError(f"{url}: more than {limit:,} bytes, not the pinned package")
    return data


def _members(tarball: bytes, files: Iterable[str], *, source: str) -> dict[str, bytes]:
    """The bytes of each listed file in an npm tarball (regular files only: no links, nothing else read)."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for path in files:
                member = archive.getmember(_TAR_ROOT + path)
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is None:
                    raise AssetsError(f"{source}: {path} is not a regular file")
                out[path] = handle.read()
    except KeyError as exc:
        raise AssetsError(f"{source}: the package has no {exc}") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise AssetsError(f"{source}: not a readable tarball ({exc})") from None
    return out


def _install(folder: Path, package: PinnedPackage, fill: Callable[[Path], None]) -> None:
    """Fill a staging folder beside `folder/<name>` with `fill(staging)`, then swap it into place.

    Why rename rather than write in place: a page loading meanwhile gets the old files or the new ones (or for
    an instant none), never half of each. Two processes filling the same folder at once (test workers sharing
    a cache) each stage their own copy; whoever finds a good copy already in place keeps it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / package.name
    staging = folder / f".{package.name}.{uuid.uuid4().hex}.new"
    stale = folder / f".{package.name}.{uuid.uuid4().hex}.old"
    try:
        staging.mkdir()
        fill(staging)
        if _file_problem(folder, package) is None:
            return  # another process put a good copy in place meanwhile
        if target.exists():
            with contextlib.suppress(FileNotFoundError):  # another process moved it first
                target.rename(stale)
        try:
            staging.rename(target)
        except OSError:  # someone else's copy won the race: keep it if it is good
            if _file_problem(folder, package) is not None:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)
