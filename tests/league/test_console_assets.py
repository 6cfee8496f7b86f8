"""The console's pinned third-party files (league_server/web/assets.py): fetched from the real npm registry,
verified against assets.lock.json's sha512, put in place only when whole, not fetched again when in place, a
damaged file replaced, a tarball that is not the pinned one refused, a clear problem offline; and served under
/console/assets/ with long cache headers, nothing but the pinned files.

The registry is asked once per test run (the shared cache, `$PITLANE_CACHE_DIR/web-assets`) plus twice here on
purpose (a re-fetch of a damaged package, a refused tarball). No registry: skipped locally, failed in CI.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from league_server.web.assets import (
    FETCH_COMMAND,
    AssetLock,
    ensure_assets,
    load_lock,
    shared_cache_dir,
    verify_assets,
)
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.xdist_group("console_assets")

REGISTRY = "https://registry.npmjs.org"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once


def _offline(lock: AssetLock) -> AssetLock:
    """The same pins with every tarball URL pointing at a closed local port: any download fails."""
    return AssetLock(tuple(replace(p, tarball=f"{UNREACHABLE}/{p.name}.tgz") for p in lock.packages))


@pytest.fixture(scope="module")
def lock() -> AssetLock:
    return load_lock()


@pytest.fixture(scope="module")
def cache(lock: AssetLock) -> Path:
    """The shared cache, filled from the real registry (once per test run)."""
    folder = shared_cache_dir()
    if verify_assets(folder, lock).ok:
        return folder
    try:
        urllib.request.urlopen(f"{REGISTRY}/uplot", timeout=15).close()
    except OSError as exc:
        skip_or_fail(f"the npm registry is unreachable ({exc})")
    status = ensure_assets(folder, lock=lock)
    assert status.ok, status.message()
    return folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_pinned_file_is_in_place_and_matches_the_lock(cache: Path, lock: AssetLock) -> None:
    names = {p.name for p in lock.packages}
    assert names == {"codemirror", "uplot"}
    for package in lock.packages:
        assert package.integrity.startswith("sha512-")
        for path, sha256 in package.files.items():
            assert _sha256(cache / package.name / path) == sha256
    # nothing but the listed files was extracted (an npm tarball holds hundreds)
    extracted = {p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()}
    assert extracted == {f"{p.name}/{path}" for p in lock.packages for path in p.files}


def test_a_filled_folder_is_not_fetched_again(cache: Path, lock: AssetLock, tmp_path: Path) -> None:
    folder = tmp_path / "web-assets"
    first = ensure_assets(folder, cache=cache, lock=lock)
    assert first.ok, first.message()
    assert set(first.fetched) == {f"{p.name} {p.version}" for p in lock.packages}
    # everything in place: no download is attempted (every URL now points at a closed port)
    again = ensure_assets(folder, lock=_offline(lock))
    assert again.ok, again.message()
    assert again.fetched == ()
    assert "in place" in again.message()


def test_a_damaged_file_is_refused_then_fetched_again(cache: Path, lock: AssetLock, tmp_path: Path) -> None:
    folder = tmp_path / "web-assets"
    shutil.copytree(cache, folder)
    damaged = folder / "codemirror" / "lib" / "codemirror.js"
    damaged.write_bytes(damaged.read_bytes() + b"\nwindow.evil = 1;\n")

    found = verify_assets(folder, lock)
    assert not found.ok
    assert "codemirror/lib/codemirror.js differs" in (found.problem or "")
    offline = ensure_assets(folder, lock=_offline(lock))  # refused, and says how to fetch later
    assert not offline.ok
    assert f"run `{FETCH_COMMAND}`" in (offline.problem or "")
    assert UNREACHABLE in (offline.problem or "")
    assert offline.versions == {"uplot": lock.package("uplot").version}  # the good package still counts

    fetched = ensure_assets(folder, lock=lock)  # the real registry
    assert fetched.ok, fetched.message()
    assert fetched.fetched == (f"codemirror {lock.package('codemirror').version}",)  # uplot left alone
    assert _sha256(damaged) == lock.package("codemirror").files["lib/codemirror.js"]
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no staging folders left


def test_a_tarball_that_is_not_the_pinned_one_is_refused(
    cache: Path, lock: AssetLock, tmp_path: Path
) -> None:
    uplot = lock.package("uplot")
    assert uplot is not None
    # the real tarball from the registry, checked against another file's sha512
    wrong = replace(uplot, integrity="sha512-" + "A" * 86 + "==")
    folder = tmp_path / "web-assets"
    status = ensure_assets(folder, lock=AssetLock((wrong,)))
    assert not status.ok
    assert "refused" in (status.problem or "") and "sha512" in (status.problem or "")
    assert not folder.exists() or list(folder.iterdir()) == []  # nothing extracted, no staging folder left


def test_offline_with_nothing_in_place_names_the_command(lock: AssetLock, tmp_path: Path) -> None:
    status = ensure_assets(tmp_path / "web-assets", lock=_offline(lock))
    assert not status.ok
    assert status.versions == {}
    message = status.message()
    assert "cannot download codemirror" in message and "cannot download uplot" in message
    assert FETCH_COMMAND in message


def test_assets_are_served_with_long_cache_headers_and_nothing_else(
    cache: Path, lock: AssetLock, tmp_path: Path
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from league_server.core.config import Settings
    from league_server.web.console_pages import asset_urls, console_router

    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    shutil.copytree(cache, settings.data_dir / "web-assets")
    app = FastAPI()
    app.state.settings = settings
    app.include_router(console_router())
    client = TestClient(app)

    urls = asset_urls(lock)
    response = client.get(urls["codemirror_js"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in response.headers["content-type"]
    assert (
        hashlib.sha256(response.content).hexdigest() == lock.package("codemirror").files["lib/codemirror.js"]
    )
    assert urls["uplot_js"].endswith(f"?v={lock.package('uplot').version}")  # a new pin is a new URL
    assert "css" in client.get(urls["uplot_css"]).headers["content-type"]

    (settings.data_dir / "web-assets" / "codemirror" / "package.json").write_text("{}")
    for path in ("codemirror/package.json", "codemirror/..%2F..%2Fweb-assets", "left-pad/index.js"):
        assert client.get(f"/console/assets/{path}").status_code == 404, path
