"""`pitlane calibrate`: prompts for end points (µs) and the speed table, writes them back into the car file
and keeps everything else (comments, other tables) as it was."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from device.config import load_runtime_config
from pitlane.cli import app


def _run(car: Path, answers: list[str], *more: str):
    return CliRunner().invoke(app, ["calibrate", "--car", str(car), *more], input="\n".join(answers) + "\n")


def test_calibrate_writes_end_points_and_table_back(write_car) -> None:
    car = write_car("")
    before = car.read_text()
    answers = [
        "1880",
        "1510",
        "1120",  # steering left, centre, right
        "",
        "1490",
        "1990",  # throttle reverse (kept), neutral, forward
        "1490",
        "0",
        "1600",
        "1.2",
        "1700",
        "2.9",
        "",
    ]  # speed table, then an empty pulse
    result = _run(car, answers)
    assert result.exit_code == 0, result.output
    config = load_runtime_config(car)
    s, t, table = config.hardware.steering, config.hardware.throttle, config.hardware.speed_table
    assert (s.left_us, s.centre_us, s.right_us) == (1880, 1510, 1120)
    assert (t.reverse_us, t.neutral_us, t.forward_us) == (1000, 1490, 1990)
    assert table.throttle_us == [1490, 1600, 1700] and table.speed_mps == [0.0, 1.2, 2.9]
    after = car.read_text()
    assert "# servo pulse widths (µs) at full left lock" in after  # comments kept
    assert before.split("[hardware]")[0] == after.split("[hardware]")[0]  # [car]/[vehicle]/[camera] untouched
    assert config.safety.throttle_cap_us == 1700


def test_calibrate_with_a_drive_sends_each_pulse(write_car, monkeypatch) -> None:
    from device.hal import mock

    drives: list = []
    real = mock.MockDrive

    def recording() -> mock.MockDrive:
        drives.append(real())
        return drives[-1]

    monkeypatch.setattr(mock, "MockDrive", recording)
    car = write_car("")
    answers = [
        "1900",
        "n",
        "1870",
        "y",
        "",
        "y",
        "",
        "y",  # left: 1900 looked wrong, 1870 right
        "",
        "y",
        "",
        "y",
        "",
        "y",
        "",
    ]  # throttle kept; table kept
    result = _run(car, answers, "--hal", "mock")
    assert result.exit_code == 0, result.output
    sent = [(c.steering_us, c.throttle_us) for c in drives[0].commands]
    assert sent[:2] == [(1900, 1500), (1870, 1500)] and sent[-1] == (1500, 1500)  # ends at neutral
    assert load_runtime_config(car).hardware.steering.left_us == 1870


def test_inconsistent_calibration_is_not_written(write_car) -> None:
    car = write_car("")
    before = car.read_text()
    answers = ["", "", "", "", "", "", "1500", "0", "1600", "2.0", "1650", "1.0", ""]  # speed falls
    result = _run(car, answers)
    assert result.exit_code == 2
    assert "not written" in result.output and "strictly increasing" in result.output
    assert car.read_text() == before
    assert not list(car.parent.glob(".*calibrate*"))
