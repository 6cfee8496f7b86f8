"""The dead-man process: when the car runtime's process is killed with SIGKILL (no `finally`, no atexit, no
watchdog thread survives), its child writes neutral to the PCA9685. Vendor libraries are faked as modules on
PYTHONPATH (the child is another interpreter), logging every duty cycle written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import REPO_ROOT

FAKE_MODULES = {
    "board.py": "SCL, SDA = 'SCL', 'SDA'\n",
    "busio.py": "class I2C:\n    def __init__(self, scl, sda): pass\n    def deinit(self): pass\n",
    "adafruit_pca9685.py": textwrap.dedent(
        """
        import os

        class _Channel:
            def __init__(self, n): self.n = n
            @property
            def duty_cycle(self): return 0
            @duty_cycle.setter
            def duty_cycle(self, value):
                with open(os.environ["FAKE_PCA_LOG"], "a") as f:
                    f.write(f"{os.getpid()} {self.n} {value}\\n")

        class PCA9685:
            def __init__(self, i2c, address=0x40):
                self.channels = [_Channel(n) for n in range(16)]
                self.frequency = None
        """
    ),
}


def test_sigkill_of_the_runtime_leaves_the_car_at_neutral(tmp_path: Path, write_car) -> None:
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    for name, text in FAKE_MODULES.items():
        (fakes / name).write_text(text)
    log = tmp_path / "pca.log"
    car = write_car("")
    # the "runtime": starts the dead-man, drives at 1700 µs through its own PCA9685, then hangs until killed
    runtime = textwrap.dedent(
        f"""
        import time
        from device.calibration import Pulses
        from device.config import load_runtime_config
        from device.deadman import DeadManSwitch
        from device.hal.pca9685 import Pca9685Drive
        hw = load_runtime_config({str(car)!r}).hardware
        switch = DeadManSwitch(hw.pca9685, Pulses(hw.steering.centre_us, hw.throttle.neutral_us), "pi")
        Pca9685Drive(hw.pca9685, "pi").set_pulses(1600, 1700)
        print(switch.pid, flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": f"{fakes}{os.pathsep}{REPO_ROOT}", "FAKE_PCA_LOG": str(log)}
    proc = subprocess.Popen(
        [sys.executable, "-c", runtime], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        child_pid = int(proc.stdout.readline())
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(child_pid):
            time.sleep(0.05)
    finally:
        proc.kill()
    assert not _alive(child_pid)
    writes = [line.split() for line in log.read_text().splitlines()]
    period_us = 1e6 / 60
    duty = {us: str(round(us / period_us * 0xFFFF)) for us in (1500, 1600, 1700)}
    runtime_pid = str(proc.pid)
    assert [w[1:] for w in writes if w[0] == runtime_pid] == [["0", duty[1600]], ["1", duty[1700]]]
    deadman = [w[1:] for w in writes if w[0] == str(child_pid)]
    assert deadman == [["0", duty[1500]], ["1", duty[1500]]]  # centred steering, neutral throttle


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_clean_close_ends_the_deadman_with_neutral(tmp_path: Path, write_car, monkeypatch) -> None:
    from device.calibration import Pulses
    from device.config import load_runtime_config
    from device.deadman import DeadManSwitch

    fakes = tmp_path / "fakes"
    fakes.mkdir()
    for name, text in FAKE_MODULES.items():
        (fakes / name).write_text(text)
    log = tmp_path / "pca.log"
    monkeypatch.setenv("PYTHONPATH", f"{fakes}{os.pathsep}{REPO_ROOT}")
    monkeypatch.setenv("FAKE_PCA_LOG", str(log))
    hw = load_runtime_config(write_car("")).hardware
    switch = DeadManSwitch(hw.pca9685, Pulses(1500, 1500), "pi")
    time.sleep(0.3)
    assert not log.exists()  # it never touches the board while the runtime lives
    assert switch.close() == 0
    assert len(log.read_text().splitlines()) == 2
