"""The car runtime's `sim` hardware backend: one simulated car that the car runtime drives like a real one.

Why here and not in `device/hal/`: `import sim` loads gymnasium (it registers the environments), and the car
package `device` must never import gymnasium (import-linter follows indirect imports, and a car installs only
`pitlane[device]`). These classes implement the HAL interfaces in `contracts.hal` (Camera, Drive, Clock,
LapTimer — structural protocols) and return its `Frame` and `LapEvent` records; `sim` and `device` both stand on
`contracts` and never import each other. The composition root (`pitlane drive`) wires them together.

The parts share one `SimWorld` (a `BatchedSim` with n = 1 from `sim.envs.setup.build_parts`):

- `SimCamera.capture()` renders the model's observation kind (state, camera, lidar, ...) with the simulator's
  sensors from the car's current pose;
- `SimDrive.set_pulses()` is a simulated servo and ESC: the pulses (µs) go back through the car's calibration
  (`pulse_to_command`, given by the caller) to a steering angle and a speed, so the calibration is exercised;
- `SimClock.sleep_until()` is where simulated time passes: the world steps to that time with the held command,
  in real time (sleeping; the world keeps moving while the loop is late) or as fast as possible;
- `SimLapTimer.poll()` reports laps at each start-line crossing (source `sim`). Race handling follows
  `sim.evaluation`: an off-track (or reversed / immobilised) car is put back on the centre line where it left
  and counted in that lap; laps run back to back.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from contracts.hal import Frame, LapEvent
from sim.envs.setup import build_parts
from sim.observations import batch_take
from sim.rules import EpisodeStatus

log = logging.getLogger(__name__)

_CAR = np.array([0])
_NO_SIM_TIME_LIMIT_S = 1e9  # laps run back to back; the car runtime decides when to stop
_RESET_STATUSES = (EpisodeStatus.OFF_TRACK, EpisodeStatus.REVERSED, EpisodeStatus.IMMOBILIZED)


class SimWorld:
    """One simulated car on a track (driven the other way when `reverse`), stepped at `control_rate_hz`.
    Thread-safe for the command only.

    track_label: the track's name as the user sees it (a route file's stem); track_name: the same name as lap
    reports carry it, or None when it is not a protocol id; track_length_m: the centre line's length (m)."""

    def __init__(
        self,
        car: Any,
        *,
        track: str | Path = "reinvent_base",
        reverse: bool = False,
        observation: str = "state",
        control_rate_hz: float = 15.0,
        seed: int = 0,
    ) -> None:
        self.parts = build_parts(
            1,
            track=track,
            car=car,
            observation=observation,
            start="start_line",
            reverse=reverse,
            control_rate_hz=control_rate_hz,
            time_limit_s=_NO_SIM_TIME_LIMIT_S,
        )
        sim = self.parts.sim
        sim.seed(0, np.random.default_rng(seed))
        sim.reset(_CAR)
        self.dt_s = sim.options.dt_s
        self.track_label = sim.forward.name
        self.track_length_m = sim.forward.length_m
        # The name lap reports carry (protocol ids are letters, digits, - and _: a file's odd name is left out).
        name = sim.forward.name
        self.track_name = name if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) else None
        self.steps = 0
        self.command = (0.0, 0.0)  # (steering_deg, speed_mps) the servo and ESC hold
        self._params = sim.standing(_CAR)
        self._lap_steps = 0
        self._offtrack = 0
        self._resets = 0
        self._laps: list[LapEvent] = []
        self._lock = threading.Lock()

    @property
    def time_s(self) -> float:
        return self.steps * self.dt_s

    def observe(self) -> np.ndarray:
        """The car's observation now (one car: no batch axis)."""
        return batch_take(self.parts.observe(self._params, slice(0, 1)), 0)

    def step(self) -> None:
        """Advance one control step with the held command; count laps and put the car back after off-tracks."""
        steer_deg, speed_mps = self.command
        sim = self.parts.sim
        outcome = sim.step(np.array([steer_deg]), np.array([speed_mps]))
        self.steps += 1
        self._lap_steps += 1
        status = EpisodeStatus(int(outcome.status[0]))
        params = outcome.params
        if status is EpisodeStatus.LAP_COMPLETE:
            lap_time_s = round(self._lap_steps * self.dt_s, 9)
            lap = LapEvent(lap_time_s, "sim", self._offtrack, self._resets, self.track_name)
            with self._lock:
                self._laps.append(lap)
            self._lap_steps, self._offtrack, self._resets = 0, 0, 0
            sim.continue_lap(0, float(params.projection_distance[0]))
        elif status in _RESET_STATUSES:
            self._resets += 1
            self._offtrack += status is EpisodeStatus.OFF_TRACK
            sim.place_back(0, float(params.progress[0]))
            params = sim.standing(_CAR)
        self._params = params

    def take_laps(self) -> list[LapEvent]:
        with self._lock:
            laps, self._laps = self._laps, []
        return laps


class SimCamera:
    """Renders the model's observation from the world (float32 state, uint8 camera, ranges for lidar)."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world

    def capture(self) -> Frame:
        return Frame(np.ascontiguousarray(self.world.observe()), time.monotonic())

    def close(self) -> None:
        pass


class SimDrive:
    """A simulated servo and ESC: pulses (µs) -> (steering deg, speed m/s) through `pulse_to_command`."""

    def __init__(self, world: SimWorld, pulse_to_command: Callable[[int, int], tuple[float, float]]) -> None:
        self.world = world
        self._to_command = pulse_to_command
        self.pulses: tuple[int, int] | None = None

    def set_pulses(self, steering_us: int, throttle_us: int) -> None:
        self.pulses = (int(steering_us), int(throttle_us))
        self.world.command = self._to_command(int(steering_us), int(throttle_us))  # one atomic assignment

    def close(self) -> None:
        pass


class SimClock:
    """The loop's clock. Fast: simulated seconds, `sleep_until` steps the world to the time at once.
    Real time: seconds since start on the monotonic clock; `sleep_until` sleeps, then steps the world until
    it has caught up with the wall clock (a late loop sees the car travel on, as a real car would)."""

    def __init__(self, world: SimWorld, *, realtime: bool) -> None:
        self.world = world
        self.realtime = realtime
        self._t0 = time.monotonic()

    def now_s(self) -> float:
        return time.monotonic() - self._t0 if self.realtime else self.world.time_s

    def sleep_until(self, t_s: float) -> None:
        if self.realtime:
            delay_s = t_s - self.now_s()
            if delay_s > 0:
                time.sleep(delay_s)
            t_s = max(t_s, self.now_s())
        world = self.world
        while world.time_s + world.dt_s / 2 <= t_s:
            world.step()


class SimLapTimer:
    """Laps at start-line crossings of the simulated car (source `sim`)."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world

    def poll(self) -> list[LapEvent]:
        return self.world.take_laps()

    def close(self) -> None:
        pass


def open_sim_parts(
    car: Any,
    pulse_to_command: Callable[[int, int], tuple[float, float]],
    *,
    observation: str,
    track: str | Path = "reinvent_base",
    reverse: bool = False,
    control_rate_hz: float = 15.0,
    realtime: bool = False,
    seed: int = 0,
) -> tuple[SimCamera, SimDrive, SimClock, SimLapTimer, SimWorld]:
    """The four parts of the `sim` backend over one new world (see SimWorld for `track` and `reverse`)."""
    world = SimWorld(
        car, track=track, reverse=reverse, observation=observation, control_rate_hz=control_rate_hz, seed=seed
    )
    return (
        SimCamera(world),
        SimDrive(world, pulse_to_command),
        SimClock(world, realtime=realtime),
        SimLapTimer(world),
        world,
    )
