"""Streaming pcap / pcapng reader that hands out blocks of packets as numpy index arrays.

The bulk path works on whole batches and captures can be far larger than memory, so a file is
read in large blocks (8 MiB by default) and every block is indexed at once: one numba loop for
pcap, a Python loop over pcapng blocks. Damage in the file never raises out of iteration: the
reader yields what came before it and says what stopped it in :attr:`CaptureReader.report`.

Formats: pcap per draft-ietf-opsawg-pcap, pcapng per draft-ietf-opsawg-pcapng (sections cited
beside each layout below), either optionally gzip-compressed.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from otconduit.arrays import distinct_ints
from otconduit.jit import njit

DEFAULT_BLOCK_SIZE = 8 << 20
# Largest record we believe (Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD); a bigger captured
# length is far more likely a corrupt record header than a real packet.
MAX_CAPLEN = 262144
# Largest pcapng block we believe: a packet plus generous room for options and comments.
MAX_PCAPNG_BLOCK = 16 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_PCAPNG_SHB = 0x0A0D0D0A  # pcapng §4.1, palindromic so it reads the same in both byte orders
# pcap §4 magic numbers as they appear on disk -> (big endian, nanosecond resolution)
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": (False, False),
    b"\xa1\xb2\xc3\xd4": (True, False),
    b"\x4d\x3c\xb2\xa1": (False, True),
    b"\xa1\xb2\x3c\x4d": (True, True),
}
_PCAP_HEADER_LEN = 24
# pcapng §4.6 option codes of the Interface Statistics Block counters we report
_ISB_COUNTERS = {4: "received", 5: "dropped_interface", 7: "dropped_os"}

# _pcap_index status codes
_NEED_MORE = 1
_CORRUPT = 2

Int64Array = npt.NDArray[np.int64]


class CaptureError(Exception):
    """The file cannot be read as a capture at all: missing, unreadable or not a capture.

    Only :func:`open_capture` raises it; damage found while reading ends iteration quietly
    and is described in :attr:`ReadReport.error`.
    """

    def __init__(self, path: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {path}" + (f" ({detail})" if detail else ""))
        self.path = path
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class RawBlock:
    """A batch of packets: one buffer of capture bytes and per-packet index arrays."""

    buf: npt.NDArray[np.uint8]
    offsets: Int64Array  # start of each packet's data within buf
    caplens: Int64Array
    wirelens: Int64Array
    ts_ns: Int64Array  # nanoseconds since the epoch
    linktypes: npt.NDArray[np.int32]
    first_frame: int  # 1-based number of the first packet, as Wireshark's frame.number

    def __len__(self) -> int:
        return len(self.offsets)

    def data(self, i: int) -> bytes:
        """The captured bytes of packet ``i`` of this block."""
        start = int(self.offsets[i])
        return self.buf[start : start + int(self.caplens[i])].tobytes()


@dataclass(slots=True)
class ReadReport:
    """What a reader has read so far and, if it stopped early, why."""

    path: str
    format: str  # "pcap" or "pcapng"
    compressed: bool
    file_size: int
    packets: int = 0
    bytes_read: int = 0  # capture bytes consumed (after decompression)
    linktypes: set[int] = field(default_factory=set)
    error: str | None = None
    skipped_blocks: int = 0  # pcapng blocks of types that carry no packets
    progress: int = 0  # bytes of the file on disk consumed, against file_size
    # pcapng Interface Statistics Blocks, newest per interface: received, dropped by the
    # interface, dropped by the OS (the capture engine's own account of what it lost)
    interface_stats: dict[int, dict[str, int]] = field(default_factory=dict)


# An indexer takes a buffer and the stream offset of its first byte and returns (bytes used,
# bytes the next record needs, error that stops reading, block of the packets found).
_IndexFn = Callable[[npt.NDArray[np.uint8], int], tuple[int, int, str | None, RawBlock]]


@dataclass(frozen=True, slots=True)
class _PcapHeader:
    """What a pcap file header (pcap §4) tells the record indexer."""

    big_endian: bool
    frac_ns: int  # nanoseconds per unit of the timestamp fraction
    linktype: int
    max_caplen: int


@njit(cache=True, inline="always")
def _u32(buf: npt.NDArray[np.uint8], p: int, big_endian: bool) -> int:
    b0 = np.int64(buf[p])
    b1 = np.int64(buf[p + 1])
    b2 = np.int64(buf[p + 2])
    b3 = np.int64(buf[p + 3])
    if big_endian:
        return int((b0 << 24) | (b1 << 16) | (b2 << 8) | b3)
    return int(b0 | (b1 << 8) | (b2 << 16) | (b3 << 24))


@njit(cache=True)
def _pcap_index(
    buf: npt.NDArray[np.uint8], big_endian: bool, frac_ns: int, max_caplen: int
) -> tuple[int, int, int, Int64Array, Int64Array, Int64Array, Int64Array]:
    """Index the complete pcap records at the start of ``buf``.

    Returns (end of the last complete record, status, bytes the next record needs from end,
    offsets, caplens, wirelens, ts_ns). Record header (pcap §5): ts seconds, ts fraction
    (micro- or nanoseconds), captured length, original length, each 32 bits.
    """
    n = buf.shape[0]
    p = 0
    count = 0
    status = _NEED_MORE
    need = 16
    while p + 16 <= n:
        incl = _u32(buf, p + 8, big_endian)
        if incl > max_caplen:
            status = _CORRUPT
            need = 16 + incl
            break
        if p + 16 + incl > n:
            need = 16 + incl
            break
        count += 1
        p += 16 + incl
    offsets = np.empty(count, np.int64)
    caplens = np.empty(count, np.int64)
    wirelens = np.empty(count, np.int64)
    ts_ns = np.empty(count, np.int64)
    q = 0
    for i in range(count):
        incl = _u32(buf, q + 8, big_endian)
        ts_ns[i] = _u32(buf, q, big_endian) * 1_000_000_000 + _u32(buf, q + 4, big_endian) * frac_ns
        caplens[i] = incl
        wirelens[i] = _u32(buf, q + 12, big_endian)
        offsets[i] = q + 16
        q += 16 + incl
    return p, status, need, offsets, caplens, wirelens, ts_ns


@njit(cache=True)
def _epb_run(
    buf: npt.NDArray[np.uint8],
    start: int,
    big_endian: bool,
    linktypes: npt.NDArray[np.int32],
    muls: Int64Array,
    offsets_ns: Int64Array,
    max_hi: Int64Array,
) -> tuple[int, Int64Array, Int64Array, Int64Array, Int64Array, npt.NDArray[np.int32]]:
    """Index the run of well-formed Enhanced Packet Blocks at ``start`` (the common case).

    Stops at anything else, which the Python loop then handles: another block type, damage,
    or an interface whose timestamps do not convert exactly in 64 bits (``muls`` 0). EPB
    (pcapng §4.3): type 6, total length, interface, ts high, ts low, captured length,
    original length, data, options, total length. Returns (end of the run, offsets,
    caplens, wirelens, ts_ns, linktypes).
    """
    n = buf.shape[0]
    q = start
    count = 0
    while q + 32 <= n and _u32(buf, q, big_endian) == 6:
        blen = _u32(buf, q + 4, big_endian)
        if blen < 32 or blen % 4 or blen > MAX_PCAPNG_BLOCK or q + blen > n:
            break
        iface = _u32(buf, q + 8, big_endian)
        if _u32(buf, q + blen - 4, big_endian) != blen or iface >= muls.shape[0]:
            break
        if muls[iface] == 0 or _u32(buf, q + 12, big_endian) > max_hi[iface]:
            break
        if _u32(buf, q + 20, big_endian) > blen - 32:
            break
        count += 1
        q += blen
    offsets = np.empty(count, np.int64)
    caplens = np.empty(count, np.int64)
    wirelens = np.empty(count, np.int64)
    ts_ns = np.empty(count, np.int64)
    lts = np.empty(count, np.int32)
    q = start
    for i in range(count):
        iface = _u32(buf, q + 8, big_endian)
        units = (_u32(buf, q + 12, big_endian) << 32) | _u32(buf, q + 16, big_endian)
        ts_ns[i] = units * muls[iface] + offsets_ns[iface]
        caplens[i] = _u32(buf, q + 20, big_endian)
        wirelens[i] = _u32(buf, q + 24, big_endian)
        offsets[i] = q + 28
        lts[i] = linktypes[iface]
        q += _u32(buf, q + 4, big_endian)
    return q, offsets, caplens, wirelens, ts_ns, lts


@dataclass(slots=True)
class _Interface:
    """A pcapng interface (IDB, pcapng §4.2) reduced to what indexing needs."""

    linktype: int
    snaplen: int
    ts_mul: int  # ns = units * ts_mul // ts_div + ts_offset_ns
    ts_div: int
    ts_offset_ns: int


def _interface(body: memoryview, endian: str) -> _Interface:
    # IDB body (pcapng §4.2): LinkType u16, reserved u16, SnapLen u32, options.
    linktype, _, snaplen = struct.unpack_from(endian + "HHI", body, 0)
    tsresol, tsoffset = 6, 0
    # Options (pcapng §3.5): code u16, length u16, value padded to 32 bits; 0 ends the list.
    p = 8
    while p + 4 <= len(body):
        code, length = struct.unpack_from(endian + "HH", body, p)
        p += 4
        if code == 0 or p + length > len(body):
            break
        if code == 9 and length >= 1:  # if_tsresol
            tsresol = body[p]
        elif code == 14 and length >= 8:  # if_tsoffset, signed seconds
            (tsoffset,) = struct.unpack_from(endian + "q", body, p)
        p += (length + 3) & ~3
    if tsresol & 0x80:  # units of 2**-n seconds
        mul, div = 1_000_000_000, 1 << (tsresol & 0x7F)
    elif tsresol <= 9:  # units of 10**-n seconds
        mul, div = 10 ** (9 - tsresol), 1
    else:
        mul, div = 1, 10 ** (tsresol - 9)
    return _Interface(linktype, snaplen, mul, div, tsoffset * 1_000_000_000)


_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_Arrays = tuple[Int64Array, Int64Array, Int64Array, Int64Array, npt.NDArray[np.int32]]
_FastTables = tuple[npt.NDArray[np.int32], Int64Array, Int64Array, Int64Array]


def _fast_tables(ifaces: list[_Interface]) -> _FastTables:
    """Per-interface tables for :func:`_epb_run`: link type, ns per unit, offset, and the
    largest ts-high word whose conversion stays below 2**62 (so the sum fits in 64 bits).
    """
    muls, max_hi = [], []
    for intf in ifaces:
        exact = intf.ts_div == 1 and abs(intf.ts_offset_ns) < 1 << 61
        muls.append(intf.ts_mul if exact else 0)
        max_hi.append(((1 << 62) // intf.ts_mul >> 32) - 1 if exact else -1)
    return (
        np.array([i.linktype for i in ifaces], np.int32),
        np.array(muls, np.int64),
        np.array([i.ts_offset_ns if m else 0 for i, m in zip(ifaces, muls, strict=True)], np.int64),
        np.array(max_hi, np.int64),
    )


class _Source:
    """The capture byte stream: a file, or its gzip decompression, read into numpy buffers.

    Read errors (I/O, corrupt compressed data) end the stream and are kept in ``error``.
    """

    def __init__(self, raw: io.BufferedReader, compressed: bool) -> None:
        self.raw = raw
        self.stream: io.BufferedIOBase = (
            gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        )
        self.compressed = compressed
        self.error: str | None = None
        self.pos = 0  # stream bytes read so far
        self.eof = False
        # A file another process is still writing (a capture ring): running out of bytes
        # means "not yet", until ``final`` says the writer has moved on.
        self.tail = False
        self.final = False

    def read_exact(self, n: int) -> bytes:
        """Up to ``n`` bytes, fewer only at the end of the stream; errors propagate (for open)."""
        data = self.stream.read(n)
        self.pos += len(data)
        return data

    def fill(self, head: npt.NDArray[np.uint8], want: int) -> npt.NDArray[np.uint8]:
        """A new buffer holding ``head`` followed by up to ``want`` more bytes of the stream."""
        buf = np.empty(len(head) + want, np.uint8)
        buf[: len(head)] = head
        view = memoryview(buf)  # type: ignore[arg-type]
        got = len(head)
        # readinto1 on the gzip stream: one decompression step per call, so an error at a
        # corrupt tail loses nothing decompressed before it (readinto would drop its part).
        read = self.stream.readinto1 if self.compressed else self.stream.readinto
        while got < len(buf) and not self.eof:
            try:
                n = read(view[got:])
            except (OSError, EOFError, ValueError, zlib.error) as exc:
                what = "compressed stream" if self.compressed else "file"
                self.error = f"{what} unreadable after byte {self.pos}: {exc}"
                n = 0
            if not n:
                if not self.tail or self.final:
                    self.eof = True
                break
            got += n
            self.pos += n
        return buf[:got]

    def progress(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()


class CaptureReader:
    """Iterate over :class:`RawBlock` batches of one capture file; see :func:`open_capture`."""

    def __init__(
        self,
        source: _Source,
        report: ReadReport,
        head: bytes,
        block_size: int,
        pcap: _PcapHeader | None = None,
    ) -> None:
        self._src = source
        self.report = report
        self._head = np.frombuffer(head, np.uint8)  # bytes read at open that belong to blocks
        self._block_size = max(64, block_size)
        self._frames = 0
        self._iterated = False
        self._pcap = pcap
        # pcapng: the current section's byte order and interfaces
        self._endian = "<"
        self._ifaces: list[_Interface] = []
        self._fast: _FastTables | None = None  # built from _ifaces when first needed

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._src.close()

    def follow(self, first_frame: int = 1) -> None:
        """Read a file that is still being written: iteration yields an empty block when
        it has read all there is so far, and ends only after :meth:`finish_following`.
        Frames are numbered from ``first_frame`` (a ring's files number on from each other)."""
        self._src.tail = True
        self._frames = first_frame - 1

    def finish_following(self) -> None:
        """The writer has closed the file: what is left is all there will be."""
        self._src.final = True

    def __iter__(self) -> Iterator[RawBlock]:
        """The blocks of the file; a reader is read once, so a second iteration is empty."""
        if self._iterated:
            return iter(())
        self._iterated = True
        return self._chunks(self._index_pcapng if self._pcap is None else self._index_pcap)

    def _chunks(self, index: _IndexFn) -> Iterator[RawBlock]:
        """Read the stream block by block, carrying a partial record over to the next block.

        The file is closed when iteration ends, however it ends.
        """
        pending = self._head
        base = self._src.pos - len(pending)  # stream offset of pending[0]
        need = 0
        try:
            while True:
                buf = self._src.fill(pending, max(self._block_size, need - len(pending)))
                end, need, error, block = index(buf, base)
                self.report.progress = self._src.progress()
                self.report.bytes_read = base + end
                if len(block):
                    self._frames += len(block)
                    self.report.packets += len(block)
                    self.report.linktypes.update(distinct_ints(block.linktypes))
                    yield block
                elif self._src.tail and not self._src.eof and error is None:
                    yield block  # empty: nothing more written yet; the follower decides
                pending = buf[end:]
                base += end
                if error is None and self._src.eof and len(pending):
                    kind = "packet record" if self.report.format == "pcap" else "block"
                    error = f"truncated {kind} at byte {base}"
                if error is not None or self._src.eof:
                    self.report.error = self._src.error or error
                    return
        finally:
            self.close()

    def _statistics(self, body: memoryview, endian: str) -> None:
        """Keep the newest drop and receive counters the capture engine wrote."""
        if len(body) < 12:
            return
        (iface,) = struct.unpack_from(endian + "I", body, 0)
        counters = _isb_counters(body, endian)
        if counters:
            self.report.interface_stats[iface] = {
                _ISB_COUNTERS[code]: value for code, value in counters.items()
            }

    def _index_pcap(
        self, buf: npt.NDArray[np.uint8], base: int
    ) -> tuple[int, int, str | None, RawBlock]:
        hdr = self._pcap
        assert hdr is not None
        end, status, need, offsets, caplens, wirelens, ts_ns = _pcap_index(
            buf, hdr.big_endian, hdr.frac_ns, hdr.max_caplen
        )
        error = None
        if status == _CORRUPT:
            error = f"corrupt packet record at byte {base + end} (captured length {need - 16})"
        linktypes = np.full(len(offsets), hdr.linktype, np.int32)
        block = RawBlock(buf, offsets, caplens, wirelens, ts_ns, linktypes, self._frames + 1)
        return end, need, error, block

    def _index_pcapng(
        self, buf: npt.NDArray[np.uint8], base: int
    ) -> tuple[int, int, str | None, RawBlock]:
        view = memoryview(buf)  # type: ignore[arg-type]
        n = len(buf)
        parts: list[_Arrays] = []  # packets in file order: numba runs and Python-found ones
        slow = _PacketLists()
        ifaces = self._ifaces
        endian = self._endian
        p = 0
        need = 12
        error: str | None = None
        while p + 12 <= n:
            # Generic block (pcapng §3.1): type u32, total length u32, body, total length u32.
            (btype,) = struct.unpack_from(endian + "I", view, p)
            if btype == 6 and ifaces:
                if self._fast is None:
                    self._fast = _fast_tables(ifaces)
                end, offs, caps, wires, stamps, lts = _epb_run(buf, p, endian == ">", *self._fast)
                if end > p:
                    slow.flush_into(parts)
                    parts.append((offs, caps, wires, stamps, lts))
                    p = end
                    continue
            if btype == _PCAPNG_SHB:
                bom = bytes(view[p + 8 : p + 12])
                if bom == b"\x4d\x3c\x2b\x1a":
                    endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    endian = ">"
                else:
                    error = f"corrupt section header (byte-order magic) at byte {base + p}"
                    break
            (blen,) = struct.unpack_from(endian + "I", view, p + 4)
            if blen < 12 or blen % 4 or blen > MAX_PCAPNG_BLOCK:
                error = f"corrupt block length {blen} at byte {base + p}"
                break
            if p + blen > n:
                need = blen
                break
            if struct.unpack_from(endian + "I", view, p + blen - 4)[0] != blen:
                error = f"corrupt block (trailing length differs) at byte {base + p}"
                break
            body = view[p + 8 : p + blen - 4]
            if btype in (6, 2):
                # EPB (pcapng §4.3) the fast path did not take, or OPB (pcapng Appendix A):
                # interface u16, drops u16, then the EPB fields from ts high on.
                if len(body) < 20:
                    error = f"corrupt packet block at byte {base + p}"
                    break
                if btype == 6:
                    iface, hi, lo, caplen, wirelen = struct.unpack_from(endian + "5I", body, 0)
                else:
                    iface, _, hi, lo, caplen, wirelen = struct.unpack_from(endian + "HH4I", body, 0)
                if iface >= len(ifaces) or caplen > len(body) - 20:
                    error = f"corrupt packet block at byte {base + p}"
                    break
                intf = ifaces[iface]
                ts = ((hi << 32) | lo) * intf.ts_mul // intf.ts_div + intf.ts_offset_ns
                slow.add(p + 28, caplen, wirelen, min(max(ts, _I64_MIN), _I64_MAX), intf.linktype)
            elif btype == 3:
                # SPB (pcapng §4.4): original len u32, data; interface 0, no timestamp.
                if not ifaces or len(body) < 4:
                    error = f"corrupt simple packet block at byte {base + p}"
                    break
                (wirelen,) = struct.unpack_from(endian + "I", body, 0)
                caplen = min(wirelen, len(body) - 4)
                if ifaces[0].snaplen:
                    caplen = min(caplen, ifaces[0].snaplen)
                slow.add(p + 12, caplen, wirelen, 0, ifaces[0].linktype)
            elif btype == 1:
                if len(body) < 8:
                    error = f"corrupt interface description block at byte {base + p}"
                    break
                ifaces.append(_interface(body, endian))
                self._fast = None
            elif btype == _PCAPNG_SHB:
                # SHB (pcapng §4.1): byte-order magic, major u16, minor u16, section length
                # i64, options. A new section starts a new list of interfaces.
                if len(body) < 16:
                    error = f"corrupt section header at byte {base + p}"
                    break
                ifaces = []
                self._fast = None
            elif btype == 5:
                self._statistics(body, endian)
            else:
                self.report.skipped_blocks += 1
            p += blen
        self._ifaces = ifaces
        self._endian = endian
        slow.flush_into(parts)
        offs, caps, wires, stamps, lts = (
            parts[0] if len(parts) == 1 else slow.arrays() if not parts else _concat(parts)
        )
        return p, need, error, RawBlock(buf, offs, caps, wires, stamps, lts, self._frames + 1)


def _isb_counters(body: memoryview, endian: str) -> dict[int, int]:
    """The u64 counters of an Interface Statistics Block's options (pcapng §4.6): interface
    u32, timestamp u32 x2, then options (code u16, length u16, value padded to 4)."""
    out: dict[int, int] = {}
    p = 12
    while p + 4 <= len(body):
        code, length = struct.unpack_from(endian + "HH", body, p)
        if code == 0:
            break
        if code in _ISB_COUNTERS and length == 8 and p + 12 <= len(body):
            out[code] = struct.unpack_from(endian + "Q", body, p + 4)[0]
        p += 4 + ((length + 3) & ~3)
    return out


def _concat(parts: list[_Arrays]) -> _Arrays:
    offs, caps, wires, stamps, lts = zip(*parts, strict=True)
    return (
        np.concatenate(offs),
        np.concatenate(caps),
        np.concatenate(wires),
        np.concatenate(stamps),
        np.concatenate(lts),
    )


class _PacketLists:
    """Packets the Python loop found, until they join the block's arrays in file order."""

    def __init__(self) -> None:
        self.columns: tuple[list[int], ...] = ([], [], [], [], [])

    def add(self, offset: int, caplen: int, wirelen: int, ts_ns: int, linktype: int) -> None:
        values = (offset, caplen, wirelen, ts_ns, linktype)
        for column, value in zip(self.columns, values, strict=True):
            column.append(value)

    def arrays(self) -> _Arrays:
        offsets, caplens, wirelens, stamps, linktypes = self.columns
        return (
            np.array(offsets, np.int64),
            np.array(caplens, np.int64),
            np.array(wirelens, np.int64),
            np.array(stamps, np.int64),
            np.array(linktypes, np.int32),
        )

    def flush_into(self, parts: list[_Arrays]) -> None:
        if self.columns[0]:
            parts.append(self.arrays())
            self.columns = ([], [], [], [], [])


def open_capture(path: str | Path, block_size: int = DEFAULT_BLOCK_SIZE) -> CaptureReader:
    """Open a pcap or pcapng file, gzip-compressed or not, for block-wise reading.

    Raises :class:`CaptureError` when the file is missing, unreadable, or not a capture.
    """
    name = str(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - the reader owns and closes it
    except OSError as exc:
        raise CaptureError(name, "cannot open capture", exc.strerror or str(exc)) from exc
    try:
        return _open(raw, name, block_size)
    except CaptureError:
        raw.close()
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raw.close()
        raise CaptureError(name, "cannot read capture", str(exc)) from exc


def _open(raw: io.BufferedReader, name: str, block_size: int) -> CaptureReader:
    size = os.fstat(raw.fileno()).st_size
    compressed = raw.read(2) == _GZIP_MAGIC
    raw.seek(0)
    src = _Source(raw, compressed)
    magic = src.read_exact(4)
    what = "gzip-compressed, " if compressed else ""
    if len(magic) < 4:
        raise CaptureError(name, "not a pcap or pcapng capture", f"{what}{len(magic)} bytes long")
    if magic in _PCAP_MAGICS:
        rest = src.read_exact(_PCAP_HEADER_LEN - 4)
        if len(rest) < _PCAP_HEADER_LEN - 4:
            raise CaptureError(name, "truncated pcap file header")
        big_endian, nanosecond = _PCAP_MAGICS[magic]
        # File header (pcap §4): magic, major u16, minor u16, reserved u32 x2, SnapLen u32,
        # LinkType u32 whose low 16 bits are the link type (upper bits carry FCS info).
        snaplen, linktype = struct.unpack_from((">" if big_endian else "<") + "II", rest, 12)
        # Believe a snaplen above the usual maximum (some link types need it), within reason.
        max_caplen = max(MAX_CAPLEN, snaplen if snaplen <= MAX_PCAPNG_BLOCK else 0)
        hdr = _PcapHeader(big_endian, 1 if nanosecond else 1000, linktype & 0xFFFF, max_caplen)
        report = ReadReport(name, "pcap", compressed, size)
        return CaptureReader(src, report, b"", block_size, hdr)
    if struct.unpack("<I", magic)[0] == _PCAPNG_SHB:
        rest = src.read_exact(8)
        if len(rest) < 8 or rest[4:] not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
            raise CaptureError(name, "not a pcapng capture", "bad byte-order magic")
        report = ReadReport(name, "pcapng", compressed, size)
        return CaptureReader(src, report, magic + rest, block_size)
    raise CaptureError(
        name, "not a pcap or pcapng capture", f"{what}starts with 4 bytes 0x{magic.hex()}"
    )
