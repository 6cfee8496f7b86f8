"""The car file's pulse widths must make sense together: a throttle cap between neutral and full forward,
reverse < neutral < forward (either way round), a speed table running from neutral toward forward, pulses
that fit in the PWM period, an e-stop key that does not re-arm. Each refusal names the file, the keys and
their values."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.config import load_runtime_config
from device.errors import CarRuntimeConfigError

# The shipped deepracer.toml as test_config.py's write_car gives it: neutral 1500 µs, forward 2000 µs.
CAP = "throttle_cap_us = 1700"
THROTTLE = "reverse_us = 1000\nneutral_us = 1500\nforward_us = 2000"
TABLE = "throttle_us = [1500, 1560, 1620, 1700, 1800]"
# an ESC wired the other way round: forward is the shorter pulse
REVERSED_THROTTLE = "reverse_us = 2000\nneutral_us = 1500\nforward_us = 1000"
REVERSED_TABLE = "throttle_us = [1500, 1440, 1380, 1300, 1200]"


def _car(write_car, *replacements: tuple[str, str]) -> Path:
    path = write_car("")
    text = path.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def _refused(path: Path) -> str:
    with pytest.raises(CarRuntimeConfigError) as caught:
        load_runtime_config(path)
    message = str(caught.value)
    assert str(path) in message
    return message


@pytest.mark.parametrize("cap", [2001, 2100, 2500])
def test_a_cap_beyond_full_forward_is_refused(write_car, cap: int) -> None:
    message = _refused(_car(write_car, (CAP, f"throttle_cap_us = {cap}")))
    assert f"`safety.throttle_cap_us` ({cap} µs)" in message
    assert "`hardware.throttle.forward_us` (2000 µs)" in message and "caps nothing" in message


@pytest.mark.parametrize("cap", [1500, 1400, 1000])
def test_a_cap_at_or_behind_neutral_is_refused(write_car, cap: int) -> None:
    message = _refused(_car(write_car, (CAP, f"throttle_cap_us = {cap}")))
    assert f"`safety.throttle_cap_us` ({cap} µs)" in message
    assert "`hardware.throttle.neutral_us` (1500 µs)" in message and "forward_us (2000 µs" in message


@pytest.mark.parametrize("cap", [1501, 1700, 2000])
def test_a_cap_past_neutral_up_to_full_forward_loads(write_car, cap: int) -> None:
    config = load_runtime_config(_car(write_car, (CAP, f"throttle_cap_us = {cap}")))
    assert config.safety.throttle_cap_us == cap


def test_the_cap_follows_an_esc_wired_the_other_way_round(write_car) -> None:
    reversed_esc = ((THROTTLE, REVERSED_THROTTLE), (TABLE, REVERSED_TABLE))
    config = load_runtime_config(_car(write_car, *reversed_esc, (CAP, "throttle_cap_us = 1300")))
    assert config.hardware.throttle.forward_sign == -1 and config.safety.throttle_cap_us == 1300
    message = _refused(_car(write_car, *reversed_esc, (CAP, "throttle_cap_us = 900")))
    assert (
        "`safety.throttle_cap_us` (900 µs)" in message
        and "`hardware.throttle.forward_us` (1000 µs)" in message
    )
    message = _refused(_car(write_car, *reversed_esc, (CAP, "throttle_cap_us = 1700")))
    assert (
        "`safety.throttle_cap_us` (1700 µs)" in message
        and "`hardware.throttle.neutral_us` (1500 µs)" in message
    )


def test_no_cap_is_allowed(write_car) -> None:
    assert load_runtime_config(_car(write_car, (CAP, ""))).safety.throttle_cap_us is None


@pytest.mark.parametrize(
    "throttle", ["reverse_us = 1600\nneutral_us = 1500\nforward_us = 2000",
                 "reverse_us = 1000\nneutral_us = 2100\nforward_us = 2000"],
)  # fmt: skip
def test_neutral_must_lie_between_reverse_and_forward(write_car, throttle: str) -> None:
    message = _refused(_car(write_car, (THROTTLE, throttle)))
    assert "hardware.throttle" in message and "must lie strictly between reverse_us" in message


def test_steering_centre_must_lie_between_the_locks(write_car) -> None:
    message = _refused(_car(write_car, ("right_us = 1150", "right_us = 1600")))
    assert "hardware.steering" in message and "centre_us (1500 µs) must lie strictly between" in message


def test_the_speed_table_runs_from_neutral_toward_forward(write_car) -> None:
    backwards = "throttle_us = [1200, 1300, 1380, 1440, 1500]"  # faster speeds nearer neutral
    message = _refused(_car(write_car, (THROTTLE, REVERSED_THROTTLE), (TABLE, backwards), (CAP, "")))
    assert "hardware" in message and "speed_table.throttle_us [1200, 1300, 1380, 1440, 1500]" in message
    assert "forward_us (1000 µs)" in message and "neutral_us (1500 µs)" in message


def test_pulses_must_fit_in_the_pwm_period(write_car) -> None:
    message = _refused(_car(write_car, ("frequency_hz = 60", "frequency_hz = 500")))
    assert "throttle.forward_us (2000 µs)" in message and "pca9685.frequency_hz (500 Hz = 2000 µs)" in message
    assert load_runtime_config(_car(write_car, ("frequency_hz = 60", "frequency_hz = 400")))


def test_the_stop_key_must_not_re_arm(write_car) -> None:
    message = _refused(_car(write_car, ('rearm_key = "r"', 'rearm_key = " "')))
    assert "safety" in message and "estop_key and rearm_key are both ' '" in message


@pytest.mark.parametrize("name", ["deepracer", "donkey-pi", "f1tenth-jetson"])
def test_the_shipped_car_files_pass_every_check(name: str, repo_root: Path) -> None:
    config = load_runtime_config(repo_root / "firmware_configs" / f"{name}.toml")
    t, cap = config.hardware.throttle, config.safety.throttle_cap_us
    assert (
        cap is not None and (cap - t.neutral_us) * t.forward_sign > 0 >= (cap - t.forward_us) * t.forward_sign
    )
