"""The hub's broker session: durable, acknowledged only after the message is applied.

A fixed client id with ``clean_session=False`` makes the broker keep the hub's
subscription and queue what the sites publish while the hub is down; with paho's manual
acknowledgement the PUBACK for a message goes out only after its transaction committed,
so a hub killed between receiving and applying gets it again on reconnect (and drops the
copy if it had in fact committed). Everything runs on the calling thread: paho's loop
hands messages to :meth:`Hub._on_message`, which collects them while more bytes wait on
the socket (up to :data:`BATCH`); then :meth:`Hub.flush` applies them in one transaction
(group commit) and acknowledges them. The broker bounds a batch too: Mosquitto sends at
most ``max_inflight_messages`` (default 20) unacknowledged messages per client, so raise
it for a busy hub.
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
BATCH = 200  # messages applied in one transaction at most


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
        # called once, when the broker first confirmed the subscription: from then on it
        # keeps the hub's messages while the hub is away (before, it drops them)
        self.on_subscribed: Callable[[], None] | None = None
        self.subscribed = False
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
        c.on_subscribe = self._on_subscribe
        self.client = c
        self._refused: str | None = None
        self._pending: list[tuple[str, bytes, int, int]] = []  # received, not yet applied

    def _on_connect(self, client: Any, ud: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self._refused = f"broker refused the hub: {rc}"
            return
        self.connected = True
        self.sessions += 1
        client.subscribe(TOPIC, qos=1)

    def _on_subscribe(self, client: Any, ud: Any, mid: Any, rcs: Any, props: Any) -> None:
        if any(getattr(rc, "is_failure", False) for rc in rcs):
            self._refused = f"broker refused the hub's subscription to {TOPIC}: {rcs[0]}"
            return
        if not self.subscribed:
            self.subscribed = True
            if self.on_subscribed is not None:
                self.on_subscribed()

    def _on_disconnect(self, client: Any, ud: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected = False

    def _on_message(self, client: Any, ud: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers check this; the hub does not rely on it
            topic = msg._topic.decode("utf-8", "backslashreplace")
        self._pending.append((topic, bytes(msg.payload), msg.mid, msg.qos))
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Apply what arrived (one transaction), then acknowledge it to the broker."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self.ingest.handle_many([(t, p) for t, p, _, _ in batch])  # a database error propagates
        for _, _, mid, qos in batch:
            if qos > 0:
                self.client.ack(mid, qos)

    def _readable(self) -> bool:
        """Whether more bytes wait on the broker socket (then keep reading before
        committing, up to BATCH messages)."""
        import select

        sock = self.client.socket()
        if sock is None:
            return False
        pending = getattr(sock, "pending", None)
        if pending is not None and pending() > 0:  # TLS: decrypted bytes select() cannot see
            return True
        return bool(select.select([sock], [], [], 0)[0])

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
            rc = self.client.loop(timeout=0.02 if self._pending else 0.2)
            if self._refused is not None:
                raise HubError(self._refused)
            if rc == paho.MQTT_ERR_SUCCESS:
                if not self._readable():
                    self.flush()  # nothing more waiting on the socket: commit the batch
                if self.on_idle is not None:
                    self.on_idle()
                if not self.connected and self.sessions == 0 and time.monotonic() > deadline:
                    raise HubError(f"no answer from the broker {m.host}:{m.port}")
                continue
            self.connected = False
            # received but not acknowledged: the broker sends these again; applying them
            # now is harmless (the message ids) and saves the round trip
            self.flush()
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
        self.flush()
        self.client.disconnect()

    def stop(self) -> None:
        self.stop_event.set()
