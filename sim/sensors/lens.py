"""Lens models of the car file's `[camera] lens`: which ray each pixel sees, and where a ray lands.

`pinhole`: a pixel `d` pixels from the principal point sees the ray at atan(d / f) off the optical axis.
`fisheye`: OpenCV's fisheye model (`cv2.fisheye`, Kannala-Brandt): a ray `theta` off the axis lands
f * theta_d pixels from the principal point, theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 +
k4 theta^8) (`contracts.car_file.fisheye_distorted_angle`, shared with the car file's check).

Why not OpenCV: it is not a dependency of the simulator (an 80 MB wheel for two formulas), and the camera
needs the model only while it builds its tables, on whole numpy arrays at once. `fisheye_project` follows
`cv::fisheye::projectPoints` (rotation and translation zero, skew `alpha` 0) so a car's calibration from
`cv2.fisheye.calibrate` (K, D) means here what it means there; `fisheye_angle` inverts the distortion as
`cv::fisheye::undistortPoints` does (Newton's method), from a table start so it converges for any angle the
car file accepts.

Camera frame: x right, y down, z forward (OpenCV's); pixel coordinates u right, v down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contracts.car_file import CameraConfig, fisheye_distorted_angle

Coefficients = tuple[float, float, float, float]


def fisheye_project(
    points: np.ndarray, focal_px: tuple[float, float], centre_px: tuple[float, float], k: Coefficients
) -> np.ndarray:
    """Pixel coordinates (..., 2) of camera-frame points (..., 3) (z forward, z > 0) through OpenCV's
    fisheye model with focal lengths (fx, fy) and principal point (cx, cy), pixels; as
    `cv2.fisheye.projectPoints(points, rvec=0, tvec=0, K, D=k)`."""
    p = np.asarray(points, dtype=np.float64)
    a, b = p[..., 0] / p[..., 2], p[..., 1] / p[..., 2]
    r = np.hypot(a, b)
    theta_d = fisheye_distorted_angle(np.arctan(r), k)
    scale = np.where(r > 1e-8, theta_d / np.maximum(r, 1e-8), 1.0)  # OpenCV's inv_r guard on the axis
    return np.stack([focal_px[0] * a * scale + centre_px[0], focal_px[1] * b * scale + centre_px[1]], axis=-1)


def fisheye_angle(theta_d: np.ndarray, k: Coefficients) -> np.ndarray:
    """The angle theta (radians) off the axis whose distorted angle is `theta_d` (the inverse of
    `fisheye_distorted_angle` on its rising part; clamped where the polynomial stops rising)."""
    theta_d = np.asarray(theta_d, dtype=np.float64)
    grid = np.linspace(0.0, math.pi, 4097)
    rising = fisheye_distorted_angle(grid, k)
    top = int(np.argmax(np.r_[np.diff(rising) <= 0, True]))  # last sample of the rising part
    grid, rising = grid[: top + 1], rising[: top + 1]
    theta = np.interp(theta_d, rising, grid)
    t_max = grid[-1]
    for _ in range(3):  # Newton from a start within 1e-6 rad: 3 steps reach float precision
        t2 = theta * theta
        slope = 1 + t2 * (3 * k[0] + t2 * (5 * k[1] + t2 * (7 * k[2] + t2 * 9 * k[3])))
        theta = np.clip(theta - (fisheye_distorted_angle(theta, k) - theta_d) / slope, 0.0, t_max)
    return theta


@dataclass(frozen=True)
class Lens:
    """A lens: `kind` ("pinhole" or "fisheye"), focal length (pixels, square pixels) and, for a fisheye,
    OpenCV's distortion coefficients. The principal point is the image centre."""

    kind: str
    focal_px: float
    fisheye_k: Coefficients = (0.0, 0.0, 0.0, 0.0)

    @classmethod
    def from_config(cls, camera: CameraConfig) -> Lens:
        if camera.lens == "fisheye":
            assert camera.fisheye_k is not None  # the car file requires it
            return cls("fisheye", camera.focal_px, tuple(camera.fisheye_k))
        return cls("pinhole", camera.focal_px)

    def rays(self, dx_px: np.ndarray, dy_px: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | float]:
        """Directions (right, down, forward) in the camera frame of pixels `dx_px` right of and `dy_px`
        below the principal point (arrays of one shape). Pinhole: not normalised, forward = 1.0; fisheye:
        unit vectors (a fisheye pixel may see 90° or more off the axis, where forward <= 0)."""
        if self.kind == "pinhole":
            return dx_px / self.focal_px, dy_px / self.focal_px, 1.0
        radius = np.hypot(dx_px, dy_px) / self.focal_px
        theta = fisheye_angle(radius, self.fisheye_k)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(radius > 1e-12, np.sin(theta) / (radius * self.focal_px), 1.0 / self.focal_px)
        return dx_px * scale, dy_px * scale, np.cos(theta)

    def angle_of_offset(self, d_px: np.ndarray) -> np.ndarray:
        """Angle (radians, signed) off the axis seen `d_px` from the principal point along a line through it
        (the centre column: rows)."""
        if self.kind == "pinhole":
            return np.arctan(d_px / self.focal_px)
        d = np.asarray(d_px, dtype=np.float64)
        return np.sign(d) * fisheye_angle(np.abs(d) / self.focal_px, self.fisheye_k)

    def offset_of_angle(self, angle_rad: np.ndarray) -> np.ndarray:
        """Inverse of `angle_of_offset`: pixels from the principal point (signed)."""
        if self.kind == "pinhole":
            return self.focal_px * np.tan(angle_rad)
        a = np.asarray(angle_rad, dtype=np.float64)
        return np.sign(a) * self.focal_px * fisheye_distorted_angle(np.abs(a), self.fisheye_k)
