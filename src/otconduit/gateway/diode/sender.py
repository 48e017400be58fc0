"""OT side: :class:`DiodeSendSink` pushes samples over UDP and never reads the network.

It is a :class:`~otconduit.gateway.sinks.Sink`, so the gateway runtime can put it where
an MQTT or historian sink would go. Samples wait in a bounded backlog; one task packs
them into DATA datagrams (waiting up to ``linger`` for a fuller one), adds the FEC
parity, paces everything under the rate limit and sends a heartbeat every
``heartbeat`` seconds whether or not there is data, so the receiver can tell "no data"
from "link down".

The UDP socket is only ever written: no ``recv``, no ``connect`` (so not even ICMP
errors come back as send errors), and the smallest receive buffer the kernel allows.
That is this program's promise, not a guarantee of the path: see the package docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from otconduit.gateway.diode import batch, wire
from otconduit.gateway.diode.encoder import DiodeEncoder, FecParams
from otconduit.gateway.model import TagSample

DEFAULT_PORT = 47110
Transport = Callable[[bytes], None]  # raises BlockingIOError when it cannot take more now


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderSettings:
    fec: FecParams = field(default_factory=FecParams)
    mtu: int = 1400  # largest datagram (UDP payload), bytes
    rate_datagrams: float | None = None  # datagrams/s, all kinds; None: unlimited
    rate_bytes: float | None = None  # UDP payload bytes/s; None: unlimited
    heartbeat: float = 1.0  # s
    linger: float = 0.02  # s to wait for a fuller datagram / before closing a short group
    backlog: int = 100_000  # samples waiting to be sent
    overflow: Literal["drop", "block"] = "drop"  # full backlog: shed oldest, or wait
    compress: bool = True
    encrypt: bool = False  # seal every datagram (ChaCha20-Poly1305): unreadable on the link

    def __post_init__(self) -> None:
        low = wire.MAX_DATAGRAM - wire.max_payload(wire.MAX_DATAGRAM, sealed=self.encrypt)
        low += batch.MIN_BUDGET  # headers, tags and the smallest payload
        if not low <= self.mtu <= wire.MAX_DATAGRAM:
            raise ValueError(f"mtu {self.mtu}: {low} to {wire.MAX_DATAGRAM} bytes")
        for name in ("rate_datagrams", "rate_bytes"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be positive")
        if self.rate_bytes is not None and self.rate_bytes < self.mtu:
            raise ValueError("rate_bytes below one datagram per second: lower the mtu")
        if self.heartbeat <= 0 or self.linger < 0 or self.backlog < 1:
            raise ValueError("heartbeat > 0, linger >= 0, backlog >= 1")


class Pacer:
    """Rate limit as a generic cell rate algorithm: each datagram costs the larger of
    ``1 / rate_datagrams`` and ``size / rate_bytes`` seconds; up to ``burst`` seconds of
    credit may be used at once (asyncio cannot sleep for microseconds)."""

    def __init__(
        self, rate_datagrams: float | None, rate_bytes: float | None, burst: float = 0.005
    ) -> None:
        self.rate_datagrams = rate_datagrams
        self.rate_bytes = rate_bytes
        self.burst = burst
        self._tat = 0.0  # theoretical arrival time of the next datagram

    def reserve(self, size: int, now: float) -> float:
        """Book one datagram; returns how long to wait before sending it."""
        cost = 0.0
        if self.rate_datagrams:
            cost = 1.0 / self.rate_datagrams
        if self.rate_bytes:
            cost = max(cost, size / self.rate_bytes)
        if not cost:
            return 0.0
        tat = max(self._tat, now)
        self._tat = tat + cost
        return max(0.0, tat - now - self.burst)


class UdpTransport:
    """A send-only UDP socket towards ``host:port`` (optionally from ``bind``)."""

    def __init__(self, host: str, port: int, *, bind: str | None = None) -> None:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        if not infos:
            raise OSError(f"cannot resolve {host}")
        family, _, _, _, addr = infos[0]
        self.address = addr
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # kernel minimum
        if bind:
            self.sock.bind((bind, 0))
        self.sock.setblocking(False)

    def __call__(self, datagram: bytes) -> None:
        self.sock.sendto(datagram, self.address)

    def close(self) -> None:
        self.sock.close()


@dataclass(slots=True)
class SenderStats:
    samples: int = 0  # samples put into datagrams
    datagrams: int = 0
    data: int = 0
    parity: int = 0
    heartbeats: int = 0
    bytes: int = 0
    dropped: int = 0  # samples shed because the backlog was full
    oversized: int = 0  # samples sent as BAD because they could not fit one datagram
    send_errors: int = 0  # datagrams the local stack refused (no route, firewall)
    paced_s: float = 0.0  # time spent waiting for the rate limit


class DiodeSendSink:
    """The OT half of the diode, as a gateway sink. ``transport`` defaults to UDP
    towards ``host:port``; tests pass a function that records or drops datagrams."""

    def __init__(
        self,
        key: bytes,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        settings: SenderSettings | None = None,
        transport: Transport | None = None,
        bind: str | None = None,
        name: str = "diode",
    ) -> None:
        self.name = name
        self.settings = settings or SenderSettings()
        self._auth = wire.Authenticator(key, encrypt=self.settings.encrypt)
        self._enc = DiodeEncoder(self._auth, fec_params=self.settings.fec)
        self._packer = batch.Packer(
            wire.max_payload(self.settings.mtu, sealed=self.settings.encrypt),
            compress=self.settings.compress,
        )
        self._pacer = Pacer(self.settings.rate_datagrams, self.settings.rate_bytes)
        self._udp: UdpTransport | None = None
        self._target = (host, port, bind)
        self._send: Transport | None = transport
        self._queue: deque[TagSample] = deque()
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._yielded = 0.0
        # samples per full datagram, running estimate (first guess: 64 bytes a sample)
        self._per_datagram = self._packer.budget / 64
        self.stats = SenderStats()

    @property
    def session(self) -> str:
        return self._enc.session.hex()

    async def start(self) -> None:
        if self._task is not None:
            return
        if self._send is None:
            host, port, bind = self._target
            self._udp = UdpTransport(host, port, bind=bind)
            self._send = self._udp
        self._task = asyncio.get_running_loop().create_task(self._run(), name="diode-send")

    async def write(self, samples: Sequence[TagSample]) -> None:
        if self._task is None:
            raise RuntimeError("DiodeSendSink.write before start")
        if self._closing:
            raise RuntimeError("DiodeSendSink.write after close")
        cap = self.settings.backlog
        if self.settings.overflow == "block":
            while self._queue and len(self._queue) + len(samples) > cap:
                self._space.clear()
                await self._space.wait()
            self._queue.extend(samples)
        else:
            self._queue.extend(samples)
            over = len(self._queue) - cap
            for _ in range(max(0, over)):
                self._queue.popleft()
            self.stats.dropped += max(0, over)
        self._wake.set()

    async def close(self) -> None:
        """Send what is queued (paced), close the last group, send final heartbeats."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._udp is not None:
            self._udp.close()

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "session": self.session,
            "encrypted": self.settings.encrypt,
            "queued": len(self._queue),
            "next_seq": self._enc.next_seq,
            **asdict(self.stats),
        }

    # -- the sending task -------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        next_hb = loop.time()
        last_data = loop.time()
        head_since: float | None = None  # when the queue's head started waiting
        while True:
            now = loop.time()
            if now >= next_hb:
                await self._heartbeat()
                next_hb = now + s.heartbeat
            if self._queue:
                if head_since is None:
                    head_since = now
                short = len(self._queue) < self._per_datagram
                if short and not self._closing and now - head_since < s.linger:
                    await self._sleep_until(min(head_since + s.linger, next_hb))
                    continue
                n = len(self._queue)
                payload = self._packer.take(self._queue)
                taken = n - len(self._queue)
                if self._queue:
                    self._per_datagram = 0.8 * self._per_datagram + 0.2 * taken
                self.stats.samples += taken
                self.stats.oversized = self._packer.oversized
                self._space.set()
                head_since = loop.time() if self._queue else None
                await self._emit(self._enc.data(payload, _ms()))
                last_data = loop.time()
                continue
            head_since = None
            if self._enc.open_group and (self._closing or now - last_data >= s.linger):
                await self._emit(self._enc.flush(_ms()))
                continue
            if self._closing:
                break
            until = next_hb
            if self._enc.open_group:
                until = min(until, last_data + s.linger)
            await self._sleep_until(until)
        for _ in range(2):  # the tail's last word, twice in case one is lost
            await self._heartbeat()

    async def _sleep_until(self, when: float) -> None:
        self._wake.clear()
        delay = when - asyncio.get_running_loop().time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _heartbeat(self) -> None:
        hb = self._enc.heartbeat(
            _ms(), interval_ms=int(self.settings.heartbeat * 1000), dropped=self.stats.dropped
        )
        await self._emit([hb])

    async def _emit(self, datagrams: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        assert self._send is not None
        for d in datagrams:
            now = loop.time()
            wait = self._pacer.reserve(len(d), now)
            if wait > 0:
                self.stats.paced_s += wait
                await asyncio.sleep(wait)
                self._yielded = loop.time()
            elif now - self._yielded > 0.002:  # share the loop with collectors and sinks
                await asyncio.sleep(0)
                self._yielded = loop.time()
            for _attempt in range(200):
                try:
                    self._send(d)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.001)
                except OSError as exc:
                    if exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                        self.stats.send_errors += 1
                        break
                    await asyncio.sleep(0.001)
            else:
                self.stats.send_errors += 1
            self.stats.datagrams += 1
            self.stats.bytes += len(d)
            kind = d[3] & ~wire.SEALED  # wire.py: the common header's kind byte
            if kind == wire.Kind.DATA:
                self.stats.data += 1
            elif kind == wire.Kind.PARITY:
                self.stats.parity += 1
            else:
                self.stats.heartbeats += 1


def _ms() -> int:
    return time.time_ns() // 1_000_000
