"""Drawing the top-down view with pygame: track, cars, speed-coloured trails, HUD, legend, sensor insets.

pygame is imported inside functions and methods only (`import sim` must not load it). Everything here works
on an off-screen `pygame.Surface`; `sim.viewer.session` adds the window, the trails and the HUD values.

World coordinates are metres (x right, y up, yaw counter-clockwise from +x, radians); screen coordinates
are pixels (column right, row down).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pygame

    from contracts.car_file import CarConfig, VehicleParams
    from sim.tracks.track import Track

Colour = tuple[int, int, int]

FLOOR: Colour = (206, 216, 198)
ROAD: Colour = (90, 90, 90)
TAPE: Colour = (255, 255, 255)
CENTRE: Colour = (245, 196, 0)
CHECKER_DARK: Colour = (25, 25, 25)
PANEL: Colour = (28, 30, 36)
TEXT: Colour = (245, 245, 245)
LABEL: Colour = (165, 172, 186)
CAPTION: Colour = (60, 66, 74)
CAR_COLOURS: tuple[Colour, ...] = ((214, 39, 40), (31, 119, 180), (148, 103, 189), (23, 190, 207))
WINDSHIELD: Colour = (150, 200, 240)
WHEEL: Colour = (20, 20, 20)
HEADLIGHT: Colour = (255, 244, 160)
RAY: Colour = (80, 230, 255)
TRAIL_EDGE: Colour = (35, 35, 40)

TAPE_WIDTH_M = 0.05  # DeepRacer's 2-inch white border tape
CENTRE_WIDTH_M = 0.03
DASH_M = 0.15
GAP_M = 0.15
TRAIL_WIDTH_M = 0.03
MIN_CAR_LENGTH_PX = 14  # a car smaller than this on screen is drawn enlarged so it stays visible
INSET_KINDS = ("camera", "lidar", "readout")
READOUT_BAR: Colour = (120, 200, 120)

# speed colour map: slow blue -> cyan -> green -> yellow -> fast red (readable on grey road and pale floor)
_SPEED_STOPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_SPEED_COLOURS = np.array(
    [[45, 75, 235], [0, 190, 235], [40, 205, 70], [250, 215, 0], [235, 35, 35]], dtype=np.float64
)


def import_pygame() -> Any:
    """pygame, imported on first use with its banner hidden and its font module ready."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    if not pygame.font.get_init():
        pygame.font.init()
    return pygame


@cache
def _font(size_px: int) -> pygame.font.Font:
    """pygame's built-in font at `size_px` (cached: loading a font costs ~1 ms)."""
    return import_pygame().font.Font(None, size_px)


def speed_colours(speed_mps: np.ndarray, max_speed_mps: float) -> np.ndarray:
    """Colours (n, 3) uint8 of speeds (n,) m/s on the viewer's map, 0 (blue) to `max_speed_mps` (red);
    NaN counts as 0."""
    t = np.clip(np.nan_to_num(np.asarray(speed_mps, dtype=np.float64)) / max(max_speed_mps, 1e-9), 0.0, 1.0)
    channels = [np.interp(t, _SPEED_STOPS, _SPEED_COLOURS[:, c]) for c in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class WorldToScreen:
    """Metres to pixels, aspect ratio kept: world point `centre_m` lands on pixel `centre_px`."""

    scale_px_per_m: float
    centre_m: tuple[float, float]
    centre_px: tuple[float, float]

    @classmethod
    def fit(
        cls, lo_m: np.ndarray, hi_m: np.ndarray, rect_px: tuple[int, int, int, int], margin_px: float
    ) -> WorldToScreen:
        """The largest scale that shows the world box [lo_m, hi_m] inside `rect_px` (left, top, width,
        height) with `margin_px` around it, centred."""
        left, top, width, height = rect_px
        span = np.maximum(np.asarray(hi_m, float) - np.asarray(lo_m, float), 1e-6)
        scale = min((width - 2 * margin_px) / span[0], (height - 2 * margin_px) / span[1])
        centre = 0.5 * (np.asarray(lo_m, float) + np.asarray(hi_m, float))
        return cls(
            max(float(scale), 1e-6),
            (float(centre[0]), float(centre[1])),
            (left + width / 2, top + height / 2),
        )

    def scaled(self, factor: float) -> WorldToScreen:
        """The same view on a canvas `factor` times larger (for supersampled drawing)."""
        cx, cy = self.centre_px
        return WorldToScreen(self.scale_px_per_m * factor, self.centre_m, (cx * factor, cy * factor))

    def __call__(self, xy_m: np.ndarray) -> np.ndarray:
        """Points (..., 2) in metres -> (..., 2) float pixel coordinates (column, row)."""
        xy = np.asarray(xy_m, dtype=np.float64)
        out = np.empty_like(xy)
        out[..., 0] = self.centre_px[0] + (xy[..., 0] - self.centre_m[0]) * self.scale_px_per_m
        out[..., 1] = self.centre_px[1] - (xy[..., 1] - self.centre_m[1]) * self.scale_px_per_m
        return out

    def pixel(self, x_m: float, y_m: float) -> tuple[int, int]:
        """The (column, row) pixel holding world point (x_m, y_m)."""
        col, row = self(np.array([x_m, y_m]))
        return math.floor(col), math.floor(row)


@dataclass(frozen=True)
class CarShape:
    """What the viewer draws of a car, metres: body rectangle centred on the chassis origin, wheels."""

    body_length_m: float = 0.324
    body_width_m: float = 0.196
    wheelbase_m: float = 0.164
    track_m: float = 0.162
    wheel_radius_m: float = 0.035

    @classmethod
    def from_config(cls, car: CarConfig) -> CarShape:
        """The shape of a car file (`firmware_configs.load_car(...)`)."""
        v = car.vehicle
        return cls(v.body_length_m, v.body_width_m, v.wheelbase_m, v.track_m, v.wheel_radius_m)

    @classmethod
    def from_vehicle(cls, vehicle: VehicleParams) -> CarShape:
        """An estimate from the physics' parameters alone (they hold no body size): DeepRacer's proportions."""
        wb, tr = vehicle.wheelbase_m, vehicle.track_m
        return cls(1.98 * wb, 1.21 * tr, wb, tr, 0.21 * wb)


@dataclass(frozen=True)
class CarPose:
    """A car to draw: chassis origin (m), heading (rad, CCW from +x), wheel angle (rad, + = left)."""

    x_m: float
    y_m: float
    yaw_rad: float
    steer_rad: float = 0.0


def _rect(cx: float, cy: float, length: float, width: float, yaw: float) -> np.ndarray:
    """Corners (4, 2) of a rectangle centred on (cx, cy), long side along heading `yaw`."""
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], dtype=np.float64) * [length / 2, width / 2]
    return np.column_stack([cx + c * local[:, 0] - s * local[:, 1], cy + s * local[:, 0] + c * local[:, 1]])


def car_outline(pose: CarPose, shape: CarShape, enlarge: float = 1.0) -> dict[str, list[np.ndarray]]:
    """World polygons (metres) of a car, so its heading reads at a glance: `body` (one), `windshield` (one,
    in the front half, narrowing forward), `lights` (two headlights at the front corners), `wheels` (four;
    the front ones turned by the wheel angle). `enlarge` scales the drawing about the chassis origin."""
    k = enlarge
    c, s = math.cos(pose.yaw_rad), math.sin(pose.yaw_rad)
    half_l, half_w = shape.body_length_m / 2, shape.body_width_m / 2

    def at(fx: float, fy: float) -> tuple[float, float]:
        """The point fx half-lengths ahead of and fy half-widths left of the chassis origin."""
        dx, dy = k * fx * half_l, k * fy * half_w
        return pose.x_m + c * dx - s * dy, pose.y_m + s * dx + c * dy

    body = np.array([at(1, 1), at(1, -1), at(-1, -1), at(-1, 1)])
    shield = np.array([at(0.5, 0.6), at(0.5, -0.6), at(0.1, -0.8), at(0.1, 0.8)])
    lights = [
        np.array([at(1, y0), at(1, y1), at(0.82, y1), at(0.82, y0)])
        for y0, y1 in ((0.9, 0.45), (-0.45, -0.9))
    ]
    wheels = []
    for dx, front in ((shape.wheelbase_m / 2, True), (-shape.wheelbase_m / 2, False)):
        for dy in (shape.track_m / 2, -shape.track_m / 2):
            wx, wy = at(dx / half_l, dy / half_w)
            yaw = pose.yaw_rad + (pose.steer_rad if front else 0.0)
            wheels.append(_rect(wx, wy, k * 2 * shape.wheel_radius_m, k * 0.45 * shape.wheel_radius_m, yaw))
    return {"body": [body], "windshield": [shield], "lights": lights, "wheels": wheels}


# --------------------------------------------------------------------------- sensor insets


@dataclass(frozen=True)
class Inset:
    """A sensor reading shown in a corner of the view.

    kind "camera": `data` uint8 (H, W) grayscale, (H, W, 2) stereo pair (shown side by side) or (H, W, 3) RGB.
    kind "lidar": `data` (N,) ranges in metres; beam i points `angles_rad[i]` from the heading (+ = left);
    default: N beams evenly over `fov_deg` centred on the heading, right to left (the first beam at -fov/2;
    a 360-degree scan starts straight behind). Ranges are drawn up to `max_range_m` (default: the largest
    finite range).
    kind "readout": `data` (N,) numbers (a feature vector as a policy sees it): one line per value, named by
    `names` (N names, units in them), or without names a bar per value (sector occupancy, one-hot bins).
    """

    kind: str
    data: np.ndarray
    fov_deg: float = 360.0
    max_range_m: float | None = None
    angles_rad: np.ndarray | None = None
    label: str | None = None
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in INSET_KINDS:
            raise ValueError(f"inset kind: expected one of {INSET_KINDS}, got {self.kind!r}")
        shape = np.shape(self.data)
        if self.kind == "camera" and not (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 2, 3))):
            raise ValueError(f"camera inset: expected (H, W), (H, W, 2) or (H, W, 3), got shape {shape}")
        if self.kind == "lidar" and len(shape) != 1:
            raise ValueError(f"lidar inset: expected a 1-D array of ranges (m), got shape {shape}")
        if self.kind == "readout" and len(shape) != 1:
            raise ValueError(f"readout inset: expected a 1-D array of values, got shape {shape}")
        if self.names is not None and len(self.names) != shape[0]:
            raise ValueError(f"readout inset: {len(self.names)} names for {shape[0]} values")

    def beam_angles_rad(self) -> np.ndarray:
        """Each beam's angle from the heading, radians, + = left."""
        if self.angles_rad is not None:
            return np.asarray(self.angles_rad, dtype=np.float64)
        n = len(self.data)
        fov = math.radians(self.fov_deg)
        if self.fov_deg >= 360.0:
            return -math.pi + fov * np.arange(n) / n
        return np.linspace(-fov / 2, fov / 2, n) if n > 1 else np.zeros(n)

    def camera_rgb(self) -> np.ndarray:
        """The camera frame as (H, W', 3) uint8, a stereo pair side by side with a 2-pixel gap."""
        img = np.asarray(self.data)
        if img.dtype != np.uint8:
            scale = 255.0 if np.nanmax(img) <= 1.0 else 1.0
            img = np.clip(np.nan_to_num(img * scale), 0, 255).astype(np.uint8)
        if img.ndim == 3 and img.shape[2] == 2:
            gap = np.zeros((img.shape[0], 2), dtype=np.uint8)
            img = np.hstack([img[:, :, 0], gap, img[:, :, 1]])
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


# --------------------------------------------------------------------------- the viewer


class Viewer:
    """Draws frames of one track into an off-screen RGB surface of `size` = (width, height) pixels.

    The track is fitted below the HUD bar with a margin, aspect ratio kept (`transform` maps metres to
    pixels); it is drawn once (2x supersampled for smooth edges) and copied into every frame.
    `speed_range_mps` is the top of the trail's colour map. `insets`: sensor views expected in the frames;
    a column on the right is kept free for them (insets drawn later without one overlay the track).
    """

    def __init__(
        self,
        track: Track,
        size: tuple[int, int] = (960, 720),
        car: CarShape | None = None,
        speed_range_mps: float = 4.0,
        insets: Sequence[Inset] = (),
    ) -> None:
        pg = import_pygame()
        width, height = int(size[0]), int(size[1])
        if width < 160 or height < 120:
            raise ValueError(f"viewer size: expected at least 160x120 pixels, got {width}x{height}")
        self.size = (width, height)
        self.track = track
        self.car = car or CarShape()
        self.speed_range_mps = float(speed_range_mps)
        self.font_px = int(np.clip(width / 34, 12, 34))
        self.hud_height_px = int(self.font_px * 2.1) + 8
        corners = np.vstack([track.inner, track.outer, track.waypoints])
        margin = max(12.0, 0.03 * min(width, height))
        column = max((self.inset_width_px(inset) for inset in insets), default=0)
        self.track_width_px = width - (column + 16 if column else 0)
        area = (0, self.hud_height_px, self.track_width_px, height - self.hud_height_px)
        self.transform = WorldToScreen.fit(corners.min(axis=0), corners.max(axis=0), area, margin)
        self._background = self._draw_track(pg)
        self.surface = pg.Surface(self.size)

    # ----------------------------------------------------------------- static track

    def _width_px(self, metres: float, minimum: float, factor: float = 1.0) -> int:
        return max(round(minimum * factor), round(metres * self.transform.scale_px_per_m * factor))

    def _draw_track(self, pg: Any, factor: int = 2) -> pygame.Surface:
        """Floor, road, border tape, dashed centre line and chequered start line, drawn at `factor` times
        the size and smoothed down."""
        track, to_px = self.track, self.transform.scaled(factor)
        big = pg.Surface((self.size[0] * factor, self.size[1] * factor))
        big.fill(FLOOR)
        inner, outer = to_px(track.inner), to_px(track.outer)
        for i in range(len(inner) - 1):  # quads between the borders: right for any track shape
            pg.draw.polygon(big, ROAD, [inner[i], inner[i + 1], outer[i + 1], outer[i]])
        self._draw_dashes(pg, big, to_px, factor)
        tape = self._width_px(TAPE_WIDTH_M, 2, factor)
        for ring in (inner, outer):
            pg.draw.lines(big, TAPE, True, ring.tolist(), tape)
            for point in ring:  # round joints: no notches at the corners of thick lines
                pg.draw.circle(big, TAPE, point.tolist(), tape / 2)
        self._draw_start_line(pg, big, to_px)
        return pg.transform.smoothscale(big, self.size)

    def _draw_dashes(self, pg: Any, surface: pygame.Surface, to_px: WorldToScreen, factor: int) -> None:
        track = self.track
        width = self._width_px(CENTRE_WIDTH_M, 1, factor)
        period = DASH_M + GAP_M
        for start in np.arange(0.0, track.length_m - 0.5 * DASH_M, period):
            s = np.linspace(start, min(start + DASH_M, track.length_m), 8)
            pg.draw.lines(surface, CENTRE, False, to_px(track.centre_points(s)).tolist(), width)

    def _draw_start_line(self, pg: Any, surface: pygame.Surface, to_px: WorldToScreen) -> None:
        """Two rows of black and white squares across the road at waypoint 0."""
        track = self.track
        inner, across = track.inner[0], track.outer[0] - track.inner[0]
        road_width = float(np.linalg.norm(across))
        along = track.waypoints[1] - track.waypoints[0]
        along = along / max(float(np.linalg.norm(along)), 1e-9)
        n = max(4, round(road_width / 0.06))
        square = road_width / n
        unit = across / max(road_width, 1e-9)
        for row in (-1, 0):
            for j in range(n):
                a = inner + unit * (j * square) + along * (row * square)
                quad = np.array(
                    [a, a + unit * square, a + unit * square + along * square, a + along * square]
                )
                colour = TAPE if (j + row) % 2 == 0 else CHECKER_DARK
                pg.draw.polygon(surface, colour, to_px(quad).tolist())

    # ----------------------------------------------------------------- frames

    def draw(
        self,
        cars: Sequence[CarPose],
        trails: Sequence[tuple[np.ndarray, np.ndarray]] = (),
        hud: Sequence[tuple[str, str]] = (),
        insets: Sequence[Inset] = (),
        caption: str | None = None,
    ) -> pygame.Surface:
        """Draw one frame and return the surface (owned by the viewer, overwritten by the next call).

        cars: one pose per car (car i in `CAR_COLOURS[i]`). trails: per car, positions (n, 2) m and speeds
        (n,) m/s, oldest first; NaN rows break the line (a reset). hud: (label, value) pairs for the top
        bar. insets: sensor views, stacked up from the bottom-right corner. caption: a line of small text.
        """
        pg = import_pygame()
        surf = self.surface
        surf.blit(self._background, (0, 0))
        for xy, speed in trails:
            self._draw_trail(pg, surf, xy, speed)
        for i, pose in enumerate(cars):
            self._draw_car(pg, surf, pose, CAR_COLOURS[i % len(CAR_COLOURS)])
        self._draw_legend(pg, surf)
        if caption:
            text = _font(max(11, round(self.font_px * 0.75))).render(caption, True, CAPTION)
            surf.blit(text, (8, self.hud_height_px + 6))
        self._draw_hud(pg, surf, hud)
        self._draw_insets(pg, surf, insets)
        return surf

    def to_array(self) -> np.ndarray:
        """The last frame as an (H, W, 3) uint8 RGB array."""
        pg = import_pygame()
        data = bytearray(pg.image.tobytes(self.surface, "RGB"))  # row-major RGB, writable
        return np.frombuffer(data, dtype=np.uint8).reshape(self.size[1], self.size[0], 3)

    def _draw_trail(self, pg: Any, surf: pygame.Surface, xy: np.ndarray, speed: np.ndarray) -> None:
        if len(xy) < 2:
            return
        px = self.transform(xy)
        colours = speed_colours(0.5 * (speed[1:] + speed[:-1]), self.speed_range_mps)
        finite = np.isfinite(px[:, 0])
        ok = finite[1:] & finite[:-1]
        width = self._width_px(TRAIL_WIDTH_M, 3)
        # a dark edge under each unbroken run keeps the colours readable on road, paint and floor alike
        breaks = np.flatnonzero(~finite)
        for run in np.split(px, breaks):
            run = run[np.isfinite(run[:, 0])]
            if len(run) >= 2:
                pg.draw.lines(surf, TRAIL_EDGE, False, run.tolist(), width + 2)
        for i in np.flatnonzero(ok):
            pg.draw.line(surf, colours[i].tolist(), px[i].tolist(), px[i + 1].tolist(), width)

    def _draw_car(self, pg: Any, surf: pygame.Surface, pose: CarPose, colour: Colour) -> None:
        length_px = self.car.body_length_m * self.transform.scale_px_per_m
        enlarge = max(1.0, MIN_CAR_LENGTH_PX / max(length_px, 1e-9))
        parts = car_outline(pose, self.car, enlarge)
        body = self.transform(parts["body"][0]).tolist()
        pg.draw.polygon(surf, colour, body)
        for wheel in parts["wheels"]:
            pg.draw.polygon(surf, WHEEL, self.transform(wheel).tolist())
        pg.draw.polygon(surf, WINDSHIELD, self.transform(parts["windshield"][0]).tolist())
        for light in parts["lights"]:
            pg.draw.polygon(surf, HEADLIGHT, self.transform(light).tolist())
        pg.draw.aalines(surf, WHEEL, True, body)

    def _draw_legend(self, pg: Any, surf: pygame.Surface) -> None:
        """The trail's colour map, bottom-left: a bar from 0 to `speed_range_mps` with ticks in m/s."""
        small = _font(max(11, round(self.font_px * 0.72)))
        bar_w, bar_h = max(80, self.size[0] // 6), max(8, self.font_px // 2)
        pad = 6
        title = small.render("trail speed (m/s)", True, TEXT)
        box_w = bar_w + 2 * pad + 16
        box_h = title.get_height() + bar_h + small.get_height() + 3 * pad
        left, top = 8, self.size[1] - box_h - 8
        panel = pg.Surface((box_w, box_h), pg.SRCALPHA)
        panel.fill((*PANEL, 200))
        surf.blit(panel, (left, top))
        surf.blit(title, (left + pad, top + pad))
        bar_top = top + 2 * pad + title.get_height()
        x0 = left + pad + 8
        colours = speed_colours(np.linspace(0, self.speed_range_mps, bar_w), self.speed_range_mps)
        for i, colour in enumerate(colours.tolist()):
            pg.draw.line(surf, colour, (x0 + i, bar_top), (x0 + i, bar_top + bar_h - 1))
        for frac in (0.0, 0.5, 1.0):
            tick = small.render(f"{frac * self.speed_range_mps:g}", True, TEXT)
            x = x0 + round(frac * (bar_w - 1))
            pg.draw.line(surf, TEXT, (x, bar_top + bar_h), (x, bar_top + bar_h + 2))
            surf.blit(tick, (x - tick.get_width() // 2, bar_top + bar_h + 3))

    def _draw_hud(self, pg: Any, surf: pygame.Surface, fields: Sequence[tuple[str, str]]) -> None:
        """The top bar: one cell per field, a small grey label over a large white value."""
        pg.draw.rect(surf, PANEL, (0, 0, self.size[0], self.hud_height_px))
        if not fields:
            return
        value_font, label_font = _font(self.font_px), _font(max(12, round(self.font_px * 0.68)))
        cell = self.size[0] / len(fields)
        room = cell - 12
        for i, (label, value) in enumerate(fields):
            x = round(i * cell) + 8
            surf.blit(label_font.render(label, True, LABEL), (x, 4))
            text = value_font.render(value, True, TEXT)
            size = self.font_px
            while text.get_width() > room and size > 12:  # a long value shrinks rather than run into the next
                size -= 2
                text = _font(size).render(value, True, TEXT)
            top = 4 + label_font.get_linesize() + (value_font.get_height() - text.get_height()) // 2
            surf.blit(text, (x, top))

    def _draw_insets(self, pg: Any, surf: pygame.Surface, insets: Sequence[Inset]) -> None:
        bottom = self.size[1] - 8
        for inset in insets:
            if inset.kind == "camera":
                image = self._camera_image(pg, inset)
            elif inset.kind == "lidar":
                image = self._lidar_image(pg, inset)
            else:
                image = self._readout_image(pg, inset)
            small = _font(max(11, round(self.font_px * 0.72)))
            label = small.render(inset.label or self._inset_label(inset), True, TEXT)
            w = max(image.get_width(), label.get_width()) + 8
            h = image.get_height() + label.get_height() + 10
            left, top = self.size[0] - w - 8, bottom - h
            pg.draw.rect(surf, PANEL, (left, top, w, h))
            surf.blit(label, (left + 4, top + 3))
            surf.blit(image, (left + 4, top + label.get_height() + 6))
            bottom = top - 6

    @staticmethod
    def _inset_label(inset: Inset) -> str:
        if inset.kind == "camera":
            h, w = np.shape(inset.data)[:2]
            stereo = np.ndim(inset.data) == 3 and np.shape(inset.data)[2] == 2
            return f"{'stereo camera' if stereo else 'camera'} {w}x{h}"
        if inset.kind == "readout":
            return f"observation ({len(inset.data)} values)"
        fov = "" if inset.angles_rad is not None else f", {inset.fov_deg:g} deg"
        return f"lidar {len(inset.data)} beams{fov}"

    def _camera_size_px(self, inset: Inset) -> tuple[int, int]:
        """Whole-pixel magnification (a 160x120 frame should look like one) within a quarter of the width."""
        h, w = np.shape(inset.data)[:2]
        if np.ndim(inset.data) == 3 and np.shape(inset.data)[2] == 2:
            w = 2 * w + 2
        k = min(0.25 * self.size[0] / w, 0.4 * self.size[1] / h)
        k = math.floor(k) if k >= 1 else k
        return max(1, round(w * k)), max(1, round(h * k))

    def _lidar_side_px(self) -> int:
        return round(min(0.2 * self.size[0], 0.3 * self.size[1]))

    def _readout_size_px(self, inset: Inset) -> tuple[int, int]:
        """A line of text per named value, else a bar chart as wide as the lidar's panel."""
        if inset.names is None:
            return self._lidar_side_px(), round(0.5 * self._lidar_side_px())
        line = _font(self._readout_font_px()).get_linesize()
        return round(min(0.24 * self.size[0], 13 * self._readout_font_px())), line * len(inset.names) + 4

    def _readout_font_px(self) -> int:
        return max(11, round(self.font_px * 0.62))

    def inset_width_px(self, inset: Inset) -> int:
        """Width of an inset's panel, pixels."""
        if inset.kind == "camera":
            return self._camera_size_px(inset)[0] + 8
        if inset.kind == "readout":
            return self._readout_size_px(inset)[0] + 8
        return self._lidar_side_px() + 8

    def _readout_image(self, pg: Any, inset: Inset) -> pygame.Surface:
        """Named values as lines (name left, value right), or unnamed ones as bars around a zero line."""
        width, height = self._readout_size_px(inset)
        image = pg.Surface((width, height))
        image.fill((16, 18, 22))
        values = np.nan_to_num(np.asarray(inset.data, dtype=np.float64))
        if inset.names is not None:
            font = _font(self._readout_font_px())
            for row, (name, value) in enumerate(zip(inset.names, values.tolist(), strict=True)):
                y = 2 + row * font.get_linesize()
                image.blit(font.render(name, True, LABEL), (4, y))
                text = font.render(f"{value:+.3f}", True, TEXT)
                image.blit(text, (width - text.get_width() - 4, y))
            return image
        top = float(np.abs(values).max()) or 1.0
        zero = height / 2 if values.min() < 0 else height - 3
        span = (height / 2 - 3) if values.min() < 0 else height - 6
        bar = width / max(len(values), 1)
        pg.draw.line(image, (70, 76, 86), (0, zero), (width, zero))
        for k, value in enumerate(values.tolist()):
            h = value / top * span
            rect = (round(k * bar), round(min(zero, zero - h)), max(1, round(bar) - 1), max(1, round(abs(h))))
            pg.draw.rect(image, READOUT_BAR, rect)
        return image

    def _camera_image(self, pg: Any, inset: Inset) -> pygame.Surface:
        rgb = inset.camera_rgb()
        image = pg.surfarray.make_surface(np.ascontiguousarray(rgb.transpose(1, 0, 2)))
        size = self._camera_size_px(inset)
        if size[0] >= rgb.shape[1]:
            return pg.transform.scale(image, size)
        return pg.transform.smoothscale(image, size)

    def _lidar_image(self, pg: Any, inset: Inset) -> pygame.Surface:
        """The scan seen from above, heading up: rays from the car to each range, a circle at max range."""
        side = self._lidar_side_px()
        image = pg.Surface((side, side))
        image.fill((16, 18, 22))
        ranges = np.asarray(inset.data, dtype=np.float64)
        finite = ranges[np.isfinite(ranges)]
        max_range = inset.max_range_m or (float(finite.max()) if len(finite) and finite.max() > 0 else 1.0)
        radius = side / 2 - 4
        centre = np.array([side / 2, side / 2])
        pg.draw.circle(image, (70, 76, 86), centre.tolist(), radius, 1)
        r = np.clip(np.nan_to_num(ranges, nan=max_range, posinf=max_range), 0, max_range) / max_range * radius
        angles = inset.beam_angles_rad()
        ends = centre + np.column_stack([-np.sin(angles) * r, -np.cos(angles) * r])
        for end, hit in zip(ends.tolist(), (ranges < max_range).tolist(), strict=True):
            pg.draw.line(image, RAY if hit else (60, 110, 125), centre.tolist(), end)
            if hit:
                pg.draw.circle(image, TEXT, end, 2)
        cx, cy = side / 2, side / 2
        pg.draw.polygon(image, CAR_COLOURS[0], [(cx, cy - 9), (cx - 5, cy + 6), (cx + 5, cy + 6)])
        return image
