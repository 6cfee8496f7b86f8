"""The control loop: capture -> exactly the model's input -> policy.act -> steering deg, speed m/s -> pulses
through the calibration -> actuate, at the configured rate.

Stage timings and glass-to-actuation latency are measured on the real monotonic clock (perf counters) even
when the backend's clock is simulated (`sim --fast`), so they always report this computer's compute time;
the loop's pacing and overruns use the backend's clock. An overrun is a step that ended after its slot: the
loop then starts the next step at once rather than trying to catch up (a car wants fresh light, not a burst).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from contracts.hal import Camera, Clock, LapEvent, LapTimer
from device.actuator import Actuator
from device.errors import ObservationMismatchError

log = logging.getLogger(__name__)


class Policy(Protocol):
    """What the loop drives with (device.policy.OnnxPolicy, or any object with this method)."""

    def act(self, obs: np.ndarray) -> tuple[float, float]: ...


@dataclass
class StepRecord:
    """One step: stage durations (ms), glass-to-actuation latency (ms), the command and its pulses."""

    capture_ms: float
    policy_ms: float
    actuate_ms: float
    latency_ms: float
    steering_deg: float
    speed_mps: float
    steering_us: int
    throttle_us: int


@dataclass
class LoopStats:
    """What a run of the loop measured. Times in ms; `rate_hz` is the achieved step rate on the loop clock."""

    target_hz: float
    steps: int = 0
    overruns: int = 0
    elapsed_s: float = 0.0
    wall_s: float = 0.0
    capture_ms: list[float] = field(default_factory=list)
    policy_ms: list[float] = field(default_factory=list)
    actuate_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)

    def add(self, rec: StepRecord) -> None:
        self.steps += 1
        self.capture_ms.append(rec.capture_ms)
        self.policy_ms.append(rec.policy_ms)
        self.actuate_ms.append(rec.actuate_ms)
        self.latency_ms.append(rec.latency_ms)

    @property
    def rate_hz(self) -> float:
        """Steps per second of the loop's clock (simulated seconds on `sim --fast`)."""
        return self.steps / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def wall_rate_hz(self) -> float:
        """Steps per second of wall-clock time (what `--fast` achieves on this computer)."""
        return self.steps / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, float]:
        """Mean / p99 of each stage and of the latency (ms), steps, overruns, target and achieved Hz."""
        out: dict[str, float] = {
            "steps": self.steps,
            "overruns": self.overruns,
            "target_hz": self.target_hz,
            "rate_hz": self.rate_hz,
            "wall_rate_hz": self.wall_rate_hz,
        }
        for name in ("capture_ms", "policy_ms", "actuate_ms", "latency_ms"):
            values = np.asarray(getattr(self, name)) if getattr(self, name) else np.zeros(1)
            out[f"{name}_mean"] = float(values.mean())
            out[f"{name}_p99"] = float(np.percentile(values, 99))
            out[f"{name}_max"] = float(values.max())
        return out


class ControlLoop:
    """Drives `policy` from `camera` through `actuator` at `rate_hz` on `clock`.

    expected_shape / expected_dtype: the model's input (from its card); a frame that differs stops the run
    with ObservationMismatchError rather than feeding the model something it was not trained on.
    on_lap: called with each LapEvent the lap timers report; on_step: with each StepRecord (telemetry).
    """

    def __init__(
        self,
        camera: Camera,
        policy: Policy,
        actuator: Actuator,
        clock: Clock,
        *,
        rate_hz: float,
        expected_shape: tuple[int, ...],
        expected_dtype: np.dtype | str,
        lap_timers: list[LapTimer] | None = None,
        on_lap: Callable[[LapEvent], None] | None = None,
        on_step: Callable[[StepRecord, LoopStats], None] | None = None,
    ) -> None:
        self.camera = camera
        self.policy = policy
        self.actuator = actuator
        self.clock = clock
        self.period_s = 1.0 / rate_hz
        self.expected_shape = tuple(int(d) for d in expected_shape)
        self.expected_dtype = np.dtype(expected_dtype)
        self.lap_timers = list(lap_timers or [])
        self.on_lap = on_lap
        self.on_step = on_step
        self.stats = LoopStats(target_hz=rate_hz)
        self.laps = 0
        self.stop_event = threading.Event()

    def to_model_input(self, obs: np.ndarray) -> np.ndarray:
        """The frame as exactly the model's input: the card's dtype, and its shape (a sensor gives one
        reading without the batch axis, and multi-channel frames channels last, e.g. stereo (H, W, 2) for a
        (1, 2, H, W) input). Anything else is ObservationMismatchError, never a silent conversion."""
        want = self.expected_shape
        if obs.dtype != self.expected_dtype:
            raise ObservationMismatchError(
                f"the sensor gave {obs.dtype} {obs.shape}; the model takes {self.expected_dtype} {want} "
                "(its model card's observation)"
            )
        if obs.shape == want:
            return obs
        core = tuple(d for d in want if d != 1)
        if tuple(d for d in obs.shape if d != 1) == core:
            return obs.reshape(want)
        if obs.ndim == 3 and (obs.shape[2], *obs.shape[:2]) == core:
            return np.ascontiguousarray(obs.transpose(2, 0, 1)).reshape(want)
        raise ObservationMismatchError(
            f"the sensor gave {obs.dtype} {obs.shape}; the model takes {self.expected_dtype} {want} "
            "(its model card's observation): check the car's [camera] size against the model's car"
        )

    def step(self) -> StepRecord:
        """One capture -> act -> actuate, timed."""
        t0 = time.perf_counter()
        frame = self.camera.capture()
        obs = self.to_model_input(frame.data)
        t1 = time.perf_counter()
        steering_deg, speed_mps = self.policy.act(obs)
        t2 = time.perf_counter()
        pulses = self.actuator.command(float(steering_deg), float(speed_mps))
        t3 = time.perf_counter()
        latency_ms = (time.monotonic() - frame.captured_s) * 1000.0
        return StepRecord(
            (t1 - t0) * 1000.0,
            (t2 - t1) * 1000.0,
            (t3 - t2) * 1000.0,
            latency_ms,
            float(steering_deg),
            float(speed_mps),
            pulses.steering_us,
            pulses.throttle_us,
        )

    def warm_up(self) -> None:
        """One capture and one inference without actuating: the first ONNX Runtime call allocates and can
        take longer than the watchdog allows, so it happens before the watchdog starts."""
        self.policy.act(self.to_model_input(self.camera.capture().data))

    def _poll_laps(self) -> None:
        for timer in self.lap_timers:
            for event in timer.poll():
                self.laps += 1
                if self.on_lap is not None:
                    self.on_lap(event)

    def run(self, *, max_steps: int | None = None, max_laps: int | None = None) -> LoopStats:
        """Run until `max_steps` steps, `max_laps` laps, or `stop_event` (whichever first; None = no limit)."""
        start_s = next_s = self.clock.now_s()
        wall0_s = time.perf_counter()
        try:
            while not self.stop_event.is_set():
                if max_steps is not None and self.stats.steps >= max_steps:
                    break
                if max_laps is not None and self.laps >= max_laps:
                    break
                record = self.step()
                self.stats.add(record)
                if self.on_step is not None:
                    self.on_step(record, self.stats)
                next_s += self.period_s
                now_s = self.clock.now_s()
                if now_s > next_s:
                    self.stats.overruns += 1
                    next_s = now_s
                self.clock.sleep_until(next_s)
                self._poll_laps()
        finally:
            self.stats.elapsed_s = self.clock.now_s() - start_s
            self.stats.wall_s = time.perf_counter() - wall0_s
        return self.stats
