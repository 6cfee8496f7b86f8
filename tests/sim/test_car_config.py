"""Car config files: the shipped ones load, DeepRacer's geometry matches, broken files say what is wrong."""

from __future__ import annotations

import math
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from contracts.car_file import CarConfig
from contracts.errors import CarFileError as CarConfigError
from contracts.errors import ContractError as FirmwareConfigError
from firmware_configs import list_cars, load_car

SHIPPED = ("deepracer", "donkey-pi", "f1tenth-jetson")


def deepracer_text() -> str:
    """The shipped DeepRacer file's simulator tables ([car], [vehicle], [camera]; the car runtime's follow)."""
    text = (resources.files("firmware_configs") / "deepracer.toml").read_text(encoding="utf-8")
    return text.split("# ---- car runtime", 1)[0]


def write_variant(tmp_path: Path, old: str, new: str, name: str = "broken.toml") -> Path:
    """The shipped DeepRacer file with one edit, written to tmp_path."""
    text = deepracer_text()
    assert old in text, f"test setup: {old!r} not in deepracer.toml"
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def load_error(path: Path | str) -> str:
    with pytest.raises(CarConfigError) as info:
        load_car(path)
    return str(info.value)


# ------------------------------------------------------------------------------------ shipped files


def test_list_cars_has_the_shipped_cars() -> None:
    assert set(SHIPPED) <= set(list_cars())
    assert list_cars() == sorted(list_cars())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_loads_and_is_consistent(name: str) -> None:
    car = load_car(name)
    assert isinstance(car, CarConfig)
    assert car.car.name == name
    params = car.vehicle_params()
    assert params.wheelbase_m == car.vehicle.wheelbase_m
    assert params.max_steer_rad == pytest.approx(math.radians(car.vehicle.max_steer_deg))
    assert params.max_steer_rate_radps == pytest.approx(math.radians(car.vehicle.max_steer_rate_dps))
    assert params.latency_s == pytest.approx(car.vehicle.actuation_latency_ms / 1000)
    assert params.lateral_grip_mps2 == pytest.approx(car.vehicle.tyre_grip_g * 9.81)
    assert car.vehicle.wheel_radius_m is not None  # the renderer needs the ground below the chassis origin
    # the car runtime's tables are kept raw here (device/config.py validates them)
    assert isinstance(car.hardware, dict) and isinstance(car.safety, dict)


@pytest.mark.parametrize("name", SHIPPED)
def test_load_by_path_equals_load_by_name(name: str) -> None:
    path = Path(str(resources.files("firmware_configs") / f"{name}.toml"))
    assert load_car(path) == load_car(name)
    assert load_car(str(path)) == load_car(name)


def test_deepracer_geometry_matches_reference() -> None:
    car = load_car("deepracer")
    v, cam = car.vehicle, car.camera
    assert car.car.scale == "1/18"
    assert (v.wheelbase_m, v.track_m) == (0.164, 0.162)
    assert (v.body_length_m, v.body_width_m) == (0.324, 0.196)
    assert v.wheel_radius_m == 0.035
    assert v.max_steer_deg == 30.0
    assert v.max_speed_mps == 4.0
    assert (cam.x_m, cam.y_m, cam.z_m) == (0.092, 0.0, 0.080)
    assert math.radians(cam.hfov_deg) == pytest.approx(1.13, abs=1e-4)
    assert (cam.width_px, cam.height_px, cam.grayscale) == (160, 120, True)
    assert not cam.is_stereo


def test_vehicle_params_wheel_positions() -> None:
    params = load_car("deepracer").vehicle_params()
    wheels = params.wheel_positions_m
    assert wheels.shape == (4, 2)
    expected = [[0.082, 0.081], [0.082, -0.081], [-0.082, 0.081], [-0.082, -0.081]]
    np.testing.assert_allclose(wheels, expected)
    with pytest.raises(ValueError):
        wheels[0, 0] = 1.0  # read-only: the physics shares one array between all cars


def test_config_is_frozen() -> None:
    car = load_car("deepracer")
    with pytest.raises(ValidationError):
        car.vehicle.wheelbase_m = 1.0  # type: ignore[misc]


def test_car_schema_loads_without_gymnasium_or_torch() -> None:
    # The schema is shared with the car runtime, which installs neither gymnasium nor torch.
    code = (
        "import sys, firmware_configs as s; s.load_car('deepracer'); "
        "bad = [m for m in ('gymnasium', 'torch', 'sim') if m in sys.modules]; "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------ broken files


def test_unknown_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "wheelbase_m = 0.164", "wheelbase = 0.164")
    msg = load_error(path)
    assert str(path) in msg
    assert "unknown key `vehicle.wheelbase` (did you mean `wheelbase_m`?)" in msg


def test_wrong_type_names_key_and_expectation(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "max_speed_mps = 4.0", 'max_speed_mps = "fast"')
    msg = load_error(path)
    assert str(path) in msg
    assert "`vehicle.max_speed_mps`" in msg
    assert "valid number" in msg and "m/s" in msg


def test_bool_is_not_a_number(tmp_path: Path) -> None:
    msg = load_error(write_variant(tmp_path, "tyre_grip_g = 0.8", "tyre_grip_g = true"))
    assert "`vehicle.tyre_grip_g`" in msg


def test_negative_wheelbase(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "wheelbase_m = 0.164", "wheelbase_m = -0.164")
    msg = load_error(path)
    assert str(path) in msg
    assert "`vehicle.wheelbase_m`" in msg and "greater than 0" in msg and "metres" in msg


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("max_steer_deg = 30.0", "max_steer_deg = 60.0", "vehicle.max_steer_deg"),
        ("pitch_deg = 15.0", "pitch_deg = 90.0", "camera.pitch_deg"),
        ("pitch_deg = 15.0", "pitch_deg = nan", "camera.pitch_deg"),
        ("hfov_deg = 64.74", "hfov_deg = 170", "camera.hfov_deg"),
        ("width_px = 160", "width_px = 4", "camera.width_px"),
        ("height_px = 120", "height_px = 120.0", "camera.height_px"),
        ('scale = "1/18"', 'scale = "18"', "car.scale"),
        ("actuation_latency_ms = 60.0", "actuation_latency_ms = -1", "vehicle.actuation_latency_ms"),
    ],
)
def test_out_of_range_values_name_the_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert f"`{key}`" in load_error(write_variant(tmp_path, old, new))


def test_missing_key(tmp_path: Path) -> None:
    msg = load_error(write_variant(tmp_path, "hfov_deg = 64.74", ""))
    assert "missing key `camera.hfov_deg`" in msg and "field of view" in msg


def test_body_shorter_than_wheelbase(tmp_path: Path) -> None:
    msg = load_error(write_variant(tmp_path, "body_length_m = 0.324", "body_length_m = 0.1"))
    assert "body_length_m" in msg and "wheelbase_m" in msg


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text('[car]\nname = "x"\nscale = 1/18\n', encoding="utf-8")
    msg = load_error(path)
    assert str(path) in msg
    assert "line 3" in msg


def test_unknown_top_level_table(tmp_path: Path) -> None:
    path = tmp_path / "extra.toml"
    path.write_text(deepracer_text() + "\n[hardwre]\npwm_hz = 50\n", encoding="utf-8")
    msg = load_error(path)
    assert str(path) in msg
    assert "unknown table `hardwre` (did you mean `hardware`?)" in msg


def test_runtime_tables_are_kept_raw(tmp_path: Path) -> None:
    extra = (
        "\n[hardware]\nsteering_channel = 1\n[hardware.throttle]\nneutral_pulse_us = 1500\n"
        "\n[safety]\nwatchdog_ms = 200\nanything = ['goes']\n"
        '\n[league]\nurl = "mqtt://example.invalid"\n'
    )
    path = tmp_path / "runtime.toml"
    path.write_text(deepracer_text() + extra, encoding="utf-8")
    car = load_car(path)
    assert car.hardware == {"steering_channel": 1, "throttle": {"neutral_pulse_us": 1500}}
    assert car.safety == {"watchdog_ms": 200, "anything": ["goes"]}
    assert car.league == {"url": "mqtt://example.invalid"}


def test_runtime_table_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "runtime.toml"
    path.write_text("safety = 3\n" + deepracer_text(), encoding="utf-8")
    assert "`safety`" in load_error(path)


def test_unknown_car_name_lists_choices() -> None:
    msg = load_error("deepracer-evo-turbo")
    assert "deepracer-evo-turbo" in msg
    for name in SHIPPED:
        assert name in msg


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert str(path) in load_error(path)


def test_errors_are_sim_errors_and_value_errors() -> None:
    assert issubclass(CarConfigError, FirmwareConfigError)
    assert issubclass(CarConfigError, ValueError)
