"""Steering degrees and speeds to pulse widths (µs) through the car's calibration, and back."""

from __future__ import annotations

import pytest

from contracts.car_file import HardwareConfig
from device.calibration import Calibration


@pytest.fixture
def cal() -> Calibration:
    hw = HardwareConfig.model_validate(
        {
            "steering": {"left_us": 1900, "centre_us": 1500, "right_us": 1100},
            "throttle": {"reverse_us": 1000, "neutral_us": 1500, "forward_us": 2000},
            "speed_table": {"throttle_us": [1500, 1600, 1800], "speed_mps": [0.0, 1.0, 4.0]},
        }
    )
    return Calibration(hw, max_steer_deg=30.0)


def test_steering_is_linear_and_clamped(cal: Calibration) -> None:
    assert cal.steering_us(0.0) == 1500
    assert cal.steering_us(30.0) == 1900  # + = left
    assert cal.steering_us(-15.0) == 1300
    assert cal.steering_us(90.0) == 1900 and cal.steering_us(-90.0) == 1100
    assert cal.steering_us(float("nan")) == 1500


def test_speed_goes_through_the_table(cal: Calibration) -> None:
    assert cal.throttle_us(0.0) == 1500
    assert cal.throttle_us(-1.0) == 1500  # never reverse under a policy
    assert cal.throttle_us(0.5) == 1550
    assert cal.throttle_us(2.5) == 1700
    assert cal.throttle_us(99.0) == 1800  # clamped to the table's range (the cap is the actuator's job)


@pytest.mark.parametrize("deg", [-30.0, -12.5, 0.0, 7.0, 30.0])
def test_steering_inverse(cal: Calibration, deg: float) -> None:
    assert cal.steering_deg(cal.steering_us(deg)) == pytest.approx(deg, abs=30.0 / 400)


@pytest.mark.parametrize("speed", [0.25, 1.0, 2.5, 4.0])
def test_speed_inverse(cal: Calibration, speed: float) -> None:
    assert cal.speed_mps(cal.throttle_us(speed)) == pytest.approx(speed, abs=0.02)
    assert cal.speed_mps(1400) == 0.0


def test_reversed_esc_direction() -> None:
    hw = HardwareConfig.model_validate(
        {
            "throttle": {"reverse_us": 2000, "neutral_us": 1500, "forward_us": 1000},
            "speed_table": {"throttle_us": [1500, 1300, 1000], "speed_mps": [0.0, 1.0, 3.0]},
        }
    )
    cal = Calibration(hw, max_steer_deg=25.0)
    assert cal.throttle_us(1.0) == 1300
    assert cal.speed_mps(1300) == pytest.approx(1.0)
    assert cal.speed_mps(1600) == 0.0
