"""Sparkplug B 3.0 sink: the gateway is one edge node, each configured device one
Sparkplug device, each tag one metric.

Topics (§4.1): ``spBv1.0/<group_id>/<verb>/<edge_node>[/<device>]``. The group id is
the site (or ``sparkplug.group_id``), the edge node the gateway name (or
``sparkplug.edge_node``): ids are single topic levels, never ISA-95 paths, and the
config rejects '/', '+' and '#' in them. A metric's name is the tag's path below the
site (area/line/cell/tag), which hosts show as folders.

Session (§5): the CONNECT carries the NDEATH will (QoS 1, not retained) with this
session's bdSeq; then NBIRTH (seq 0, bdSeq, ``Node Control/Rebirth`` = false) and one
DBIRTH per device with every metric's name, alias, datatype, unit (``engUnit``
property) and current value; then DDATA with aliases only. bdSeq goes up by one per
MQTT session, seq by one per message (0-255, wrapping). Births and data are QoS 0 and
not retained, as the specification requires (§6.4.19-6.4.22); their delivery is
confirmed with a broker barrier (see :mod:`.mqtt`), so store-and-forward still knows
what arrived. Replayed samples come after the fresh births, with ``is_historical``.
Non-good samples carry the ``Quality`` property (0 bad, 500 stale; §6.4.12).

Commands: NCMD ``Node Control/Rebirth`` = true republishes NBIRTH and DBIRTHs; every
other NCMD and every DCMD is ignored (and counted): the gateway writes nothing to OT.
On a clean close the node publishes DDEATHs and NDEATH before disconnecting.

Device life follows the collectors' quality: when every tag of a device is stale (the
device stopped answering) the device gets a DDEATH, and further stale samples of it are
not sent; its next fresh sample brings a DBIRTH first, then DDATA.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from otconduit.gateway.buffer import Queued
from otconduit.gateway.config import GatewayConfig, Tag
from otconduit.gateway.model import Quality, TagSample
from otconduit.gateway.sinks.mqtt import Message, MqttLink, MqttSink, Will
from otconduit.gateway.sinks.sparkplug_proto import (
    QUALITY_BAD,
    QUALITY_STALE,
    DataType,
    Malformed,
    Metric,
    Property,
    UnrepresentableValue,
    alias_head,
    check_value,
    data_metric,
    decode_payload,
    encode_payload,
    encode_payload_framed,
    framed_metric,
)

log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
BDSEQ = "bdSeq"
REBIRTH = "Node Control/Rebirth"
ALIAS_BDSEQ = 0
ALIAS_REBIRTH = 1
FIRST_TAG_ALIAS = 2
MAX_METRICS_PER_MESSAGE = 500

_TYPES = {
    "bool": DataType.BOOLEAN, "int16": DataType.INT16, "uint16": DataType.UINT16,
    "int32": DataType.INT32, "uint32": DataType.UINT32, "int64": DataType.INT64,
    "uint64": DataType.UINT64, "float32": DataType.FLOAT, "float64": DataType.DOUBLE,
    "string": DataType.STRING,
}  # fmt: skip
_QUALITY = {Quality.BAD: QUALITY_BAD, Quality.STALE: QUALITY_STALE}


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricDef:
    path: str  # the tag's full ISA-95 path (what samples carry)
    device: str
    name: str  # metric name: the path below the site
    alias: int
    datatype: DataType
    unit: str
    head: bytes  # the alias field's bytes: the constant start of every DATA metric


def tag_datatype(tag: Tag) -> DataType:
    """The Sparkplug type of a tag's engineering value: scaling makes numbers Double."""
    if tag.scale is not None and tag.type not in ("bool", "string"):
        return DataType.DOUBLE
    return _TYPES[tag.type]


def sparkplug_metrics(cfg: GatewayConfig) -> list[MetricDef]:
    """Every tag as a device metric, aliases unique across the edge node (§6.4.4)."""
    out: list[MetricDef] = []
    alias = FIRST_TAG_ALIAS
    for d in cfg.devices:
        for t in d.tags:
            out.append(
                MetricDef(
                    path=cfg.full_path(t),
                    device=d.name,
                    name=t.path,
                    alias=alias,
                    datatype=tag_datatype(t),
                    unit=t.unit,
                    head=alias_head(alias),
                )
            )
            alias += 1
    return out


def _ms(ns: int) -> int:
    return ns // 1_000_000


class SparkplugSink(MqttSink):
    kind = "sparkplug"

    def __init__(self, cfg: GatewayConfig) -> None:
        super().__init__(cfg)
        sp = self.mqtt.sparkplug
        self.group_id = sp.group_id or cfg.site
        self.edge_node = sp.edge_node or cfg.name
        self.metrics = {m.path: m for m in sparkplug_metrics(cfg)}
        self.devices: dict[str, list[MetricDef]] = {d.name: [] for d in cfg.devices}
        for m in self.metrics.values():
            self.devices[m.device].append(m)
        self._latest: dict[str, TagSample] = {}
        self._stale: dict[str, set[str]] = {d: set() for d in self.devices}  # as last sent
        self._dead: set[str] = set()  # devices whose DDEATH is the last word this session
        self.device_deaths = 0
        self.device_births = 0
        self.bdseq = 0
        self._seq = 0
        self.rebirths = 0
        self.commands_ignored = 0
        self.commands_malformed = 0
        self.unmapped = 0  # samples whose path is no configured tag
        self.unrepresentable = 0  # values the metric's datatype cannot carry (sent as null)

    # -- topics and payload pieces -------------------------------------------------------

    def topic(self, verb: str, device: str | None = None) -> str:
        t = f"{NAMESPACE}/{self.group_id}/{verb}/{self.edge_node}"
        return f"{t}/{device}" if device is not None else t

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) % 256
        return seq

    def _bdseq_metric(self, now_ms: int, *, alias: bool) -> Metric:
        return Metric(
            name=BDSEQ,
            alias=ALIAS_BDSEQ if alias else None,
            timestamp=now_ms,
            datatype=DataType.UINT64,
            value=self.bdseq,
        )

    def _value_metric(
        self, md: MetricDef, s: TagSample | None, *, birth: bool, hist: bool
    ) -> Metric:
        props: list[Property] = []
        if birth and md.unit:
            props.append(Property(key="engUnit", type=DataType.STRING, value=md.unit))
        value = s.value if s is not None else None
        if s is not None and s.quality in _QUALITY:
            props.append(Property(key="Quality", type=DataType.INT32, value=_QUALITY[s.quality]))
        metric = Metric(
            name=md.name if birth else None,
            alias=md.alias,
            timestamp=_ms(s.ts_ns) if s is not None else _ms(time.time_ns()),
            datatype=md.datatype,
            send_datatype=birth,
            is_historical=hist,
            value=value,
            properties=tuple(props),
        )
        try:
            check_value(md.datatype, value)
        except UnrepresentableValue as exc:
            self.unrepresentable += 1
            log.warning("%s: %s; sent as null with bad quality", md.path, exc)
            props = [p for p in props if p.key != "Quality"]
            props.append(Property(key="Quality", type=DataType.INT32, value=QUALITY_BAD))
            metric = Metric(
                name=metric.name,
                alias=md.alias,
                timestamp=metric.timestamp,
                datatype=md.datatype,
                send_datatype=birth,
                is_historical=hist,
                value=None,
                properties=tuple(props),
            )
        return metric

    # -- MqttSink hooks ------------------------------------------------------------------

    def observe(self, samples: Sequence[TagSample]) -> None:
        for s in samples:
            self._latest[s.path] = s

    def will(self) -> Will:
        payload = encode_payload(
            timestamp=_ms(time.time_ns()),
            metrics=[self._bdseq_metric(_ms(time.time_ns()), alias=False)],
            seq=None,
        )
        return Will(self.topic("NDEATH"), payload, qos=1, retain=False)

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(self.topic("NCMD"), 1), (self.topic("DCMD") + "/+", 1)]

    def on_message(self, topic: str, payload: bytes) -> None:
        if topic != self.topic("NCMD"):
            self.commands_ignored += 1  # DCMD: the gateway never writes to a device
            return
        decoded = decode_payload(payload)
        if isinstance(decoded, Malformed):
            self.commands_malformed += 1
            log.warning("NCMD ignored: %s at byte %d", decoded.reason, decoded.offset)
            return
        rebirth = any(
            (m.name == REBIRTH or (m.name is None and m.alias == ALIAS_REBIRTH)) and m.value is True
            for m in decoded.metrics
        )
        if rebirth:
            self.rebirths += 1
            self.request_announce()
        else:
            self.commands_ignored += 1

    def announce(self, link: MqttLink) -> list[asyncio.Future[None]]:
        """NBIRTH then every DBIRTH (§5.7, §5.8), before any data of the session."""
        now = _ms(time.time_ns())
        self._seq = 0
        nbirth = [
            self._bdseq_metric(now, alias=True),
            Metric(
                name=REBIRTH,
                alias=ALIAS_REBIRTH,
                timestamp=now,
                datatype=DataType.BOOLEAN,
                value=False,
            ),
        ]
        link.publish(self._message("NBIRTH", None, nbirth, now))
        self._dead.clear()
        for device in self.devices:
            link.publish(self._dbirth(device, now))
        return []

    def _message(self, verb: str, device: str | None, metrics: list[Metric], now: int) -> Message:
        return self._framed_message(verb, device, [framed_metric(m) for m in metrics], now)

    def _dbirth(self, device: str, now: int) -> Message:
        metrics = [
            self._value_metric(md, self._latest.get(md.path), birth=True, hist=False)
            for md in self.devices[device]
        ]
        return self._message("DBIRTH", device, metrics, now)

    def encode(self, entries: Sequence[Queued], historical: Sequence[bool]) -> list[Message]:
        """DDATA per run of one device's samples, in queue order. Live samples also
        drive the device's life: when every tag of a device is stale it gets a DDEATH;
        its next fresh sample gets a DBIRTH first (§6.4.21 DDEATH, §6.4.20 DBIRTH)."""
        now = _ms(time.time_ns())
        out: list[Message] = []
        device: str | None = None
        metrics: list[bytes] = []  # framed Payload.metrics entries
        defs, good, stale_q = self.metrics, Quality.GOOD, Quality.STALE

        def flush() -> None:
            if metrics and device is not None:
                out.append(self._framed_message("DDATA", device, metrics, now))
            metrics.clear()

        for q, h in zip(entries, historical, strict=True):
            s = q.sample
            md = defs.get(s.path)
            if md is None:
                self.unmapped += 1
                continue
            stale = self._stale[md.device]
            if not h and md.device in self._dead:
                if s.quality is stale_q:
                    stale.add(md.path)
                    continue  # a dead device stays dead until it answers again
                flush()
                self._dead.discard(md.device)
                out.append(self._dbirth(md.device, now))
                self.device_births += 1
            if md.device != device or len(metrics) >= MAX_METRICS_PER_MESSAGE:
                flush()
                device = md.device
            entry = None
            if s.quality is good:  # the common case, encoded without a Metric object
                entry = data_metric(md.head, s.ts_ns // 1_000_000, md.datatype, s.value, h)
            if entry is None:
                entry = framed_metric(self._value_metric(md, s, birth=False, hist=h))
            metrics.append(entry)
            if not h:
                if s.quality is stale_q:
                    stale.add(md.path)
                elif stale:
                    stale.discard(md.path)
                if len(stale) == len(self.devices[md.device]):
                    flush()
                    out.append(self._message("DDEATH", md.device, [], now))
                    self._dead.add(md.device)
                    self.device_deaths += 1
        flush()
        return out

    def _framed_message(
        self, verb: str, device: str | None, metrics: list[bytes], now: int
    ) -> Message:
        """A message of this session (the next seq) from framed metrics."""
        payload = encode_payload_framed(timestamp=now, metrics=metrics, seq=self._next_seq())
        return Message(self.topic(verb, device), payload, qos=0, retain=False)

    async def goodbye(self, link: MqttLink) -> None:
        now = _ms(time.time_ns())
        for device in self.devices:
            if device not in self._dead:
                link.publish(self._message("DDEATH", device, [], now))
        ndeath = encode_payload(
            timestamp=now, metrics=[self._bdseq_metric(now, alias=False)], seq=None
        )
        fut = link.publish(Message(self.topic("NDEATH"), ndeath, qos=1, retain=False))
        if fut is not None:
            await fut

    def session_ended(self) -> None:
        self.bdseq = (self.bdseq + 1) % 256  # the next CONNECT's will and NBIRTH

    def status(self) -> dict[str, Any]:
        return {
            **super().status(),
            "group_id": self.group_id,
            "edge_node": self.edge_node,
            "bdseq": self.bdseq,
            "rebirths": self.rebirths,
            "commands_ignored": self.commands_ignored,
            "commands_malformed": self.commands_malformed,
            "device_deaths": self.device_deaths,
            "device_births": self.device_births,
            "unmapped": self.unmapped,
            "unrepresentable": self.unrepresentable,
        }
