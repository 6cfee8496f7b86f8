"""The servo and the ESC on an Adafruit PCA9685 16-channel PWM board over I2C (`pi` and `jetson` backends).

Pulse widths (µs) become 16-bit duty cycles at the board's frequency. The board repeats its last pulse forever
(which is why the watchdog exists): `close()` leaves the pulses set to what the owner last sent (neutral), and
does not switch the outputs off, because an ESC that loses its signal may keep the last throttle.
"""

from __future__ import annotations

import threading

from contracts.car_file import Pca9685Config
from device.hal.vendor import import_vendor


class Pca9685Drive:
    """Steering and throttle channels of one PCA9685."""

    def __init__(self, config: Pca9685Config, backend: str) -> None:
        board = import_vendor("board", backend)
        busio = import_vendor("busio", backend)
        pca_module = import_vendor("adafruit_pca9685", backend)
        self._config = config
        self._i2c = busio.I2C(board.SCL, board.SDA)
        self._pca = pca_module.PCA9685(self._i2c, address=config.i2c_address)
        self._pca.frequency = config.frequency_hz
        self._period_us = 1_000_000.0 / config.frequency_hz
        self._lock = threading.Lock()

    def duty_cycle(self, pulse_us: int) -> int:
        """16-bit duty cycle of a pulse of `pulse_us` µs at the board's frequency."""
        return max(0, min(0xFFFF, round(pulse_us / self._period_us * 0xFFFF)))

    def set_pulses(self, steering_us: int, throttle_us: int) -> None:
        with self._lock:
            channels = self._pca.channels
            channels[self._config.steering_channel].duty_cycle = self.duty_cycle(steering_us)
            channels[self._config.throttle_channel].duty_cycle = self.duty_cycle(throttle_us)

    def close(self) -> None:
        with self._lock:
            self._i2c.deinit()
