"""Recording viewer frames headless: numbered PNG files in a folder, or one animated GIF.

pygame writes the PNGs; the GIF is written by Pillow (installed with matplotlib, part of the `sim` extra).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sim.errors import SimError
from sim.viewer.draw import import_pygame

log = logging.getLogger(__name__)

GIF_SUFFIX = ".gif"
#: a GIF keeps every frame in memory until it is written, and writing it takes about twice that (measured:
#: 200 MB for 150 frames at 960x720); this many pixels in all is 600 such frames (40 s at 15 Hz), ~0.8 GB
MAX_GIF_PIXELS = 600 * 960 * 720


class RecordError(SimError, OSError):
    """Frames cannot be recorded where asked (names the path and why)."""


class FrameRecorder:
    """Saves each frame it is given: into `path` as frame_00000.png, frame_00001.png, ... when `path` is a
    folder (made if absent), or into the animated GIF `path` (written by `close()`, played at `fps`)."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.frames = 0
        self.is_gif = self.path.suffix.lower() == GIF_SUFFIX
        self._gif_frames: list[Any] = []
        self._palette: Any = None
        if self.is_gif:
            parent = self.path.parent
            if not parent.is_dir():
                raise RecordError(f"--record {self.path}: no folder {parent} to write the GIF into")
            return
        if self.path.suffix:
            raise RecordError(
                f"--record {self.path}: expected a folder (frames as numbered PNG files) or a .gif file"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordError(f"--record {self.path}: cannot make the folder ({exc})") from None

    def add(self, surface: Any) -> None:
        """Save one frame (a pygame Surface, e.g. `session.viewer.surface` after `draw()`)."""
        pg = import_pygame()
        if self.is_gif:
            width, height = surface.get_size()
            limit = max(1, MAX_GIF_PIXELS // (width * height))
            if len(self._gif_frames) >= limit:
                if len(self._gif_frames) == limit:
                    log.warning(
                        "%s: only the first %d frames go into the GIF (a smaller --size holds more)",
                        self.path,
                        limit,
                    )
                    self._gif_frames.append(None)
                return
            from PIL import Image

            image = Image.frombytes("RGB", surface.get_size(), pg.image.tobytes(surface, "RGB"))
            if self._palette is None:
                # one palette, from the first frame (the speed legend holds every trail colour, the floor,
                # road and panels are there): mapping later frames onto it costs ~9 ms at 960x720, where a
                # palette per frame cost 50-250 ms
                self._palette = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
            self._gif_frames.append(image.quantize(palette=self._palette, dither=Image.Dither.NONE))
        else:
            target = self.path / f"frame_{self.frames:05d}.png"
            try:
                pg.image.save(surface, str(target))
            except (pg.error, OSError) as exc:
                raise RecordError(f"--record {target}: cannot write the frame ({exc})") from None
        self.frames += 1

    def close(self) -> Path:
        """Write the GIF (a folder's frames are already written); returns the path."""
        frames = [frame for frame in self._gif_frames if frame is not None]
        self._gif_frames = []
        if self.is_gif and frames:
            # GIF delays are whole centiseconds; browsers play delays under 20 ms at 10 fps
            duration_ms = max(20, 10 * round(100.0 / self.fps))
            try:
                frames[0].save(
                    self.path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0
                )
            except OSError as exc:
                raise RecordError(f"--record {self.path}: cannot write the GIF ({exc})") from None
        return self.path
