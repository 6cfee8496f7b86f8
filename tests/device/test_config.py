"""The car runtime's tables: validated, unknown keys refused with the file and the dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.config import load_credentials, load_runtime_config
from device.errors import CarRuntimeConfigError, DeviceError
from firmware_configs import list_cars


@pytest.mark.parametrize("name", list_cars())
def test_shipped_car_files_are_valid(name: str, repo_root: Path) -> None:
    config = load_runtime_config(repo_root / "firmware_configs" / f"{name}.toml")
    assert config.safety.watchdog_ms <= 200
    assert config.safety.throttle_cap_us is not None
    assert config.hardware.backend in ("sim", "pi", "jetson", "usb")


def test_defaults_when_tables_are_absent(tmp_path: Path, repo_root: Path) -> None:
    text = (repo_root / "firmware_configs" / "deepracer.toml").read_text().split("# ---- car runtime")[0]
    path = tmp_path / "bare.toml"
    path.write_text(text)
    config = load_runtime_config(path)
    assert config.safety.watchdog_ms == 200.0
    assert config.league is None
    assert config.hardware.steering.centre_us == 1500


def _error(write_car, extra: str, *, replace: tuple[str, str] | None = None) -> str:
    path = write_car(extra)
    if replace:
        path.write_text(path.read_text().replace(*replace))
    with pytest.raises(CarRuntimeConfigError) as info:
        load_runtime_config(path)
    assert isinstance(info.value, DeviceError) and isinstance(info.value, ValueError)
    msg = str(info.value)
    assert str(path) in msg
    return msg


def test_unknown_key_names_file_and_dotted_key(write_car) -> None:
    msg = _error(write_car, "", replace=("left_us = 1850", "left_us = 1850\nleft_pulse = 1850"))
    assert "unknown key `hardware.steering.left_pulse`" in msg


def test_unknown_safety_and_league_keys(write_car) -> None:
    assert "unknown key `safety.watchdog`" in _error(
        write_car, "", replace=("watchdog_ms = 200 ", "watchdog = 200 ")
    )
    extra = '\n[league]\nbroker_url = "mqtt://h"\nleague = "l"\ncar_id = "c"\nurl = "x"\n'
    assert "unknown key `league.url`" in _error(write_car, extra)


def test_speed_table_must_be_monotonic(write_car) -> None:
    msg = _error(
        write_car,
        "",
        replace=("speed_mps = [0.0, 0.8, 1.6, 2.6, 4.0]", "speed_mps = [0.0, 1.6, 0.8, 2.6, 4.0]"),
    )
    assert "hardware.speed_table" in msg and "strictly increasing" in msg
    msg = _error(
        write_car,
        "",
        replace=(
            "throttle_us = [1500, 1560, 1620, 1700, 1800]",
            "throttle_us = [1500, 1620, 1560, 1700, 1800]",
        ),
    )
    assert "strictly monotonic" in msg
    msg = _error(
        write_car, "", replace=("throttle_us = [1500, 1560, 1620, 1700, 1800]", "throttle_us = [1500, 1560]")
    )
    assert "2 entries" in msg


def test_pulse_widths_are_microseconds(write_car) -> None:
    msg = _error(write_car, "", replace=("left_us = 1850", "left_us = 1.85"))
    assert "hardware.steering.left_us" in msg
    msg = _error(write_car, "", replace=("left_us = 1850", "left_us = 185"))
    assert "hardware.steering.left_us" in msg and "500" in msg
    msg = _error(write_car, "", replace=("centre_us = 1500", "centre_us = 1900"))
    assert "centre_us (1900 µs) must lie strictly between" in msg
    msg = _error(write_car, "", replace=("throttle_cap_us = 1700", "throttle_cap_us = 3000"))
    assert "safety.throttle_cap_us" in msg


def test_speed_table_must_be_on_the_forward_side(write_car) -> None:
    msg = _error(write_car, "", replace=("[1500, 1560, 1620, 1700, 1800]", "[1400, 1560, 1620, 1700, 1800]"))
    assert "outside neutral_us..forward_us" in msg


def test_backend_and_league_values(write_car) -> None:
    assert "hardware.backend" in _error(write_car, "", replace=('backend = "sim"', 'backend = "arduino"'))
    extra = '\n[league]\nbroker_url = "http://h"\nleague = "l"\ncar_id = "c"\n'
    assert "mqtt://host" in _error(write_car, extra)
    extra = '\n[league]\nbroker_url = "mqtt://h"\nleague = "a/b"\ncar_id = "c"\n'
    assert "league.league" in _error(write_car, extra)


def test_league_table_with_tls(write_car) -> None:
    extra = (
        '\n[league]\nbroker_url = "mqtts://league.example:8883"\nleague = "cup"\ncar_id = "car-7"\n'
        'credentials_file = "c.toml"\n[league.tls]\nca_file = "ca.pem"\n'
    )
    config = load_runtime_config(write_car(extra))
    assert config.league.tls.ca_file == "ca.pem"
    assert config.resolve("c.toml") == config.path.parent / "c.toml"


def test_credentials_file(tmp_path: Path, credentials_file: Path) -> None:
    creds = load_credentials(credentials_file)
    assert creds.mqtt_username == "car" and len(creds.hmac_secret) >= 16
    as_json = tmp_path / "c.json"
    as_json.write_text('{"mqtt_username": "u", "mqtt_password": "p", "hmac_secret": "0123456789abcdef"}')
    assert load_credentials(as_json).mqtt_password == "p"
    bad = tmp_path / "bad.toml"
    bad.write_text('hmac_secret = "short"\nextra = 1\n')
    with pytest.raises(CarRuntimeConfigError) as info:
        load_credentials(bad)
    assert "credentials.hmac_secret" in str(info.value) and "unknown key `credentials.extra`" in str(
        info.value
    )
    with pytest.raises(CarRuntimeConfigError, match="no such credentials file"):
        load_credentials(tmp_path / "missing.toml")


def test_league_setup_from_a_provisioning_response(write_car, tmp_path: Path) -> None:
    import json

    from device.drive import league_setup

    config = load_runtime_config(write_car(""))
    assert league_setup(config) is None  # no broker anywhere: no league
    response = {  # contracts.wire.CarCredentialsFile, saved as the server returned it
        "league": "office-cup",
        "car_id": "car-7",
        "mqtt_username": "car-7",
        "mqtt_password": "pw",
        "hmac_secret": "s" * 32,
        "lap_topic": "pitlane/office-cup/cars/car-7/laps",
        "race_id": 4,
        "racer_id": None,
        "number": 7,
        "name": "Blue",
        "leaderboard_url": "http://league.local:8000/api/races/4/leaderboard",
    }
    creds = tmp_path / "car-7.json"
    creds.write_text(json.dumps(response))
    setup = league_setup(
        config, broker_url="mqtt://127.0.0.1:1883", credentials_file=creds, outbox_path=tmp_path / "o"
    )
    assert (setup.league.league, setup.league.car_id) == ("office-cup", "car-7")
    assert setup.credentials.hmac_secret == "s" * 32 and setup.outbox_path == tmp_path / "o"
    with pytest.raises(CarRuntimeConfigError, match="credentials are for car_id `car-7`"):
        league_setup(config, broker_url="mqtt://127.0.0.1:1883", car_id="car-8", credentials_file=creds)
    with pytest.raises(CarRuntimeConfigError, match="needs the car's credentials"):
        league_setup(config, broker_url="mqtt://127.0.0.1:1883", league_id="x")


def test_league_table_credentials_path_is_relative_to_the_car_file(write_car, credentials_file: Path) -> None:
    from device.drive import league_setup

    extra = f'\n[league]\nbroker_url = "mqtt://h"\nleague = "l"\ncar_id = "c"\ncredentials_file = "{credentials_file.name}"\n'
    setup = league_setup(load_runtime_config(write_car(extra)))
    assert setup.league.broker_url == "mqtt://h" and setup.credentials.mqtt_username == "car"
    assert setup.outbox_path.name == "c.sqlite"
