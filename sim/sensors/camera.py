"""The camera observation: grayscale frames of the taped track, rendered for n cars at once by inverse
perspective mapping (IPM).

Geometry. The camera is a pinhole (square pixels, vertical field of view from the aspect ratio) mounted at
the car config's `[camera]` x/y/z (chassis frame: x forward, y left, z up, origin mid-way between the axles,
`wheel_radius_m` above the floor), tilted `pitch_deg` down. The floor is flat, so every pixel below the
horizon sees one ground point, fixed in the car frame. Rows above the first whose centre sees within
`MAX_RANGE_M` (6 m; that row's corners see ~7 m) show the background, `ground.SKY_LUMA` (a grey wall); this
includes everything above the horizon. Stereo (DeepRacer's STEREO_CAMERAS): two such cameras
`stereo_baseline_m` apart along y (0.06 m when the config has none), left camera first, as (H, W, 2).

Why precomputed gathers. A 160x120 frame is 19,200 texture reads; 20,000 frames a second on one core leaves
~2.5 ns a pixel, and every numpy call on a (256, 19200) array costs milliseconds, so per-pixel float math
(rotate, translate, floor, index: ~10 calls) is out. No library renders batched IPM frames in numpy at that
rate (OpenGL/EGL needs a GPU context and a read-back per batch; OpenCV's `warpPerspective` warps one image per
call and is not a dependency), so a frame is one gather per pixel and nothing else:

    frame[rows] = ground.data[car_cell:].take(table[heading_bin][rows])

- The heading is quantised to `heading_bins` bins (default 720: 0.5°, at most ±0.55 px at the image centre)
  and the position to a ground cell (1 cm far, 5 mm near: ±0.5 px at 1 m). Per bin, `HeadingTables` holds
  every pixel's flat index into the ground stack relative to the car's cell (rotation, mount and level
  included). Taking from a view that starts at the car's cell makes the car's offset free; the stack's padding
  keeps every index in range. Tables are intp because numpy converts any other index type to intp on every
  gather, which cost ~20 % more than the extra memory traffic (so they take ~100 MB per camera).
- Anti-aliasing is in the tables too: a pixel reads the far level whose blur matches half its footprint
  (across the view; along it, a quarter, the rest being the levels' along-track blur), the nearest level in
  log blur. Near rows read the sharp 5 mm stack.
- Camera pitch/height jitter: each output row reads the nominal table row that sees the same ground distance
  (exact on the centre column; < 1 px off at the image corners for the `light` preset's ±1°, ~2 px for
  `strong`'s ±3°), as a few runs of consecutive rows, so jittered cameras need no tables of their own.
- Blur: whole far levels added to the car's base (free); a level doubles the prefilter, so the draw is
  rounded stochastically (`_blur_levels`). The near stack is not blurred.
- Brightness, contrast, gamma: a 256-entry tone curve per car, applied to the ground rows while the frame is
  in cache (the sky is one value: filled). Noise: a slice, at a per-frame pseudo-random offset, of a fixed
  buffer of rounded Gaussian values stored modulo 256, added with wrapping uint8 arithmetic; the tone curve
  leaves 3 s.d. of headroom at both ends so nothing wraps.

Measured on the CI machine (one core, deepracer 160x120, `reinvent_base`, cars moving 10 cm a frame; best of
three runs of `render` alone), frames/s:

| cars | none   | light  | stereo none | stereo light |
|------|--------|--------|-------------|--------------|
| 1    | 29,500 | 9,600  | 21,700      | 7,600        |
| 64   | 52,000 | 21,500 | 26,600      | 11,200       |
| 256  | 53,000 | 19,600-21,500 | 27,500 | 10,800      |

`light` costs ~2.5x `none`: the tone-curve gather (~13 µs a frame: a second gather per pixel), 9 ground
variants instead of one (cache misses: a far pixel reads its own cache line) and jitter runs. A call costs
~15 µs (none) or ~70 µs (light) on top, so batch cars. Memory: offset tables ~104 MB per camera (208 MB
stereo), shared by every sensor of a process with the same camera and track grid; ground variants 12-28 MB.

Everything is deterministic: noise buffers are drawn from `seed`, and a frame's noise offset comes from the
car's noise key (`Poses.noise_key`, advanced by the simulator every step) or, without keys, from a hash of the
car's randomisation draws and quantised pose. Equal draws, poses and keys give equal frames, and a car's frame
does not depend on the other cars in the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from gymnasium import spaces

from contracts.car_file import CarConfig
from sim.randomization import EpisodeRandomization
from sim.sensors.base import Poses
from sim.sensors.ground import (
    N_TEXTURES,
    SKY_LUMA,
    GroundGrid,
    GroundRaster,
    ground_raster,
)
from sim.sensors.ipm import (
    DEFAULT_HEADING_BINS,
    MAX_BLUR_BIAS,
    PREFILTER,
    PinholeCamera,
    RowMap,
    heading_tables,
    jitter_rows,
)
from sim.sensors.photometric import (
    NOISE_BUFFER,
    NOISE_STEP,
    hash_draws,
    noise_buffer,
    noise_headroom,
    tone_curve,
)
from sim.tracks.track import Track

log = logging.getLogger(__name__)

#: Stereo baseline when the car config has none (DeepRacer's stereo camera), metres.
DEFAULT_STEREO_BASELINE_M = 0.06


class CameraSensor:
    """Grayscale camera frames for n cars: `render(poses, idx)` -> (n, H, W) uint8, or (n, H, W, 2) stereo.

    `randomization` (optional) holds each car's per-episode draws, indexed by `idx`: brightness, contrast,
    gamma, noise_std, blur_sigma_px (as whole-level shifts of the far prefilter, rounded stochastically from
    the draw), line_width_scale (three ground variants per preset range), ground_texture, camera pitch and
    height offsets. Ground variants are built when a car first needs one (~2 s each; `prepare()` builds them
    all up front). Frames are a pure function of (poses, draws): nothing changes between calls.
    """

    def __init__(
        self,
        track: Track,
        car_config: CarConfig,
        *,
        randomization: EpisodeRandomization | None = None,
        stereo: bool = False,
        heading_bins: int = DEFAULT_HEADING_BINS,
        seed: int = 0,
    ) -> None:
        self.track = track
        self.randomization = randomization
        self.stereo = stereo
        self.heading_bins = heading_bins
        baseline = car_config.camera.stereo_baseline_m or DEFAULT_STEREO_BASELINE_M
        if stereo:  # DeepRacer's left camera is channel 0
            self.cameras = (
                PinholeCamera.from_config(car_config, baseline / 2),
                PinholeCamera.from_config(car_config, -baseline / 2),
            )
        else:
            self.cameras = (PinholeCamera.from_config(car_config),)
        self.camera = self.cameras[0]
        self.height, self.width = self.camera.height, self.camera.width
        shape = (self.height, self.width, 2) if stereo else (self.height, self.width)
        self.space = spaces.Box(0, 255, shape, np.uint8)
        self._row_px = self.width * len(self.cameras)
        self._default = ground_raster(track, 0, 1.0)
        # tables depend only on the stacks' layouts, which every ground variant of the track shares
        self.tables = heading_tables(
            self.cameras, self._default.far.layout, self._default.near.layout, heading_bins
        )
        self._bin_scale = heading_bins / (2 * np.pi)
        self._nominal = jitter_rows(self.camera, self.tables, 0.0, 0.0)
        self._jitter_cache: dict[tuple[float, float], RowMap] = {}
        self._lut_cache: dict[tuple[float, float, float, float], np.ndarray | None] = {}
        self._width_levels = self._line_width_levels()
        self._seed = seed
        self._noise: dict[int, np.ndarray] = {}  # noise s.d. in NOISE_STEPs -> buffer

    # ----------------------------------------------------------------- public

    @property
    def first_ground_row(self) -> int:
        """Rows above this one show only background in the nominal (unjittered) camera."""
        return self.tables.first_row

    @property
    def nbytes(self) -> int:
        """Memory of the offset tables (the ground rasters are shared and counted by `GroundRaster`)."""
        return self.tables.nbytes

    def prepare(self) -> None:
        """Build every ground variant the randomisation preset can draw (otherwise built on first use)."""
        if self.randomization is None or self.randomization.neutral:
            return
        low, high = self.randomization.preset.ground_texture
        for texture in range(int(low), int(high) + 1):
            for width in self._width_levels:
                ground_raster(self.track, texture, width)

    def render(self, poses: Poses, idx: np.ndarray | slice | None = None) -> np.ndarray:
        """Frames of the cars at `poses` (n,); `idx` are their indices in `randomization`'s arrays.
        Returns (n, H, W) uint8, or (n, H, W, 2) with stereo."""
        n = poses.n
        out = np.empty((n, self.height, self._row_px), dtype=np.uint8)
        out[:, : self.tables.first_row] = SKY_LUMA
        if n:
            rz = self.randomization
            if rz is None or rz.neutral:
                self._render_plain(out, poses)
            else:
                sel = slice(None) if idx is None else idx
                if len(rz.brightness[sel]) != n:
                    raise ValueError(f"render: {n} poses but idx selects {len(rz.brightness[sel])} cars")
                self._render_randomised(out, poses, rz, sel)
        return out.reshape((n, *self.space.shape))

    # ----------------------------------------------------------------- internals

    def _quantise(self, poses: Poses, grid: GroundGrid) -> np.ndarray:
        """Flat index (n,) int64 of each car's cell on `grid` (clamped into the grid)."""
        ix = np.floor((poses.x_m - grid.x0_m) * (1.0 / grid.cell_m))
        iy = np.floor((poses.y_m - grid.y0_m) * (1.0 / grid.cell_m))
        ix = np.minimum(np.maximum(ix, 0), grid.nx - 1)
        iy = np.minimum(np.maximum(iy, 0), grid.ny - 1)
        return (iy * grid.nx + ix).astype(np.int64)

    def _bins(self, poses: Poses) -> np.ndarray:
        angle = np.arctan2(poses.sin_yaw, poses.cos_yaw)
        return np.rint(angle * self._bin_scale).astype(np.int64) % self.heading_bins

    def _render_plain(self, out: np.ndarray, poses: Poses) -> None:
        ground = self._default
        n = poses.n
        self._render_cars(
            out,
            self._bins(poses).tolist(),
            self._quantise(poses, ground.far.grid).tolist(),
            self._quantise(poses, ground.near.grid).tolist(),
            [ground] * n,
            [self._nominal] * n,
            [None] * n,
            [None] * n,
            [0] * n,
            range(n),
        )

    def _render_randomised(self, out: np.ndarray, poses: Poses, rz: EpisodeRandomization, sel) -> None:
        bins = self._bins(poses)
        blur = rz.blur_sigma_px[sel]
        far_bases = self._quantise(poses, self._default.far.grid)
        far_bases += self._blur_levels(blur) * self._default.far.level_stride
        near_bases = self._quantise(poses, self._default.near.grid)
        # Noise offset: from the car's noise key (new every step, repeats with the seed: `sim.sensors.noise`),
        # else a hash of its draws and quantised pose. Either way repeatable and batch-independent.
        if poses.noise_key is not None:
            keys = np.asarray(poses.noise_key).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            mix = (keys >> np.uint64(33)).astype(np.int64)
        else:
            seeds = hash_draws(rz.brightness[sel], rz.noise_std[sel], rz.gamma[sel], blur)
            mix = (seeds + near_bases * 0x2545F491 + bins * 0x9E3779B1) & 0x7FFFFFFF
        grounds, variant = self._grounds(rz.ground_texture[sel], rz.line_width_scale[sel])
        self._render_cars(
            out,
            bins.tolist(),
            far_bases.tolist(),
            near_bases.tolist(),
            grounds,
            self._jitters(rz.camera_pitch_deg[sel], rz.camera_height_m[sel]),
            *self._photometric(rz.brightness[sel], rz.contrast[sel], rz.gamma[sel], rz.noise_std[sel]),
            (mix % (NOISE_BUFFER - self.height * self._row_px)).tolist(),
            # cars sharing a ground variant one after another, in track order: ~10 % fewer cache misses
            np.lexsort((far_bases, variant)).tolist(),
        )

    def _render_cars(
        self,
        out: np.ndarray,
        bins: list[int],
        far_bases: list[int],
        near_bases: list[int],
        grounds: list[GroundRaster],
        rows: list[RowMap],
        luts: list[np.ndarray | None],
        noises: list[np.ndarray | None],
        noise_at: list[int],
        order: Iterable[int],
    ) -> None:
        """Write each car's frame into `out` (n, H, W * C), whose rows above `first_ground_row` are already
        sky; then, while it is still in cache, pass it through the car's tone curve and add its noise."""
        t = self.tables
        first, height, row_px = t.first_row, self.height, self._row_px
        frame_px = height * row_px
        flat = out.reshape(len(bins), frame_px)
        lut_index = np.empty(frame_px, dtype=np.intp)  # a gather converts uint8 indices to intp anyway
        for i in order:
            b, ground, rmap = bins[i], grounds[i], rows[i]
            top, mid = rmap.top, rmap.mid
            # gathers relative to the car's cell: a view of the stack starting there (no index arithmetic)
            view, table, frame = ground.far.data[far_bases[i] :], t.far[b], out[i, top:]
            for src, length, dst in rmap.far_runs:
                view.take(table[src : src + length], out=frame[dst : dst + length], mode="wrap")
            view, table, frame = ground.near.data[near_bases[i] :], t.near[b], out[i, mid:]
            for src, length, dst in rmap.near_runs:
                view.take(table[src : src + length], out=frame[dst : dst + length], mode="wrap")
            lut, noise = luts[i], noises[i]
            if lut is not None:
                # the sky is one value: fill it toned, and tone only the ground below
                flat[i, : top * row_px] = lut[SKY_LUMA]
                ground_px = flat[i, top * row_px :]
                index = lut_index[: len(ground_px)]
                np.copyto(index, ground_px)
                lut.take(index, out=ground_px, mode="wrap")
            elif top > first:
                out[i, first:top] = SKY_LUMA
            if noise is not None:
                o = noise_at[i]
                np.add(flat[i], noise[o : o + frame_px], out=flat[i])  # wraps: the curve left headroom

    def _blur_levels(self, blur_px: np.ndarray) -> np.ndarray:
        """Whole far levels to add for an image blur of `blur_px` (s.d., pixels): a level doubles the
        prefilter (s.d. PREFILTER px), so the exact shift is log2(hypot(1, blur / PREFILTER)); it is rounded
        up with probability equal to its fraction, the coin drawn from the blur value's own bits. The near
        stack (pixels nearer than ~0.7 m) is not blurred: its 5 mm cells are already 1-3 pixels wide."""
        shift = np.log2(np.hypot(1.0, np.asarray(blur_px, dtype=np.float64) / PREFILTER))
        coin = (hash_draws(blur_px) % 1024) / 1024.0
        return np.minimum(np.floor(shift + coin), MAX_BLUR_BIAS).astype(np.int64)

    def _line_width_levels(self) -> tuple[float, ...]:
        """Line width scales that get a ground variant: the preset range's ends and middle (each variant is a
        ~15-25 MB raster, so the continuous draw is rounded to the nearest of three)."""
        rz = self.randomization
        if rz is None or rz.neutral:
            return (1.0,)
        low, high = rz.preset.line_width_scale
        return tuple(sorted({round(low, 3), round((low + high) / 2, 3), round(high, 3)}))

    def _grounds(self, textures: np.ndarray, widths: np.ndarray) -> tuple[list[GroundRaster], np.ndarray]:
        """Each car's ground variant (texture, nearest line-width level), and a code (n,) per variant."""
        levels = np.asarray(self._width_levels)
        nearest = np.abs(np.asarray(widths, dtype=np.float64)[:, None] - levels[None, :]).argmin(axis=1)
        textures = np.clip(np.asarray(textures, dtype=np.int64), 0, N_TEXTURES - 1)
        code = textures * len(levels) + nearest
        found: dict[int, GroundRaster] = {}
        result = []
        for key in code.tolist():
            ground = found.get(key)
            if ground is None:
                texture, width = divmod(key, len(levels))
                ground = found[key] = ground_raster(self.track, texture, float(levels[width]))
            result.append(ground)
        return result, code

    def _jitters(self, pitch_deg: np.ndarray, height_m: np.ndarray) -> list[RowMap]:
        """Per car: the rows its (jittered) camera reads."""
        result = []
        cache = self._jitter_cache
        if len(cache) > 4096:
            cache.clear()
        for key in zip(pitch_deg.tolist(), height_m.tolist(), strict=True):
            if key not in cache:
                rows = jitter_rows(self.camera, self.tables, *key)
                cache[key] = self._nominal if rows == self._nominal else rows
            result.append(cache[key])
        return result

    def _photometric(
        self, brightness: np.ndarray, contrast: np.ndarray, gamma: np.ndarray, noise_std: np.ndarray
    ) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """Per car: the tone curve (256,) uint8 (None: no change) and the noise buffer (None: no noise)."""
        luts: list[np.ndarray | None] = []
        noises: list[np.ndarray | None] = []
        cache = self._lut_cache
        if len(cache) > 4096:  # 256 bytes each; draws change every episode
            cache.clear()
        for key in zip(
            brightness.tolist(), contrast.tolist(), gamma.tolist(), noise_std.tolist(), strict=True
        ):
            steps = max(0, round(key[3] / NOISE_STEP))
            if key not in cache:
                b, c, g, _ = key
                plain = b == 1.0 and c == 1.0 and g == 1.0 and steps == 0
                cache[key] = None if plain else tone_curve(b, c, g, noise_headroom(steps * NOISE_STEP))
            luts.append(cache[key])
            if steps == 0:
                noises.append(None)
                continue
            if steps not in self._noise:
                self._noise[steps] = noise_buffer(self._seed + steps, steps * NOISE_STEP)
            noises.append(self._noise[steps])
        return luts, noises
