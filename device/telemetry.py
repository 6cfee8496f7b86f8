"""The car's MQTT link to its league (paho-mqtt 2, VERSION2 callbacks): status, laps, telemetry, commands.

- status (retained, QoS 1) with a last will of ``offline`` (`contracts.wire.offline_status_bytes`), so the
  league sees a car vanish even when its process is killed;
- laps (QoS 1, signed with the car's HMAC secret): every lap goes into the outbox first; it is published and
  marked sent only when the broker's PUBACK comes back (`on_publish` with its mid). On every (re)connect the
  unacknowledged laps are published again, oldest first — the server dedupes on (car_id, run_id, seq);
- telemetry (QoS 0, best effort, at most `telemetry_hz`);
- commands: the car subscribes to its command topic; ``estop`` trips the safety latch, ``rearm`` re-arms
  only when `[safety] allow_remote_rearm` is true.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contracts.car_file import CarFile, LeagueConfig, parse_broker_url
from contracts.errors import ProtocolError
from contracts.wire import (
    COMMAND_QOS,
    LAP_QOS,
    STATUS_QOS,
    TELEMETRY_QOS,
    CarStatus,
    LapReport,
    Telemetry,
    car_topic,
    offline_status_bytes,
    parse_command,
    utc_now_iso,
)
from device.config import Credentials
from device.estop import SafetyLatch
from device.outbox import Outbox, PendingLap

log = logging.getLogger(__name__)


class LeagueLink:
    """One car's connection. Start with `start()`, stop with `close()` (waits up to `flush_s` for PUBACKs)."""

    def __init__(
        self,
        config: CarFile,
        league: LeagueConfig,
        credentials: Credentials,
        outbox: Outbox,
        latch: SafetyLatch,
        *,
        run_id: str,
        model_sha256: str | None,
        allow_remote_rearm: bool = False,
    ) -> None:
        self.league = league
        self._secret = credentials.hmac_secret
        self.outbox = outbox
        self._latch = latch
        self.run_id = run_id
        self._sha = model_sha256
        self._allow_rearm = allow_remote_rearm
        self._lock = threading.RLock()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id
        self._connected = threading.Event()
        self._last_telemetry_s = 0.0
        self.state = "online"
        self.host, self.port, tls = parse_broker_url(league.broker_url)
        self._topic = {
            ch: car_topic(league.league, league.car_id, ch)
            for ch in ("laps", "status", "telemetry", "command")
        }
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pitlane-car-{league.car_id}-{run_id[:8]}",
            protocol=mqtt.MQTTv311,
        )
        self.client.will_set(self._topic["status"], offline_status_bytes(), qos=STATUS_QOS, retain=True)
        if credentials.mqtt_username:
            self.client.username_pw_set(credentials.mqtt_username, credentials.mqtt_password)
        if tls or league.tls is not None:
            self._set_tls(config, league)
        self.client.reconnect_delay_set(min_delay=1, max_delay=8)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        latch.on_trip(lambda reason: self.publish_status("estop"))
        latch.on_rearm(lambda: self.publish_status("driving"))

    def _set_tls(self, config: CarFile, league: LeagueConfig) -> None:
        tls = league.tls

        def path(p: str | None) -> str | None:
            return str(config.resolve(p)) if p else None

        self.client.tls_set(
            ca_certs=path(tls.ca_file) if tls else None,
            certfile=path(tls.cert_file) if tls else None,
            keyfile=path(tls.key_file) if tls else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        if tls is not None and tls.insecure:
            self.client.tls_insecure_set(True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background (paho's thread); laps wait in the outbox until the broker is there."""
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def close(self, *, flush_s: float = 5.0, final_state: str = "stopped") -> int:
        """Publish the final status, wait up to `flush_s` for unacknowledged laps, disconnect.

        Returns the number of laps still unacknowledged (they stay in the outbox for the next run)."""
        status = self.publish_status(final_state)
        deadline = time.monotonic() + flush_s
        if self._connected.is_set():
            with contextlib.suppress(RuntimeError, ValueError):  # paho: not queued / disconnected meanwhile
                status.wait_for_publish(timeout=min(flush_s, 2.0))
        while time.monotonic() < deadline and self.outbox.counts()[1] and self._connected.is_set():
            time.sleep(0.05)
        pending = self.outbox.counts()[1]
        self.client.disconnect()
        self.client.loop_stop()
        return pending

    # ------------------------------------------------------------------ callbacks (paho's network thread)

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning("broker %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        log.info("connected to %s:%d", self.host, self.port)
        self._connected.set()
        client.subscribe(self._topic["command"], qos=COMMAND_QOS)
        self.publish_status(self.state)
        self.replay()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._connected.clear()
        log.info("disconnected from %s:%d (%s); laps wait in the outbox", self.host, self.port, reason)

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        with self._lock:
            row_id = self._inflight.pop(mid, None)
        if row_id is not None:
            self.outbox.ack(row_id)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            command = parse_command(message.payload)
        except ProtocolError as exc:
            log.warning("ignored a bad command on %s: %s", message.topic, exc)
            return
        if command.command == "estop":
            self._latch.trip(f"MQTT e-stop ({command.reason or 'no reason given'})")
        elif self._allow_rearm:
            self._latch.rearm("MQTT command")
        else:
            log.warning("remote re-arm refused: [safety] allow_remote_rearm is false; re-arm at the car")

    # ------------------------------------------------------------------ publishing

    def add_lap(self, report: LapReport) -> None:
        """Store the signed lap in the outbox, then publish it (now if connected, else on reconnect)."""
        wire = report.to_wire(self._secret)
        row_id = self.outbox.add(report.run_id, report.seq, self._topic["laps"], wire)
        if self._connected.is_set():
            self._publish_pending(PendingLap(row_id, report.run_id, report.seq, self._topic["laps"], wire))

    def replay(self) -> None:
        """Publish every unacknowledged lap that is not already in flight, oldest first."""
        for lap in self.outbox.pending():
            self._publish_pending(lap)

    def _publish_pending(self, lap: PendingLap) -> None:
        with self._lock:  # on_publish for this mid must find it: hold the lock across publish + record
            if lap.id in self._inflight.values():
                return
            info = self.client.publish(lap.topic, lap.payload, qos=LAP_QOS)
            self._inflight[info.mid] = lap.id

    def publish_status(self, state: str) -> mqtt.MQTTMessageInfo:
        """Retained status (QoS 1): online, driving, stopped, estop (the will says offline)."""
        self.state = state
        status = CarStatus(
            state=state,
            car_id=self.league.car_id,
            run_id=self.run_id,
            model_sha256=self._sha,
            sent_at=utc_now_iso(),
        )
        return self.client.publish(
            self._topic["status"], status.model_dump_json(by_alias=True), qos=STATUS_QOS, retain=True
        )

    def publish_telemetry(
        self, steering_deg: float, speed_mps: float, loop_ms: float, latency_ms: float, overruns: int
    ) -> None:
        """At most `telemetry_hz` messages per second; dropped while disconnected (QoS 0: live view only)."""
        hz = self.league.telemetry_hz
        now = time.monotonic()
        if hz <= 0 or now - self._last_telemetry_s < 1.0 / hz or not self._connected.is_set():
            return
        self._last_telemetry_s = now
        msg = Telemetry(
            car_id=self.league.car_id,
            run_id=self.run_id,
            steering_deg=float(steering_deg),
            speed_mps=float(speed_mps),
            loop_ms=float(loop_ms),
            latency_ms=float(latency_ms),
            overruns=int(overruns),
            sent_at=utc_now_iso(),
        )
        self.client.publish(self._topic["telemetry"], msg.model_dump_json(by_alias=True), qos=TELEMETRY_QOS)
