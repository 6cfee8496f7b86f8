"""Fixtures for the car runtime's tests: car files in tmp dirs, a credentials file, a real exported model,
unique league/car ids (tests share one Mosquitto), and an MQTT subscriber that collects lap reports."""

from __future__ import annotations

import json
import sys
import threading
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.device.fakes import FakeButton, FakeI2C, FakePCA9685

SECRET = "test-secret-0123456789abcdef"


def car_text(extra: str = "", *, base: str = "deepracer") -> str:
    """A shipped car file (all its tables) with `extra` TOML appended."""
    return (REPO_ROOT / "firmware_configs" / f"{base}.toml").read_text(encoding="utf-8") + extra


@pytest.fixture
def ids() -> tuple[str, str]:
    """(league id, car id), unique per test: tests share the broker."""
    tag = uuid.uuid4().hex[:10]
    return f"test-{tag}", f"car-{tag}"


@pytest.fixture
def credentials_file(tmp_path: Path) -> Path:
    path = tmp_path / "car.credentials.toml"
    path.write_text(
        f'mqtt_username = "car"\nmqtt_password = "pw"\nhmac_secret = "{SECRET}"\n', encoding="utf-8"
    )
    return path


@pytest.fixture
def write_car(tmp_path: Path):
    """write_car(extra="", name="car.toml", base="deepracer") -> path of a car file in tmp_path."""

    def write(extra: str = "", name: str = "car.toml", base: str = "deepracer") -> Path:
        path = tmp_path / name
        path.write_text(car_text(extra, base=base), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def state_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real exported `state` model (a few seconds of PPO training, then the export pipeline)."""
    from tests.export_fixtures import make_exported_model

    return make_exported_model(tmp_path_factory.mktemp("state-model"), "state") / "model.onnx"


@pytest.fixture(scope="session")
def camera_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real exported `camera` model (one short PPO rollout: it drives badly, but through the real graph)."""
    from tests.export_fixtures import make_exported_model

    out = tmp_path_factory.mktemp("camera-model")
    return make_exported_model(out, "camera", steps=512, agreement_frames=60) / "model.onnx"


class LapSubscriber:
    """Subscribes to one car's laps topic (QoS 1) and keeps every report, keyed by (car_id, run_id, seq)."""

    def __init__(self, host: str, port: int, league: str, car_id: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from contracts.wire import car_topic

        self.topic = car_topic(league, car_id, "laps")
        self.status_topic = car_topic(league, car_id, "status")
        self.telemetry_topic = car_topic(league, car_id, "telemetry")
        self.raw: list[dict] = []
        self.status: list[dict] = []
        self.telemetry: list[dict] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(self.topic, 1), (self.status_topic, 1), (self.telemetry_topic, 0)]
        )
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(5), "the test subscriber could not subscribe"

    def _on_message(self, _client, _userdata, message) -> None:
        into = {self.topic: self.raw, self.status_topic: self.status, self.telemetry_topic: self.telemetry}
        with self._lock:
            into[message.topic].append(json.loads(message.payload))

    def unique(self) -> dict[tuple[str, str, int], dict]:
        """Deduplicated by (car_id, run_id, seq), as the league server does."""
        with self._lock:
            return {(r["car_id"], r["run_id"], r["seq"]): r for r in self.raw}

    def wait_for(self, n: int, timeout_s: float) -> dict[tuple[str, str, int], dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(self.unique()) < n:
            time.sleep(0.05)
        return self.unique()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def lap_subscriber(mosquitto: tuple[str, int], ids: tuple[str, str]) -> Iterator[LapSubscriber]:
    sub = LapSubscriber(*mosquitto, *ids)
    yield sub
    sub.close()


@pytest.fixture
def fake_pca(monkeypatch):
    FakePCA9685.instances = []
    monkeypatch.setitem(sys.modules, "board", types.SimpleNamespace(SCL="SCL", SDA="SDA"))
    monkeypatch.setitem(sys.modules, "busio", types.SimpleNamespace(I2C=FakeI2C))
    monkeypatch.setitem(sys.modules, "adafruit_pca9685", types.SimpleNamespace(PCA9685=FakePCA9685))
    return FakePCA9685


@pytest.fixture
def fake_gpiozero(monkeypatch):
    FakeButton.instances = []
    monkeypatch.setitem(sys.modules, "gpiozero", types.SimpleNamespace(Button=FakeButton))
    return FakeButton
