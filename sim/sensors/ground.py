"""What the floor looks like from above: luminance rasters of a track, prefiltered at several blur levels.

`GroundRaster` is the texture the camera samples (`sim.sensors.camera`). It is built once per (track, texture
variant, line width scale), in ~1.5 s (plus ~1 s per track for the centre-line projection of every road cell),
and shows:

- the floor off the road: light, with a seeded low-contrast texture (variant k uses seed k; variants 0-2 are
  carpet, concrete and floor boards for training, 3 is large tiles, held out for `eval-shift`);
- the road surface: dark grey with a faint texture;
- white tape (5 cm x `line_width_scale`) along both borders, on the road side of the border line;
- a dashed yellow-ish centre line (5 cm x scale wide, 15 cm dashes, 15 cm gaps; lighter than the road, darker
  than the tape; the period is adjusted so a whole number of dashes fits the lap).

Levels. The `far` stack holds the picture on a 1 cm grid at `N_LEVELS` blurs (`LEVEL_SIGMA_M`): a camera pixel
samples the level whose blur matches its footprint on the floor, so a thin line never falls between pixels and
flickers (a mipmap). Unlike a GPU mipmap every level keeps the 1 cm grid: a pixel's index is then
`car_cell + offset[pixel]` at every level, which lets the camera render with one gather per pixel and no
arithmetic (see `camera.py`). The `near` stack is one sharp level on a 5 mm grid for the pixels within ~0.7 m
of a DeepRacer camera, which are 1.3-5 mm wide on the floor: on 1 cm cells they would show blocks. The lines
are prefiltered analytically (Gaussian-integrated edges of the signed distance to the border, of the
centre-line distance and of the dash pattern along the arc length), so they are exact at any blur; the
textures are blurred numerically.

Anisotropy. A far pixel's footprint is long along the view and narrow across it. Levels therefore blur the
dash pattern along the track and the textures `ANISOTROPY` times more than the lines across: when a car looks
down the track, a level matched to the narrow footprint keeps the border tape sharp while the dashes (which
repeat along the view) are already averaged enough not to alias.

Memory per variant: 8 bytes per cm² of the track's bounding box grown by `MARGIN_M` on each side, plus 4 per
cm² of the box grown by `NEAR_MARGIN_M`: 12 MB (`tiny_loop`) to 28 MB (`long_straight`, 12.7 m x 4.7 m).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.special import ndtr

from sim.tracks import cache
from sim.tracks.track import Track

log = logging.getLogger(__name__)

#: Raster cell. 1 cm: a 5 cm tape spans 5 cells, and beyond 1.3 m from a DeepRacer camera a pixel is wider
#: than a cell (nearer, cells are magnified; their soft edges keep that from looking jagged).
CELL_M = 0.01
#: Floor kept around the track's bounding box. The camera sees 6 m; a sample beyond the raster's right edge
#: wraps to the left edge of the next row, which is floor as long as it overflows by less than the margin.
MARGIN_M = 3.5
#: Gaussian blur (metres, across lines) of each level. Level 0 only softens edges to the cell size; levels 6
#: and 7 exist for the camera's blur randomisation (a per-car shift of every pixel's level).
LEVEL_SIGMA_M: tuple[float, ...] = (0.004, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64)
N_LEVELS = len(LEVEL_SIGMA_M)
#: Along-track (dashes) and texture blur per level, as a multiple of the across-line blur.
ANISOTROPY = 4.0
#: The near stack: cell and blur (a DeepRacer camera's pixels are 1.3-5 mm wide on the floor nearer than
#: 0.7 m), and the floor kept around the track (the near pixels see at most ~1 m from the car).
NEAR_CELL_M = 0.005
NEAR_SIGMA_M = 0.004
NEAR_MARGIN_M = 1.5

#: Luminances (uint8 levels): white tape, yellow centre dashes, and the grey wall the camera shows above the
#: horizon and beyond its range when it draws no backdrop (`sim.sensors.backdrop`, variant 0).
TAPE_LUMA = 235.0
DASH_LUMA = 188.0
SKY_LUMA = 140
TAPE_WIDTH_M = 0.05
CENTRE_LINE_WIDTH_M = 0.05
DASH_LENGTH_M = 0.15

#: Texture variants: 0-2 for training, 3 held out (`sim.randomization.EVAL_TEXTURE`).
TEXTURE_NAMES = ("carpet", "concrete", "boards", "tiles")
N_TEXTURES = len(TEXTURE_NAMES)

#: How far from a car's cell a reader may look: far stack (the camera's 6 m range, ~7.2 m at the image
#: corners, + its mount), near stack.
FAR_REACH_M = 7.6
NEAR_REACH_M = 1.5


@dataclass(frozen=True)
class GroundGrid:
    """The raster's grid: cell (iy, ix) covers x in x0 + [ix, ix+1) h, y in y0 + [iy, iy+1) h (metres)."""

    x0_m: float
    y0_m: float
    cell_m: float
    nx: int
    ny: int

    @property
    def size(self) -> int:
        """Cells per level."""
        return self.nx * self.ny

    @classmethod
    def around(cls, track: Track, cell_m: float = CELL_M, margin_m: float = MARGIN_M) -> GroundGrid:
        pts = np.vstack([track.inner, track.outer])
        lo = pts.min(axis=0) - margin_m
        nx, ny = (np.ceil((pts.max(axis=0) + margin_m - lo) / cell_m).astype(int)).tolist()
        return cls(float(lo[0]), float(lo[1]), cell_m, nx, ny)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre coordinates (ny, nx) each, metres."""
        xs = self.x0_m + (np.arange(self.nx) + 0.5) * self.cell_m
        ys = self.y0_m + (np.arange(self.ny) + 0.5) * self.cell_m
        return np.meshgrid(xs, ys)


@dataclass(frozen=True)
class _TrackFields:
    """Geometry of a track on a grid, shared by all texture/line-width variants (flat arrays (ny*nx,))."""

    grid: GroundGrid
    signed_m: np.ndarray  # float32 signed distance to the road edge, + on the road
    near: np.ndarray  # int64 indices of cells near the centre line
    centre_m: np.ndarray  # float32 distance to the centre line of the `near` cells
    s_m: np.ndarray  # float64 arc length of the `near` cells' nearest centre-line point
    dash_period_m: float


@lru_cache(maxsize=4)
def _track_fields(track: Track) -> _TrackFields:
    """The far grid's fields: signed distance everywhere, centre-line distance and arc length near the road
    (about a second: one centre-line projection per road cell)."""
    grid = GroundGrid.around(track)
    cx, cy = grid.centres()
    cx, cy = cx.ravel(), cy.ravel()
    signed = np.empty(grid.size, dtype=np.float32)
    for start in range(0, grid.size, 1 << 20):  # chunks bound the float64 temporaries
        sl = slice(start, start + (1 << 20))
        signed[sl] = track.road.signed_distance(cx[sl], cy[sl])
    # Dashes can only be within reach of the centre line: on the road (plus the widest blur's reach).
    near = np.flatnonzero(signed > -0.3)
    proj = track.centre_locator.project(cx[near], cy[near])
    n_dashes = max(1, round(track.length_m / (2 * DASH_LENGTH_M)))
    return _TrackFields(
        grid, signed, near, proj.distance_m.astype(np.float32), proj.s_m, track.length_m / n_dashes
    )


def _near_fields(far: _TrackFields, grid: GroundGrid) -> _TrackFields:
    """The near grid's fields, interpolated (bilinear) from the far grid's it subdivides: the arc length
    through the dash phase's cosine and sine, which are continuous across the lap's end."""
    period = far.dash_period_m
    dense_dc = np.ones(far.grid.size, dtype=np.float32)
    dense_dc[far.near] = far.centre_m
    phase = (2 * np.pi / period) * np.mod(far.s_m, period)
    dense_cos = np.zeros(far.grid.size, dtype=np.float32)
    dense_sin = np.zeros(far.grid.size, dtype=np.float32)
    dense_cos[far.near] = np.cos(phase)
    dense_sin[far.near] = np.sin(phase)
    shape = (far.grid.ny, far.grid.nx)
    signed, dc, cos, sin = (
        _upsample(a.reshape(shape), far.grid, grid).ravel()
        for a in (far.signed_m, dense_dc, dense_cos, dense_sin)
    )
    near = np.flatnonzero(dc < 0.1)  # the near stack's dashes reach 2.5 cm + 4 x its 4 mm blur
    s = np.mod(np.arctan2(sin[near], cos[near]), 2 * np.pi) * (period / (2 * np.pi))
    return _TrackFields(grid, signed, near, dc[near], s, period)


@dataclass(frozen=True)
class StackLayout:
    """Where a stack's cells are in its flat array: the grid and the padding before level 0 (cells), and how
    far from a car's cell a reader may look (metres). Hashable: camera tables are cached per layout."""

    grid: GroundGrid
    pad: int
    reach_m: float


class RasterStack:
    """Luminance levels (uint8) on one grid, flat, between two runs of background cells:
    `[pad x sky] + level 0 + level 1 + ... + [pad x sky]`; level k's cell (iy, ix) is at
    `pad + k * grid.size + iy * grid.nx + ix`.

    The padding lets a reader gather relative to a cell: for the cell at flat index `c = iy * nx + ix`,
    `data[c:].take(pad + k * size + dy * nx + dx)` is level k's cell (iy + dy, ix + dx) for any offset within
    `reach_m`, with no index arithmetic per read. A point beyond the grid's right edge reads the next row's
    left margin (floor); beyond its top or bottom, the neighbouring level's margin or the padding.
    """

    def __init__(self, grid: GroundGrid, sigmas_m: tuple[float, ...], reach_m: float) -> None:
        self.grid = grid
        self.sigmas_m = sigmas_m
        self.reach_m = reach_m
        reach = math.ceil(reach_m / grid.cell_m)
        self.pad = reach * grid.nx + reach
        self.data = np.full(2 * self.pad + len(sigmas_m) * grid.size, SKY_LUMA, dtype=np.uint8)

    @property
    def level_stride(self) -> int:
        """Flat distance between the same cell at consecutive levels."""
        return self.grid.size

    @property
    def layout(self) -> StackLayout:
        return StackLayout(self.grid, self.pad, self.reach_m)

    def level(self, k: int) -> np.ndarray:
        """Level k as a (ny, nx) uint8 view; row iy is y = y0 + (iy + 0.5) cell (y up when shown flipped)."""
        start = self.pad + k * self.grid.size
        return self.data[start : start + self.grid.size].reshape(self.grid.ny, self.grid.nx)

    def sample(self, x_m: np.ndarray, y_m: np.ndarray, k: int = 0) -> np.ndarray:
        """Nearest-cell luminance at level k for points (any shape), for tests and tools."""
        g = self.grid
        ix = np.clip(np.floor((np.asarray(x_m) - g.x0_m) / g.cell_m).astype(np.intp), 0, g.nx - 1)
        iy = np.clip(np.floor((np.asarray(y_m) - g.y0_m) / g.cell_m).astype(np.intp), 0, g.ny - 1)
        return self.level(k)[iy, ix]


class GroundRaster:
    """A track's floor as two `RasterStack`s: `far` (1 cm cells, `N_LEVELS` blur levels, the track's
    bounding box + `MARGIN_M`) and `near` (`NEAR_CELL_M` cells, one sharp level, + `NEAR_MARGIN_M`) for the
    pixels close to the camera, where a 1 cm cell would cover several pixels and look blocky. The near grid
    subdivides the far one and its texture is the far level 0's, upsampled, so the two join without a seam.
    """

    def __init__(self, track: Track, texture: int = 0, line_width_scale: float = 1.0) -> None:
        if not 0 <= texture < N_TEXTURES:
            raise ValueError(f"texture: expected 0..{N_TEXTURES - 1}, got {texture}")
        self.track_name = track.name
        self.texture = texture
        self.line_width_scale = line_width_scale
        far_grid = GroundGrid.around(track)
        self.far = RasterStack(far_grid, LEVEL_SIGMA_M, FAR_REACH_M)
        self.near = RasterStack(_near_grid(far_grid), (NEAR_SIGMA_M,), NEAR_REACH_M)
        # Painting takes 1-2 s per variant; the track geometry cache keeps the result per track file.
        parameters = {"texture": texture, "line_width_scale": float(line_width_scale)}
        key = cache.geometry_key(track.route, "ground-raster", parameters)
        cache.load_or_build(key, lambda: self._paint(track), self._restore)

    def _paint(self, track: Track) -> GroundRaster:
        started = time.perf_counter()
        fields = _track_fields(track)
        far_grid, near_grid = self.far.grid, self.near.grid
        floor, road = _textures(self.texture, far_grid)
        for k, sigma in enumerate(LEVEL_SIGMA_M):
            # textures blur like the dashes (with the view's long footprint); the near stack keeps them sharp
            blur = ANISOTROPY * sigma / far_grid.cell_m
            level = _compose(
                fields, _blur(floor, blur).ravel(), _blur(road, blur).ravel(), sigma, self.line_width_scale
            )
            self.far.level(k)[:] = _to_uint8(level).reshape(far_grid.ny, far_grid.nx)
        fields = _near_fields(fields, near_grid)
        floor, road = (_upsample(f, far_grid, near_grid) for f in (floor, road))
        level = _compose(fields, floor.ravel(), road.ravel(), NEAR_SIGMA_M, self.line_width_scale)
        self.near.level(0)[:] = _to_uint8(level).reshape(near_grid.ny, near_grid.nx)
        log.info(
            "ground raster %s texture %s lines x%.2f: %d x %d x %d + %d x %d cells, %.0f MB, built in %.1f s",
            track.name,
            TEXTURE_NAMES[self.texture],
            self.line_width_scale,
            far_grid.nx,
            far_grid.ny,
            N_LEVELS,
            near_grid.nx,
            near_grid.ny,
            self.nbytes / 1e6,
            time.perf_counter() - started,
        )
        return self

    def arrays(self) -> dict[str, np.ndarray]:
        """The painted stacks, as the track geometry cache stores them."""
        return {"far": self.far.data, "near": self.near.data}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> GroundRaster:
        for name, stack in (("far", self.far), ("near", self.near)):
            stored = arrays[name]
            if stored.shape != stack.data.shape or stored.dtype != stack.data.dtype:
                raise ValueError(
                    f"{name}: expected {stack.data.dtype} {stack.data.shape}, got {stored.dtype} {stored.shape}"
                )
            stack.data[:] = stored
        return self

    @property
    def nbytes(self) -> int:
        return self.far.data.nbytes + self.near.data.nbytes


@lru_cache(maxsize=12)
def ground_raster(track: Track, texture: int = 0, line_width_scale: float = 1.0) -> GroundRaster:
    """The cached `GroundRaster` of a track variant (each is ~15-25 MB; the cache keeps the last 12)."""
    return GroundRaster(track, texture, line_width_scale)


def _near_grid(far: GroundGrid) -> GroundGrid:
    """The near grid: `NEAR_CELL_M` cells subdividing the far grid's, over the track + `NEAR_MARGIN_M`."""
    ratio = round(far.cell_m / NEAR_CELL_M)
    inset = int((MARGIN_M - NEAR_MARGIN_M) / far.cell_m)  # far cells dropped on each side
    nx = (far.nx - 2 * inset) * ratio
    ny = (far.ny - 2 * inset) * ratio
    return GroundGrid(
        far.x0_m + inset * far.cell_m, far.y0_m + inset * far.cell_m, far.cell_m / ratio, nx, ny
    )


def _upsample(field: np.ndarray, far: GroundGrid, near: GroundGrid) -> np.ndarray:
    """A far-grid field resampled (bilinear) onto the near grid that subdivides it."""
    ratio = round(far.cell_m / near.cell_m)
    ix0 = round((near.x0_m - far.x0_m) / far.cell_m)
    iy0 = round((near.y0_m - far.y0_m) / far.cell_m)
    crop = field[iy0 : iy0 + near.ny // ratio, ix0 : ix0 + near.nx // ratio]
    return _zoom(crop, ratio)


def _zoom(field: np.ndarray, m: int) -> np.ndarray:
    """Bilinear upsampling by an integer factor, cell centres aligned (fine cell j of coarse cell j // m), edges
    held; float32. (scipy's `ndimage.zoom` does the same ~20x slower.)"""
    out = np.asarray(field, dtype=np.float32)
    for axis in (0, 1):
        n = out.shape[axis]
        x = (np.arange(n * m) + 0.5) / m - 0.5
        i0 = np.floor(x).astype(np.intp)
        w = (x - i0).astype(np.float32)
        i1 = np.minimum(i0 + 1, n - 1)
        i0 = np.maximum(i0, 0)
        shape = (-1, 1) if axis == 0 else (1, -1)
        lo = out.take(i0, axis=axis)
        out = lo + (out.take(i1, axis=axis) - lo) * w.reshape(shape)
    return out


def _to_uint8(level: np.ndarray) -> np.ndarray:
    np.clip(level, 0, 255, out=level)
    return np.rint(level).astype(np.uint8)


# --------------------------------------------------------------------------- composing a level


def _compose(
    fields: _TrackFields, floor: np.ndarray, road: np.ndarray, sigma_m: float, width_scale: float
) -> np.ndarray:
    """One level's luminance (flat float32): floor, tape, road, dashes, edges integrated over a Gaussian.

    Across a border at signed distance d (+ on the road): floor for d < 0, tape for 0 <= d < w, road beyond;
    blurring a step with a Gaussian of s.d. sigma turns it into the normal CDF of (d - edge) / sigma.
    """
    tape_w = TAPE_WIDTH_M * width_scale
    d = fields.signed_m
    enter = ndtr(d / sigma_m).astype(np.float32)
    leave = ndtr((d - tape_w) / sigma_m).astype(np.float32)
    out = floor + (TAPE_LUMA - floor) * enter + (road - TAPE_LUMA) * leave
    half = 0.5 * CENTRE_LINE_WIDTH_M * width_scale
    dc = fields.centre_m
    reach = np.flatnonzero(dc < half + 4 * sigma_m)
    if len(reach):
        dc = dc[reach].astype(np.float64)
        across = ndtr((half - dc) / sigma_m) - ndtr((-half - dc) / sigma_m)
        along = _dash_profile(fields.s_m[reach], fields.dash_period_m, ANISOTROPY * sigma_m)
        cells = fields.near[reach]
        out[cells] += ((DASH_LUMA - road[cells]) * (across * along)).astype(np.float32)
    return out


def _dash_profile(s_m: np.ndarray, period_m: float, sigma_m: float) -> np.ndarray:
    """Dash coverage (0..1) along the centre line: on for the first half of each period, Gaussian-blurred.

    Small blur: sum the blurred edges of the nearby dashes. Large blur: the square wave's Fourier series, whose
    odd harmonics m are damped by exp(-2 (pi m sigma / P)^2) and vanish after a few terms.
    """
    t = np.mod(s_m, period_m)
    on = period_m / 2
    if sigma_m < period_m / 4:
        total = np.zeros_like(t)
        for j in range(-2, 3):
            total += ndtr((t - j * period_m) / sigma_m) - ndtr((t - j * period_m - on) / sigma_m)
        return total
    total = np.full_like(t, 0.5)
    for m in range(1, 16, 2):
        damp = math.exp(-2.0 * (math.pi * m * sigma_m / period_m) ** 2)
        if damp < 1e-4:
            break
        total += (2.0 / (math.pi * m)) * damp * np.sin(2.0 * math.pi * m * t / period_m)
    return total


def _blur(field: np.ndarray, sigma_cells: float) -> np.ndarray:
    """Gaussian blur (s.d. in cells) of a (ny, nx) float32 field; wide blurs go through a coarser grid."""
    if sigma_cells < 0.3:
        return field
    if sigma_cells <= 6:
        return ndimage.gaussian_filter(field, sigma_cells, mode="nearest", truncate=3.0)
    m = int(sigma_cells // 3)  # block size: the coarse blur still spans ~3 coarse cells
    ny, nx = field.shape
    pad = np.pad(field, ((0, -ny % m), (0, -nx % m)), mode="edge")
    coarse = pad.reshape(pad.shape[0] // m, m, pad.shape[1] // m, m).mean(axis=(1, 3))
    # a block mean is a box of variance m^2/12 and linear upsampling adds about m^2/6; the Gaussian does the rest
    rest = math.sqrt(max(sigma_cells**2 - m * m / 4, 0.0)) / m
    coarse = ndimage.gaussian_filter(coarse, rest, mode="nearest", truncate=3.0)
    return np.ascontiguousarray(_zoom(coarse, m)[:ny, :nx])


# --------------------------------------------------------------------------- textures


def _noise(rng: np.random.Generator, shape: tuple[int, int], scale_cells: float) -> np.ndarray:
    """Smooth noise of unit s.d. with features about `scale_cells` wide (made on a coarse grid if wide)."""
    ny, nx = shape
    m = max(1, int(scale_cells // 2))
    coarse = rng.standard_normal(((ny + m - 1) // m + 1, (nx + m - 1) // m + 1)).astype(np.float32)
    coarse = ndimage.gaussian_filter(coarse, max(scale_cells / (2 * m), 0.3), mode="wrap")
    field = _zoom(coarse, m) if m > 1 else coarse
    field = field[:ny, :nx]
    return ((field - field.mean()) / (field.std() + 1e-9)).astype(np.float32)


def _textures(variant: int, grid: GroundGrid) -> tuple[np.ndarray, np.ndarray]:
    """Floor and road luminance fields (ny, nx) float32 of texture `variant`, seeded with the variant."""
    rng = np.random.default_rng(variant)
    shape = (grid.ny, grid.nx)
    cm = 0.01 / grid.cell_m  # cells per centimetre
    if variant == 0:  # carpet: fine pile, a few soft stains
        floor = 186 + 7 * _noise(rng, shape, 0.8 * cm) + 5 * _noise(rng, shape, 40 * cm)
        road_mean = 70.0
    elif variant == 1:  # concrete: blotches at two scales, fine speckle
        floor = 172 + 9 * _noise(rng, shape, 60 * cm) + 5 * _noise(rng, shape, 12 * cm)
        floor += 4 * _noise(rng, shape, 0.6 * cm)
        road_mean = 78.0
    elif variant == 2:  # floor boards: 12 cm planks along x, each its own shade, dark seams, grain
        iy = np.arange(grid.ny)
        plank = (iy // round(12 * cm)).astype(np.intp)
        shade = rng.normal(0, 8, plank.max() + 1).astype(np.float32)[plank]
        seam = np.where(iy % round(12 * cm) == 0, -22.0, 0.0).astype(np.float32)
        grain = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), (0.6 * cm, 8 * cm))
        grain /= grain.std() + 1e-9
        floor = 178 + (shade + seam)[:, None] + 4 * grain
        road_mean = 64.0
    else:  # held out: large tiles of two shades with grout lines, darker overall
        iy, ix = np.arange(grid.ny)[:, None], np.arange(grid.nx)[None, :]
        tile = round(40 * cm)
        checker = np.where(((iy // tile) + (ix // tile)) % 2 == 0, 12.0, -12.0)
        grout = np.where((iy % tile == 0) | (ix % tile == 0), -30.0, 0.0)
        floor = 150 + checker + grout + 3 * _noise(rng, shape, 2 * cm)
        road_mean = 56.0
    road = road_mean + 3 * _noise(rng, shape, 1.5 * cm) + 2 * _noise(rng, shape, 30 * cm)
    return np.asarray(floor, dtype=np.float32), np.asarray(road, dtype=np.float32)
