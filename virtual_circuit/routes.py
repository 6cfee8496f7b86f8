"""A virtual race's own copy of its track: the route file kept by its hash in the server's data folder, so the
race can be evaluated (and a result reproduced) later whatever happens to the library's file."""

from __future__ import annotations

import shutil
from pathlib import Path

from contracts.model_card import sha256_file
from sim.tracks.library import resolve_track


def keep_route(track: str, data_dir: Path) -> tuple[str, str]:
    """(the kept route file's path, its SHA-256) for `track` (a simulator track name or a route .npy)."""
    source = resolve_track(track)
    sha256 = sha256_file(source)
    kept = (Path(data_dir) / "tracks" / f"{sha256}.npy").resolve()
    if not kept.is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, kept)
    return str(kept), sha256
