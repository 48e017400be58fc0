"""The hub's broker session: durable, acknowledged only after the message is applied.

A fixed client id with ``clean_session=False`` makes the broker keep the hub's
subscription and queue what the sites publish while the hub is down; with paho's manual
acknowledgement the PUBACK for a message goes out only after its transaction committed,
so a hub killed between receiving and applying gets it again on reconnect (and drops the
copy if it had in fact committed). Everything runs on the calling thread: paho's loop
calls :meth:`Hub._on_message`, which applies the message before the loop reads the next.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from otconduit.gateway.config import Mqtt
from otconduit.gateway.sinks.mqtt import tls_context
from otconduit.hub.ingest import Ingest
from otconduit.uplink.envelope import PREFIX

log = logging.getLogger(__name__)

TOPIC = f"{PREFIX}/+/+"


class HubError(Exception):
    """The broker refused the hub, or cannot be reached at the first try."""


class Hub:
    def __init__(self, mqtt: Mqtt, ingest: Ingest, *, client_id: str = "conduit-hub") -> None:
        self.mqtt = mqtt
        self.ingest = ingest
        self.stop_event = threading.Event()
        self.connected = False
        self.sessions = 0
        self.last_error = ""
        self.on_idle: Callable[[], None] | None = None
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
            manual_ack=True,
        )
        c.enable_logger(log)
        if mqtt.username is not None:
            c.username_pw_set(mqtt.username, mqtt.password)
        ctx = tls_context(mqtt)
        if ctx is not None:
            c.tls_set_context(ctx)
            if mqtt.tls is not None and mqtt.tls.insecure:
                c.tls_insecure_set(True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self.client = c
        self._refused: str | None = None

    def _on_connect(self, client: Any, ud: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self._refused = f"broker refused the hub: {rc}"
            return
        self.connected = True
        self.sessions += 1
        client.subscribe(TOPIC, qos=1)

    def _on_disconnect(self, client: Any, ud: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected = False

    def _on_message(self, client: Any, ud: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers check this; the hub does not rely on it
            topic = msg._topic.decode("utf-8", "backslashreplace")
        self.ingest.handle(topic, bytes(msg.payload))  # a database error propagates
        if msg.qos > 0:
            client.ack(msg.mid, msg.qos)

    def run(self, *, first_connect_timeout: float = 10.0) -> None:
        """Serve until :meth:`stop`; reconnects with back-off after an outage."""
        m = self.mqtt
        try:
            self.client.connect(m.host, m.port, m.keepalive)
        except (OSError, ValueError) as exc:
            raise HubError(f"cannot reach the broker {m.host}:{m.port}: {exc}") from exc
        deadline = time.monotonic() + first_connect_timeout
        delay = m.reconnect.initial
        while not self.stop_event.is_set():
            rc = self.client.loop(timeout=0.2)
            if self._refused is not None:
                raise HubError(self._refused)
            if rc == paho.MQTT_ERR_SUCCESS:
                if self.on_idle is not None:
                    self.on_idle()
                if not self.connected and self.sessions == 0 and time.monotonic() > deadline:
                    raise HubError(f"no answer from the broker {m.host}:{m.port}")
                continue
            self.connected = False
            self.last_error = paho.error_string(rc)
            log.warning("broker connection lost (%s); reconnecting", self.last_error)
            while not self.stop_event.is_set():
                self.stop_event.wait(delay)
                try:
                    self.client.reconnect()
                    delay = m.reconnect.initial
                    break
                except (OSError, ValueError) as exc:
                    self.last_error = str(exc)
                    delay = min(delay * 2, m.reconnect.max)
        self.client.disconnect()

    def stop(self) -> None:
        self.stop_event.set()
