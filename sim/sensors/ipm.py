"""Inverse perspective mapping for the camera: which floor point each pixel sees, as precomputed gathers.

`MountedCamera` turns a car config's `[camera]` (its lens from `sim.sensors.lens`: pinhole or OpenCV
fisheye) into per-pixel rays, ground points in the car frame and backdrop directions; `heading_tables` turns
those, per quantised heading, into flat indices into a `GroundRaster` stack relative to the car's cell (with
the mip level matched to each pixel's footprint), and, once for every heading, into indices into a backdrop
panorama relative to the heading's column (`sim.sensors.backdrop`); `jitter_rows` maps a camera pitched or
raised a little onto rows of the nominal tables. Only the rays depend on the lens: the tables, and so the
gathers that render a frame, are the same for every lens. Why this design: see `sim.sensors.camera`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from contracts.car_file import CarConfig
from sim.sensors.backdrop import PanoramaLayout
from sim.sensors.ground import LEVEL_SIGMA_M, N_LEVELS, StackLayout
from sim.sensors.lens import Lens

log = logging.getLogger(__name__)

#: Ground farther than this from the camera (horizontally) shows as background, metres.
MAX_RANGE_M = 6.0
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


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class MountedCamera:
    """One camera: image size (px), lens (`sim.sensors.lens.Lens`: pinhole or OpenCV fisheye), mount in the
    chassis frame (m), height above the floor (m) and downward pitch (rad)."""

    width: int
    height: int
    lens: Lens
    mount_x_m: float
    mount_y_m: float
    height_m: float
    pitch_rad: float

    @classmethod
    def from_config(cls, car: CarConfig, y_shift_m: float = 0.0) -> MountedCamera:
        cam = car.camera
        wheel = car.vehicle.wheel_radius_m or 0.0  # no wheel radius: z_m is the height above the floor
        return cls(
            width=cam.width_px,
            height=cam.height_px,
            lens=Lens.from_config(cam),
            mount_x_m=cam.x_m,
            mount_y_m=cam.y_m + y_shift_m,
            height_m=cam.z_m + wheel,
            pitch_rad=math.radians(cam.pitch_deg),
        )

    @property
    def focal_px(self) -> float:
        return self.lens.focal_px

    def rays(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Directions (x forward, y left, z up; chassis frame, not normalised) of the rays seen at image
        coordinates (u right, v down, pixel centres at i + 0.5), any shape."""
        right, down, forward = self.lens.rays(u - self.width / 2, v - self.height / 2)
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        # ray = forward * (cos p, 0, -sin p) + right * (0, -1, 0) + down * (-sin p, 0, -cos p)
        rx = cp * forward - down * sp
        ry = -right
        rz = -sp * forward - down * cp
        return rx, ry, rz

    def ground(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ground points seen at image coordinates (u right, v down, pixel centres at i + 0.5), any shape:
        (x_m, y_m) in the chassis frame and the horizontal distance from the camera (inf above the horizon)."""
        rx, ry, rz = self.rays(u, v)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(rz < -1e-9, self.height_m / -rz, np.inf)
            dist = t * np.hypot(rx, ry)
            return self.mount_x_m + t * rx, self.mount_y_m + t * ry, dist

    def view_angles(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(elevation above the horizontal, azimuth to the left of straight ahead), radians, of the rays
        seen at image coordinates (u, v), any shape: where a pixel looks on a far-away backdrop."""
        rx, ry, rz = self.rays(u, v)
        return np.arctan2(rz, np.hypot(rx, ry)), np.arctan2(ry, rx)

    def row_distance(self, v: np.ndarray, pitch_rad: float, height_m: float) -> np.ndarray:
        """Horizontal distance seen by the centre column at rows v (pixel centre i + 0.5) for a camera with
        this lens, this pitch and height; inf at and above the horizon."""
        below = pitch_rad + self.lens.angle_of_offset(v - self.height / 2)
        with np.errstate(divide="ignore"):
            return np.where(below > 1e-9, height_m / np.tan(np.maximum(below, 1e-9)), np.inf)

    def row_of_distance(self, dist_m: np.ndarray) -> np.ndarray:
        """The (fractional) row whose centre column sees distance `dist_m` (inverse of `row_distance`)."""
        return self.row_of_angle(np.arctan2(self.height_m, dist_m))

    def row_of_angle(self, below_rad: np.ndarray) -> np.ndarray:
        """The (fractional) row whose centre column looks `below_rad` under the horizontal."""
        return self.height / 2 + self.lens.offset_of_angle(below_rad - self.pitch_rad)


def _pixel_blur(cam: MountedCamera, u: np.ndarray, v: np.ndarray) -> np.ndarray:
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


@dataclass(frozen=True, eq=False)
class HeadingTables:
    """Per heading bin, every pixel's flat index into a ground stack relative to the car's cell there; and,
    for every heading, each pixel's index into a backdrop panorama relative to the heading's column.

    Image rows [first_row, split_row) sample the far stack: `far` (bins, rows, width * channels), row j image
    row first_row + j. Rows [split_row, height + extra_rows) sample the near stack: `near`, row j image row
    split_row + j; the extra rows below the image serve jittered cameras. Channels (stereo) are interleaved,
    so a table row is a frame row. intp, not int32: numpy's gather converts other index types to intp on
    every call, which costs a fifth of the frame.

    `backdrop` (rows_above + height + extra_rows, width * channels): row j is image row j - rows_above (the
    rows above the image serve cameras pitched up). `sky` (height + extra_rows - first_row, width *
    channels) bool marks the pixels of the ground rows that see no floor within reach (a fisheye's corners
    above its curved horizon; never a pinhole's): they show the backdrop; None when there are none.
    """

    far: np.ndarray
    near: np.ndarray
    first_row: int
    split_row: int
    extra_rows: int
    backdrop: np.ndarray
    rows_above: int
    sky: np.ndarray | None
    panorama: PanoramaLayout

    @property
    def nbytes(self) -> int:
        return self.far.nbytes + self.near.nbytes + self.backdrop.nbytes


def _offsets(
    cameras: tuple[MountedCamera, ...], rows: np.ndarray, stack: StackLayout, bins: int, far: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Offset table (bins, len(rows), width * channels) for image rows `rows` into `stack`, relative to the
    car's cell (see `RasterStack`), and which of these pixels see no floor within the stack's reach (they
    show the backdrop; their offsets point at the car's own cell)."""
    width = cameras[0].width
    grid = stack.grid
    v, u = np.meshgrid(rows + 0.5, np.arange(width) + 0.5, indexing="ij")
    out = np.empty((bins, len(rows), width, len(cameras)), dtype=np.intp)
    sky = np.empty((len(rows), width, len(cameras)), dtype=bool)
    for c, cam in enumerate(cameras):
        gx, gy, _ = cam.ground(u, v)
        with np.errstate(invalid="ignore"):
            sky[..., c] = ~(np.hypot(gx, gy) < stack.reach_m - grid.cell_m)
        gx, gy = np.where(sky[..., c], 0.0, gx), np.where(sky[..., c], 0.0, gy)
        level = _pixel_levels(_pixel_blur(cam, u, v)) if far else 0
        level_base = stack.pad + level * grid.size
        for start in range(0, bins, 32):
            angle = 2 * np.pi * np.arange(start, min(start + 32, bins))[:, None, None] / bins
            cos, sin = np.cos(angle), np.sin(angle)
            dx = np.rint((cos * gx - sin * gy) / grid.cell_m).astype(np.intp)
            dy = np.rint((sin * gx + cos * gy) / grid.cell_m).astype(np.intp)
            out[start : start + 32, :, :, c] = level_base + dy * grid.nx + dx
    return out.reshape(bins, len(rows), width * len(cameras)), sky.reshape(len(rows), width * len(cameras))


def _backdrop_table(
    cameras: tuple[MountedCamera, ...], rows: np.ndarray, shown: np.ndarray, bins: int
) -> tuple[np.ndarray, PanoramaLayout]:
    """Panorama offsets (len(rows), width * channels) of image rows `rows` (may lie outside the image), and
    the panorama layout: every heading bin a whole number of columns, rows from the lowest to the highest
    elevation of the pixels where `shown` (same shape as the table) is true."""
    width = cameras[0].width
    v, u = np.meshgrid(rows + 0.5, np.arange(width) + 0.5, indexing="ij")
    angles = [cam.view_angles(u, v) for cam in cameras]
    elevation = np.stack([a[0] for a in angles], axis=-1).reshape(len(rows), -1)
    azimuth = np.stack([a[1] for a in angles], axis=-1).reshape(len(rows), -1)
    # a pixel's size on the backdrop: the angle to its right-hand neighbour (median over what is shown)
    step = np.hypot(
        np.diff(elevation[:, :: len(cameras)], axis=1), np.diff(azimuth[:, :: len(cameras)], axis=1)
    )
    visible = shown[:, :: len(cameras)][:, 1:]
    pixel_deg = math.degrees(float(np.median(step[visible]))) if visible.any() else 0.4
    layout = PanoramaLayout.for_view(bins, elevation[shown], pixel_deg)
    out = np.empty((len(rows), width, len(cameras)), dtype=np.intp)
    for c, (el, az) in enumerate(angles):
        out[..., c] = layout.offsets(el, az)
    return out.reshape(len(rows), width * len(cameras)), layout


@lru_cache(maxsize=2)
def heading_tables(
    cameras: tuple[MountedCamera, ...], far: StackLayout, near: StackLayout, bins: int
) -> HeadingTables:
    """Offset tables of `cameras` (one per channel) into the far and near stacks and a backdrop panorama
    (cached, two at most: ~100 MB per camera at 720 bins)."""
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
    # Backdrop rows above the image: the top row of a camera pitched up by the most jitter.
    top_angle = cam.pitch_rad + cam.lens.angle_of_offset(np.array([0.5 - cam.height / 2]))
    rows_above = max(
        0, math.ceil(0.5 - float(cam.row_of_angle(top_angle - math.radians(MAX_PITCH_JITTER_DEG))[0]))
    )
    far_table, far_sky = _offsets(cameras, np.arange(first_row, split_row), far, bins, far=True)
    near_table, near_sky = _offsets(
        cameras, np.arange(split_row, cam.height + extra_rows), near, bins, far=False
    )
    sky = np.concatenate([far_sky, near_sky])
    # the backdrop a camera shows: rows above the ground (jittered either way) and the ground rows' sky pixels
    shown = np.zeros((rows_above + cam.height + extra_rows, sky.shape[1]), dtype=bool)
    shown[: 2 * rows_above + first_row] = True
    shown[rows_above + first_row :] |= sky
    backdrop_table, panorama = _backdrop_table(
        cameras, np.arange(-rows_above, cam.height + extra_rows), shown, bins
    )
    tables = HeadingTables(
        far=far_table,
        near=near_table,
        first_row=first_row,
        split_row=split_row,
        extra_rows=extra_rows,
        backdrop=backdrop_table,
        rows_above=rows_above,
        sky=sky if sky.any() else None,
        panorama=panorama,
    )
    log.info(
        "camera tables: %d bins, rows %d-%d far, %d-%d near, %d cameras, %s lens, %d backdrop pixels in "
        "ground rows: %.0f MB, built in %.1f s",
        bins,
        first_row,
        split_row - 1,
        split_row,
        cam.height + extra_rows - 1,
        len(cameras),
        cam.lens.kind,
        0 if tables.sky is None else int(tables.sky.sum()),
        tables.nbytes / 1e6,
        time.perf_counter() - started,
    )
    return tables


Run = tuple[int, int, int]  # (first table row, rows, first output row relative to the segment)


@dataclass(frozen=True)
class RowMap:
    """Which table rows a camera's output rows read: rows [0, top) show the backdrop, [top, mid) read the far
    table, [mid, height) the near table. A jittered camera reads a few runs of consecutive table rows (one
    gather each: cheaper than gathering the rows into one index array). `backdrop_runs` are runs of the
    backdrop table's rows (row j = image row j - rows_above) for output rows [0, top).

    `fix_at` / `fix_backdrop` (compared by the runs they follow from): the flat frame positions of the
    pixels in rows [top, height) that see the backdrop, and their backdrop offsets; empty for a pinhole."""

    top: int
    mid: int
    far_runs: tuple[Run, ...]
    near_runs: tuple[Run, ...]
    backdrop_runs: tuple[Run, ...]
    fix_at: np.ndarray = field(compare=False, repr=False)
    fix_backdrop: np.ndarray = field(compare=False, repr=False)


def _runs(rows: np.ndarray) -> tuple[Run, ...]:
    """Maximal runs of consecutive values in `rows` (table rows, non-decreasing)."""
    if len(rows) == 0:
        return ()
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.r_[0, breaks]
    ends = np.r_[breaks, len(rows)]
    return tuple((int(rows[a]), int(b - a), int(a)) for a, b in zip(starts, ends, strict=True))


def jitter_rows(cam: MountedCamera, tables: HeadingTables, pitch_deg: float, height_m: float) -> RowMap:
    """Rows for a camera pitched `pitch_deg` more and mounted `height_m` higher: each output row reads the
    nominal row whose centre column sees the same ground distance, or above the ground the same elevation
    (exact on the centre column; elsewhere off by up to a few pixels for the largest jitter)."""
    v = np.arange(cam.height) + 0.5
    pitch = cam.pitch_rad + math.radians(pitch_deg)
    dist = cam.row_distance(v, pitch, cam.height_m + height_m)
    with np.errstate(invalid="ignore"):
        nominal = np.rint(cam.row_of_distance(dist) - 0.5)
    sky = ~np.isfinite(dist) | (dist > MAX_RANGE_M) | ~(nominal >= tables.first_row)
    nominal = np.where(sky, -1, nominal).astype(np.int64)  # non-decreasing down the image
    top = int(np.searchsorted(nominal, tables.first_row))
    mid = int(np.searchsorted(nominal, tables.split_row))
    far_rows = nominal[top:mid] - tables.first_row
    near_rows = np.minimum(nominal[mid:] - tables.split_row, tables.near.shape[1] - 1)
    # above the ground: the nominal row looking at the same elevation (the backdrop has no parallax)
    below = pitch + cam.lens.angle_of_offset(v[:top] - cam.height / 2)
    sky_rows = np.rint(cam.row_of_angle(below) - 0.5).astype(np.int64) + tables.rows_above
    sky_rows = np.clip(sky_rows, 0, len(tables.backdrop) - 1)
    fix_at, fix_backdrop = _fixes(
        tables, top, np.r_[far_rows + tables.first_row, near_rows + tables.split_row]
    )
    return RowMap(top, mid, _runs(far_rows), _runs(near_rows), _runs(sky_rows), fix_at, fix_backdrop)


def _fixes(tables: HeadingTables, top: int, table_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat frame positions (intp) of the backdrop pixels among output rows [top, ...), which read the
    nominal image rows `table_rows`, and their backdrop offsets."""
    if tables.sky is None:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    table_rows = np.minimum(table_rows, tables.first_row + len(tables.sky) - 1)
    mask = tables.sky[table_rows - tables.first_row]  # (output rows, row_px)
    out_row, column = np.nonzero(mask)
    row_px = tables.sky.shape[1]
    at = (out_row + top) * row_px + column
    offsets = tables.backdrop[table_rows[out_row] + tables.rows_above, column]
    return at.astype(np.intp), offsets.astype(np.intp)


# --------------------------------------------------------------------------- photometric randomisation
