"""The lidar observations: DeepRacer's LIDAR, SECTOR_LIDAR and DISCRETIZED_SECTOR_LIDAR, and an F1TENTH-style
scan, for n cars at once.

What the lidar sees. A real 2-D lidar cannot see tape on a floor; the simulated one treats the two border
polylines as walls, as DeepRacer-style lidar models and F1TENTH-style training (where the track is bounded by
walls) both assume: a beam's range is the distance from the sensor to the first crossing of either border
(inner or outer), from whichever side the sensor is on, clipped to the sensor's [min, max]. Nothing else is
seen (no objects, no other cars, not the car's own body).

DeepRacer's definitions, from the simulator's source (aws-deepracer-community/deepracer-simapp, simapp 6.x):

- Sensor (`bundle/markov/sensors/constants.py`, the Gazebo ray sensor of `racecar.launch`): 64 samples from
  -2.61799 to +2.61799 rad (300°, both ends included: 63 steps of 4.76°), range 0.15-12 m, Gaussian noise of
  s.d. 0.01 m (`LIDAR_360_DEGREE_*`).
- Mount (`bundle/urdf/deepracer/deepracer_single_cam_lidar.urdf`, joint `hokuyo_joint`): 0.02913 m ahead of
  the chassis origin (the mid-point between the axles, as here), yawed 3.1416 rad: the sensor looks
  backwards. Beam 0 points 30° left of straight ahead, the beams sweep counter-clockwise over the left side,
  the rear (between beams 31 and 32) and the right side, and beam 63 points 30° right of ahead; the 60° in
  front of the car are a blind spot (the camera sees there).
- LIDAR (`bundle/markov/sagemaker_graph_manager.py`: `ObservationClippingFilter(0.15, 1.0)`;
  `bundle/markov/sensors/utils.py`: 64 values, low 0.15, high 1.0): the 64 ranges clipped to [0.15, 1.0] m.
- SECTOR_LIDAR (`sagemaker_graph_manager.py`: `ObservationSectorDiscretizeFilter(num_sectors=8,
  num_values_per_sector=1, clipping_dist=0.5)`, constants in `bundle/markov/environments/constants.py`; older
  simulators' `ObservationBinarySectorFilter` gives the same values): 8 sectors of 8 consecutive beams; a
  sector is 1.0 when its nearest range is < 0.5 m, else 0.0.
- DISCRETIZED_SECTOR_LIDAR (`bundle/markov/filters/observation/observation_sector_discretize_filter.py`,
  defaults and checks in `bundle/markov/boto/s3/constants.py` `DiscretizedSectorLidarDefaults` and
  `bundle/markov/boto/s3/files/model_metadata.py`): model_metadata's `lidar_config` = {num_sectors (divides
  64; default 8), num_values_per_sector (>= 1; default 8), clipping_dist (clamped to [0.15, 12]; default
  2.0)}. Per sector: d = min(nearest range, clipping_dist), i = floor(d / (clipping_dist /
  num_values_per_sector)); the sector's num_values_per_sector outputs are one-hot at i, all zero when
  i == num_values_per_sector (nothing nearer than clipping_dist). Output: num_sectors x num_values_per_sector
  values in {0, 1}.

`scan` is an F1TENTH-style scan, after the Hokuyo UST-10LX those cars carry: 1081 beams over 270° (0.25°
apart, forward facing, beam 0 on the right), 0.06-10 m, mounted at the chassis origin (`mount_x_m` moves it).

Noise: each range gets Gaussian noise of s.d. sqrt(noise_std_m² + lidar_noise_m²), `noise_std_m` the sensor's
(0 unless given; DeepRacer's Gazebo sensor uses `DEEPRACER_NOISE_STD_M`) and `lidar_noise_m` the car's
per-episode randomisation draw. In an environment the noise comes from `sim.sensors.noise` at each car's noise
key (repeatable with the seed, independent of batching); a sensor used alone draws from its own generator. The noisy range
is clipped to [min, max] (Gazebo clamps to the sensor's limits, then the observation filters apply). No noise
is drawn when both are zero. The sensor's 0.01 m "range resolution" setting is not modelled.

How ranges are computed: exactly, by binning border segments into beams (see `BorderRaycaster`). Sphere
tracing on a distance field was measured first (2 cm raster, conservative steps, exact refinement on the
nearest segments): ~130,000 scans/s at n = 1,024, dominated by beams grazing a border, which need many steps
(and many numpy calls for small batches). A table of first hits per cell and direction would need tens of MB
per track and seconds to build. Binning costs ~30 candidate segments and ~50 segment-beam intersections per
car, all exact. Measured (one core of this project's CI machine, `render` of DeepRacer's LIDAR, cars spread
over the road, headed roughly along it): 390,000-470,000 scans/s at n = 256 and 460,000-570,000 at n = 1,024
on the three DeepRacer tracks; 300,000-370,000 with the `light` randomisation's range noise (drawing the
normals costs ~10 ns a beam); ~10,000 for single cars (~0.1 ms of call overhead); SECTOR_LIDAR 490,000-740,000
and DISCRETIZED_SECTOR_LIDAR (2 m reach) 200,000-240,000; the 1,081-beam scan 15,000-18,000 scans/s.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from contracts.vocabulary import LIDAR_KINDS
from sim.errors import EnvConfigError
from sim.randomization import EpisodeRandomization
from sim.sensors.base import Poses
from sim.sensors.noise import shared_noise_table
from sim.sensors.raycast import BeamFan, border_raycaster
from sim.tracks.track import Track

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- DeepRacer's numbers

#: Beams of DeepRacer's lidar (`LIDAR_360_DEGREE_SAMPLE`, `TRAINING_LIDAR_SIZE`).
DEEPRACER_N_BEAMS = 64
#: Half the field of view, radians (`LIDAR_360_DEGREE_MAX_ANGLE`; the minimum is its negative).
DEEPRACER_HALF_FOV_RAD = 2.61799
#: The sensor's range limits, metres (`LIDAR_360_DEGREE_MIN_RANGE`, `LIDAR_360_DEGREE_MAX_RANGE`).
DEEPRACER_MIN_RANGE_M = 0.15
DEEPRACER_MAX_RANGE_M = 12.0
#: The LIDAR observation's upper clip, metres (`ObservationClippingFilter(0.15, 1.0)`).
DEEPRACER_LIDAR_CLIP_M = 1.0
#: Gazebo's range noise, metres (`LIDAR_360_DEGREE_NOISE_STDDEV`); pass it as `noise_std_m` to mirror it.
DEEPRACER_NOISE_STD_M = 0.01
#: Mount: ahead of the chassis origin, metres, and yaw, radians (URDF `hokuyo_joint` xyz/rpy).
DEEPRACER_MOUNT_X_M = 0.02913
DEEPRACER_MOUNT_YAW_RAD = 3.1416
#: SECTOR_LIDAR: sectors and the distance under which a sector reads 1 (`NUMBER_OF_LIDAR_SECTORS`,
#: `SECTOR_LIDAR_CLIPPING_DIST`).
SECTOR_LIDAR_SECTORS = 8
SECTOR_LIDAR_CLIP_M = 0.5
#: DISCRETIZED_SECTOR_LIDAR defaults (`DiscretizedSectorLidarDefaults`), model_metadata `lidar_config` keys.
DEFAULT_LIDAR_CONFIG: dict[str, Any] = {"num_sectors": 8, "num_values_per_sector": 8, "clipping_dist": 2.0}

# ----------------------------------------------------------------------------- F1TENTH's scan

SCAN_N_BEAMS = 1081
SCAN_FOV_DEG = 270.0
SCAN_MIN_RANGE_M = 0.06
SCAN_MAX_RANGE_M = 10.0

#: Ranges are computed this far beyond the largest value an observation can show, in noise s.d.s, so that a
#: true range beyond the computed reach could not be pulled under it by noise (plus a fixed 2 cm).
NOISE_MARGIN_SDS = 6.0


# ----------------------------------------------------------------------------- DeepRacer's sector filters


def sector_occupancy(ranges_m: np.ndarray, num_sectors: int, clip_m: float) -> np.ndarray:
    """SECTOR_LIDAR from ranges (n, B): per sector of B / num_sectors consecutive beams, 1.0 when its nearest
    range is < `clip_m`, else 0.0. (n, num_sectors) float32."""
    n, beams = ranges_m.shape
    nearest = ranges_m.reshape(n, num_sectors, beams // num_sectors).min(axis=2)
    return (nearest.astype(np.float64) < clip_m).astype(np.float32)


def discretized_sectors(
    ranges_m: np.ndarray, num_sectors: int, num_values_per_sector: int, clip_m: float
) -> np.ndarray:
    """DISCRETIZED_SECTOR_LIDAR from ranges (n, B): per sector, the nearest range d (capped at `clip_m`) one-hot
    encoded at floor(d / (clip_m / num_values_per_sector)), all zeros when nothing is nearer than `clip_m`.
    (n, num_sectors * num_values_per_sector) float32, sector-major. Arithmetic in float64 on the float32
    ranges, as DeepRacer's filter does on a LaserScan's float32 ranges."""
    n, beams = ranges_m.shape
    nearest = ranges_m.reshape(n, num_sectors, beams // num_sectors).min(axis=2).astype(np.float64)
    np.minimum(nearest, clip_m, out=nearest)
    level = np.floor(nearest / (clip_m / num_values_per_sector)).astype(np.intp)
    one_hot = level[:, :, None] == np.arange(num_values_per_sector)
    return one_hot.reshape(n, num_sectors * num_values_per_sector).astype(np.float32)


# ----------------------------------------------------------------------------- the sensor


@dataclass(frozen=True)
class _KindDefaults:
    n_beams: int
    fov_rad: float
    min_range_m: float
    max_range_m: float
    mount_x_m: float
    mount_yaw_rad: float


_DEEPRACER = dict(
    n_beams=DEEPRACER_N_BEAMS,
    fov_rad=2 * DEEPRACER_HALF_FOV_RAD,
    min_range_m=DEEPRACER_MIN_RANGE_M,
    mount_x_m=DEEPRACER_MOUNT_X_M,
    mount_yaw_rad=DEEPRACER_MOUNT_YAW_RAD,
)
_DEFAULTS = {
    "lidar": _KindDefaults(**_DEEPRACER, max_range_m=DEEPRACER_LIDAR_CLIP_M),
    "sector_lidar": _KindDefaults(**_DEEPRACER, max_range_m=DEEPRACER_MAX_RANGE_M),
    "discretized_sector_lidar": _KindDefaults(**_DEEPRACER, max_range_m=DEEPRACER_MAX_RANGE_M),
    "scan": _KindDefaults(
        SCAN_N_BEAMS, math.radians(SCAN_FOV_DEG), SCAN_MIN_RANGE_M, SCAN_MAX_RANGE_M, 0.0, 0.0
    ),
}


def _lidar_config(
    config: dict[str, Any] | None, n_beams: int, min_m: float, max_m: float
) -> tuple[int, int, float]:
    """DeepRacer's `lidar_config` checks (model_metadata.py) and clamping (the filter): (sectors, values, clip)."""
    merged = {**DEFAULT_LIDAR_CONFIG, **(config or {})}
    unknown = set(merged) - set(DEFAULT_LIDAR_CONFIG)
    if unknown:
        raise EnvConfigError(
            f"lidar_config: unknown key(s) {sorted(unknown)}; expected {sorted(DEFAULT_LIDAR_CONFIG)}"
        )
    try:
        sectors = int(merged["num_sectors"])
        values = int(merged["num_values_per_sector"])
        clip = float(merged["clipping_dist"])
    except (TypeError, ValueError) as exc:
        raise EnvConfigError(f"lidar_config: expected numbers, got {merged} ({exc})") from None
    if sectors <= 0 or n_beams % sectors:
        raise EnvConfigError(f"lidar_config: num_sectors must divide the {n_beams} beams, got {sectors}")
    if values < 1:
        raise EnvConfigError(f"lidar_config: num_values_per_sector must be >= 1, got {values}")
    return sectors, values, min(max(clip, min_m), max_m)


class LidarSensor:
    """A 2-D lidar on each of n cars (see the module docstring for what each kind mirrors).

    Args:
        track: the track whose borders the beams hit.
        kind: `lidar` (ranges clipped to [min, max]: DeepRacer's LIDAR by default), `sector_lidar`,
            `discretized_sector_lidar` (DeepRacer's sector filters over the raw ranges), or `scan` (F1TENTH).
        n_beams, fov_deg, min_range_m, max_range_m: the beam fan and range limits; None takes the kind's
            default (DeepRacer: 64 beams over 300°, 0.15-1.0 m for `lidar` — the observation's clip — and
            0.15-12 m for the sector kinds; scan: 1081 beams over 270°, 0.06-10 m).
        noise_std_m: the sensor's own Gaussian range noise, metres (0: none; DeepRacer's is 0.01).
        mount_x_m, mount_yaw_deg: the sensor's position ahead of the chassis origin and its yaw (the fan's
            centre); None takes DeepRacer's backward-looking mount for the DeepRacer kinds, the chassis origin
            facing forward for `scan`.
        lidar_config: DISCRETIZED_SECTOR_LIDAR's model_metadata `lidar_config` (defaults 8 sectors, 8 values,
            2.0 m).
        randomization: per-car episode draws; `lidar_noise_m[idx]` adds range noise per car.
        rng: a Generator or seed for the noise (None: fresh entropy).

    `space` is one car's reading: Box float32 metres (n_beams,) for `lidar`/`scan`, Box of 0/1 float32
    (sectors,) or (sectors * values,) for the sector kinds (DeepRacer's shapes and dtypes). `ranges()` gives
    the noisy clipped ranges of every kind; `render()` the observation.
    """

    def __init__(
        self,
        track: Track,
        *,
        kind: str = "lidar",
        n_beams: int | None = None,
        fov_deg: float | None = None,
        min_range_m: float | None = None,
        max_range_m: float | None = None,
        noise_std_m: float = 0.0,
        mount_x_m: float | None = None,
        mount_yaw_deg: float | None = None,
        lidar_config: dict[str, Any] | None = None,
        randomization: EpisodeRandomization | None = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        if kind not in _DEFAULTS:
            raise EnvConfigError(f"lidar kind: expected one of {LIDAR_KINDS}, got {kind!r}")
        d = _DEFAULTS[kind]
        self.kind = kind
        self.n_beams = int(d.n_beams if n_beams is None else n_beams)
        fov_rad = d.fov_rad if fov_deg is None else math.radians(fov_deg)
        self.min_range_m = float(d.min_range_m if min_range_m is None else min_range_m)
        self.max_range_m = float(d.max_range_m if max_range_m is None else max_range_m)
        self.mount_x_m = float(d.mount_x_m if mount_x_m is None else mount_x_m)
        mount_yaw = d.mount_yaw_rad if mount_yaw_deg is None else math.radians(mount_yaw_deg)
        self.noise_std_m = float(noise_std_m)
        if self.n_beams < 1:
            raise EnvConfigError(f"lidar n_beams: expected >= 1, got {self.n_beams}")
        if not 0 < fov_rad <= 2 * math.pi + 1e-9:
            raise EnvConfigError(f"lidar fov_deg: expected in (0, 360], got {math.degrees(fov_rad):g}")
        if not 0 <= self.min_range_m < self.max_range_m:
            raise EnvConfigError(
                f"lidar ranges: expected 0 <= min_range_m < max_range_m, got {self.min_range_m}, {self.max_range_m}"
            )
        if not self.noise_std_m >= 0:
            raise EnvConfigError(f"lidar noise_std_m: expected >= 0, got {noise_std_m}")
        if lidar_config is not None and kind != "discretized_sector_lidar":
            raise EnvConfigError(f"lidar_config applies to discretized_sector_lidar only, not {kind!r}")
        self.fan = BeamFan.centred(self.n_beams, fov_rad, mount_yaw)
        self.randomization = randomization
        self.rng = np.random.default_rng(rng)
        self._noise_table = shared_noise_table()

        # What the observation can show, and so how far beams must be traced.
        if kind == "sector_lidar":
            if self.n_beams % SECTOR_LIDAR_SECTORS:
                raise EnvConfigError(
                    f"sector_lidar: {SECTOR_LIDAR_SECTORS} sectors must divide n_beams={self.n_beams}"
                )
            self.sectors = (SECTOR_LIDAR_SECTORS, 1, min(SECTOR_LIDAR_CLIP_M, self.max_range_m))
            self.space = spaces.Box(0.0, 1.0, (SECTOR_LIDAR_SECTORS,), dtype=np.float32)
        elif kind == "discretized_sector_lidar":
            self.sectors = _lidar_config(lidar_config, self.n_beams, self.min_range_m, self.max_range_m)
            self.space = spaces.Box(0.0, 1.0, (self.sectors[0] * self.sectors[1],), dtype=np.float32)
        else:
            self.sectors = None
            self.space = spaces.Box(self.min_range_m, self.max_range_m, (self.n_beams,), dtype=np.float32)
        shown_m = self.max_range_m if self.sectors is None else self.sectors[2]
        self.reach_m = shown_m + NOISE_MARGIN_SDS * self._max_noise_std() + 0.02
        self._caster = border_raycaster(track, round(self.reach_m, 6))

    def _max_noise_std(self) -> float:
        """The largest noise s.d. any car can get (the randomisation preset's upper bound included)."""
        upper = self.randomization.preset.lidar_noise_m[1] if self.randomization is not None else 0.0
        return math.hypot(self.noise_std_m, upper)

    def seed(self, seed: int | None) -> None:
        """Restart the noise generator (environments call this from `reset(seed=...)`)."""
        self.rng = np.random.default_rng(seed)

    @property
    def beam_angles_rad(self) -> np.ndarray:
        """(n_beams,) the beams' angles in the car frame (+ = left of ahead), in (-π, π]."""
        return self.fan.angles_rad

    def _noise_std(self, idx: np.ndarray | slice, n: int) -> np.ndarray | None:
        """(n,) per-car noise s.d., or None when no car gets noise."""
        r = self.randomization
        if r is not None and not r.neutral:
            drawn = np.asarray(r.lidar_noise_m[idx], dtype=np.float64)
            if drawn.any():
                return np.sqrt(drawn * drawn + self.noise_std_m**2)
        return np.full(n, self.noise_std_m) if self.noise_std_m > 0 else None

    def ranges(self, poses: Poses, idx: np.ndarray | slice) -> np.ndarray:
        """(n, n_beams) float32 ranges, metres, noisy and clipped to [min_range_m, max_range_m]. Beyond
        `reach_m` a beam reads `max_range_m`. `idx`: the cars' indices (for their randomisation draws)."""
        c, s = poses.cos_yaw, poses.sin_yaw
        x = poses.x_m + c * self.mount_x_m  # the sensor, on the car's axis
        y = poses.y_m + s * self.mount_x_m
        out = self._caster.cast(x, y, c, s, self.fan)
        std = self._noise_std(idx, len(out))
        if std is not None:
            if poses.noise_key is not None:
                noise = self._noise_table.windows(poses.noise_key, out.shape[1])
            else:
                noise = self.rng.standard_normal(out.shape, dtype=np.float32)
            noise *= std.astype(np.float32)[:, None]
            out += noise  # +inf stays +inf: nothing within reach reads max_range
        np.maximum(out, np.float32(self.min_range_m), out=out)
        np.minimum(out, np.float32(self.max_range_m), out=out)
        return out

    def render(self, poses: Poses, idx: np.ndarray | slice) -> np.ndarray:
        """The observations of the cars at `poses`: (n, *space.shape) float32."""
        ranges = self.ranges(poses, idx)
        if self.sectors is None:
            return ranges
        sectors, values, clip = self.sectors
        if self.kind == "sector_lidar":
            return sector_occupancy(ranges, sectors, clip)
        return discretized_sectors(ranges, sectors, values, clip)
