"""IngestService: the league server's MQTT subscriber (paho-mqtt 2, callback API version 2).

- One subscriber for every league: the topic filters are ``pitlane/+/...`` (decide.py reads the league off
  the topic), so a league created later is ingested by the same session.
- Persistent session: a fixed client id (`CLIENT_ID`), clean start off and a session expiry of
  `SESSION_EXPIRY_S`, so the broker keeps the subscriptions and queues QoS 1 laps while the server is down
  and re-sends the unacknowledged ones when it reconnects. The brokers pitlane configures bind client ids
  to logins (Mosquitto's ``use_username_as_clientid``), so no other login can take this session over.
- Manual acknowledgement (``manual_ack_set(True)``): a PUBACK is sent by the writer thread only after the
  message's database transaction committed (worker.py), never on receipt.
- MQTT 5 by default (Receive Maximum `RECEIVE_MAXIMUM` lets a batch of unacknowledged laps be in flight);
  MQTT 3.1.1 for brokers that have no MQTT 5 (the amqtt fallback).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contracts import wire as protocol
from league_server.errors import ConfigError
from league_server.ingest.decide import Message
from league_server.ingest.stats import IngestStats
from league_server.ingest.worker import BatchWriter, EventSink
from league_server.models import utc_now

log = logging.getLogger(__name__)

CLIENT_ID = "pitlane-ingest"
SESSION_EXPIRY_S = 7 * 24 * 3600
RECEIVE_MAXIMUM = 1000
KEEPALIVE_S = 30


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host[:port]`` (port 1883 by default); ConfigError naming the setting otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ConfigError(f"broker_url: expected mqtt://HOST[:PORT], got {url!r}")
    try:
        port = parts.port or 1883
    except ValueError:
        raise ConfigError(f"broker_url: bad port in {url!r}") from None
    return BrokerAddress(parts.hostname, port)


class IngestService:
    """Subscribe to the league's topics and store what arrives (see module doc).

    settings: league_server Settings (broker_url or the embedded broker's host/port, mqtt_username,
    mqtt_password); sessions: a SQLAlchemy sessionmaker; events: an EventHub (``publish(race_id, event)``
    after each committed batch) or None. `stats` counts everything (IngestStats.snapshot()).
    """

    def __init__(
        self,
        settings: Any,
        sessions: Any,
        events: EventSink | None = None,
        *,
        protocol_version: Literal["5", "3.1.1"] = "5",
        client_id: str | None = None,
        batch_max: int = 500,
    ) -> None:
        self.settings = settings
        url = settings.broker_url or f"mqtt://{settings.embedded_broker_host}:{settings.embedded_broker_port}"
        self.address = parse_broker_url(url)
        self.protocol_version = protocol_version
        self.client_id = client_id or CLIENT_ID
        self.stats = IngestStats()
        self.writer = BatchWriter(sessions, self._ack, self.stats, events, batch_max=batch_max)
        self.connected = threading.Event()
        self.last_connect_error: str | None = None
        self._client: mqtt.Client | None = None

    # ----------------------------------------------------------------------------------------- lifecycle
    def start(self) -> IngestService:
        """Start the writer thread and connect (in the background; paho reconnects by itself)."""
        self.writer.start()
        client = self._make_client()
        self._client = client
        if self.protocol_version == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = RECEIVE_MAXIMUM
            client.connect_async(
                self.address.host, self.address.port, KEEPALIVE_S, clean_start=False, properties=props
            )
        else:
            client.connect_async(self.address.host, self.address.port, KEEPALIVE_S)
        client.loop_start()
        log.info("ingest connecting to %s:%d as %s", self.address.host, self.address.port, self.client_id)
        return self

    def stop(self) -> None:
        """Let the writer commit and acknowledge what it already has (still connected, so the PUBACKs go
        out), then disconnect; the broker keeps the session and anything unacknowledged for the next start."""
        self.writer.stop()
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self.connected.clear()

    def wait_connected(self, timeout_s: float) -> bool:
        """True once subscribed to the league's topics."""
        return self.connected.wait(timeout_s)

    # ------------------------------------------------------------------------------------------- paho
    def _make_client(self) -> mqtt.Client:
        if self.protocol_version == "5":
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
            )
        else:
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
            )
        client.manual_ack_set(True)
        username = getattr(self.settings, "mqtt_username", None)
        if username:
            secret = getattr(self.settings, "mqtt_password", None)
            password = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
            client.username_pw_set(username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason_code: Any, _props: Any
    ) -> None:
        if reason_code.is_failure:
            self.last_connect_error = str(reason_code)
            log.error("broker refused the ingest login: %s", reason_code)
            return
        self.last_connect_error = None
        # `connected` waits for the SUBACK (_on_subscribe): a lap published between CONNACK and SUBACK on a
        # first connection would not be delivered to us (seen as a lost lap in a test on a busy machine).
        client.subscribe(protocol.subscriptions())
        log.info("ingest connected (session present: %s)", getattr(flags, "session_present", None))

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reason_codes: Any, _props: Any
    ) -> None:
        failed = [str(code) for code in reason_codes if getattr(code, "is_failure", False)]
        if failed:
            self.last_connect_error = f"broker refused the subscriptions: {', '.join(failed)}"
            log.error("ingest: %s", self.last_connect_error)
            return
        log.info("ingest subscribed to %s", [topic for topic, _ in protocol.subscriptions()])
        self.connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _p: Any
    ) -> None:
        self.connected.clear()
        log.warning("ingest disconnected from the broker: %s", reason_code)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.writer.submit(
            Message(
                topic=msg.topic,
                payload=bytes(msg.payload),
                mid=msg.mid,
                qos=msg.qos,
                retain=bool(msg.retain),
                received_at=utc_now(),
            )
        )

    def _ack(self, mid: int, qos: int) -> None:
        client = self._client
        if client is not None:
            client.ack(mid, qos)
