"""A drive session: the car runtime's composition (what `pitlane drive` runs).

policy + a backend's parts (`Hal`, passed in) + calibration + actuator + safety latch + watchdog + e-stop
inputs + lap book + (optionally) the league link with its outbox. Whatever ends the session — the lap count,
Ctrl-C, SIGTERM, an exception in the loop — the `finally` sends neutral before anything else; an `atexit` hook
does it again for an interpreter that exits another way.
"""

from __future__ import annotations

import atexit
import logging
import math
import signal
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from contracts.car_file import CarFile, LeagueConfig
from contracts.hal import Camera, Clock, Drive, Hal, LapEvent, LapTimer
from contracts.model_card import ModelCard
from contracts.vocabulary import HAL_BACKENDS, HARDWARE_BACKENDS
from contracts.wire import LapReport
from device.actuator import Actuator
from device.calibration import Calibration
from device.config import Credentials
from device.errors import CarRuntimeConfigError, HardwareError, ModelError
from device.estop import GpioEStop, SafetyLatch
from device.laps import LapBook
from device.loop import ControlLoop, LoopStats, Policy, StepRecord
from device.outbox import Outbox

log = logging.getLogger(__name__)

#: the track a simulated car drives when neither --track nor the model card names one
DEFAULT_SIM_TRACK = "reinvent_base"


@dataclass(frozen=True)
class SimTrackChoice:
    """The track a simulated car drives: `track` (a name or route .npy path), driven reversed or not; who chose
    it (`source`: "--track", "model card" or "default") and `why`, in words for the user."""

    track: str
    reverse: bool
    source: Literal["--track", "model card", "default"]
    why: str


def sim_track(card: ModelCard, override: str | None = None) -> SimTrackChoice:
    """The track for `--hal sim`: `override` (--track) when given, else the track the card's model was trained
    on (its first `tracks` entry, as `pitlane evaluate` takes it), else DEFAULT_SIM_TRACK. The direction is
    the card's (`reverse`) either way, as in `pitlane evaluate`."""
    trained = card.tracks[0] if card.tracks else None
    if override is not None:
        if trained is None:
            why = "from --track (the model card names no track)"
        elif override == trained:
            why = "from --track (the model was trained on it too)"
        else:
            why = f"from --track (the model was trained on {trained})"
        return SimTrackChoice(override, card.reverse, "--track", why)
    if trained is not None:
        why = "from the model card (the model was trained on it)"
        return SimTrackChoice(trained, card.reverse, "model card", why)
    why = "the default (the model card names no track)"
    return SimTrackChoice(DEFAULT_SIM_TRACK, card.reverse, "default", why)


@dataclass(frozen=True)
class ThrottleCapEffect:
    """What the car file's `[safety] throttle_cap_us` does to one policy's speed commands.

    cap_us: the cap (µs). capped_top_speed_mps: the speed table's speed at the cap, the fastest the car is
    commanded. policy_min_speed_mps / policy_top_speed_mps: the slowest and fastest speeds in the model
    card's action space. top_speed_us: the pulse the policy's top speed needs (what a cap would have to be
    to cut nothing). limits: some speed of the policy asks for a pulse beyond the cap (the actuator sends
    the cap instead). actions_over_cap / n_actions: discrete action spaces only (None for continuous), how
    many actions ask for a pulse beyond the cap.
    """

    cap_us: int
    capped_top_speed_mps: float
    policy_min_speed_mps: float
    policy_top_speed_mps: float
    top_speed_us: int
    limits: bool
    actions_over_cap: int | None
    n_actions: int | None

    @property
    def cut_fraction(self) -> float:
        """The part (0..1) of the policy's speed range [min, top] above the capped top speed."""
        if not self.limits:
            return 0.0
        span_mps = self.policy_top_speed_mps - self.policy_min_speed_mps
        if span_mps <= 0:  # one speed only, and it is over the cap
            return 1.0
        over_mps = self.policy_top_speed_mps - max(self.capped_top_speed_mps, self.policy_min_speed_mps)
        return over_mps / span_mps


def throttle_cap_effect(
    config: CarFile, card: ModelCard, *, card_source: str = "model.json"
) -> ThrottleCapEffect | None:
    """How `config`'s throttle cap limits the speeds of `card`'s action space (None when there is no cap).

    Speeds go through the car's calibration as the actuator sends them (speed table, then the cap), so a
    speed counts as over the cap exactly when the actuator would clip its pulse. ModelError (naming
    `card_source`) when the card's action space has no speeds.
    """
    cap_us = config.safety.throttle_cap_us
    if cap_us is None:
        return None
    calibration = Calibration(config.hardware, config.car.vehicle.max_steer_deg)
    speeds_mps = _action_speeds_mps(card, card_source)
    sign = config.hardware.throttle.forward_sign
    pulses_over = [(calibration.throttle_us(v) - cap_us) * sign > 0 for v in speeds_mps]
    top_mps = max(speeds_mps)
    discrete = card.action_space.type == "discrete"
    return ThrottleCapEffect(
        cap_us=cap_us,
        capped_top_speed_mps=calibration.speed_mps(cap_us),
        policy_min_speed_mps=min(speeds_mps),
        policy_top_speed_mps=top_mps,
        top_speed_us=calibration.throttle_us(top_mps),
        limits=any(pulses_over),
        actions_over_cap=sum(pulses_over) if discrete else None,
        n_actions=len(speeds_mps) if discrete else None,
    )


def _action_speeds_mps(card: ModelCard, source: str) -> list[float]:
    """Discrete: every action's speed (m/s); continuous: the range's [low, high]. Only the speeds are read
    here: `sim.action_space` parses the whole DeepRacer form, but the car runtime must not import the
    simulator."""
    space = card.action_space.deepracer
    try:
        if isinstance(space, list):
            speeds = [float(action["speed"]) for action in space]
        else:
            speeds = [float(space["speed"]["low"]), float(space["speed"]["high"])]
    except KeyError as exc:
        raise ModelError(
            f"{source}: `action_space.deepracer` has no {exc} key; expected DeepRacer's action space (a list "
            "of {steering_angle, speed} or {steering_angle: {low, high}, speed: {low, high}})"
        ) from None
    if not speeds:
        raise ModelError(f"{source}: `action_space.deepracer` is an empty list; expected at least one action")
    return speeds


@dataclass
class DriveResult:
    """What a session did: loop stats, the laps it reported, why it stopped, laps left unsent in the outbox."""

    stats: LoopStats
    laps: list[LapReport]
    run_id: str
    stop_reason: str | None
    unsent_laps: int = 0
    clipped_commands: int = 0


@dataclass
class LeagueSetup:
    """A league to report to: its table (with any command-line override applied) and the car's secrets."""

    league: LeagueConfig
    credentials: Credentials
    outbox_path: Path


@dataclass
class DriveSession:
    """One drive. `input_shape`/`input_dtype`: the model's observation (from its card)."""

    config: CarFile
    policy: Policy
    hal: Hal
    input_shape: tuple[int, ...]
    input_dtype: Any
    league: LeagueSetup | None = None
    model_sha256: str | None = None
    extra_lap_timers: list[LapTimer] = field(default_factory=list)
    on_lap: Callable[[LapReport], None] | None = None
    flush_s: float = 5.0
    latch: SafetyLatch = field(default_factory=SafetyLatch)

    def __post_init__(self) -> None:
        calibration = Calibration(self.config.hardware, self.config.car.vehicle.max_steer_deg)
        self.actuator = Actuator(
            self.hal.drive,
            calibration,
            self.latch,
            throttle_cap_us=self.config.safety.throttle_cap_us,
            now_s=self.hal.clock.now_s,
        )
        car_id = self.league.league.car_id if self.league else self.config.car.car.name
        self.book = LapBook(car_id=_safe_id(car_id), model_sha256=self.model_sha256)
        self.link: Any = None
        self.loop = ControlLoop(
            self.hal.camera,
            self.policy,
            self.actuator,
            self.hal.clock,
            rate_hz=self.config.hardware.control_rate_hz,
            expected_shape=self.input_shape,
            expected_dtype=np.dtype(self.input_dtype),
            lap_timers=[*self.hal.lap_timers, *self.extra_lap_timers],
            on_lap=self._lap,
            on_step=self._step,
        )

    @property
    def run_id(self) -> str:
        return self.book.run_id

    def _lap(self, event: LapEvent) -> None:
        report = self.book.record(event)
        log.info("lap %d: %.3f s (%s)", report.lap, report.lap_time_ms / 1000.0, report.source)
        if self.link is not None:
            self.link.add_lap(report)
        if self.on_lap is not None:
            self.on_lap(report)

    def _step(self, record: StepRecord, stats: LoopStats) -> None:
        if self.link is not None:
            loop_ms = record.capture_ms + record.policy_ms + record.actuate_ms
            self.link.publish_telemetry(
                record.steering_deg, record.speed_mps, loop_ms, record.latency_ms, stats.overruns
            )

    def _open_league(self) -> None:
        if self.league is None:
            return
        from device.telemetry import LeagueLink  # paho only when a league is configured

        self.outbox = Outbox(self.league.outbox_path)
        self.link = LeagueLink(
            self.config,
            self.league.league,
            self.league.credentials,
            self.outbox,
            self.latch,
            run_id=self.run_id,
            model_sha256=self.model_sha256,
            allow_remote_rearm=self.config.safety.allow_remote_rearm,
        )
        self.link.state = "driving"
        self.link.start()

    def run(self, *, max_laps: int | None = None, max_steps: int | None = None) -> DriveResult:
        """Drive until `max_laps` laps or `max_steps` steps (or Ctrl-C / SIGTERM); the car ends at neutral."""
        from device.watchdog import Watchdog

        watchdog = Watchdog(self.actuator, self.config.safety.watchdog_ms)
        estop_pin = self._open_estop_pin()
        restore_signals = _stop_on_sigterm()
        atexit.register(self.actuator.neutral)
        stop_reason: str | None = None
        try:
            self.actuator.neutral()
            self.loop.warm_up()
            self._open_league()
            watchdog.start()
            self.loop.run(max_steps=max_steps, max_laps=max_laps)
        except KeyboardInterrupt:
            stop_reason = "interrupted (Ctrl-C / SIGTERM)"
        finally:
            self.actuator.neutral()  # first: nothing below may run before the car is stopped
            watchdog.stop()
            restore_signals()
            if estop_pin is not None:
                estop_pin.close()
            unsent = self._close_league()
            self.hal.close()
            atexit.unregister(self.actuator.neutral)
        return DriveResult(
            stats=self.loop.stats,
            laps=list(self.book.reports),
            run_id=self.run_id,
            stop_reason=stop_reason or self.latch.reason,
            unsent_laps=unsent,
            clipped_commands=self.actuator.clipped,
        )

    def _open_estop_pin(self) -> GpioEStop | None:
        pin = self.config.safety.estop_pin
        if pin is None or self.hal.name not in HARDWARE_BACKENDS:  # no GPIO without a board
            return None
        return GpioEStop(self.latch, pin, pull_up=self.config.safety.estop_pin_pull_up, backend=self.hal.name)

    def _close_league(self) -> int:
        if self.link is None:
            return 0
        unsent = self.link.close(
            flush_s=self.flush_s, final_state="estop" if self.latch.tripped else "stopped"
        )
        self.outbox.close()
        return unsent


def _stop_on_sigterm() -> Callable[[], None]:
    """SIGTERM raises KeyboardInterrupt in the main thread (so the `finally` stops the car); returns the
    restorer. Off the main thread (tests driving a session in a thread) signals cannot be set: no-op."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _safe_id(name: str) -> str:
    """A car name as a protocol id (letters, digits, - and _)."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:64] or "car"


def league_setup(
    config: CarFile,
    *,
    broker_url: str | None = None,
    league_id: str | None = None,
    car_id: str | None = None,
    credentials_file: str | Path | None = None,
    outbox_path: str | Path | None = None,
) -> LeagueSetup | None:
    """The league to report to: the car file's `[league]` with any of these overrides (command-line flags),
    or None when neither gives a broker. CarRuntimeConfigError names what is missing."""
    from device.config import load_credentials, validate_table
    from device.outbox import default_outbox_path

    table: dict[str, Any] = config.league.model_dump(exclude_none=True) if config.league else {}
    overrides = {"broker_url": broker_url, "league": league_id, "car_id": car_id}
    table.update({k: v for k, v in overrides.items() if v is not None})
    if "broker_url" not in table:
        return None
    if credentials_file is not None:
        creds_path = Path(credentials_file)
    elif "credentials_file" in table:
        creds_path = config.resolve(table["credentials_file"])
    else:
        raise CarRuntimeConfigError(
            f"{config.path}: reporting laps needs the car's credentials (hmac_secret to sign them): set "
            "[league] credentials_file or --credentials (the league server's provisioning gives it)"
        )
    creds = load_credentials(creds_path)
    for key in ("league", "car_id"):  # the provisioning response names the car and its league
        given, provisioned = table.get(key), getattr(creds, key)
        if given is None and provisioned is not None:
            table[key] = provisioned
        elif given is not None and provisioned is not None and given != provisioned:
            raise CarRuntimeConfigError(
                f"{creds_path}: these credentials are for {key} `{provisioned}`, but this car reports as `{given}`"
            )
    table.setdefault("car_id", _safe_id(config.car.car.name))
    if "league" not in table:
        raise CarRuntimeConfigError(
            f"{config.path}: a league broker is given but no league id: set [league] league or --league-id"
        )
    league = validate_table(LeagueConfig, table, "league", str(config.path))
    if outbox_path is not None:
        outbox = Path(outbox_path)
    elif league.outbox_path is not None:
        outbox = config.resolve(league.outbox_path)
    else:
        outbox = default_outbox_path(league.car_id)
    return LeagueSetup(league, creds, outbox)


# --------------------------------------------------------------------------- the backend and its limits

#: `--hal sim --fast` must end: like `pitlane evaluate`, at most this many simulated seconds per lap asked for
#: (a model that never gets round), and 3 laps when no count is given
SIM_S_PER_LAP = 180.0
FAST_SIM_LAPS = 3

#: `open_sim_parts` of `sim.hal_backend` (camera, drive, clock, lap timer, world), passed in by the composition
#: root: the car package never imports the simulator (a car installs no gymnasium)
SimPartsOpener = Callable[..., tuple[Camera, Drive, Clock, LapTimer, Any]]


def choose_backend(config: CarFile, hal: str | None, track: str | None) -> str:
    """The backend to drive on: `hal` (--hal) or the car file's `hardware.backend`. CarRuntimeConfigError for
    an unknown name, or for a `track` (--track) on a backend other than `sim`."""
    backend = hal or config.hardware.backend
    if backend not in HAL_BACKENDS:
        raise CarRuntimeConfigError(f"--hal {backend!r}: expected one of {', '.join(HAL_BACKENDS)}")
    if track is not None and backend != "sim":
        raise CarRuntimeConfigError(f"--track is for --hal sim: the {backend} backend has no simulated track")
    return backend


def drive_limits(
    backend: str, *, realtime: bool, laps: int | None, steps: int | None, control_rate_hz: float
) -> tuple[int | None, int | None]:
    """(laps, steps) a session stops at: as given, except that a simulated car driven as fast as the CPU
    allows with no step limit stops after `laps` (FAST_SIM_LAPS by default) or SIM_S_PER_LAP simulated
    seconds per lap at `control_rate_hz`, whichever comes first."""
    if backend == "sim" and not realtime and steps is None:
        laps = laps or FAST_SIM_LAPS
        steps = math.ceil(SIM_S_PER_LAP * laps * control_rate_hz)
    return laps, steps


def open_hal(
    backend: str,
    config: CarFile,
    observation_kind: str,
    shape: tuple[int, ...],
    dtype: str,
    *,
    realtime: bool,
    choice: SimTrackChoice | None = None,
    open_sim_parts: SimPartsOpener | None = None,
) -> tuple[Hal, dict[str, Any] | None]:
    """The backend's parts for a model reading `observation_kind` of `shape`/`dtype`, and for `sim` the
    track driven (name, length_m, reverse, source, why; None on other backends).

    `sim` needs `choice` (from `sim_track`) and `open_sim_parts`; it drives the simulated servo and ESC
    through the car's calibration, so pulses mean what they mean on the car. The opener's own errors (a
    missing track, ...) pass through unchanged."""
    if backend != "sim":
        from device.hal.backends import open_hardware

        return open_hardware(backend, config, observation_kind, shape, dtype), None
    if choice is None or open_sim_parts is None:
        raise HardwareError("the sim backend needs a track choice and the simulator's parts opener")
    cal = Calibration(config.hardware, config.car.vehicle.max_steer_deg)
    camera, drive, clock, laps, world = open_sim_parts(
        config.car,
        lambda steering_us, throttle_us: (cal.steering_deg(steering_us), cal.speed_mps(throttle_us)),
        observation=observation_kind,
        track=choice.track,
        reverse=choice.reverse,
        control_rate_hz=config.hardware.control_rate_hz,
        realtime=realtime,
    )
    info = {
        "name": world.track_label,
        "length_m": round(world.track_length_m, 3),
        "reverse": choice.reverse,
        "source": choice.source,
        "why": choice.why,
    }
    return Hal("sim", camera, drive, clock, [laps]), info


def robustness_note(card: ModelCard, backend: str) -> str | None:
    """The warning to show before driving `card`'s model on `backend`: on a real car (a hardware backend), the
    advice of its robustness card when it has none or a `fragile`/`not ready` one; None otherwise (the
    simulator drives what the model trained in)."""
    from contracts.robustness import robustness_warning

    if backend not in HARDWARE_BACKENDS:
        return None
    return robustness_warning(card.robustness)


def drive_summary(
    result: DriveResult,
    backend: str,
    track: dict[str, Any] | None,
    cap: ThrottleCapEffect | None,
    max_laps: int | None = None,
) -> dict[str, Any]:
    """A session as one JSON-ready record: backend, run id, track driven, throttle cap, laps (times in s),
    loop statistics (ms, Hz), why it stopped (the step limit too, when it came before `max_laps`), laps
    left unsent, throttle commands clipped to the cap."""
    summary = {
        "backend": backend,
        "run_id": result.run_id,
        "track": track,
        "throttle_cap": None if cap is None else {**asdict(cap), "cut_fraction": round(cap.cut_fraction, 4)},
        "laps": [
            {
                "lap": r.lap,
                "seq": r.seq,
                "lap_time_s": r.lap_time_ms / 1000.0,
                "source": r.source,
                "offtrack_count": r.offtrack_count,
                "track": r.track,
            }
            for r in result.laps
        ],
        "loop": result.stats.summary(),
        "stop_reason": result.stop_reason,
        "unsent_laps": result.unsent_laps,
        "clipped_commands": result.clipped_commands,
    }
    if max_laps is not None and len(result.laps) < max_laps and result.stop_reason is None:
        summary["stop_reason"] = (
            f"{len(result.laps)} of {max_laps} laps in {result.stats.steps} steps (step limit)"
        )
    return summary
