"""End to end on this machine's Mosquitto: `pitlane drive` drives a simulated car from a real exported
model, laps are signed and published (QoS 1) and a subscriber receives them; MQTT e-stop commands."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from contracts.wire import CarCommand, car_topic, verify
from tests.device.conftest import SECRET

# One xdist worker runs these tests (--dist loadgroup), so that
# the session's exported car models (tests/device/conftest.py) are built once.
pytestmark = pytest.mark.xdist_group("device-models")


def drive_args(car: Path, model: Path, ids, creds: Path, outbox: Path, broker: str, *more: str) -> list[str]:
    return [
        "drive",
        "--car",
        str(car),
        "--model",
        str(model),
        "--hal",
        "sim",
        "--fast",
        "--league",
        broker,
        "--league-id",
        ids[0],
        "--car-id",
        ids[1],
        "--credentials",
        str(creds),
        "--outbox",
        str(outbox),
        *more,
    ]


def test_sim_backend_completes_laps_with_an_exported_model_and_publishes_them(
    write_car, state_model: Path, ids, credentials_file: Path, lap_subscriber, tmp_path: Path, mosquitto
) -> None:
    from device.policy import OnnxPolicy
    from pitlane.cli import app

    car = write_car("")
    outbox = tmp_path / "outbox.sqlite"
    broker = f"mqtt://{mosquitto[0]}:{mosquitto[1]}"
    result = CliRunner().invoke(
        app, [*drive_args(car, state_model, ids, credentials_file, outbox, broker), "--laps", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert [lap["seq"] for lap in summary["laps"]] == [0, 1]
    assert all(lap["source"] == "sim" and 3.0 < lap["lap_time_s"] < 120.0 for lap in summary["laps"])
    assert summary["unsent_laps"] == 0
    assert summary["loop"]["steps"] > 30 and summary["loop"]["rate_hz"] == 15.0

    received = lap_subscriber.wait_for(2, timeout_s=10)
    sha = OnnxPolicy(state_model).sha256
    assert sorted(received) == [(ids[1], summary["run_id"], 0), (ids[1], summary["run_id"], 1)]
    for (_, _, seq), raw in received.items():
        verify(raw, SECRET)  # signed with the car's secret
        assert raw["source"] == "sim" and raw["model_sha256"] == sha and raw["lap"] == seq + 1
        assert raw["schema"] == 2 and raw["track"] == "reinvent_base"  # the track the sim car drove
        assert raw["lap_time_ms"] == round(summary["laps"][seq]["lap_time_s"] * 1000)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(s.get("state") == "stopped" for s in lap_subscriber.status):
        time.sleep(0.05)
    assert (
        lap_subscriber.status[-1]["state"] == "stopped"
        and lap_subscriber.status[-1]["run_id"] == summary["run_id"]
    )


def test_sim_camera_observation_renders_the_cars_camera(write_car) -> None:
    from device.calibration import Calibration
    from device.config import load_runtime_config
    from sim.hal_backend import open_sim_parts

    config = load_runtime_config(write_car(""))
    cal = Calibration(config.hardware, config.car.vehicle.max_steer_deg)
    camera, drive, clock, laps, world = open_sim_parts(
        config.car, lambda s, t: (cal.steering_deg(s), cal.speed_mps(t)), observation="camera", track="oval"
    )
    frame = camera.capture()
    assert frame.data.shape == (120, 160) and frame.data.dtype == np.uint8 and frame.data.std() > 1
    drive.set_pulses(cal.steering_us(0.0), cal.throttle_us(1.6))
    assert world.command == (0.0, 1.6)
    clock.sleep_until(2.0)  # fast mode: the world steps to t = 2 s
    assert world.steps == 30 and clock.now_s() == 2.0
    assert float(world.parts.sim.state.speed_mps[0]) > 1.0
    assert laps.poll() == []


def test_mqtt_estop_command_latches_and_remote_rearm_is_refused(
    write_car, ids, credentials_file: Path, tmp_path: Path, mosquitto
) -> None:
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from device.config import load_runtime_config
    from device.drive import DriveSession, league_setup
    from device.hal.mock import open_mock

    class Driving:
        def act(self, obs):
            return (0.0, 1.6)

    config = load_runtime_config(write_car(""))
    setup = league_setup(
        config,
        broker_url=f"mqtt://{mosquitto[0]}:{mosquitto[1]}",
        league_id=ids[0],
        car_id=ids[1],
        credentials_file=credentials_file,
        outbox_path=tmp_path / "o.sqlite",
    )
    hal = open_mock((11,), "float32", realtime=True)
    session = DriveSession(config, Driving(), hal, (11,), "float32", league=setup, flush_s=1.0)
    runner = threading.Thread(target=lambda: session.run(max_steps=60), daemon=True)  # 4 s at 15 Hz
    runner.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (session.link is None or not session.link.wait_connected(0.05)):
        time.sleep(0.05)
    time.sleep(0.3)
    assert hal.drive.last.throttle_us == 1620
    sender = mqtt.Client(CallbackAPIVersion.VERSION2)
    sender.connect(*mosquitto)
    sender.loop_start()
    topic = car_topic(ids[0], ids[1], "command")
    sender.publish(
        topic, CarCommand(command="estop", reason="marshal").model_dump_json(by_alias=True), qos=1
    ).wait_for_publish(5)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not session.latch.tripped:
        time.sleep(0.01)
    assert session.latch.tripped and "MQTT e-stop (marshal)" in session.latch.reason
    sender.publish(topic, CarCommand(command="rearm").model_dump_json(by_alias=True), qos=1).wait_for_publish(
        5
    )
    sender.publish(topic, b"not json", qos=1).wait_for_publish(5)  # ignored, never crashes the car
    time.sleep(0.5)
    assert session.latch.tripped  # allow_remote_rearm is false: a person re-arms at the car
    assert (hal.drive.last.steering_us, hal.drive.last.throttle_us) == (1500, 1500)
    sender.disconnect()
    sender.loop_stop()
    runner.join(10)


def test_sim_backend_in_real_time(write_car) -> None:
    """--realtime: the loop is paced by the wall clock and the world keeps up with it."""
    from contracts.hal import Hal
    from device.calibration import Calibration
    from device.config import load_runtime_config
    from device.drive import DriveSession
    from sim.hal_backend import open_sim_parts

    config = load_runtime_config(write_car(""))
    cal = Calibration(config.hardware, config.car.vehicle.max_steer_deg)
    camera, drive, clock, laps, world = open_sim_parts(
        config.car, lambda s, t: (cal.steering_deg(s), cal.speed_mps(t)), observation="state", realtime=True
    )

    class Straight:
        def act(self, obs):
            return (0.0, 1.6)

    session = DriveSession(config, Straight(), Hal("sim", camera, drive, clock, [laps]), (1, 11), "float32")
    t0 = time.monotonic()
    result = session.run(max_steps=12)
    wall_s = time.monotonic() - t0
    assert 11 / 15 <= wall_s < 11 / 15 + 1.0  # 12 steps at 15 Hz: 11 periods of wall-clock time
    assert abs(world.steps - 12) <= 2 and result.stats.rate_hz == pytest.approx(15.0, rel=0.15)
    assert float(world.parts.sim.state.speed_mps[0]) > 0.3
    assert drive.pulses == (1500, 1500)  # ended at neutral
