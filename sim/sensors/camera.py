"""The camera observation: grayscale frames of the taped track, rendered for n cars at once by inverse
perspective mapping (IPM).

Geometry. The camera's lens is the car config's `[camera] lens` (`sim.sensors.lens`): a pinhole (the
default) or OpenCV's fisheye model (equidistant with distortion `fisheye_k`); square pixels, the principal
point at the centre, the focal length set by `hfov_deg`. It is mounted at `[camera]` x/y/z (chassis frame:
x forward, y left, z up, origin mid-way between the axles, `wheel_radius_m` above the floor), tilted
`pitch_deg` down. The floor is flat, so every pixel below the horizon sees one ground point, fixed in the car
frame. Rows above the first whose centre sees within `MAX_RANGE_M` (6 m; a pinhole's corners there see ~7 m)
show the backdrop (`sim.sensors.backdrop`): the grey wall `ground.SKY_LUMA` without randomisation, else a
far-away panorama of a hall indexed by azimuth and elevation. A fisheye's horizon curves down towards the
image edges, so some pixels of its ground rows see no floor within reach: they show the backdrop too.
Stereo (DeepRacer's STEREO_CAMERAS): two such cameras `stereo_baseline_m` apart along y (0.06 m when the
config has none), left camera first, as (H, W, 2).

Why precomputed gathers. A 160x120 frame is 19,200 texture reads; 20,000 frames a second on one core leaves
~2.5 ns a pixel, and every numpy call on a (256, 19200) array costs milliseconds, so per-pixel float math
(rotate, translate, floor, index: ~10 calls) is out. No library renders batched IPM frames in numpy at that
rate (OpenGL/EGL needs a GPU context and a read-back per batch; OpenCV's `warpPerspective` warps one image per
call and is not a dependency), so a frame is one gather per pixel and nothing else:

    frame[rows] = ground.data[car_cell:].take(table[heading_bin][rows])

- The lens changes only how the tables are built (each pixel's ray), never the gathers: a fisheye renders
  almost as fast as a pinhole (a 120° fisheye 0.96-0.98x at 64 cars: it puts its few backdrop pixels
  among the ground rows, below).
- The backdrop is a gather too, from a panorama view that starts at the heading's column (a whole number of
  columns per heading bin): `backdrop_panorama[heading_column:].take(backdrop_table[rows])`, one table for
  all headings (no parallax). A fisheye's backdrop pixels among its ground rows are put after the ground
  gathers (a take and a put of ~2 % of the frame).
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
  in cache (the grey wall is one value: filled toned). A panorama backdrop skips the tone curve, which
  would be a second gather per backdrop pixel (that design cost ~20 % of a `light` frame; without it the
  backdrop costs ~10 %): it is built at 7 gains spanning the preset's backdrop_brightness x brightness, a
  car reading the nearest (contrast and gamma do not reach it). Noise: a slice, at a per-frame
  pseudo-random offset, of a fixed buffer of rounded Gaussian values stored modulo 256, added with wrapping
  uint8 arithmetic; the tone curve (and a panorama, for the preset's largest noise) leaves 3 s.d. of
  headroom at both ends so nothing wraps.

Measured on the CI machine (one core, deepracer 160x120, `reinvent_base`, cars moving 10 cm a frame; best of
three runs of `render` alone), frames/s:

| cars | none   | light  | stereo none | stereo light |
|------|--------|--------|-------------|--------------|
| 1    | 29,500 | 9,600  | 21,700      | 7,600        |
| 64   | 52,000 | 21,500 | 26,600      | 11,200       |
| 256  | 53,000 | 19,600-21,500 | 27,500 | 10,800      |

`light` costs ~2.5x `none`: the tone-curve gather (~13 µs a frame: a second gather per pixel), 9 ground
variants instead of one (cache misses: a far pixel reads its own cache line) and jitter runs; these figures
predate backdrops, which `none` does not draw and which cost `light` ~10 % more (measured old against new in
one process: `light` 0.87-0.90x at 64 cars, `none` unchanged). A call costs
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
from sim.sensors.backdrop import Backdrop, backdrop
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
    MountedCamera,
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
#: Brightness levels a randomised panorama backdrop is built at (see `CameraSensor._backdrop_levels`).
BACKDROP_GAIN_LEVELS = 7


class CameraSensor:
    """Grayscale camera frames for n cars: `render(poses, idx)` -> (n, H, W) uint8, or (n, H, W, 2) stereo.

    `randomization` (optional) holds each car's per-episode draws, indexed by `idx`: brightness, contrast,
    gamma, noise_std, blur_sigma_px (as whole-level shifts of the far prefilter, rounded stochastically from
    the draw), line_width_scale (three ground variants per preset range), ground_texture, camera pitch and
    height offsets, backdrop and backdrop_brightness. Ground variants are built when a car first needs one
    (~2 s each; backdrops ~20 ms; `prepare()` builds them all up front). Frames are a pure function of
    (poses, draws): nothing changes between calls.
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
                MountedCamera.from_config(car_config, baseline / 2),
                MountedCamera.from_config(car_config, -baseline / 2),
            )
        else:
            self.cameras = (MountedCamera.from_config(car_config),)
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
        self._heading_step = self.tables.panorama.heading_step(heading_bins)
        self._grey_wall = backdrop(0, 1.0, self.tables.panorama)
        self._nominal = jitter_rows(self.camera, self.tables, 0.0, 0.0)
        self._jitter_cache: dict[tuple[float, float], RowMap] = {}
        self._lut_cache: dict[tuple[float, float, float, float], np.ndarray | None] = {}
        self._width_levels = self._line_width_levels()
        self._levels = self._backdrop_levels()
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
        walls, gains, headroom = self._levels
        low, high = self.randomization.preset.backdrop
        for variant in range(int(low), int(high) + 1):
            for gain in walls if variant == 0 else gains:
                backdrop(variant, gain, self.tables.panorama, 0 if variant == 0 else headroom)

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
            [self._grey_wall] * n,
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
            self._backdrops(rz.backdrop[sel], rz.backdrop_brightness[sel], rz.brightness[sel]),
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
        backdrops: list[Backdrop],
        luts: list[np.ndarray | None],
        noises: list[np.ndarray | None],
        noise_at: list[int],
        order: Iterable[int],
    ) -> None:
        """Write each car's frame into `out` (n, H, W * C), whose rows above `first_ground_row` are already
        the grey wall: the floor, the car's backdrop (the grey wall filled, a panorama gathered after the tone
        curve), then, while it is still in cache, the car's tone curve and noise."""
        t = self.tables
        first, height, row_px = t.first_row, self.height, self._row_px
        frame_px = height * row_px
        flat = out.reshape(len(bins), frame_px)
        lut_index = np.empty(frame_px, dtype=np.intp)  # a gather converts uint8 indices to intp anyway
        for i in order:
            b, ground, rmap, scene = bins[i], grounds[i], rows[i], backdrops[i]
            top, mid = rmap.top, rmap.mid
            # gathers relative to the car's cell: a view of the stack starting there (no index arithmetic)
            view, table, frame = ground.far.data[far_bases[i] :], t.far[b], out[i, top:]
            for src, length, dst in rmap.far_runs:
                view.take(table[src : src + length], out=frame[dst : dst + length], mode="wrap")
            view, table, frame = ground.near.data[near_bases[i] :], t.near[b], out[i, mid:]
            for src, length, dst in rmap.near_runs:
                view.take(table[src : src + length], out=frame[dst : dst + length], mode="wrap")
            lut, noise = luts[i], noises[i]
            if scene.data is None:  # a uniform backdrop (the grey wall): fills, toned with the ground
                if len(rmap.fix_at):
                    flat[i].put(rmap.fix_at, scene.flat)
                if lut is not None:
                    flat[i, : top * row_px] = lut[scene.flat]
                    self._tone(flat[i, top * row_px :], lut, lut_index)
                elif scene.flat != SKY_LUMA:
                    out[i, :top] = scene.flat
                elif top > first:
                    out[i, first:top] = SKY_LUMA
            else:  # a panorama (already at the car's brightness): after the tone curve
                if lut is not None:
                    self._tone(flat[i, top * row_px :], lut, lut_index)
                # gathers relative to the heading's column: a view starting there (no index arithmetic)
                view = scene.data[b * self._heading_step :]
                for src, length, dst in rmap.backdrop_runs:
                    view.take(t.backdrop[src : src + length], out=out[i, dst : dst + length], mode="wrap")
                if len(rmap.fix_at):
                    flat[i].put(rmap.fix_at, view.take(rmap.fix_backdrop, mode="wrap"))
            if noise is not None:
                o = noise_at[i]
                np.add(flat[i], noise[o : o + frame_px], out=flat[i])  # wraps: the curve left headroom

    @staticmethod
    def _tone(pixels: np.ndarray, lut: np.ndarray, scratch: np.ndarray) -> None:
        """Pass `pixels` (a flat uint8 view) through the tone curve `lut`, in place (`scratch`: intp)."""
        index = scratch[: len(pixels)]
        np.copyto(index, pixels)
        lut.take(index, out=pixels, mode="wrap")

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

    def _backdrop_levels(self) -> tuple[tuple[float, ...], tuple[float, ...], int]:
        """Brightness levels that get a backdrop, and the noise headroom of panoramas.

        The grey wall: gains `backdrop_brightness` rounded to the range's ends and middle (as line widths
        are); the camera's tone curve does the rest, as for the floor. Panoramas skip the tone curve (a
        second gather per backdrop pixel cost ~20 % of a `light` frame): they are built at
        `BACKDROP_GAIN_LEVELS` gains spanning backdrop_brightness x brightness, and a car reads the nearest
        (in ratio: at most ~6 % off for `light`, ~15 % for `strong`, whose
        backdrop_brightness is random anyway); the tone curve's contrast and gamma do not reach them.
        They are clipped to the headroom of the preset's largest pixel noise instead of the car's own."""
        rz = self.randomization
        if rz is None or rz.neutral:
            return (1.0,), (1.0,), 0
        preset = rz.preset
        low, high = preset.backdrop_brightness
        walls = tuple(sorted({round(low, 3), round((low + high) / 2, 3), round(high, 3)}))
        low, high = low * preset.brightness[0], high * preset.brightness[1]
        count = 1 if high <= low * 1.001 else BACKDROP_GAIN_LEVELS
        gains = tuple(round(float(g), 3) for g in np.geomspace(low, high, count))
        steps = max(0, round(preset.noise_std[1] / NOISE_STEP))
        return walls, gains, noise_headroom(steps * NOISE_STEP)

    def _backdrops(
        self, variants: np.ndarray, backdrop_brightness: np.ndarray, brightness: np.ndarray
    ) -> list[Backdrop]:
        """Each car's backdrop (variant at the nearest brightness level, see `_backdrop_levels`)."""
        walls, gains, headroom = self._levels
        variants = np.asarray(variants, dtype=np.int64)
        wall_level = np.abs(backdrop_brightness[:, None] - np.asarray(walls)[None, :]).argmin(axis=1)
        gain = np.log(backdrop_brightness * brightness)
        gain_level = np.abs(gain[:, None] - np.log(np.asarray(gains))[None, :]).argmin(axis=1)
        code = variants * BACKDROP_GAIN_LEVELS + np.where(variants == 0, wall_level, gain_level)
        found: dict[int, Backdrop] = {}
        result = []
        for key in code.tolist():
            scene = found.get(key)
            if scene is None:
                variant, level = divmod(key, BACKDROP_GAIN_LEVELS)
                if variant == 0:
                    scene = backdrop(0, walls[level], self.tables.panorama)
                else:
                    scene = backdrop(variant, gains[level], self.tables.panorama, headroom)
                found[key] = scene
            result.append(scene)
        return result

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
