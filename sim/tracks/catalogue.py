"""The track catalogue a track picker shows: every known track's size, and a small picture of each.

    python -m sim.tracks.catalogue OUT_DIR [--size 160]

writes `OUT_DIR/<name>.png` for each track `list_tracks()` knows (about `size` pixels wide: road in grey,
white borders, the dashed centre line, the start line in red, no axes), then `OUT_DIR/tracks.json`:
`[{name, length_m, width_m, source}]` (`source`: "builtin", "deepracer" or "imported"; metres). tracks.json
is written last and atomically, so a folder that has it is complete. The league server, which does not import
the simulator, runs this once as a child process and serves the folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim.errors import SimError
from sim.tracks.library import list_tracks, load_track
from sim.tracks.plot import _draw_road  # the road exactly as the full-size track pictures draw it
from sim.tracks.track import Track

log = logging.getLogger(__name__)

CATALOGUE_FILE = "tracks.json"
#: thumbnail width, pixels
DEFAULT_SIZE_PX = 160
_DPI = 100
_GRASS = "#dde8d5"  # the track pictures' (sim.tracks.plot) background
_START = "#e0262b"
#: height / width of a thumbnail stays within these, whatever the track's shape
_ASPECT_RANGE = (0.5, 1.0)


def write_catalogue(out_dir: Path, *, size_px: int = DEFAULT_SIZE_PX) -> list[dict[str, Any]]:
    """Write every known track's thumbnail and then `tracks.json` into `out_dir` (created); the entries
    written (lengths in metres, rounded to centimetres)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for info in list_tracks():
        draw_thumbnail(load_track(info.path), out_dir / f"{info.name}.png", size_px=size_px)
        entries.append(
            {
                "name": info.name,
                "length_m": round(info.length_m, 2),
                "width_m": round(info.mean_width_m, 2),
                "source": info.kind,
            }
        )
    partial = out_dir / f".{CATALOGUE_FILE}.partial"
    partial.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, out_dir / CATALOGUE_FILE)
    return entries


def draw_thumbnail(track: Track, path: Path, *, size_px: int = DEFAULT_SIZE_PX) -> Path:
    """`track` drawn small into the PNG file `path`: `size_px` wide, as tall as its shape needs (within
    `_ASPECT_RANGE` of the width), no axes, no labels. Agg canvas directly (no pyplot, no window)."""
    corners = np.vstack([track.inner, track.outer])
    span = np.ptp(corners, axis=0)
    aspect = float(np.clip(span[1] / span[0], *_ASPECT_RANGE))
    fig = Figure(figsize=(size_px / _DPI, size_px * aspect / _DPI), dpi=_DPI, facecolor=_GRASS)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.03, 0.03, 0.94, 0.94))
    ax.set_axis_off()
    _draw_road(ax, track)
    ax.plot(*zip(track.inner[0], track.outer[0], strict=True), color=_START, lw=2.5, zorder=4)
    ax.margins(0.0)  # the borders' lines set the data limits; the figure's edge gives the margin
    ax.set_aspect("equal", adjustable="datalim")
    fig.savefig(path, dpi=_DPI, facecolor=_GRASS)
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m sim.tracks.catalogue OUT_DIR [--size PX]`; 0 when written, 2 when it could not be."""
    parser = argparse.ArgumentParser(
        prog="python -m sim.tracks.catalogue", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out_dir", type=Path, help="folder to write tracks.json and <name>.png into")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE_PX, help="thumbnail width, pixels")
    args = parser.parse_args(argv)
    if not 16 <= args.size <= 2000:
        parser.error(f"--size: expected 16 to 2000 pixels, got {args.size}")
    try:
        entries = write_catalogue(args.out_dir, size_px=args.size)
    except (OSError, SimError) as exc:
        log.error("%s: cannot write the track catalogue (%s)", args.out_dir, exc)
        return 2
    log.info("%d tracks written to %s", len(entries), args.out_dir)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
