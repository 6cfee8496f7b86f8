"""A dead-man process for PCA9685 cars: stops the car when the car runtime's process dies (kill -9, OOM killer,
segfault), which neither its watchdog thread nor `finally` nor `atexit` survive. A PCA9685 repeats its last
pulse forever, so without this a killed runtime leaves the car driving.

The runtime starts `python -m device.deadman ...` with a pipe on its stdin and never writes to it. When the
pipe closes — the parent closed it (a clean stop) or the kernel did because the parent died — the child opens
the PCA9685 itself and writes centred steering and neutral throttle, then exits. The board is opened only
then, so the two processes never drive it at the same time.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys

from contracts.car_file import Pca9685Config
from device.calibration import Pulses

log = logging.getLogger(__name__)


class DeadManSwitch:
    """The child process; `close()` ends it (it sends neutral once more on its way out, harmlessly)."""

    def __init__(self, config: Pca9685Config, neutral: Pulses, backend: str) -> None:
        cmd = [
            sys.executable, "-m", "device.deadman", "--backend", backend,
            "--i2c-address", str(config.i2c_address), "--frequency-hz", str(config.frequency_hz),
            "--steering-channel", str(config.steering_channel), "--throttle-channel", str(config.throttle_channel),
            "--steering-us", str(neutral.steering_us), "--throttle-us", str(neutral.throttle_us),
        ]  # fmt: skip
        # its own session: Ctrl-C in the terminal must not kill the dead-man before the runtime stops
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, start_new_session=True)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def close(self, timeout_s: float = 10.0) -> int | None:
        """Close the pipe and wait for the child; its exit status (None if it did not end in time)."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            return self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("dead-man process %d did not exit", self._proc.pid)
            return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m device.deadman", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True)
    parser.add_argument("--i2c-address", type=int, required=True)
    parser.add_argument("--frequency-hz", type=int, required=True)
    parser.add_argument("--steering-channel", type=int, required=True)
    parser.add_argument("--throttle-channel", type=int, required=True)
    parser.add_argument("--steering-us", type=int, required=True)
    parser.add_argument("--throttle-us", type=int, required=True)
    args = parser.parse_args(argv)
    while sys.stdin.buffer.read(4096):  # blocks until the parent closes the pipe or dies
        pass
    from device.hal.pca9685 import Pca9685Drive

    config = Pca9685Config(
        i2c_address=args.i2c_address,
        frequency_hz=args.frequency_hz,
        steering_channel=args.steering_channel,
        throttle_channel=args.throttle_channel,
    )
    drive = Pca9685Drive(config, args.backend)
    drive.set_pulses(args.steering_us, args.throttle_us)
    drive.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
