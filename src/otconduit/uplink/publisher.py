"""Publishing uplink messages through the gateway's store-and-forward MQTT sender.

:class:`UplinkSink` is a :class:`~otconduit.gateway.sinks.mqtt.MqttSink` whose queued
"samples" are finished uplink messages (the sample's path is the topic, its value the
JSON body, its seq the message seq): the gateway's buffer (memory, then a durable disk
tier, oldest first after an outage) and its sender (QoS 1, a chunk acknowledged only
once the broker confirmed it) carry them unchanged.

:class:`Uplink` runs beside a sensor on its own thread and event loop with its own store
connection: every ``interval`` it collects what changed, queues it, and releases the
outbox rows the buffer now holds safely (on disk, or delivered). Nothing is ever read
from the broker: the plant side only sends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otconduit.gateway.buffer import Queued
from otconduit.gateway.config import Buffer, GatewayConfig, Mqtt, Sinks
from otconduit.gateway.model import Quality, TagSample
from otconduit.gateway.sinks.mqtt import Message, MqttSink
from otconduit.store import hub_outbox
from otconduit.store.backend import database_errors
from otconduit.store.sqlite import Store
from otconduit.uplink.collect import Collector
from otconduit.uplink.envelope import topic_for

log = logging.getLogger(__name__)


class UplinkSink(MqttSink):
    """Store-and-forward of finished uplink messages (QoS 1, never retained)."""

    kind = "uplink"
    chunk = 100

    def encode(self, entries: Sequence[Queued], historical: Sequence[bool]) -> list[Message]:
        return [Message(q.sample.path, str(q.sample.value).encode(), 1) for q in entries]


@dataclass(frozen=True, slots=True)
class UplinkOptions:
    site: str
    mqtt: Mqtt
    db: Path
    buffer_path: Path  # the disk tier's base name (the sink adds .uplink: <db>.uplink.db)
    interval: float = 2.0  # seconds between collections
    health_every: float = 30.0
    memory_messages: int = 1000
    buffer_max_bytes: int = 512 << 20


def gateway_config(opts: UplinkOptions) -> GatewayConfig:
    """The gateway config an :class:`UplinkSink` needs: the broker and the buffer."""
    return GatewayConfig(
        name=f"uplink-{opts.site}",
        enterprise="conduit",
        site=opts.site,
        devices=[],
        sinks=Sinks(historian=None, mqtt=opts.mqtt),
        buffer=Buffer(
            disk_path=opts.buffer_path,
            memory_samples=opts.memory_messages,
            disk_max_bytes=opts.buffer_max_bytes,
        ),
    )


class Uplink:
    """Collects from a site's store and publishes, until :meth:`stop`."""

    def __init__(self, opts: UplinkOptions) -> None:
        self.opts = opts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.status: dict[str, Any] = {}
        self.queued = 0  # messages queued by this process
        self.store_errors = 0  # collections that failed (and were retried)

    # -- thread --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self.serve())
        except Exception as exc:  # reported by the command; the sensor goes on
            log.exception("uplink failed")
            self.error = f"{type(exc).__name__}: {exc}"

    # -- work ----------------------------------------------------------------------------

    async def serve(self, *, once: bool = False, drain_timeout: float = 30.0) -> None:
        """Run until stopped (or, with ``once``, until everything is collected and
        delivered or ``drain_timeout`` passed)."""
        opts = self.opts
        store = Store(opts.db)
        sink = UplinkSink(gateway_config(opts))
        in_flight: deque[tuple[int, int]] = deque()  # (bid, seq)
        try:
            # What an earlier run built but did not get safely into the buffer.
            await self._queue(sink, hub_outbox.outbox(store, opts.site), in_flight)
            await sink.start()
            collector = Collector(store, opts.site)
            next_health = 0.0
            deadline = time.monotonic() + drain_timeout
            while True:
                # read before collecting: the collection after a stop request sees
                # everything the sensor wrote before it asked
                stopping = self._stop.is_set()
                health = None
                if stopping or time.monotonic() >= next_health:
                    health = self._health(sink)
                    next_health = time.monotonic() + opts.health_every
                try:
                    msgs = collector.collect(health)
                    await self._queue(sink, msgs, in_flight)
                    self._release(store, sink, in_flight)
                    more = once and (bool(msgs) or collector.pending())
                except database_errors() as exc:  # e.g. locked past the busy timeout: retry
                    log.warning("uplink: cannot read the store now (%s); retrying", exc)
                    self.store_errors += 1
                    msgs, more = [], False
                    if once and time.monotonic() > deadline:
                        break
                self.status = sink.status()
                if once:
                    if not more and (not len(sink.buffer) or time.monotonic() > deadline):
                        break
                    await asyncio.sleep(0.1 if more else 0.2)
                    continue
                if stopping:
                    break
                await self._sleep(opts.interval)
        finally:
            await sink.close()  # drains a little, then the memory tier goes to disk
            self.status = sink.status()
            if in_flight and not sink.buffer.dropped_error:  # now all on disk (or delivered)
                hub_outbox.release(store, opts.site, in_flight[-1][1])
            store.close()

    async def _queue(
        self, sink: UplinkSink, msgs: Sequence[tuple[int, str, str]], in_flight: deque[Any]
    ) -> None:
        if not msgs:
            return
        now = time.time_ns()
        samples = [
            TagSample(
                path=topic_for(self.opts.site, kind),
                value=body,
                quality=Quality.GOOD,
                recv_ts_ns=now,
                seq=seq,
            )
            for seq, kind, body in msgs
        ]
        await sink.write(samples)
        last = sink.buffer.last_bid
        first = last - len(samples) + 1
        in_flight.extend((first + i, s.seq) for i, s in enumerate(samples))
        self.queued += len(samples)

    def _release(self, store: Store, sink: UplinkSink, in_flight: deque[Any]) -> None:
        """Outbox rows whose messages are on the buffer's disk tier or delivered."""
        safe = sink.buffer.last_bid - sink.buffer.memory_count
        upto = None
        while in_flight and in_flight[0][0] <= safe:
            upto = in_flight.popleft()[1]
        if upto is not None:
            hub_outbox.release(store, self.opts.site, upto)

    def _health(self, sink: UplinkSink) -> dict[str, Any]:
        st = sink.status()
        return {
            "backlog": len(sink.buffer),
            "dropped": sink.buffer.dropped,
            "detail": st.get("last_error") or None,
        }

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < end:
            await asyncio.sleep(min(0.2, seconds))


def publish_once(opts: UplinkOptions, drain_timeout: float = 10.0) -> dict[str, Any]:
    """Collect everything and send it (``conduit analyze --uplink``); what is not
    delivered within ``drain_timeout`` stays queued on disk for the next run."""
    up = Uplink(opts)
    asyncio.run(up.serve(once=True, drain_timeout=drain_timeout))
    return up.status
