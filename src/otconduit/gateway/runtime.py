"""The gateway process: one collector task per device, one dispatcher that numbers
samples and hands batches to every sink, and a status file for ``conduit gateway status``.

Fault isolation is structural: a device's collector owns its connection, schedule,
timeout and back-off, so a dead or slow device only delays itself. Sinks buffer their
own outages (see :mod:`otconduit.gateway.sinks`); the dispatcher never waits on one
device, and a sink that raises is reported, not fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from otconduit.gateway.config import Device, GatewayConfig
from otconduit.gateway.model import TagSample
from otconduit.gateway.sinks import Sink

log = logging.getLogger(__name__)
IDLE_WAKE = 0.5  # s: the dispatcher also checks for stop this often when idle
MAX_BATCH = 5000
STATUS_EVERY = 1.0


class Collector(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...

    def status(self) -> dict[str, Any]: ...


def make_collector(device: Device, cfg: GatewayConfig, emit: Any) -> Collector:
    """The collector for a device's protocol (imported on demand: optional stacks)."""
    if device.protocol in ("modbus", "modbus-rtu"):
        from otconduit.gateway.collectors.modbus import ModbusCollector

        return ModbusCollector(device, cfg, emit)
    if device.protocol == "opcua":
        from otconduit.gateway.collectors.opcua import OpcUaCollector

        return OpcUaCollector(device, cfg, emit)
    from otconduit.gateway.collectors.s7 import S7Collector

    return S7Collector(device, cfg, emit)


class Gateway:
    def __init__(self, cfg: GatewayConfig, sinks: Sequence[Sink] = ()) -> None:
        self.cfg = cfg
        self.sinks = list(sinks)
        self.queue: deque[TagSample] = deque()
        self.seq = 0
        self.collectors = {d.name: make_collector(d, cfg, self._emit) for d in cfg.devices}
        self.sink_errors: dict[str, str] = {}
        self.dispatched = 0
        self.started = time.time()
        self._wake = asyncio.Event()  # set by collectors: samples are waiting

    def _emit(self, samples: Sequence[TagSample]) -> None:
        self.queue.extend(samples)
        self._wake.set()

    async def _dispatch_once(self) -> None:
        if not self.queue:
            return
        batch: list[TagSample] = []
        pop = self.queue.popleft
        seq = self.seq
        for _ in range(min(len(self.queue), MAX_BATCH)):
            seq += 1
            s = pop()
            # Samples are fresh objects the collectors handed over and nobody else holds
            # yet: numbering them in place avoids a copy per sample.
            s.seq = seq
            batch.append(s)
        self.seq = seq
        results = await asyncio.gather(
            *(s.write(batch) for s in self.sinks), return_exceptions=True
        )
        for sink, res in zip(self.sinks, results, strict=True):
            if isinstance(res, BaseException):
                self.sink_errors[sink.name] = f"{type(res).__name__}: {res}"
                log.error("sink %s: %s", sink.name, res)
        self.dispatched += len(batch)

    async def _dispatcher(self, stop: asyncio.Event) -> None:
        # Woken by the collectors: a batch goes out as soon as samples arrive (whatever
        # piled up while the sinks took the previous one), so latency stays at one sink
        # round trip while throughput still rides on large batches.
        while not stop.is_set():
            self._wake.clear()
            await self._dispatch_once()
            if not self.queue:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_WAKE)
        while self.queue:  # flush what the collectors produced before stopping
            await self._dispatch_once()

    def status(self) -> dict[str, Any]:
        sinks = []
        for s in self.sinks:
            try:
                st = dict(s.status())
            except Exception as exc:
                st = {"error": str(exc)}
            if s.name in self.sink_errors:
                st["last_error"] = self.sink_errors[s.name]
            sinks.append({"sink": s.name, **st})
        return {
            "gateway": self.cfg.name,
            "pid": os.getpid(),
            "updated": time.time(),
            "uptime_s": round(time.time() - self.started, 1),
            "samples_dispatched": self.dispatched,
            "queued": len(self.queue),
            "devices": [c.status() for c in self.collectors.values()],
            "sinks": sinks,
        }

    def _write_status(self) -> None:
        path = self.cfg.status_file
        if path is None:
            return
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(self.status(), default=str, indent=1))
        os.replace(tmp, path)

    async def _status_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self._write_status()
            except OSError as exc:
                log.warning("cannot write status file: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATUS_EVERY)

    async def run(self, stop: asyncio.Event | None = None, duration: float | None = None) -> None:
        """Run until ``stop`` is set (or ``duration`` seconds pass)."""
        stop = stop or asyncio.Event()
        for s in self.sinks:
            await s.start()
        tasks = [asyncio.create_task(c.run(stop), name=n) for n, c in self.collectors.items()]
        dispatcher = asyncio.create_task(self._dispatcher(stop))
        status = asyncio.create_task(self._status_loop(stop))
        try:
            if duration is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), duration)
                stop.set()
            else:
                await stop.wait()
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await dispatcher
            status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status
            for s in self.sinks:
                try:
                    await s.close()
                except Exception as exc:
                    log.error("closing sink %s: %s", s.name, exc)
            with contextlib.suppress(OSError):
                self._write_status()


class MemorySink:
    """Keeps every sample in a list: for tests and ``--dry-run``."""

    name = "memory"

    def __init__(self) -> None:
        self.samples: list[TagSample] = []

    async def start(self) -> None:
        return None

    async def write(self, samples: Sequence[TagSample]) -> None:
        self.samples.extend(samples)

    async def close(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {"samples": len(self.samples)}
