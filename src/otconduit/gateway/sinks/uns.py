"""Unified Namespace sink: one retained JSON message per sample on the tag's ISA-95 path.

Topic: ``[prefix/]enterprise/site/area/line/cell/tag`` (the sample's full path), QoS 1,
retained, so a new subscriber sees every tag's last value at once. Payload::

    {"value": 21.5, "unit": "degC", "quality": "good",
     "timestamp": "2024-05-01T12:00:00.123456Z",       # when the gateway got it (UTC)
     "source_timestamp": "...",                         # the device's, when it gives one
     "reason": "...",                                   # why quality is not good
     "historical": true}                                # replayed from store-and-forward

Replayed samples are retained too, and they come oldest first, so once the queue has
drained each topic again holds its newest value.

The gateway's own state is on ``[prefix/]enterprise/site/_gateway/<name>/status``
(retained ``{"online": true|false, ...}``, the false one registered as the MQTT will); no
tag path can start with '_', so it never collides with a tag.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from otconduit.gateway.buffer import Queued
from otconduit.gateway.config import GatewayConfig
from otconduit.gateway.model import TagSample, Value
from otconduit.gateway.sinks.mqtt import Message, MqttLink, MqttSink, Will


def iso_utc(ns: int) -> str:
    """ISO 8601 UTC with microseconds: 2024-05-01T12:00:00.123456Z."""
    dt = datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(
        microsecond=(ns % 1_000_000_000) // 1000
    )
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_value(v: Value) -> Value:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/Infinity
    return v


def uns_payload(s: TagSample, *, historical: bool) -> bytes:
    doc: dict[str, object] = {
        "value": _json_value(s.value),
        "unit": s.unit,
        "quality": s.quality.value,
        "timestamp": iso_utc(s.recv_ts_ns),
    }
    if s.source_ts_ns is not None:
        doc["source_timestamp"] = iso_utc(s.source_ts_ns)
    if s.reason:
        doc["reason"] = s.reason
    if historical:
        doc["historical"] = True
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


class UnsSink(MqttSink):
    kind = "uns"
    # one QoS 1 message per sample: keep paho's outgoing table short (it scans the whole
    # table on every PUBACK), 4 x 64 unconfirmed messages are plenty on a LAN
    chunk = 64
    window = 4

    def __init__(self, cfg: GatewayConfig) -> None:
        super().__init__(cfg)
        prefix = self.mqtt.uns.prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.status_topic = f"{self.prefix}{cfg.enterprise}/{cfg.site}/_gateway/{cfg.name}/status"

    def topic(self, path: str) -> str:
        return self.prefix + path

    def _status(self, online: bool) -> bytes:
        doc = {"online": online, "gateway": self.cfg.name, "timestamp": iso_utc(time.time_ns())}
        return json.dumps(doc, separators=(",", ":")).encode()

    def will(self) -> Will:
        return Will(self.status_topic, self._status(False), qos=1, retain=True)

    def announce(self, link: MqttLink) -> list[asyncio.Future[None]]:
        fut = link.publish(Message(self.status_topic, self._status(True), qos=1, retain=True))
        return [fut] if fut is not None else []

    def encode(self, entries: Sequence[Queued], historical: Sequence[bool]) -> list[Message]:
        return [
            Message(self.topic(q.sample.path), uns_payload(q.sample, historical=h), 1, True)
            for q, h in zip(entries, historical, strict=True)
        ]

    async def goodbye(self, link: MqttLink) -> None:
        fut = link.publish(Message(self.status_topic, self._status(False), qos=1, retain=True))
        if fut is not None:
            await fut
