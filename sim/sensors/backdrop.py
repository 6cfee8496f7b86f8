"""What the camera sees above the floor: a far-away cylindrical panorama around the car, by heading.

Real tracks stand in halls: walls, windows, curtains, people, barriers and boxes. The camera shows them as a
backdrop indexed by azimuth and elevation only (no parallax: right for far things, and it keeps a pixel's
backdrop a function of the car's heading alone, so it is one more precomputed gather, see `camera.py`).

Variants (`BACKDROP_NAMES`): 0 is the plain grey wall (`ground.SKY_LUMA`, what the `none` preset shows and
what every camera showed before backdrops); 1-6 combine a wall texture (painted, windows, curtains) with
distractors (people-like silhouettes, barriers, boxes), each variant its own room and placement (seeded with
the variant); 7, a glass front with a crowd before it, is held out for `eval-shift`
(`sim.randomization.EVAL_BACKDROP`). A backdrop is drawn at a brightness gain (`backdrop_brightness`), each
(variant, gain) a panorama built once (~20 ms; 0.25 MB for a DeepRacer camera, which sees 21° of elevation).

Geometry. The scene is modelled in metres as if the camera stood `NOMINAL_CAMERA_HEIGHT_M` above the floor
in a rectangular room: a wall at horizontal distance D(azimuth) shows height z = h + D tan(elevation), so
walls meet in corners and things keep their sizes; people, barriers and boxes stand nearer than the walls.
Below a wall's foot the panorama shows far floor. The panorama has `PanoramaLayout.columns_per_turn` columns
(0.25° or finer, a whole number per heading bin) and rows every `ROW_DEG` from `ELEVATION_MIN_DEG`
(elevations outside its rows clamp to the first or last row: floor, ceiling), and is stored twice side by
side, so a view that starts at the heading's column reads every azimuth of a frame without wrapping.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from sim.sensors.ground import SKY_LUMA

log = logging.getLogger(__name__)

#: Backdrop variants (name, wall, distractors): 0 the grey wall (not painted), 1-6 for training, 7 held out
#: (`sim.randomization.EVAL_BACKDROP`).
_VARIANTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("grey wall", "", ()),
    ("painted walls, people", "painted", ("people",)),
    ("windows, barriers", "windows", ("barriers",)),
    ("curtains, boxes", "curtains", ("boxes",)),
    ("windows, people, boxes", "windows", ("people", "boxes")),
    ("curtains, barriers, people", "curtains", ("barriers", "people")),
    ("painted walls, barriers, boxes", "painted", ("barriers", "boxes")),
    ("glass front, crowd", "glass", ("crowd",)),
)
BACKDROP_NAMES = tuple(name for name, _, _ in _VARIANTS)
N_BACKDROPS = len(BACKDROP_NAMES)

#: Panorama rows: every ROW_DEG from ELEVATION_MIN_DEG up (a pinhole DeepRacer pixel spans ~0.4°).
ROW_DEG = 0.25
ELEVATION_MIN_DEG = -8.0
PANORAMA_ROWS = 240  # up to +52°; above: the ceiling's top row
#: At least this many columns per turn (0.25°); the count is a whole multiple of the heading bins.
MIN_COLUMNS_PER_TURN = 1440
#: The scene is laid out for a camera this high above the floor (a DeepRacer's is 0.115 m), metres.
NOMINAL_CAMERA_HEIGHT_M = 0.12
FLOOR_LUMA = 172.0


@dataclass(frozen=True)
class PanoramaLayout:
    """Where a panorama's texels are in its flat uint8 array: row r (elevation ELEVATION_MIN_DEG +
    (first_row + r + 0.5) ROW_DEG), stored column j (azimuth (j - P / 2) / P turns left of +x, P =
    columns_per_turn) at `r * stride + j`, stride 2P. A camera's panoramas keep only the `rows` it can see
    from `first_row` on. Hashable: camera tables are cached per layout."""

    columns_per_turn: int
    first_row: int = 0
    rows: int = PANORAMA_ROWS
    #: the camera's pixel size on the backdrop (median), which sets the panorama's prefilter, degrees
    pixel_deg: float = 0.4

    @classmethod
    def for_view(cls, bins: int, elevation_rad: np.ndarray, pixel_deg: float) -> PanoramaLayout:
        """The layout for a camera with `bins` heading bins whose pixels look at `elevation_rad` (any shape)
        and span `pixel_deg` each."""
        step = max(1, math.ceil(MIN_COLUMNS_PER_TURN / bins))
        if (step * bins) % 2:
            step += 1
        rows = _rows(elevation_rad)
        first, last = int(rows.min(initial=PANORAMA_ROWS - 1)), int(rows.max(initial=0))
        return cls(step * bins, first, max(1, last - first + 1), round(pixel_deg, 2))

    @property
    def stride(self) -> int:
        return 2 * self.columns_per_turn

    @property
    def size(self) -> int:
        return self.rows * self.stride

    def heading_step(self, bins: int) -> int:
        """Columns per heading bin: a car in bin b reads the view starting at column b * step."""
        return self.columns_per_turn // bins

    def offsets(self, elevation_rad: np.ndarray, azimuth_rad: np.ndarray) -> np.ndarray:
        """Flat index (intp) of the texel a ray sees, relative to the heading's column: elevation above the
        horizontal and azimuth left of the car's heading (within ±pi), radians."""
        p = self.columns_per_turn
        row = np.clip(_rows(elevation_rad) - self.first_row, 0, self.rows - 1)
        column = np.rint(np.asarray(azimuth_rad) * (p / (2 * np.pi))).astype(np.intp)
        column = np.clip(column, -(p // 2), p // 2)
        return row * self.stride + column + p // 2

    def angles(self) -> tuple[np.ndarray, np.ndarray]:
        """Texel-centre elevation (rows,) and world azimuth (columns_per_turn,), radians."""
        elevation = np.radians(ELEVATION_MIN_DEG + (self.first_row + np.arange(self.rows) + 0.5) * ROW_DEG)
        return elevation, np.arange(self.columns_per_turn) * (2 * np.pi / self.columns_per_turn)


def _rows(elevation_rad: np.ndarray) -> np.ndarray:
    """Panorama row (intp, clamped to 0..PANORAMA_ROWS - 1) of each elevation (radians)."""
    row = np.floor((np.degrees(elevation_rad) - ELEVATION_MIN_DEG) / ROW_DEG)
    return np.clip(row, 0, PANORAMA_ROWS - 1).astype(np.intp)


@dataclass(frozen=True, eq=False)
class Backdrop:
    """One variant at one brightness gain: `flat` (a uniform backdrop's luminance, uint8 level) or `data`
    (the panorama, uint8, flat as `layout` says, clipped to [headroom, 255 - headroom] so that pixel noise of
    that many levels adds without wrapping)."""

    variant: int
    brightness: float
    headroom: int
    layout: PanoramaLayout
    flat: int | None
    data: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return 0 if self.data is None else self.data.nbytes


@lru_cache(maxsize=96)
def backdrop(variant: int, brightness: float, layout: PanoramaLayout, headroom: int = 0) -> Backdrop:
    """The cached backdrop `variant` at brightness gain `brightness` (x luminance), clipped to
    [headroom, 255 - headroom]. Variant 0 is uniform: `flat`, unclipped (the camera's tone curve clips it)."""
    if not 0 <= variant < N_BACKDROPS:
        raise ValueError(f"backdrop: expected a variant 0..{N_BACKDROPS - 1}, got {variant}")
    if variant == 0:
        flat = int(np.clip(np.rint(SKY_LUMA * brightness), 0, 255))
        return Backdrop(variant, brightness, 0, layout, flat, None)
    picture = _picture(variant, layout) * brightness
    stored = np.rint(np.clip(picture, headroom, 255 - headroom)).astype(np.uint8)
    p = layout.columns_per_turn
    # stored column j shows azimuth column (j - P/2) mod P: a frame's view never wraps
    stored = np.roll(np.concatenate([stored, stored], axis=1), p // 2, axis=1)
    return Backdrop(variant, brightness, headroom, layout, None, np.ascontiguousarray(stored).ravel())


@lru_cache(maxsize=16)
def _picture(variant: int, layout: PanoramaLayout) -> np.ndarray:
    picture = paint(variant, layout)
    picture.setflags(write=False)
    return picture


# --------------------------------------------------------------------------- painting


def paint(variant: int, layout: PanoramaLayout) -> np.ndarray:
    """Luminance (rows, columns_per_turn) float32 of variant 1..N_BACKDROPS - 1 at gain 1, seeded with it."""
    if not 1 <= variant < N_BACKDROPS:
        raise ValueError(f"paint: expected a painted variant 1..{N_BACKDROPS - 1}, got {variant}")
    rng = np.random.default_rng(1000 + variant)
    elevation, azimuth = layout.angles()
    room = _Room.draw(rng)
    dist, along = room.distance_and_along(azimuth)
    height = NOMINAL_CAMERA_HEIGHT_M + dist[None, :] * np.tan(elevation)[:, None]  # (rows, cols) metres
    _, wall, things = _VARIANTS[variant]
    picture = _wall(wall, rng, along[None, :], height, room.height_m)
    picture = np.where(height < 0.0, FLOOR_LUMA, picture)
    picture = np.where(height > room.height_m, _ceiling(rng, along), picture)
    shapes = [shape for name in things for shape in _distractors(name, rng)]
    for shape in sorted(shapes, key=lambda s: -s.distance_m):  # far first: near ones cover them
        shape.draw(picture, elevation, azimuth)
    # prefilter to half a camera pixel (as the floor's levels are): crisp edges, no moiré on a wide fisheye
    sigma_texels = max(0.5, 0.5 * layout.pixel_deg / ROW_DEG)
    picture = ndimage.gaussian_filter(picture.astype(np.float32), sigma_texels, mode=("nearest", "wrap"))
    return picture.astype(np.float32)


@dataclass(frozen=True)
class _Room:
    """A rectangular room around the car: walls at x = ±half_x_m, y = ±half_y_m (car at the origin)."""

    half_x_m: float
    half_y_m: float
    height_m: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Room:
        return cls(float(rng.uniform(5.0, 11.0)), float(rng.uniform(4.0, 9.0)), float(rng.uniform(2.6, 4.0)))

    def distance_and_along(self, azimuth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Horizontal distance to the wall (m) and position along it (m; each wall offset by 100 m so no two
        repeat one another) at each azimuth."""
        c, s = np.cos(azimuth), np.sin(azimuth)
        with np.errstate(divide="ignore"):
            to_x = self.half_x_m / np.abs(c)
            to_y = self.half_y_m / np.abs(s)
        dist = np.minimum(to_x, to_y)
        # along: the hit point's coordinate along its wall, each wall offset so no two look alike
        x, y = dist * c, dist * s
        along = np.where(to_x < to_y, y + np.where(c > 0, 0.0, 100.0), x + np.where(s > 0, 200.0, 300.0))
        return dist, along


def _wall(kind: str, rng: np.random.Generator, s: np.ndarray, z: np.ndarray, top_m: float) -> np.ndarray:
    """Wall luminance at position `s` along the walls and height `z` (metres; broadcast together)."""
    base = float(rng.uniform(115, 165))
    smooth = _periodic_noise(rng, s, scale_m=2.0)
    wall = base + 8 * smooth + 6 * (z / top_m)  # a soft vertical gradient of the lighting
    wall = np.where(z < 0.1, base - 45, wall)  # skirting board
    if kind == "painted":
        doors = _spaced(rng, s, spacing_m=float(rng.uniform(5, 9)), width_m=0.9)
        wall = np.where(doors & (z < 2.0), base - 50 + 10 * smooth, wall)
        posters = _spaced(rng, s, spacing_m=float(rng.uniform(2.5, 4)), width_m=0.6)
        wall = np.where(posters & (z > 1.2) & (z < 2.0), base + 40 * _periodic_noise(rng, s, 0.3), wall)
    elif kind == "windows":
        spacing = float(rng.uniform(2.2, 3.5))
        windows = _spaced(rng, s, spacing_m=spacing, width_m=spacing * 0.55)
        sill, lintel = float(rng.uniform(0.7, 1.0)), float(rng.uniform(2.0, 2.4))
        glass = windows & (z > sill) & (z < lintel)
        mullion = (np.abs(np.mod(s, spacing) - spacing / 2) < 0.03) | (np.abs(z - (sill + lintel) / 2) < 0.03)
        blinds = (np.mod(z, 0.08) < 0.03) & (_periodic_noise(rng, s, 4.0) > 0.3)
        light = 225 + 15 * _periodic_noise(rng, s, 1.0)
        wall = np.where(glass, np.where(mullion, base - 40, np.where(blinds, light - 60, light)), wall)
    elif kind == "curtains":
        period = float(rng.uniform(0.12, 0.25))
        phase = 2 * np.pi * s / period + 2.0 * _periodic_noise(rng, s, 1.5)
        shade = float(rng.uniform(80, 150))
        folds = shade + 28 * np.sin(phase) + 10 * _periodic_noise(rng, s, 3.0)
        hem = float(rng.uniform(0.02, 0.15))
        gaps = _spaced(rng, s, spacing_m=float(rng.uniform(6, 10)), width_m=0.5)
        wall = np.where((z > hem) & ~gaps, folds, wall)
    else:  # glass front: floor-to-ceiling daylight between thin frames
        frame = np.mod(s, 1.5) < 0.08
        transom = np.abs(z - 2.2) < 0.05
        wall = np.where((z > 0.15) & ~frame & ~transom, 238 + 10 * _periodic_noise(rng, s, 2.0), base - 60)
    return wall


def _ceiling(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    """The ceiling seen past the walls' top (1, columns): dimmer than the walls, unevenly lit."""
    return float(rng.uniform(95, 140)) + 10 * _periodic_noise(rng, s, 3.0)[None, :]


def _periodic_noise(rng: np.random.Generator, s: np.ndarray, scale_m: float) -> np.ndarray:
    """Smooth noise of unit amplitude (about ±1) over the position `s` (m) with features ~`scale_m` long."""
    k = 1 + np.arange(6)
    amps = rng.normal(0, 1, 6) / k
    phases = rng.uniform(0, 2 * np.pi, 6)
    waves = np.sin(np.multiply.outer(np.asarray(s, dtype=np.float64), 2 * np.pi * k / (4 * scale_m)) + phases)
    out = waves @ amps
    return out / (np.abs(amps).sum() / 2)


def _spaced(rng: np.random.Generator, s: np.ndarray, spacing_m: float, width_m: float) -> np.ndarray:
    """True within `width_m` wide intervals repeating every `spacing_m` (random offset) along `s`."""
    offset = float(rng.uniform(0, spacing_m))
    return np.mod(s + offset, spacing_m) < width_m


@dataclass(frozen=True)
class _Shape:
    """A flat thing standing on the floor at `azimuth_rad`, `distance_m` away, drawn in metres in its own
    plane: lateral x (m, left +) and height z (m) -> luminance or NaN (not covered)."""

    kind: str
    azimuth_rad: float
    distance_m: float
    width_m: float
    height_m: float
    lumas: tuple[float, ...]

    def draw(self, picture: np.ndarray, elevation: np.ndarray, azimuth: np.ndarray) -> None:
        p = len(azimuth)
        half = math.atan(self.width_m / 2 / self.distance_m) * 1.3  # arms stick out a little
        centre = self.azimuth_rad * p / (2 * np.pi)
        cols = np.arange(
            math.floor(centre - half * p / (2 * np.pi)) - 1, math.ceil(centre + half * p / (2 * np.pi)) + 2
        )
        daz = (azimuth[cols % p] - self.azimuth_rad + np.pi) % (2 * np.pi) - np.pi
        x = self.distance_m * np.tan(daz)[None, :]
        z = NOMINAL_CAMERA_HEIGHT_M + self.distance_m * np.tan(elevation)[:, None]
        rows = np.flatnonzero((z[:, 0] > -0.05) & (z[:, 0] < self.height_m * 1.05))
        if len(rows) == 0:
            return
        luma = self.luminance(x, z[rows])
        window = picture[rows[:, None], cols[None, :] % p]
        picture[rows[:, None], cols[None, :] % p] = np.where(np.isnan(luma), window, luma)

    def luminance(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        w, h, lum = self.width_m, self.height_m, self.lumas
        out = np.full(np.broadcast_shapes(x.shape, z.shape), np.nan)
        if self.kind == "person":
            legs = (z < 0.47 * h) & (np.abs(np.abs(x) - 0.14 * w) < 0.11 * w)
            taper = 0.5 * w * (1 - 0.25 * (z - 0.47 * h) / (0.35 * h))
            torso = (z >= 0.45 * h) & (z < 0.82 * h) & (np.abs(x) < taper)
            arms = (z >= 0.5 * h) & (z < 0.8 * h) & (np.abs(np.abs(x) - 0.56 * w) < 0.07 * w)
            head = (x / (0.2 * w)) ** 2 + ((z - 0.9 * h) / (0.08 * h)) ** 2 < 1
            out = np.where(legs, lum[0], out)
            out = np.where(torso | arms, lum[1], out)
            out = np.where(head, lum[2], out)
        elif self.kind == "barrier":
            body = (np.abs(x) < w / 2) & (z < h)
            stripe = np.mod((x + z) / 0.25, 2) < 1
            out = np.where(body, np.where(stripe, lum[0], lum[1]), out)
            feet = (np.abs(np.abs(x) - 0.4 * w) < 0.04) & (z < 0.15 * h)
            out = np.where(feet, lum[1] - 30, out)
        else:  # box: a front face, a darker side face, a strip of tape
            front = (x > -w / 2) & (x < w / 4) & (z < h)
            side = (x >= w / 4) & (x < w / 2) & (z < h)
            tape = front & (np.abs(z - 0.6 * h) < 0.03)
            out = np.where(front, lum[0], out)
            out = np.where(side, lum[0] - 35, out)
            out = np.where(tape, lum[1], out)
        return out


def _distractors(name: str, rng: np.random.Generator) -> list[_Shape]:
    """Shapes of one kind, placed at random azimuths (seeded with the variant)."""
    shapes = []
    if name in ("people", "crowd"):
        count = int(rng.integers(6, 12)) if name == "people" else int(rng.integers(22, 32))
        near = 2.5 if name == "crowd" else 3.0
        for _ in range(count):
            legs, top = float(rng.uniform(25, 95)), float(rng.uniform(35, 210))
            shapes.append(
                _Shape(
                    "person",
                    float(rng.uniform(0, 2 * np.pi)),
                    float(rng.uniform(near, near + 5)),
                    float(rng.uniform(0.38, 0.5)),
                    float(rng.uniform(1.55, 1.9)),
                    (legs, top, float(rng.uniform(70, 150))),
                )
            )
    elif name == "barriers":
        for _ in range(int(rng.integers(4, 9))):
            shapes.append(
                _Shape(
                    "barrier",
                    float(rng.uniform(0, 2 * np.pi)),
                    float(rng.uniform(2.5, 5.0)),
                    float(rng.uniform(1.0, 2.0)),
                    float(rng.uniform(0.6, 1.0)),
                    (float(rng.uniform(200, 235)), float(rng.uniform(50, 90))),
                )
            )
    else:  # boxes
        for _ in range(int(rng.integers(4, 10))):
            shapes.append(
                _Shape(
                    "box",
                    float(rng.uniform(0, 2 * np.pi)),
                    float(rng.uniform(2.5, 7.0)),
                    float(rng.uniform(0.3, 0.9)),
                    float(rng.uniform(0.3, 0.9)),
                    (float(rng.uniform(100, 160)), float(rng.uniform(180, 220))),
                )
            )
    return shapes
