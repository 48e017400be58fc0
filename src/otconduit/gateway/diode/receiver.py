"""IT side: :class:`DiodeReceiver` listens on UDP, feeds :class:`DiodeDecoder` and hands
samples, in order, to a delivery function (usually :class:`SinkFanout` over the
gateway's sinks). It never sends: the socket is only read.

Events other than samples (gaps, rejected datagrams, link and session changes) go to
``on_event`` as they happen; ``status()`` has the counters. With ``session_file`` the
sessions seen are kept on disk (see ``ledger``), so a restarted receiver still refuses
a recorded session replayed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from otconduit.gateway.diode import wire
from otconduit.gateway.diode.decoder import DiodeDecoder, Event, ReceiverSettings, Samples
from otconduit.gateway.diode.ledger import LedgerError, SessionLedger
from otconduit.gateway.model import TagSample
from otconduit.gateway.sinks import Sink

Deliver = Callable[[Sequence[TagSample]], Awaitable[None]]
OnEvent = Callable[[Event], None]
RCVBUF = 8 << 20
DRAIN = 256  # datagrams read per wake-up before other tasks get a turn


class SinkFanout:
    """Delivers each batch to every sink in turn (sinks buffer their own outages)."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

    async def start(self) -> None:
        for s in self.sinks:
            await s.start()

    async def __call__(self, samples: Sequence[TagSample]) -> None:
        for s in self.sinks:
            await s.write(samples)

    async def close(self) -> None:
        for s in self.sinks:
            await s.close()


def _socket(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    # A burst the sink is slow to take waits here rather than being dropped by the kernel.
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, RCVBUF)
            break
        except OSError:
            continue
    sock.bind(addr)
    sock.setblocking(False)
    return sock


class DiodeReceiver:
    def __init__(
        self,
        keys: Sequence[bytes],
        deliver: Deliver,
        *,
        settings: ReceiverSettings | None = None,
        on_event: OnEvent | None = None,
        status_file: Path | None = None,
        session_file: Path | None = None,
        tick: float = 0.05,
    ) -> None:
        if not keys:
            raise ValueError("the receiver needs at least one key")
        self.ledger = SessionLedger(session_file)  # LedgerError if the file is not one
        self.decoder = DiodeDecoder(wire.Authenticator(*keys), settings, self.ledger)
        self._deliver = deliver
        self._on_event = on_event
        self._status_file = status_file
        self._tick = tick
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._sock: socket.socket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.address: tuple[str, int] | None = None
        self.delivered_batches = 0
        self.deliver_errors = 0
        self.ledger_errors = 0
        self.last_error = ""

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and start; returns the bound address (port 0 picks a free one). Raises
        :class:`LedgerError` if the session file cannot be written."""
        try:
            self.ledger.save()
        except OSError as exc:
            raise LedgerError(f"session file {self.ledger.path}: {exc.strerror or exc}") from None
        loop = asyncio.get_running_loop()
        sock = _socket(host, port)
        self._sock = sock
        # Our own reader drains the socket at each wake-up (asyncio's datagram transport
        # takes one datagram per loop iteration, too few for a fast sender).
        loop.add_reader(sock.fileno(), self._readable)
        name = sock.getsockname()
        self.address = (name[0], name[1])
        self._tasks = [
            loop.create_task(self._worker(), name="diode-deliver"),
            loop.create_task(self._ticker(), name="diode-tick"),
        ]
        return self.address

    def feed(self, datagram: bytes, source: str | None = None) -> None:
        """Hand a datagram in directly (tests, or another capture path)."""
        self._datagram(datagram, source)

    async def close(self) -> None:
        """Stop listening, deliver what is held, report what is missing."""
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._readable(drain_all=True)  # what the kernel already holds is ours
            self._sock.close()
            self._sock = None
        if not self._tasks:
            return
        ticker = self._tasks[1]
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        self._put(self.decoder.finish(asyncio.get_running_loop().time()))
        self._save_ledger()
        self._queue.put_nowait(None)
        await self._tasks[0]
        self._tasks = []
        self._write_status()

    def status(self) -> dict[str, Any]:
        return {
            **self.decoder.status(),
            "link_timeout": self.decoder.link_timeout,
            "backlog": self._queue.qsize(),
            "deliver_errors": self.deliver_errors,
            "ledger_errors": self.ledger_errors,
            "last_error": self.last_error,
        }

    # -- internals ----------------------------------------------------------------------

    def _readable(self, drain_all: bool = False) -> None:
        sock = self._sock
        for _ in range(1 << 20 if drain_all else DRAIN):
            if sock is None:
                return
            try:
                data, addr = sock.recvfrom(wire.MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. a queued ICMP error; nothing to do with it
                continue
            self._datagram(data, f"{addr[0]}:{addr[1]}")

    def _datagram(self, data: bytes, source: str | None) -> None:
        loop_time = asyncio.get_running_loop().time()
        self._put(
            self.decoder.feed(data, loop_time, wall_ms=time.time_ns() // 1_000_000, source=source)
        )
        if self.ledger.urgent:  # a session started or ended: on disk before its samples
            self._save_ledger()

    def _save_ledger(self) -> None:
        try:
            self.ledger.save()
        except OSError as exc:  # keep receiving; the status says protection is degraded
            self.ledger_errors += 1
            self.last_error = f"session file {self.ledger.path}: {exc.strerror or exc}"

    def _put(self, events: list[Event]) -> None:
        for e in events:
            self._queue.put_nowait(e)

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        last_status = 0.0
        while True:
            await asyncio.sleep(self._tick)
            now = loop.time()
            self._put(self.decoder.tick(now))
            if now - last_status >= 1.0:
                last_status = now
                if self.ledger.dirty:
                    self._save_ledger()
                self._write_status()

    async def _worker(self) -> None:
        """Events in order; consecutive samples already decoded go out in one write."""
        done = False
        while not done:
            e = await self._queue.get()
            batch: list[TagSample] = []
            while True:
                if e is None:
                    done = True
                    break
                if isinstance(e, Samples):
                    batch.extend(e.samples)
                else:
                    await self._write(batch)
                    batch = []
                    self._event(e)
                if self._queue.empty() or len(batch) >= 50_000:
                    break
                e = self._queue.get_nowait()
            await self._write(batch)

    async def _write(self, batch: list[TagSample]) -> None:
        if not batch:
            return
        try:
            await self._deliver(batch)
        except Exception as exc:  # a sink defect must not stop the receiver
            self.deliver_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
        self.delivered_batches += 1

    def _event(self, e: Event) -> None:
        if self._on_event is not None:
            self._on_event(e)

    def _write_status(self) -> None:
        if self._status_file is None:
            return
        tmp = self._status_file.with_suffix(self._status_file.suffix + ".tmp")
        tmp.write_text(json.dumps(self.status(), indent=1) + "\n")
        os.replace(tmp, self._status_file)
