"""`device.drive`'s backend wiring for `pitlane drive`: which backend, when a fast simulated drive stops, and
opening a backend without the simulator (the car package never imports it; `sim`'s opener is passed in)."""

from __future__ import annotations

import math

import pytest

from device.config import load_runtime_config
from device.drive import SIM_S_PER_LAP, SimTrackChoice, choose_backend, drive_limits, open_hal
from device.errors import CarRuntimeConfigError, HardwareError


def test_the_backend_is_the_flag_else_the_car_file(write_car) -> None:
    config = load_runtime_config(write_car())  # deepracer.toml: hardware.backend = "sim"
    assert choose_backend(config, None, None) == "sim"
    assert choose_backend(config, "mock", None) == "mock"
    with pytest.raises(
        CarRuntimeConfigError, match=r"--hal 'pico': expected one of sim, mock, pi, jetson, usb"
    ):
        choose_backend(config, "pico", None)
    with pytest.raises(CarRuntimeConfigError, match="--track is for --hal sim: the mock backend"):
        choose_backend(config, "mock", "reinvent_base")


def test_a_fast_simulated_drive_always_ends() -> None:
    # as fast as the CPU allows, no step limit: 3 laps and 180 simulated s a lap at the control rate
    assert drive_limits("sim", realtime=False, laps=None, steps=None, control_rate_hz=15.0) == (
        3,
        math.ceil(SIM_S_PER_LAP * 3 * 15.0),
    )
    assert drive_limits("sim", realtime=False, laps=2, steps=None, control_rate_hz=20.0) == (2, 7200)
    # a step limit, real time, or a real car: as given
    assert drive_limits("sim", realtime=False, laps=2, steps=50, control_rate_hz=15.0) == (2, 50)
    assert drive_limits("sim", realtime=True, laps=None, steps=None, control_rate_hz=15.0) == (None, None)
    assert drive_limits("mock", realtime=False, laps=None, steps=None, control_rate_hz=15.0) == (None, None)


def test_the_sim_backend_needs_its_opener(write_car) -> None:
    config = load_runtime_config(write_car())
    choice = SimTrackChoice("reinvent_base", False, "default", "the default")
    with pytest.raises(HardwareError, match="sim backend needs"):
        open_hal("sim", config, "state", (1, 4), "float32", realtime=False, choice=choice)


def test_the_sim_backend_opens_the_chosen_track(write_car) -> None:
    from sim.hal_backend import open_sim_parts
    from sim.tracks import load_track

    config = load_runtime_config(write_car())
    choice = SimTrackChoice("tiny_loop", True, "--track", "from --track")
    hal, info = open_hal(
        "sim",
        config,
        "state",
        (1, 4),
        "float32",
        realtime=False,
        choice=choice,
        open_sim_parts=open_sim_parts,
    )
    try:
        assert hal.name == "sim" and len(hal.lap_timers) == 1
        length_m = round(load_track("tiny_loop").length_m, 3)
        assert info == {"name": info["name"], "length_m": length_m, "reverse": True, "source": "--track",
                        "why": "from --track"}  # fmt: skip
        assert "tiny_loop" in info["name"]
    finally:
        hal.close()
