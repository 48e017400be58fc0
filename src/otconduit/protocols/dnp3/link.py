"""DNP3 data link layer (1815 §9.2.4): CRC, header checks and a sans-I/O frame framer.

A link frame (1815 §9.2.4.1)::

    05 64 | LEN | CTRL | DST lo hi | SRC lo hi | CRC lo hi       header, 10 octets
    data block 1 (16 octets) | CRC lo hi                         user data: LEN - 5
    ...                                                          octets in blocks of 16,
    data block n (1..16 octets) | CRC lo hi                      each with its own CRC

LEN counts CTRL, DST, SRC and the user data, never the CRCs, so 5 <= LEN <= 255 and a
frame is at most 292 octets. CTRL (1815 §9.2.4.1.3): bit 7 DIR (1 = sent by a master),
bit 6 PRM (1 = primary, the initiator of a link transaction), bit 5 FCB, bit 4 FCV on
primary frames or DFC on secondary ones, bits 0-3 the link function code.

CRC (1815 §9.2.4): CRC-16 with polynomial x^16+x^13+x^12+x^11+x^10+x^8+x^6+x^5+x^2+1
(0x3D65), bits processed least significant first (reflected, 0xA6BC), initial value 0,
result complemented and sent low octet first.

Bad CRCs, what :class:`LinkFramer` chooses:

* Bad header CRC: LEN cannot be trusted, so nothing of the frame is passed up. The
  frame is counted in ``bad_crc_frames`` and its octets, with whatever follows up to the
  next ``05 64`` that starts a valid header, are reported in one :class:`Malformed` whose
  reason starts "bad CRC in link header".
* Bad CRC in a data block while the header is valid: LEN is trusted, the frame is
  consumed whole, counted in ``bad_crc_frames``, reported as a :class:`Malformed`
  ("bad CRC in data block ...") *and* passed up as a :class:`LinkFrame` whose
  ``bad_blocks`` names the failing blocks, so the upper layers can still show what it
  carried (and mark what they build from it as malformed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.events import Malformed, NeedData
from otconduit.protocols.framing import StreamFramer

START: Final = b"\x05\x64"
HEADER_SIZE: Final = 10
MIN_LENGTH: Final = 5  # CTRL + DST + SRC
BLOCK_SIZE: Final = 16
MAX_USER_DATA: Final = 255 - MIN_LENGTH
MAX_FRAME: Final = HEADER_SIZE + MAX_USER_DATA + 2 * -(-MAX_USER_DATA // BLOCK_SIZE)  # 292
DEFAULT_MAX_SKIP: Final = 4096


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE: Final = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """DNP3 CRC-16 of ``data`` (1815 §9.2.4), as the integer sent low octet first."""
    crc = 0
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def frame_size(length: int) -> int:
    """Octets on the wire of a frame whose LEN field is ``length`` (>= 5)."""
    user = length - MIN_LENGTH
    return HEADER_SIZE + user + 2 * -(-user // BLOCK_SIZE)


def header_problem(header: bytes | bytearray) -> str | None:
    """Why a 10-octet link header starting with 05 64 is unusable, or None."""
    sent = header[8] | header[9] << 8
    computed = crc16(header[:8])
    if sent != computed:
        return f"bad CRC in link header: 0x{sent:04x}, computed 0x{computed:04x}"
    if header[2] < MIN_LENGTH:
        return f"bad length {header[2]} in link header (at least {MIN_LENGTH})"
    return None


def valid_header_at(data: bytes | bytearray, at: int = 0) -> bool:
    """Whether ``data[at:]`` begins with a complete link header that passes its checks."""
    if len(data) - at < HEADER_SIZE or data[at : at + 2] != START:
        return False
    return header_problem(data[at : at + HEADER_SIZE]) is None


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkFrame:
    """One link frame with its user data stripped of CRCs."""

    length: int
    control: int
    dst: int
    src: int
    data: bytes  # user data (transport segment), CRCs removed
    bad_blocks: tuple[int, ...]  # indexes of data blocks whose CRC failed
    offset: int  # stream offset of the 05 64
    frame: int  # capture frame that completed it
    ts_ns: int

    @property
    def dir(self) -> bool:
        """DIR bit: True when sent by a master (1815 §9.2.4.1.3)."""
        return bool(self.control & 0x80)

    @property
    def prm(self) -> bool:
        """PRM bit: True on primary frames (1815 §9.2.4.1.3)."""
        return bool(self.control & 0x40)

    @property
    def function(self) -> int:
        return self.control & 0x0F

    @property
    def crc_ok(self) -> bool:
        return not self.bad_blocks


def frame_octets(link: LinkFrame) -> bytes:
    """The octets of a frame whose CRCs were all right, as they were on the wire: the
    header and every data block followed by its CRC (computed again: the same)."""
    head = bytes((0x05, 0x64, link.length, link.control)) + link.dst.to_bytes(2, "little")
    head += link.src.to_bytes(2, "little")
    out = bytearray(head + crc16(head).to_bytes(2, "little"))
    for at in range(0, len(link.data), BLOCK_SIZE):
        block = link.data[at : at + BLOCK_SIZE]
        out += block + crc16(block).to_bytes(2, "little")
    return bytes(out)


Event = LinkFrame | Malformed | NeedData


class LinkFramer(StreamFramer[LinkFrame]):
    """Frames one direction of a DNP3 byte stream into :class:`LinkFrame` events.

    Buffer bounds: after the events are drained, at most ``MAX_FRAME - 1`` octets of an
    incomplete frame are held, plus a run of skipped octets that is reported (and
    emptied) once it reaches ``max_skip``. Every loop iteration consumes input or
    returns, so no input can make it spin.

    Counters: ``frames`` (frames passed up), ``bad_crc_frames`` (frames with a bad
    header or data CRC, passed up or not), ``malformed`` (Malformed events),
    ``resyncs`` (times framing was lost), ``bytes_skipped``.
    """

    unit = "octets"
    compact_floor = 4096

    def __init__(self, max_skip: int = DEFAULT_MAX_SKIP) -> None:
        if max_skip < 1:
            raise ValueError("max_skip must be >= 1")
        super().__init__(skip_limit=max_skip)
        self.max_skip = max_skip
        self.frames = 0
        self.bad_crc_frames = 0

    # --- inputs ---------------------------------------------------------------------

    def gap(self, nbytes: int, frame: int, ts_ns: int) -> None:
        """``nbytes`` octets were lost: a partial frame is reported, then resynchronise."""
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        self.cut("incomplete link frame before a gap", frame, ts_ns)
        self._base += nbytes

    def cut(self, reason: str, frame: int, ts_ns: int) -> None:
        """End of a datagram, a gap or the stream: report every unframed octet."""
        self._drain()
        if (skipped := self._take_skipped()) is not None:
            self._events.append(skipped)
        if self._pos < len(self._buf):
            data = bytes(self._buf[self._pos :])
            self.malformed += 1
            self.bytes_skipped += len(data)
            self._events.append(
                Malformed(
                    reason=f"{reason}: {len(data)} octets",
                    offset=self._base + self._pos,
                    frame=frame,
                    ts_ns=ts_ns,
                    data=data[:MAX_FRAME],
                )
            )
        self._drop(0)
        self._resync = None

    def end(self) -> None:
        """End of the capture: leftover octets become a Malformed event."""
        frame, ts_ns = self._frame_of(self._base + len(self._buf) - 1)
        self.cut("truncated link frame at end of stream", frame, ts_ns)

    # --- internals ------------------------------------------------------------------

    def _parse(self) -> LinkFrame | Malformed | None:
        buf = self._buf
        while True:
            pos = self._pos
            avail = len(buf) - pos
            if avail == 0:
                return None
            if buf[pos] != 0x05 or (avail >= 2 and buf[pos + 1] != 0x64):
                if not self._skipped:
                    self._resync = "no link header (05 64)"
                    self.resyncs += 1
                found = buf.find(START, pos + 1)
                if found < 0:  # keep a trailing 05: it may start a header
                    found = len(buf) - 1 if buf[-1] == 0x05 else len(buf)
                if self._skip(found - pos):
                    return self._take_skipped()
                continue
            if avail < HEADER_SIZE:
                return None
            problem = header_problem(buf[pos : pos + HEADER_SIZE])
            if problem is not None:
                if self._skipped:  # what came before is reported on its own
                    return self._take_skipped()
                if problem.startswith("bad CRC"):
                    self.bad_crc_frames += 1
                self._resync = problem
                self.resyncs += 1
                if self._skip(1):
                    return self._take_skipped()
                continue
            if self._skipped:
                return self._take_skipped()
            total = frame_size(buf[pos + 2])
            if avail < total:
                return None
            return self._frame(total)

    def _frame(self, total: int) -> LinkFrame | Malformed:
        start = self._pos
        offset = self._base + start
        raw = bytes(self._buf[start : start + total])
        frame, ts_ns = self._frame_of(offset + total - 1)
        self._advance(total)
        data = bytearray()
        bad: list[int] = []
        at, block = HEADER_SIZE, 0
        while at < total:
            end = min(at + BLOCK_SIZE, total - 2)
            chunk = raw[at:end]
            if crc16(chunk) != raw[end] | raw[end + 1] << 8:
                bad.append(block)
            data += chunk
            at, block = end + 2, block + 1
        link = LinkFrame(
            length=raw[2],
            control=raw[3],
            dst=raw[4] | raw[5] << 8,
            src=raw[6] | raw[7] << 8,
            data=bytes(data),
            bad_blocks=tuple(bad),
            offset=offset,
            frame=frame,
            ts_ns=ts_ns,
        )
        self.frames += 1
        if not bad:
            return link
        self.bad_crc_frames += 1
        self._events.append(link)
        self.malformed += 1
        blocks = ", ".join(str(b) for b in bad)
        return Malformed(
            reason=f"bad CRC in data block {blocks} of a link frame from {link.src} to {link.dst}",
            offset=link.offset,
            frame=frame,
            ts_ns=ts_ns,
            data=raw,
        )

    def _take_skipped(self, at: tuple[int, int] | None = None) -> Malformed | None:
        """Report the skipped run; its reason is forgotten with it."""
        event = super()._take_skipped(at)
        self._resync = None
        return event
