"""S7 collector (python-snap7 client): DB, merker, input and output reads - and nothing
else: the only client calls in this module are ``connect``, ``db_read``, ``read_area``,
``get_pdu_length`` and ``disconnect``.

Tag addresses use STEP 7 absolute notation (case-insensitive):

======================  ==========================================================
``DB1.DBX0.3``          bit 3 of byte 0 (type ``bool``)
``DB1.DBB0``            byte: ``uint16`` (BYTE/USINT, the default) or ``int16`` (SINT)
``DB1.DBW2``            word: ``uint16`` (WORD/UINT) or ``int16`` (INT)
``DB1.DBD4``            double word: ``float32`` (REAL), ``int32`` (DINT), ``uint32``
``DB1.DBL8``            8 bytes: ``float64`` (LREAL), ``int64`` (LINT), ``uint64``
                        (``L`` is Conduit's letter: STEP 7 has no absolute 64-bit form)
``DB2.STRING10.20``     S7 ``STRING[20]`` at byte 10 (2 header bytes + 20 characters);
                        type ``string``, ``length: 20`` (the ``.20`` may be left out)
``M10.1``, ``MB10``,    the same for merkers (M), inputs (I or E) and outputs (Q or A)
``MW10``, ``MD10``...
======================  ==========================================================

A ``bool`` tag may also take one ``bit`` of a byte, word or double word (``DB1.DBW2``
with ``bit: 9``; bits count from the least significant, S7 values are big-endian).

Reads are planned per poll group: tags of the same DB (or area) are merged into as few
reads as the negotiated PDU allows (gaps between them are read too: on S7 the round trip
costs far more than the bytes). A merged read the PLC refuses is split and the tags are
read alone from then on. snap7 blocks, so each connection gets its own worker thread and
every call is bounded by the device timeout; a dead PLC never holds up another device.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from otconduit.gateway.codec import decode_bytes, engineering
from otconduit.gateway.collectors import Emit
from otconduit.gateway.collectors.tagstate import TagState, interval_of, stale_limit
from otconduit.gateway.config import Device, GatewayConfig, Tag
from otconduit.gateway.model import Quality, TagSample, Value

log = logging.getLogger(__name__)
_T = TypeVar("_T")

S7_PORT = 102
READ_OVERHEAD = 18  # S7 header 12 + read-response parameter 2 + data item header 4
_AREAS = {"DB": "DB", "M": "M", "I": "I", "E": "I", "Q": "Q", "A": "Q"}
_WIDTH = {"X": 1, "B": 1, "W": 2, "D": 4, "L": 8}
_TYPES = {
    "B": ("uint16", "int16"),
    "W": ("uint16", "int16"),
    "D": ("float32", "int32", "uint32"),
    "L": ("float64", "int64", "uint64"),
}
_DB_RE = re.compile(r"^DB(\d+)\.(?:DB([XBWDL])(\d+)(?:\.(\d+))?|STRING(\d+)(?:\.(\d+))?)$")
_AREA_RE = re.compile(r"^([MIEQA])(?:([BWDL])(\d+)|(\d+)\.(\d+))$")


@dataclass(frozen=True, slots=True)
class S7Address:
    """Where a tag lives: area (DB, M, I, Q), DB number (0 outside DBs), first byte,
    bytes to read, access width (X, B, W, D, L or STRING) and bit (bools)."""

    area: str
    db: int
    offset: int
    size: int
    width: str
    bit: int | None = None

    @property
    def end(self) -> int:
        return self.offset + self.size


def parse_address(tag: Tag) -> S7Address:
    """The tag's S7 address, checked against its type; ValueError says what is wrong."""
    text = tag.address.strip().upper().replace(" ", "")
    m = _DB_RE.match(text)
    if m:
        db = int(m[1])
        if db < 1 or db > 65535:
            raise ValueError(f"S7 address {tag.address!r}: DB number must be 1-65535")
        if m[5] is not None:
            return _string(tag, "DB", db, int(m[5]), m[6])
        width, offset, bit = m[2], int(m[3]), m[4]
        area = "DB"
    else:
        m = _AREA_RE.match(text)
        if not m:
            raise ValueError(
                f"S7 address {tag.address!r}: use DB1.DBX0.3, DB1.DBB0, DB1.DBW2, DB1.DBD4, "
                "DB1.DBL8, DB2.STRING10.20, or M/I/Q forms such as M10.1, MW10, ID4"
            )
        db, area = 0, _AREAS[m[1]]
        if m[2] is not None:
            width, offset, bit = m[2], int(m[3]), None
        else:
            width, offset, bit = "X", int(m[4]), m[5]
    if offset > 65535:
        raise ValueError(f"S7 address {tag.address!r}: byte offset must be 0-65535")
    if width == "X":
        if bit is None:
            raise ValueError(f"S7 address {tag.address!r}: a bit address needs .bit (0-7)")
        b = int(bit)
        if b > 7:
            raise ValueError(f"S7 address {tag.address!r}: bit must be 0-7")
        if tag.type != "bool":
            raise ValueError(f"S7 address {tag.address!r} is a bit: use type bool")
        if tag.bit is not None and tag.bit != b:
            raise ValueError(f"S7 address {tag.address!r} names bit {b}, 'bit' says {tag.bit}")
        return S7Address(area, db, offset, 1, "X", b)
    if bit is not None:
        raise ValueError(f"S7 address {tag.address!r}: only DBX/bit addresses take .bit")
    size = _WIDTH[width]
    if tag.type == "bool":
        if tag.bit is None or tag.bit >= 8 * size:
            raise ValueError(
                f"S7 address {tag.address!r}: a bool from a {size}-byte value needs 'bit' "
                f"(0-{8 * size - 1}), or use a bit address such as DB1.DBX{offset}.0"
            )
        return S7Address(area, db, offset, size, width, tag.bit)
    if tag.type not in _TYPES[width]:
        raise ValueError(
            f"S7 address {tag.address!r} is {size} byte(s): type must be "
            f"{' or '.join(_TYPES[width])}, not {tag.type}"
        )
    return S7Address(area, db, offset, size, width)


def _string(tag: Tag, area: str, db: int, offset: int, declared: str | None) -> S7Address:
    if tag.type != "string":
        raise ValueError(f"S7 address {tag.address!r} is a STRING: use type string")
    if declared is not None and int(declared) != tag.length:
        raise ValueError(
            f"S7 address {tag.address!r} declares STRING[{declared}] but 'length' is {tag.length}"
        )
    if tag.length > 254:
        raise ValueError(f"S7 address {tag.address!r}: an S7 STRING holds at most 254 characters")
    return S7Address(area, db, offset, 2 + tag.length, "STRING")


def decode(data: bytes, addr: S7Address, tag: Tag) -> Value:
    """Raw value of a tag from its bytes (S7 is big-endian; STRING: max, actual, chars)."""
    if len(data) < addr.size:
        raise ValueError(f"{len(data)} bytes for a {addr.size}-byte value")
    if addr.width == "STRING":
        n = min(data[1], data[0], len(data) - 2)
        return data[2 : 2 + n].decode("latin-1")
    if tag.type == "bool":
        return bool((int.from_bytes(data[: addr.size], "big") >> (addr.bit or 0)) & 1)
    if addr.width == "B":
        return int.from_bytes(data[:1], "big", signed=tag.type == "int16")
    return decode_bytes(data[: addr.size], tag)


@dataclass(frozen=True, slots=True)
class Read:
    """One read request: ``size`` bytes of an area from ``start``, and the tags in it."""

    area: str
    db: int
    start: int
    size: int
    items: tuple[tuple[Tag, S7Address], ...]


def plan(items: Sequence[tuple[Tag, S7Address]], max_bytes: int) -> list[Read]:
    """As few reads as possible: per area and DB, in offset order, a read grows while
    its whole span fits ``max_bytes``. A value larger than that is read alone (snap7
    then splits it across PDUs)."""
    groups: dict[tuple[str, int], list[tuple[Tag, S7Address]]] = {}
    for tag, addr in items:
        groups.setdefault((addr.area, addr.db), []).append((tag, addr))
    reads: list[Read] = []
    for (area, db), members in sorted(groups.items()):
        members.sort(key=lambda ta: (ta[1].offset, ta[1].size))
        start, end, cur = members[0][1].offset, members[0][1].end, [members[0]]
        for tag, addr in members[1:]:
            if max(end, addr.end) - start <= max_bytes:
                end = max(end, addr.end)
                cur.append((tag, addr))
                continue
            reads.append(Read(area, db, start, end - start, tuple(cur)))
            start, end, cur = addr.offset, addr.end, [(tag, addr)]
        reads.append(Read(area, db, start, end - start, tuple(cur)))
    return reads


class DeviceDown(Exception):
    """The connection is unusable: close it and back off."""


class S7Collector:
    """One S7 PLC: polls its tags per interval group, read-only, until ``stop``."""

    def __init__(self, device: Device, cfg: GatewayConfig, emit: Emit) -> None:
        if device.protocol != "s7" or not device.host:
            raise ValueError(f"device {device.name}: the S7 collector needs protocol s7 and host")
        self.device = device
        self.addresses: dict[str, S7Address] = {}
        for t in device.tags:
            try:
                self.addresses[t.path] = parse_address(t)
            except ValueError as exc:
                raise ValueError(f"device {device.name}, tag {t.path}: {exc}") from None
        self.groups: dict[float, list[Tag]] = {}
        for t in device.tags:
            self.groups.setdefault(interval_of(t, device), []).append(t)
        self.singles: set[str] = set()  # tags read alone since a merged read was refused
        self.stats: dict[str, Any] = {
            "device": device.name,
            "protocol": "s7",
            "state": "starting",
            "reads": 0,
            "errors": 0,
            "connects": 0,
            "samples": 0,
            "last_error": None,
            "last_ok_ts": None,
            "backoff_s": 0.0,
            "pdu_length": None,
        }
        self.state = TagState(device, cfg, emit, self.stats)
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._max_bytes = 480 - READ_OVERHEAD

    # -- status ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return dict(self.stats, reads_per_cycle=self.reads_per_cycle())

    def reads_per_cycle(self) -> int:
        """Read requests one round of every poll group takes with the current plan."""
        return sum(len(self._plan(tags)) for tags in self.groups.values())

    def _plan(self, tags: list[Tag]) -> list[Read]:
        merged = [(t, self.addresses[t.path]) for t in tags if t.path not in self.singles]
        reads = plan(merged, self._max_bytes) if merged else []
        for t in tags:
            if t.path in self.singles:
                reads += plan([(t, self.addresses[t.path])], self._max_bytes)
        return reads

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``; every failure is counted, backed off and retried."""
        ticker = asyncio.create_task(self._watch_stale(stop))
        backoff = self.device.backoff.initial
        try:
            while not stop.is_set():
                try:
                    await self._connect()
                    backoff = self.device.backoff.initial
                    self.stats["backoff_s"] = 0.0
                    await self._poll(stop)
                except DeviceDown as exc:
                    self._fail(str(exc))
                except Exception as exc:  # a bug must not end collection: log and retry
                    log.exception("S7 device %s", self.device.name)
                    self._fail(f"{type(exc).__name__}: {exc}")
                await self._close()
                if stop.is_set():
                    break
                self.stats["state"] = "backoff"
                self.stats["backoff_s"] = backoff
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, self.device.backoff.max)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self._close()
            self.stats["state"] = "stopped"

    def _fail(self, reason: str) -> None:
        self.state.unreachable()
        self.stats["errors"] += 1
        if reason != self.stats["last_error"]:
            log.warning("S7 device %s (%s): %s", self.device.name, self.device.host, reason)
        self.stats["last_error"] = reason

    async def _watch_stale(self, stop: asyncio.Event) -> None:
        tick = min(0.5, max(0.02, min(stale_limit(t, self.device) for t in self.device.tags) / 5))
        while not stop.is_set():
            await asyncio.sleep(tick)
            reason = self.stats["last_error"] or "no value from the device"
            self.state.emit(self.state.due_stale(f"device unreachable: {reason}"))

    async def _call(self, fn: Callable[..., _T], *args: Any, timeout: float) -> _T:
        """Run a blocking snap7 call on this connection's thread, bounded by ``timeout``."""
        if self._pool is None:
            raise DeviceDown("not connected")
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, fn, *args), timeout)
        except TimeoutError:
            raise DeviceDown(f"no answer within {timeout:g} s") from None

    async def _connect(self) -> None:
        from snap7.client import Client  # guarded: python-snap7 is an optional extra

        d = self.device
        self.stats["state"] = "connecting"
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"s7-{d.name}")
        client = Client()
        self._client = client
        host, port = d.host or "", d.port or S7_PORT

        def connect() -> int:
            client.connect(host, d.rack, d.slot, port)
            sock = client.connection.socket if client.connection is not None else None
            if sock is not None:  # bound every later recv by the device timeout
                sock.settimeout(d.timeout)
            return int(client.get_pdu_length())

        # snap7 gives the TCP connect its own 5 s timeout; past ours the attempt is given
        # up here and its thread, left to finish, dies with this connection's pool
        try:
            pdu = await self._call(connect, timeout=2 * d.timeout + 0.5)
        except DeviceDown as exc:
            raise DeviceDown(f"cannot connect to {d.host}:{port}: {exc}") from None
        except Exception as exc:
            raise DeviceDown(f"cannot connect to {d.host}:{port}: {exc}") from None
        self.stats["pdu_length"] = pdu
        self._max_bytes = max(1, pdu - READ_OVERHEAD)
        self.stats["connects"] += 1
        self.stats["state"] = "connected"

    async def _close(self) -> None:
        client, pool = self._client, self._pool
        self._client = self._pool = None
        if client is None or pool is None:
            return
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(pool, client.disconnect)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(fut), self.device.timeout)
        pool.shutdown(wait=False)

    # -- polling -----------------------------------------------------------------------
    async def _poll(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        due = dict.fromkeys(self.groups, loop.time())
        while not stop.is_set():
            interval = min(due, key=lambda k: due[k])
            wait = due[interval] - loop.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                if stop.is_set():
                    return
            out: list[TagSample | None] = []
            for read in self._plan(self.groups[interval]):
                out += await self._read(read)
            self.state.emit(out)
            due[interval] = max(due[interval] + interval, loop.time())

    def _blocking_read(self, read: Read) -> bytes:
        from snap7.type import Area

        client = self._client
        if client is None:
            raise DeviceDown("not connected")
        if read.area == "DB":
            return bytes(client.db_read(read.db, read.start, read.size))
        area = {"M": Area.MK, "I": Area.PE, "Q": Area.PA}[read.area]
        return bytes(client.read_area(area, 0, read.start, read.size))

    async def _read(self, read: Read) -> list[TagSample | None]:
        from snap7.error import S7ConnectionError, S7Error, S7TimeoutError

        self.stats["reads"] += 1
        try:
            data = await self._call(self._blocking_read, read, timeout=self.device.timeout + 0.5)
        except (S7ConnectionError, S7TimeoutError, OSError) as exc:
            raise DeviceDown(f"connection lost: {exc}") from None
        except S7Error as exc:  # the PLC answered, with an error
            self.stats["errors"] += 1
            if len(read.items) > 1:
                self.singles.update(t.path for t, _ in read.items)
                out: list[TagSample | None] = []
                for t, a in read.items:
                    out += await self._read(Read(a.area, a.db, a.offset, a.size, ((t, a),)))
                return out
            reason = f"PLC refused the read of {read.items[0][0].address}: {exc}"
            self.stats["last_error"] = reason
            return [self.state.offer(t, None, Quality.BAD, reason) for t, _ in read.items]
        now = time.time_ns()
        self.stats["last_ok_ts"] = now
        out = []
        for t, a in read.items:
            chunk = data[a.offset - read.start : a.end - read.start]
            try:
                value = engineering(decode(chunk, a, t), t)
            except (ValueError, IndexError) as exc:
                out.append(self.state.offer(t, None, Quality.BAD, f"cannot decode: {exc}", now=now))
                continue
            out.append(self.state.offer(t, value, Quality.GOOD, now=now))
        return out
