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
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from gymnasium import spaces

from sim.car import CarConfig
from sim.randomization import EpisodeRandomization
from sim.sensors.base import Poses
from sim.sensors.ground import (
    LEVEL_SIGMA_M,
    N_LEVELS,
    N_TEXTURES,
    SKY_LUMA,
    GroundGrid,
    GroundRaster,
    StackLayout,
    ground_raster,
)
from sim.tracks.track import Track

log = logging.getLogger(__name__)

#: Ground farther than this from the camera (horizontally) shows as background, metres.
MAX_RANGE_M = 6.0
#: Stereo baseline when the car config has none (DeepRacer's stereo camera), metres.
DEFAULT_STEREO_BASELINE_M = 0.06
#: Heading bins per turn: 0.5° bins keep the quantisation under 0.6 px at the image centre.
DEFAULT_HEADING_BINS = 720
#: A pixel's prefilter s.d. as a fraction of its footprint on the floor (0.5: no aliasing, little blur).
PREFILTER = 0.5
#: Footprint along the view is divided by this before choosing a level (see `ground.ANISOTROPY`).
ANISOTROPY = 4.0
#: Rows whose pixels all want less blur than this sample the near (5 mm) stack, metres.
NEAR_SIGMA_LIMIT_M = 0.004
#: Highest level chosen by footprint; the levels above are reached only through blur randomisation.
MAX_PIXEL_LEVEL = 5
MAX_BLUR_BIAS = N_LEVELS - 1 - MAX_PIXEL_LEVEL
#: Camera jitter the tables leave room for (pitch down, camera lower), degrees and metres.
MAX_PITCH_JITTER_DEG = 4.0
MAX_HEIGHT_JITTER_M = 0.012
#: Pixel noise s.d. is rounded to this step (uint8 levels); one noise buffer per step value in use.
NOISE_STEP = 0.5
NOISE_BUFFER = 1 << 17  # 256 KB: stays in cache; frames read it at pseudo-random offsets


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class PinholeCamera:
    """One camera: image size (px), focal length (px), mount in the chassis frame (m), height above the floor
    (m) and downward pitch (rad)."""

    width: int
    height: int
    focal_px: float
    mount_x_m: float
    mount_y_m: float
    height_m: float
    pitch_rad: float

    @classmethod
    def from_config(cls, car: CarConfig, y_shift_m: float = 0.0) -> PinholeCamera:
        cam = car.camera
        wheel = car.vehicle.wheel_radius_m or 0.0  # no wheel radius: z_m is the height above the floor
        return cls(
            width=cam.width_px,
            height=cam.height_px,
            focal_px=cam.width_px / 2 / math.tan(math.radians(cam.hfov_deg) / 2),
            mount_x_m=cam.x_m,
            mount_y_m=cam.y_m + y_shift_m,
            height_m=cam.z_m + wheel,
            pitch_rad=math.radians(cam.pitch_deg),
        )

    def ground(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ground points seen at image coordinates (u right, v down, pixel centres at i + 0.5), any shape:
        (x_m, y_m) in the chassis frame and the horizontal distance from the camera (inf above the horizon)."""
        right = (u - self.width / 2) / self.focal_px
        down = (v - self.height / 2) / self.focal_px
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        # ray = forward + right * (0, -1, 0) + down * (-sin p, 0, -cos p), forward = (cos p, 0, -sin p)
        rx = cp - down * sp
        ry = -right
        rz = -sp - down * cp
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(rz < -1e-9, self.height_m / -rz, np.inf)
            dist = t * np.hypot(rx, ry)
            return self.mount_x_m + t * rx, self.mount_y_m + t * ry, dist

    def row_distance(self, v: np.ndarray, pitch_rad: float, height_m: float) -> np.ndarray:
        """Horizontal distance seen by the centre column at rows v (pixel centre i + 0.5) for a camera with
        this pitch and height; inf at and above the horizon."""
        below = pitch_rad + np.arctan((v - self.height / 2) / self.focal_px)
        with np.errstate(divide="ignore"):
            return np.where(below > 1e-9, height_m / np.tan(np.maximum(below, 1e-9)), np.inf)

    def row_of_distance(self, dist_m: np.ndarray) -> np.ndarray:
        """The (fractional) row whose centre column sees distance `dist_m` (inverse of `row_distance`)."""
        below = np.arctan2(self.height_m, dist_m)
        return self.height / 2 + self.focal_px * np.tan(below - self.pitch_rad)


def _pixel_blur(cam: PinholeCamera, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Prefilter s.d. (metres) wanted by pixels at (u, v) (arrays of one shape), from the ground distance
    between their edges across (u ± 0.5) and along (v ± 0.5) the view; inf where an edge sees no ground."""
    ax, ay, _ = cam.ground(u - 0.5, v)
    bx, by, _ = cam.ground(u + 0.5, v)
    cx, cy, _ = cam.ground(u, v - 0.5)
    dx, dy, _ = cam.ground(u, v + 0.5)
    with np.errstate(invalid="ignore"):
        across = np.hypot(bx - ax, by - ay)
        along = np.hypot(dx - cx, dy - cy)
        sigma = PREFILTER * np.maximum(across, along / ANISOTROPY)
    return np.where(np.isfinite(sigma), sigma, np.inf)


def _pixel_levels(sigma_m: np.ndarray) -> np.ndarray:
    """Far-stack level (int) for pixels wanting blur `sigma_m`: the nearest in log blur. (An ordered dither
    between the two nearest levels was tried: where the dashes fade out between two levels it draws a
    checkerboard; the seams between whole levels are not visible.)"""
    log_s = np.log(np.asarray(LEVEL_SIGMA_M))
    sigma = np.minimum(sigma_m, LEVEL_SIGMA_M[-1])
    frac_level = np.interp(np.log(np.maximum(sigma, 1e-6)), log_s, np.arange(len(log_s)))
    return np.clip(np.rint(frac_level), 0, MAX_PIXEL_LEVEL).astype(np.int64)


@dataclass(frozen=True)
class HeadingTables:
    """Per heading bin, every pixel's flat index into a ground stack relative to the car's cell there.

    Image rows [first_row, split_row) sample the far stack: `far` (bins, rows, width * channels), row j image
    row first_row + j. Rows [split_row, height + extra_rows) sample the near stack: `near`, row j image row
    split_row + j; the extra rows below the image serve jittered cameras. Channels (stereo) are interleaved,
    so a table row is a frame row. intp, not int32: numpy's gather converts other index types to intp on
    every call, which costs a fifth of the frame.
    """

    far: np.ndarray
    near: np.ndarray
    first_row: int
    split_row: int
    extra_rows: int

    @property
    def nbytes(self) -> int:
        return self.far.nbytes + self.near.nbytes


def _offsets(
    cameras: tuple[PinholeCamera, ...], rows: np.ndarray, stack: StackLayout, bins: int, far: bool
) -> np.ndarray:
    """Offset table (bins, len(rows), width * channels) for image rows `rows` into `stack`, relative to the
    car's cell (see `RasterStack`); every pixel of these rows must see the ground."""
    width = cameras[0].width
    grid = stack.grid
    v, u = np.meshgrid(rows + 0.5, np.arange(width) + 0.5, indexing="ij")
    out = np.empty((bins, len(rows), width, len(cameras)), dtype=np.intp)
    for c, cam in enumerate(cameras):
        gx, gy, _ = cam.ground(u, v)
        if not np.hypot(gx, gy).max(initial=0.0) < stack.reach_m - grid.cell_m:
            raise ValueError(f"camera sees farther than the ground stack's reach ({stack.reach_m} m)")
        level = _pixel_levels(_pixel_blur(cam, u, v)) if far else 0
        level_base = stack.pad + level * grid.size
        for start in range(0, bins, 32):
            angle = 2 * np.pi * np.arange(start, min(start + 32, bins))[:, None, None] / bins
            cos, sin = np.cos(angle), np.sin(angle)
            dx = np.rint((cos * gx - sin * gy) / grid.cell_m).astype(np.intp)
            dy = np.rint((sin * gx + cos * gy) / grid.cell_m).astype(np.intp)
            out[start : start + 32, :, :, c] = level_base + dy * grid.nx + dx
    return out.reshape(bins, len(rows), width * len(cameras))


@lru_cache(maxsize=2)
def heading_tables(
    cameras: tuple[PinholeCamera, ...], far: StackLayout, near: StackLayout, bins: int
) -> HeadingTables:
    """Offset tables of `cameras` (one per channel) into the far and near stacks (cached, two at most: ~100 MB
    per camera at 720 bins)."""
    started = time.perf_counter()
    cam = cameras[0]
    centres = np.arange(cam.height) + 0.5
    # Ground rows: from the first whose centre column sees within MAX_RANGE_M (its edges see ~20 % farther).
    first_row = int(np.argmax(cam.row_distance(centres, cam.pitch_rad, cam.height_m) <= MAX_RANGE_M))
    # Near rows: from the first row below which every pixel is no wider than the near stack's sharpness.
    v, u = np.meshgrid(centres, np.arange(cam.width) + 0.5, indexing="ij")
    coarse = np.flatnonzero(_pixel_blur(cam, u, v).max(axis=1) > NEAR_SIGMA_LIMIT_M)
    split_row = max(first_row, int(coarse.max()) + 1 if len(coarse) else 0)
    worst = cam.row_distance(
        np.array([cam.height - 0.5]),
        cam.pitch_rad + math.radians(MAX_PITCH_JITTER_DEG),
        cam.height_m - MAX_HEIGHT_JITTER_M,
    )
    extra_rows = max(0, math.ceil(float(cam.row_of_distance(worst)[0]) - cam.height + 1))
    tables = HeadingTables(
        far=_offsets(cameras, np.arange(first_row, split_row), far, bins, far=True),
        near=_offsets(cameras, np.arange(split_row, cam.height + extra_rows), near, bins, far=False),
        first_row=first_row,
        split_row=split_row,
        extra_rows=extra_rows,
    )
    log.info(
        "camera tables: %d bins, rows %d-%d far, %d-%d near, %d cameras: %.0f MB, built in %.1f s",
        bins,
        first_row,
        split_row - 1,
        split_row,
        cam.height + extra_rows - 1,
        len(cameras),
        tables.nbytes / 1e6,
        time.perf_counter() - started,
    )
    return tables


Run = tuple[int, int, int]  # (first table row, rows, first output row relative to the segment)


@dataclass(frozen=True)
class RowMap:
    """Which table rows a camera's output rows read: rows [0, top) are sky, [top, mid) read the far table,
    [mid, height) the near table. A jittered camera reads a few runs of consecutive table rows (one gather
    each: cheaper than gathering the rows into one index array)."""

    top: int
    mid: int
    far_runs: tuple[Run, ...]
    near_runs: tuple[Run, ...]


def _runs(rows: np.ndarray) -> tuple[Run, ...]:
    """Maximal runs of consecutive values in `rows` (table rows, non-decreasing)."""
    if len(rows) == 0:
        return ()
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.r_[0, breaks]
    ends = np.r_[breaks, len(rows)]
    return tuple((int(rows[a]), int(b - a), int(a)) for a, b in zip(starts, ends, strict=True))


def jitter_rows(cam: PinholeCamera, tables: HeadingTables, pitch_deg: float, height_m: float) -> RowMap:
    """Rows for a camera pitched `pitch_deg` more and mounted `height_m` higher: each output row reads the
    nominal row whose centre column sees the same ground distance (the sky where there is none)."""
    v = np.arange(cam.height) + 0.5
    dist = cam.row_distance(v, cam.pitch_rad + math.radians(pitch_deg), cam.height_m + height_m)
    with np.errstate(invalid="ignore"):
        nominal = np.rint(cam.row_of_distance(dist) - 0.5)
    sky = ~np.isfinite(dist) | (dist > MAX_RANGE_M) | ~(nominal >= tables.first_row)
    nominal = np.where(sky, -1, nominal).astype(np.int64)  # non-decreasing down the image
    top = int(np.searchsorted(nominal, tables.first_row))
    mid = int(np.searchsorted(nominal, tables.split_row))
    far_rows = nominal[top:mid] - tables.first_row
    near_rows = np.minimum(nominal[mid:] - tables.split_row, tables.near.shape[1] - 1)
    return RowMap(top, mid, _runs(far_rows), _runs(near_rows))


# --------------------------------------------------------------------------- photometric randomisation


def tone_curve(brightness: float, contrast: float, gamma: float, headroom: int = 0) -> np.ndarray:
    """Randomised value of each clean pixel value (256,) uint8: 255 * brightness * ((v/255)**gamma - 0.5) *
    contrast + 0.5), i.e. gamma on normalised values, contrast around mid-grey, then a gain; clipped to
    [headroom, 255 - headroom] so that noise of at most `headroom` levels can be added without overflow."""
    x = np.arange(256) / 255.0
    tone = 255.0 * brightness * (((x**gamma) - 0.5) * contrast + 0.5)
    return np.clip(np.rint(tone), headroom, 255 - headroom).astype(np.uint8)


def noise_buffer(seed: int, std: float) -> np.ndarray:
    """(NOISE_BUFFER,) uint8: Gaussian pixel noise of s.d. `std` levels, rounded, cut at 3 s.d., stored modulo
    256 so that a wrapping uint8 addition adds it (the tone curve leaves that much headroom)."""
    z = np.random.default_rng(seed).standard_normal(NOISE_BUFFER)
    n = np.clip(np.rint(std * z), -noise_headroom(std), noise_headroom(std)).astype(np.int16)
    return (n & 0xFF).astype(np.uint8)


def noise_headroom(std: float) -> int:
    return math.ceil(3 * std)


def _hash_draws(*columns: np.ndarray) -> np.ndarray:
    """An int64 per car mixing the bits of its float draws (so equal draws give equal noise)."""
    h = np.zeros(len(columns[0]), dtype=np.uint64)
    for col in columns:
        h = (h ^ np.ascontiguousarray(col, dtype=np.float64).view(np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
    return (h >> np.uint64(2)).astype(np.int64)


# --------------------------------------------------------------------------- the sensor


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
            seeds = _hash_draws(rz.brightness[sel], rz.noise_std[sel], rz.gamma[sel], blur)
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
        coin = (_hash_draws(blur_px) % 1024) / 1024.0
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
