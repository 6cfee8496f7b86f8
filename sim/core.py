"""`BatchedSim`: n cars on one track, stepped together — the only simulator loop.

Both gymnasium environments are views of this class (the single-car env is `BatchedSim(n=1)`, stepped with
`m=SCALARS`: the same code on Python floats, see `sim.fastmath`), so there is one copy of the physics, the
rules and the measurements. Each car has its own episode: its own start point, direction, counters, random
generator and (for Python reward files) its own reward module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim import dynamics, rules
from sim.errors import EnvConfigError
from sim.fastmath import ARRAYS, Math
from sim.measure import MODEL_POINT_AHEAD_M, Measurements, compute_current_progress
from sim.randomization import EpisodeRandomization, get_preset

if TYPE_CHECKING:
    from contracts.car_file import VehicleParams
    from sim.tracks.track import Track

START_MODES = ("round_robin", "start_line")


@dataclass(frozen=True)
class EpisodeOptions:
    """How episodes start and end.

    control_rate_hz: decisions per second (DeepRacer: 15).
    time_limit_s: an episode is truncated after this much simulated time.
    start: "round_robin" — each new episode of a car starts `round_robin_advance` of a lap further on, from a
        slot its seed picks (DeepRacer training); "start_line" — always at the start line (evaluation).
    reverse: drive the track the other way. alternate_direction: flip direction every episode.
    randomization: domain-randomisation preset (`none`, `light`, `strong`, `eval-shift`; see
        `sim.randomization`), drawn per car per episode.
    """

    control_rate_hz: float = 15.0
    time_limit_s: float = 180.0
    start: str = "round_robin"
    round_robin_advance: float = 0.05
    reverse: bool = False
    alternate_direction: bool = False
    randomization: str = "none"

    def __post_init__(self) -> None:
        get_preset(self.randomization)  # a clear error for an unknown preset name
        if self.start not in START_MODES:
            raise EnvConfigError(f"start: expected one of {START_MODES}, got {self.start!r}")
        if not 1.0 <= self.control_rate_hz <= 1000.0:
            raise EnvConfigError(f"control_rate_hz: expected 1..1000 Hz, got {self.control_rate_hz}")
        if not self.time_limit_s > 0:
            raise EnvConfigError(f"time_limit_s: expected > 0 s, got {self.time_limit_s}")
        if not 0.0 < self.round_robin_advance <= 1.0:
            raise EnvConfigError(
                f"round_robin_advance: expected a lap fraction in (0, 1], got {self.round_robin_advance}"
            )

    @property
    def dt_s(self) -> float:
        return 1.0 / self.control_rate_hz


@dataclass
class StepOutcome:
    """What one step produced for all n cars: their measurements, status codes (rules.EpisodeStatus) per
    car; one car's Python numbers (an np.int8 status, bools) for a step with `m=SCALARS`."""

    params: Measurements
    status: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


class BatchedSim:
    """n cars driving one track. Arrays are indexed by car; `idx` arguments are integer index arrays."""

    def __init__(self, n: int, track: Track, vehicle: VehicleParams, options: EpisodeOptions) -> None:
        if n < 1:
            raise EnvConfigError(f"n_envs: expected at least 1 car, got {n}")
        if track.is_reversed:
            raise EnvConfigError("pass the track in its file's direction and set reverse=True instead")
        self.n = n
        self.forward = track
        self.backward = track.reversed()
        self.vehicle = vehicle
        self.options = options
        self.state = dynamics.VehicleState(n)
        self.randomization = EpisodeRandomization(n, options.randomization)
        self._base_lag = round(vehicle.latency_s * options.control_rate_hz)
        max_latency_s = vehicle.latency_s + self.randomization.preset.latency_ms[1] / 1000.0
        self.delay = dynamics.CommandDelay(n, self._base_lag, round(max_latency_s * options.control_rate_hz))
        self.counters = rules.EpisodeCounters(n)
        self.is_reversed = np.full(n, options.reverse)
        self.start_ndist = np.zeros(n)
        self.prev_progress = np.zeros(n)
        self.steps = np.ones(n)
        self.episode_time_s = np.zeros(n)
        self.sim_time_s = np.zeros(n)
        # sensor noise position (sim.sensors.noise): a per-car base the seed picks, plus steps ever taken
        self.clock_steps = np.zeros(n, dtype=np.int64)
        self.noise_base = np.arange(n, dtype=np.int64) << 32
        self.episode_index = np.zeros(n, dtype=np.int64)
        self.rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(n)]
        self._start_slot = np.zeros(n, dtype=np.int64)
        seg_yaw = np.arctan2(np.diff(track.waypoints[:, 1]), np.diff(track.waypoints[:, 0]))
        self._seg_cos, self._seg_sin = np.cos(seg_yaw), np.sin(seg_yaw)
        self._half_width = 0.5 * track.waypoint_widths_m
        # wheel centres in the car's frame: (4, 1) columns for the batched path, (x, y) floats for one car
        self._wheel_cols = (vehicle.wheel_positions_m[:, :1].copy(), vehicle.wheel_positions_m[:, 1:].copy())
        self._wheels_m = [tuple(p) for p in vehicle.wheel_positions_m.tolist()]
        self._wheel_reach_m = (
            float(np.sqrt(2.0) * np.hypot(*vehicle.wheel_positions_m.T).max()) + track.road.max_error_m + 1e-6
        )
        self._pose_cache: dict[tuple[bool, float], tuple[float, float, float]] = {}

    # ------------------------------------------------------------------ episodes

    def seed(self, i: int, rng: np.random.Generator) -> None:
        """Give car i its generator (from its env's seed) and pick its first round-robin slot from it."""
        self.rngs[i] = rng
        slots = max(1, round(1.0 / self.options.round_robin_advance))
        self._start_slot[i] = int(rng.integers(slots))
        self.noise_base[i] = int(rng.integers(1 << 40))
        self.episode_index[i] = 0

    def reset(self, idx: np.ndarray) -> list[tuple[bool, float]]:
        """Start a new episode for cars `idx` (at rest at their start poses, steps = 1).

        Returns each car's start key (reversed?, start fraction of the lap): cars with equal keys start in
        identical states, which lets an environment reuse their first observation.
        """
        idx = np.asarray(idx, dtype=np.intp)
        opts = self.options
        if opts.alternate_direction:
            self.is_reversed[idx] = opts.reverse ^ (self.episode_index[idx] % 2 == 1)
        if opts.start == "round_robin":
            slot = self._start_slot[idx] + self.episode_index[idx]
            self.start_ndist[idx] = (slot * opts.round_robin_advance) % 1.0
        else:
            self.start_ndist[idx] = 0.0
        keys = list(zip(self.is_reversed[idx].tolist(), self.start_ndist[idx].tolist(), strict=True))
        poses = np.array([self._start_pose(key) for key in keys]).reshape(len(idx), 3)
        self.state.place(idx, poses[:, 0], poses[:, 1], poses[:, 2])
        self._randomize(idx)
        self.episode_index[idx] += 1
        self.prev_progress[idx] = 0.0
        self.steps[idx] = 1.0
        self.episode_time_s[idx] = 0.0
        self.counters.clear(idx)
        self.delay.clear(idx)
        return keys

    def _randomize(self, idx: np.ndarray) -> None:
        """Draw this episode's randomised physics and sensor values for cars `idx` (nothing for `none`)."""
        rnd = self.randomization
        if rnd.neutral:
            return
        rnd.draw(idx, self.rngs)
        latency_s = self.vehicle.latency_s + rnd.latency_ms[idx] / 1000.0
        self.delay.set_lag(idx, np.round(latency_s * self.options.control_rate_hz).astype(np.intp))

    def _start_pose(self, key: tuple[bool, float]) -> tuple[float, float, float]:
        """(x_m, y_m, yaw_rad) of a start key; start keys repeat, so poses are computed once."""
        pose = self._pose_cache.get(key)
        if pose is None:
            track = self.backward if key[0] else self.forward
            pose = self._pose_cache[key] = track.pose_at(key[1] * track.length_m)
        return pose

    def noise_keys(self, idx: np.ndarray | slice) -> np.ndarray:
        """(n,) int64 noise keys of cars `idx` for sensors: new every step, repeatable with the seed."""
        return self.noise_base[idx] + self.clock_steps[idx]

    def standing(self, idx: np.ndarray | int, m: Math = ARRAYS) -> Measurements:
        """Measurements of cars `idx` as they stand, with a zero commanded action (as after `reset`); car
        `idx` (an int) in Python numbers with `m=SCALARS`."""
        zeros = 0.0 if m.scalar else np.zeros(len(idx))
        return self.measure(idx, zeros, zeros, m)

    def place_back(self, i: int, progress: float) -> None:
        """Put car i at rest on the centre line at `progress` (% of its lap from its start point), facing the
        driving direction, without starting a new episode (evaluation's reset after an off-track). The point
        DeepRacer measures (0.14 m ahead of the chassis) lands where the progress was: a reset neither gains
        nor loses distance. Restarts the reversed/immobilised counters and the command queue."""
        car = np.array([i])
        track = self.backward if self.is_reversed[i] else self.forward
        s_m = (self.start_ndist[i] + max(progress, 0.0) / 100.0) * track.length_m - MODEL_POINT_AHEAD_M
        x, y, yaw = track.pose_at(s_m)
        self.state.place(car, np.array([x]), np.array([y]), np.array([yaw]))
        self.counters.clear(car)
        self.delay.clear(car)
        # progress unwraps against the previous step's: measure the new pose against the old progress
        self.prev_progress[i] = float(self.standing(car).progress[0])

    def continue_lap(self, i: int, projection_m: float) -> None:
        """Car i crossed its start line and drives on (evaluation's back-to-back laps): the next lap counts from
        the line (progress = the part of a lap already past it, `projection_m` being the car's distance along
        the centre line in its driving direction), and a new DeepRacer episode starts for `steps` (the reward
        sees 2, 3, ... again) and the episode clock."""
        past = projection_m / self.forward.length_m - self.start_ndist[i]
        self.prev_progress[i] = 100.0 * past if 0.0 <= past < 0.5 else 0.0
        self.steps[i] = 1.0
        self.episode_time_s[i] = 0.0

    # ------------------------------------------------------------------ stepping

    def step(self, steer_deg: np.ndarray, speed_mps: np.ndarray, m: Math = ARRAYS) -> StepOutcome:
        """Apply each car's commanded steering (deg, + = left) and speed (m/s) for one control step.

        `m=SCALARS` steps the one car of a simulator of n = 1 with the same code on Python floats (the single
        environment's path, see `sim.fastmath`): the commands are floats, and so are the outcome's values
        (`params.as_arrays()` gives arrays). The state arrays are read and written as in the batched path.
        """
        if m.scalar and self.n != 1:
            raise EnvConfigError(f"a step on Python floats drives one car; this simulator has {self.n}")
        dt = self.options.dt_s
        rnd = self.randomization
        act_steer, act_speed = self.delay.push(m.radians(steer_deg), speed_mps, m)
        if rnd.neutral:
            travelled = dynamics.advance(self.state, act_steer, act_speed, self.vehicle, dt, None, m)
        else:
            act_steer = act_steer + m.radians(m.unbox(rnd.steering_trim_deg))
            grip_scale = m.unbox(rnd.grip_scale)
            travelled = dynamics.advance(self.state, act_steer, act_speed, self.vehicle, dt, grip_scale, m)
        self.steps = m.store(self.steps, m.unbox(self.steps) + 1.0)
        self.episode_time_s = m.store(self.episode_time_s, m.unbox(self.episode_time_s) + dt)
        self.sim_time_s = m.store(self.sim_time_s, m.unbox(self.sim_time_s) + dt)
        self.clock_steps = m.store(self.clock_steps, m.unbox(self.clock_steps) + 1)
        car = 0 if m.scalar else slice(None)
        params = self.measure(car, steer_deg, speed_mps, m)
        status = rules.judge(
            self.counters,
            params.progress,
            params.prev_progress,
            m.logical_not(params.is_offtrack),
            travelled,
            m.unbox(self.episode_time_s),
            self.options.time_limit_s,
            m,
        )
        self.prev_progress = m.store(self.prev_progress, params.progress)
        terminated = rules.is_terminal(status)
        truncated = status == rules.TIME_UP_CODE
        return StepOutcome(params, status, terminated, truncated)

    def measure(
        self, idx: np.ndarray | slice | int, steer_deg: np.ndarray, speed_mps: np.ndarray, m: Math = ARRAYS
    ) -> Measurements:
        """Measurements of cars `idx` in their current state, given their commanded action (with
        `m=SCALARS`: car `idx` (an int) and its commands as floats)."""
        st = self.state
        x, y, yaw = m.pick(st.x_m, idx), m.pick(st.y_m, idx), m.pick(st.yaw_rad, idx)
        rev = m.pick(self.is_reversed, idx)
        cos_yaw, sin_yaw = m.pick(st.cos_yaw, idx), m.pick(st.sin_yaw, idx)
        mx = x + MODEL_POINT_AHEAD_M * cos_yaw
        my = y + MODEL_POINT_AHEAD_M * sin_yaw
        proj = self.forward.centre_locator.project(mx, my, m)
        length = self.forward.length_m
        ndist = proj.s_m / length
        ndist = m.where(rev, m.where(ndist > 0.0, 1.0 - ndist, 0.0), ndist)
        prev_progress = m.copy(m.pick(self.prev_progress, idx))
        progress = compute_current_progress(ndist - m.pick(self.start_ndist, idx), prev_progress, m)
        all_on, any_on = self._wheels_on_road(x, y, cos_yaw, sin_yaw, m)
        return Measurements(
            forward=self.forward,
            backward=self.backward,
            x=mx,
            y=my,
            yaw_rad=yaw,
            speed=m.as_float(speed_mps),
            steering_angle=m.as_float(steer_deg),
            progress=progress,
            steps=m.copy(m.pick(self.steps, idx)),
            distance_from_center=proj.distance_m,
            all_wheels_on_track=all_on,
            is_offtrack=m.logical_not(any_on),
            is_reversed=m.copy(rev),
            projection_distance=ndist * length,
            sim_time=m.copy(m.pick(self.sim_time_s, idx)),
            centre_x=proj.px_m,
            centre_y=proj.py_m,
            segment=proj.segment,
            segment_t=proj.t,
            cos_yaw=cos_yaw,
            sin_yaw=sin_yaw,
            # a copy: step() replaces the array, but reset() and the evaluation write into it in place
            prev_progress=prev_progress,
            m=m,
        )

    def _wheels_on_road(
        self, x: np.ndarray, y: np.ndarray, cos_yaw: np.ndarray, sin_yaw: np.ndarray, m: Math = ARRAYS
    ) -> tuple[np.ndarray, np.ndarray]:
        """(all four wheel centres, any wheel centre) strictly inside the road polygon, (n,) bool each.

        The road's signed distance at the chassis centre decides most cars at once: the interpolated distance
        changes by at most sqrt(2) per metre, so wheels within reach of the centre are all on the road (or all
        off, each by more than the raster's error) when the centre's distance exceeds `_wheel_reach_m`. Only
        cars near an edge test each wheel.
        """
        road = self.forward.road
        centre = road.signed_distance(x, y, m)
        all_on = centre > 0.0
        any_on = m.copy(all_on)
        near_edge = m.flatnonzero(m.absolute(centre) <= self._wheel_reach_m)
        if not len(near_edge):
            return all_on, any_on
        if m.scalar:  # one car: each wheel's point as floats
            on = [road.on_road(*_wheel_point(x, y, cos_yaw, sin_yaw, wx, wy), m) for wx, wy in self._wheels_m]
            return all(on), any(on)
        wheels = road.on_road(
            *_wheel_point(
                x[near_edge], y[near_edge], cos_yaw[near_edge], sin_yaw[near_edge], *self._wheel_cols
            )
        )  # (4, cars near an edge)
        all_on[near_edge] = wheels.all(axis=0)
        any_on[near_edge] = wheels.any(axis=0)
        return all_on, any_on

    # ------------------------------------------------------------------ features for observations

    def track_frame(self, params: Measurements) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sin, cos of the heading error, lateral offset in half-widths, + = left of the centre line) of the
        cars in `params`, relative to the centre line in their driving direction; (n,) each (floats for
        `SCALARS` measurements)."""
        m = params.m
        seg = params.segment
        cos_t, sin_t = m.gather(self._seg_cos, seg), m.gather(self._seg_sin, seg)
        flip = m.where(params.is_reversed, -1.0, 1.0)  # driving the other way turns the track by pi
        sin_err = flip * (params.sin_yaw * cos_t - params.cos_yaw * sin_t)
        cos_err = flip * (params.cos_yaw * cos_t + params.sin_yaw * sin_t)
        cross = cos_t * (params.y - params.centre_y) - sin_t * (params.x - params.centre_x)
        return sin_err, cos_err, flip * cross / m.gather(self._half_width, seg)


def _wheel_point(x: Any, y: Any, cos_yaw: Any, sin_yaw: Any, wx: Any, wy: Any) -> tuple[Any, Any]:
    """A wheel centre (wx, wy) in the car's frame -> the world, for cars at (x, y) with heading (cos, sin):
    (n,) cars and (4, 1) wheels broadcast to (4, n); or floats."""
    return x + cos_yaw * wx - sin_yaw * wy, y + sin_yaw * wx + cos_yaw * wy
