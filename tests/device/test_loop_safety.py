"""The control loop on the mock backend, and what keeps the car safe: the throttle cap in the actuator, the
watchdog (a stalled loop is stopped and stays latched until re-armed), e-stops, and stopping on errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from device.config import load_runtime_config
from device.drive import DriveSession
from device.errors import ObservationMismatchError
from device.estop import KeyReader
from device.hal.mock import open_mock

NEUTRAL = (1500, 1500)  # deepracer.toml: steering centre_us, throttle neutral_us


class ConstantPolicy:
    def __init__(self, steering_deg: float = 10.0, speed_mps: float = 1.6) -> None:
        self.command = (steering_deg, speed_mps)
        self.seen: list[np.ndarray] = []

    def act(self, obs: np.ndarray) -> tuple[float, float]:
        self.seen.append(obs)
        return self.command


class StallingPolicy(ConstantPolicy):
    """act() blocks on step `stall_at` until released (a hung inference, a stuck driver)."""

    def __init__(self, stall_at: int) -> None:
        super().__init__()
        self.stall_at = stall_at
        self.calls = 0
        self.stalled = threading.Event()
        self.release = threading.Event()

    def act(self, obs: np.ndarray) -> tuple[float, float]:
        self.calls += 1
        if self.calls == self.stall_at:
            self.stalled.set()
            self.release.wait(10)
        return super().act(obs)


class FailingPolicy(ConstantPolicy):
    def __init__(self, fail_at: int, exc: BaseException) -> None:
        super().__init__()
        self.fail_at, self.exc, self.calls = fail_at, exc, 0

    def act(self, obs: np.ndarray) -> tuple[float, float]:
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.exc
        return super().act(obs)


@pytest.fixture
def config(write_car):
    return load_runtime_config(write_car(""))


def _session(config, policy, *, realtime: bool = False, shape=(1, 11)) -> DriveSession:
    hal = open_mock((11,), "float32", realtime=realtime)
    return DriveSession(config, policy, hal, shape, "float32")


def test_loop_runs_a_fixed_number_of_steps(config) -> None:
    policy = ConstantPolicy(steering_deg=15.0, speed_mps=1.6)
    session = _session(config, policy)
    result = session.run(max_steps=25)
    drive = session.hal.drive
    assert result.stats.steps == 25 and len(policy.seen) == 26  # one warm-up inference before the watchdog
    assert all(obs.shape == (1, 11) and obs.dtype == np.float32 for obs in policy.seen)  # the card's input
    loop_commands = [(c.steering_us, c.throttle_us) for c in drive.commands[1:-1]]
    # 15 deg of 30 -> halfway to left_us 1850; 1.6 m/s -> 1620 µs in the speed table
    assert loop_commands == [(1675, 1620)] * 25
    assert (drive.last.steering_us, drive.last.throttle_us) == NEUTRAL  # ended at neutral
    summary = result.stats.summary()
    assert summary["rate_hz"] == pytest.approx(15.0)  # the mock's stepped clock: exactly the configured rate
    assert summary["overruns"] == 0
    assert summary["policy_ms_mean"] >= 0 and summary["latency_ms_max"] >= summary["actuate_ms_max"]


def test_loop_counts_overruns_in_real_time(config) -> None:
    class Slow(ConstantPolicy):
        def act(self, obs):
            time.sleep(0.1)  # longer than the 1/15 s period
            return super().act(obs)

    result = _session(config, Slow(), realtime=True).run(max_steps=3)
    assert result.stats.overruns == 3


def test_observation_that_is_not_the_models_input_is_refused(config) -> None:
    session = _session(config, ConstantPolicy(), shape=(1, 12))
    with pytest.raises(ObservationMismatchError, match=r"\(1, 12\)"):
        session.run(max_steps=5)
    assert (session.hal.drive.last.steering_us, session.hal.drive.last.throttle_us) == NEUTRAL


def test_throttle_cap_is_enforced_in_the_actuator(config) -> None:
    session = _session(config, ConstantPolicy(speed_mps=4.0))  # table: 4 m/s = 1800 µs; cap 1700 µs
    result = session.run(max_steps=5)
    throttles = {c.throttle_us for c in session.hal.drive.commands}
    assert max(throttles) == 1700 and 1800 not in throttles
    assert result.clipped_commands == 5
    # the actuator refuses a raw pulse above the cap too, whoever sends it
    from device.calibration import Pulses

    assert session.actuator.send(Pulses(1500, 2000)).throttle_us == 1700


def test_watchdog_stops_a_stalled_loop_and_stays_latched(config) -> None:
    policy = StallingPolicy(stall_at=10)
    hal = open_mock((11,), "float32", realtime=True)
    session = DriveSession(config, policy, hal, (1, 11), "float32")
    done: list = []
    runner = threading.Thread(target=lambda: done.append(session.run(max_steps=40)), daemon=True)
    runner.start()
    assert policy.stalled.wait(5)
    stall_s = time.monotonic()
    assert hal.drive.last.throttle_us == 1620  # still driving: the stall just began
    deadline = stall_s + 1.0
    while time.monotonic() < deadline and hal.drive.last.throttle_us != 1500:
        time.sleep(0.005)
    neutral_s = time.monotonic()
    assert (hal.drive.last.steering_us, hal.drive.last.throttle_us) == NEUTRAL
    # watchdog_ms = 200; it checks every 40 ms: neutral within 200 + 40 ms (+ a margin for a busy CI box)
    assert neutral_s - stall_s < 0.2 + 0.04 + 0.15
    assert session.latch.tripped and "watchdog" in session.latch.reason
    policy.release.set()  # the loop resumes ... but the car stays stopped
    time.sleep(0.3)
    assert session.latch.tripped
    after = [c for c in hal.drive.snapshot() if c.t_s > neutral_s]
    assert after and all((c.steering_us, c.throttle_us) == NEUTRAL for c in after)
    session.latch.rearm("test")  # a person re-arms: commands pass again
    time.sleep(0.3)
    assert hal.drive.last.throttle_us == 1620 or done  # driving again (or the run already ended)
    runner.join(10)
    assert done and (hal.drive.last.steering_us, hal.drive.last.throttle_us) == NEUTRAL


@pytest.mark.parametrize("exc", [RuntimeError("inference crashed"), KeyboardInterrupt()])
def test_crash_or_ctrl_c_in_the_loop_leaves_the_car_stopped(config, exc: BaseException) -> None:
    session = _session(config, FailingPolicy(fail_at=5, exc=exc))
    if isinstance(exc, KeyboardInterrupt):
        result = session.run(max_steps=50)  # Ctrl-C ends the drive normally
        assert "interrupted" in result.stop_reason
    else:
        with pytest.raises(RuntimeError, match="inference crashed"):
            session.run(max_steps=50)
    drive = session.hal.drive
    assert drive.commands[-2].throttle_us == 1620  # it was driving
    assert (drive.last.steering_us, drive.last.throttle_us) == NEUTRAL
    assert drive.closed


def test_keyboard_estop_latches_until_rearmed(config) -> None:
    session = _session(config, ConstantPolicy())
    keys = KeyReader(session.latch, estop_key=" ", rearm_key="r")
    keys.feed(" ")
    assert session.latch.tripped and "keyboard" in session.latch.reason
    session.run(max_steps=5)
    assert {(c.steering_us, c.throttle_us) for c in session.hal.drive.commands} == {NEUTRAL}
    keys.feed("r")
    assert not session.latch.tripped


def test_key_reader_reads_a_stream(config) -> None:
    import os

    session = _session(config, ConstantPolicy())
    keys = KeyReader(session.latch)
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "r") as stream:
        keys.start(stream)
        os.write(write_fd, b"x ")
        deadline = time.monotonic() + 2
        while not session.latch.tripped and time.monotonic() < deadline:
            time.sleep(0.01)
        keys.close()
        os.close(write_fd)
    assert session.latch.tripped


def test_sigterm_leaves_the_car_stopped(tmp_path, write_car) -> None:
    """A real process: SIGTERM during the loop ends it through the `finally` (car at neutral)."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    car = write_car("")
    log = tmp_path / "commands.log"
    code = f"""
import sys, time
from device.config import load_runtime_config
from device.drive import DriveSession
from device.hal.mock import open_mock
class Logging:
    def __init__(self): self.f = open({str(log)!r}, "w", buffering=1)
    def set_pulses(self, s, t): self.f.write(f"{{s}} {{t}}\\n")
    def close(self): self.f.write("closed\\n")
class P:
    def act(self, obs): return (0.0, 1.6)
hal = open_mock((11,), "float32", realtime=True)
hal.drive = Logging()
s = DriveSession(load_runtime_config({str(car)!r}), P(), hal, (11,), "float32")
print("ready", flush=True)
s.run()
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    lines = log.read_text().splitlines()
    assert "1500 1620" in lines  # it drove
    assert lines[-2:] == ["1500 1500", "closed"]
