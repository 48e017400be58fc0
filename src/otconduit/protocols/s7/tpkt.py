"""Sans-I/O TPKT + COTP framer for one direction of an ISO-on-TCP (port 102) connection.

Layers, outermost first:

- TPKT, RFC 1006 §6: version (1) = 3, reserved (1), length (2, big-endian, counting
  these 4 bytes), then one COTP TPDU.
- COTP, ISO 8073 / X.224 §13: length indicator LI (1, header bytes after itself), TPDU
  code (high nibble of the next byte; the low nibble is the credit of CR/CC/AK/RJ), the
  fixed part, variable-part parameters (code, length, value), then user data.
  * CR 0xE0 / CC 0xD0 (§13.3, §13.4): dst-ref (2), src-ref (2), class/options (1),
    parameters: 0xC0 TPDU size (2**value), 0xC1 calling TSAP, 0xC2 called TSAP.
  * DR 0x80 (§13.5): dst-ref (2), src-ref (2), reason (1), parameters. DC 0xC0 (§13.6):
    dst-ref (2), src-ref (2).
  * DT 0xF0, class 0 (§13.7): EOT bit 0x80 | TPDU-NR (1), user data. A TSDU (one S7
    PDU) may be split over several DTs; the one with EOT set ends it.

Every call of :meth:`TpktStream.next_event` returns a :class:`CotpConnect`,
:class:`CotpDisconnect`, :class:`CotpData` (a complete TSDU), :class:`CotpOther`, a
:class:`~otconduit.protocols.events.Malformed`, or :data:`NEED_DATA`; it never raises
on byte content. A bad TPKT header is reported and framing resumes at the next offset
where a *plausible* header starts (:func:`plausible_tpkt`): version 3, reserved 0,
length >= 7, a COTP LI that fits, and a known TPDU code.

Buffer bounds, once ``next_event()`` has returned ``NEED_DATA``: unread bytes are at most
one incomplete TPKT packet (< 65535 bytes) or, while resynchronising, fewer than 6; a
run of skipped bytes is reported as soon as it reaches ``skip_limit``; a TSDU under
reassembly holds at most ``max_tsdu`` bytes (larger ones are reported and dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.events import Malformed, NeedData
from otconduit.protocols.framing import StreamFramer

TPKT_VERSION: Final = 3
TPKT_HEADER: Final = 4
MIN_TPKT_LENGTH: Final = 7  # header + the shortest TPDU (a class 0 DT: LI, code, EOT/NR)
MAX_TPKT_LENGTH: Final = 0xFFFF
PLAUSIBLE_PREFIX: Final = 6  # bytes needed to judge a header: TPKT + LI + code

TPDU_CR: Final = 0xE0
TPDU_CC: Final = 0xD0
TPDU_DR: Final = 0x80
TPDU_DC: Final = 0xC0
TPDU_DT: Final = 0xF0
TPDU_ED: Final = 0x10
TPDU_EA: Final = 0x20
TPDU_RJ: Final = 0x50
TPDU_AK: Final = 0x60
TPDU_ER: Final = 0x70
# Names as Zeek ICSNPP's cotp.log spells them.
TPDU_NAMES: Final = {
    TPDU_ED: "ED Expedited Data",
    TPDU_EA: "EA Expedited Data Acknowledgement",
    TPDU_RJ: "RJ Reject",
    TPDU_AK: "AK Data Acknowledgement",
    TPDU_ER: "ER TPDU Error",
    TPDU_DR: "DR Disconnect Request",
    TPDU_DC: "DC Disconnect Confirm",
    TPDU_CC: "CC Connection Confirm",
    TPDU_CR: "CR Connection Request",
    TPDU_DT: "DT Data",
}
# Smallest LI per TPDU code (fixed part size, ISO 8073 §13).
_MIN_LI: Final = {
    TPDU_CR: 6,
    TPDU_CC: 6,
    TPDU_DR: 6,
    TPDU_DC: 5,
    TPDU_DT: 2,
    TPDU_ED: 4,
    TPDU_EA: 4,
    TPDU_RJ: 4,
    TPDU_AK: 4,
    TPDU_ER: 4,
}
EOT: Final = 0x80
PARAM_TPDU_SIZE: Final = 0xC0
PARAM_CALLING_TSAP: Final = 0xC1
PARAM_CALLED_TSAP: Final = 0xC2


@dataclass(frozen=True, slots=True, kw_only=True)
class CotpConnect:
    """A connection request (CR) or confirm (CC) with its TSAP parameters."""

    code: int  # TPDU_CR or TPDU_CC
    dst_ref: int
    src_ref: int
    class_option: int
    calling_tsap: bytes | None
    called_tsap: bytes | None
    tpdu_size: int | None  # bytes (2**parameter value)
    params: tuple[tuple[int, bytes], ...]
    offset: int
    frame: int
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CotpDisconnect:
    """A disconnect request (DR, with its reason) or confirm (DC)."""

    code: int  # TPDU_DR or TPDU_DC
    dst_ref: int
    src_ref: int
    reason: int | None
    offset: int
    frame: int
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CotpData:
    """One complete TSDU: the user data of DT TPDUs up to and including EOT."""

    payload: bytes
    tpdus: int  # how many DT TPDUs carried it
    offset: int  # stream offset of the first TPKT header
    first_frame: int
    frame: int  # frame that completed it
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CotpOther:
    """A TPDU that carries no S7 traffic (ED, EA, AK, RJ, ER)."""

    code: int
    offset: int
    frame: int
    ts_ns: int


CotpEvent = CotpConnect | CotpDisconnect | CotpData | CotpOther
Event = CotpEvent | Malformed | NeedData


def tpdu_code(code_byte: int) -> int:
    """TPDU code of the second COTP byte (the low nibble is a credit or zero)."""
    return code_byte & 0xF0


def plausible_tpkt(buf: bytes | bytearray, at: int) -> bool:
    """Whether a TPKT packet plausibly starts at ``buf[at]`` (needs 6 bytes from ``at``)."""
    if at + PLAUSIBLE_PREFIX > len(buf):
        return False
    if buf[at] != TPKT_VERSION or buf[at + 1] != 0:
        return False
    length = (buf[at + 2] << 8) | buf[at + 3]
    li, code = buf[at + 4], tpdu_code(buf[at + 5])
    if length < MIN_TPKT_LENGTH or code not in _MIN_LI:
        return False
    return _MIN_LI[code] <= li <= length - TPKT_HEADER - 1


def parse_tpdu(
    packet: bytes, offset: int, frame: int, ts_ns: int
) -> CotpConnect | CotpDisconnect | CotpOther | tuple[bool, bytes] | str:
    """Decode the COTP TPDU of one TPKT packet.

    Returns an event, ``(eot, user_data)`` for a DT, or the reason it is malformed.
    """
    li = packet[4]
    end = TPKT_HEADER + 1 + li
    if end > len(packet):
        return f"COTP length indicator {li} exceeds TPKT length {len(packet)}"
    code = tpdu_code(packet[5])
    if code not in _MIN_LI:
        return f"unknown COTP TPDU code 0x{packet[5]:02x}"
    if li < _MIN_LI[code]:
        return f"COTP {TPDU_NAMES[code][:2]} length indicator {li} below {_MIN_LI[code]}"
    head = packet[5:end]
    if code == TPDU_DT:
        return bool(head[1] & EOT), packet[end:]
    if code in (TPDU_CR, TPDU_CC):
        params = _parameters(head[6:])
        if isinstance(params, str):
            return params
        found = dict(params)
        size = found.get(PARAM_TPDU_SIZE)
        return CotpConnect(
            code=code,
            dst_ref=(head[1] << 8) | head[2],
            src_ref=(head[3] << 8) | head[4],
            class_option=head[5],
            calling_tsap=found.get(PARAM_CALLING_TSAP),
            called_tsap=found.get(PARAM_CALLED_TSAP),
            tpdu_size=(1 << size[0]) if size and len(size) == 1 and size[0] < 32 else None,
            params=params,
            offset=offset,
            frame=frame,
            ts_ns=ts_ns,
        )
    if code in (TPDU_DR, TPDU_DC):
        return CotpDisconnect(
            code=code,
            dst_ref=(head[1] << 8) | head[2],
            src_ref=(head[3] << 8) | head[4],
            reason=head[5] if code == TPDU_DR else None,
            offset=offset,
            frame=frame,
            ts_ns=ts_ns,
        )
    return CotpOther(code=code, offset=offset, frame=frame, ts_ns=ts_ns)


def _parameters(var: bytes) -> tuple[tuple[int, bytes], ...] | str:
    """ISO 8073 §13.2.3 variable part: (code, length, value) triples filling the header."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(var):
        if pos + 2 > len(var) or pos + 2 + var[pos + 1] > len(var):
            return f"truncated COTP parameter 0x{var[pos]:02x}"
        out.append((var[pos], bytes(var[pos + 2 : pos + 2 + var[pos + 1]])))
        pos += 2 + var[pos + 1]
    return tuple(out)


class TpktStream(StreamFramer[CotpEvent]):
    """Frames one direction of an ISO-on-TCP connection into COTP events.

    Counters: ``packets`` (TPKT packets framed), ``malformed`` (Malformed events),
    ``resyncs`` (times framing was lost), ``bytes_skipped`` (bytes reported as skipped).

    Uses the buffer, chunk and skip primitives of :class:`StreamFramer` but its own
    event loop: one TPKT packet yields zero events (a DT without EOT), one, or two (an
    interrupted TSDU and the TPDU that interrupted it), and an unfinished TSDU must be
    reported at a gap or the end as well as the unread bytes.
    """

    def __init__(self, *, skip_limit: int = 4096, max_tsdu: int = 65536) -> None:
        if skip_limit < PLAUSIBLE_PREFIX or max_tsdu < 1:
            raise ValueError("skip_limit must be >= 6 and max_tsdu >= 1")
        super().__init__(skip_limit=skip_limit)
        self.skip_limit = skip_limit
        self.max_tsdu = max_tsdu
        self._tsdu = bytearray()
        self._tsdu_tpdus = 0
        self._tsdu_offset = 0
        self._tsdu_first_frame = 0
        self._tsdu_dropping = False  # an oversized TSDU is being discarded up to its EOT
        self.packets = 0

    @property
    def idle(self) -> bool:
        """At a TPKT boundary with no TSDU under reassembly and nothing unread."""
        return super().idle and not (self._tsdu_tpdus or self._tsdu_dropping)

    # --- inputs ---------------------------------------------------------------------

    def gap(self, nbytes: int, frame: int, ts_ns: int) -> None:
        """Announce ``nbytes`` lost bytes: what is partial is reported, then resync."""
        self._check_gap(nbytes)
        self._drain()
        self._flush_partial("before gap", frame, ts_ns)
        self._drop(nbytes)
        self._resync = "bytes before the first plausible TPKT header after a gap"
        self.resyncs += 1

    def end(self) -> None:
        """The stream ended: leftover bytes and an unfinished TSDU become Malformed."""
        if self._ended:
            return
        self._drain()
        frame, ts_ns = self._frame_of(self._base + len(self._buf) - 1)
        self._flush_partial("at end of stream", frame, ts_ns)
        self._ended = True

    # --- outputs --------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes held and not yet reported: unread input, skipped run, TSDU so far."""
        return super().buffered + len(self._tsdu)

    # --- internals ------------------------------------------------------------------

    def _parse(self) -> CotpEvent | Malformed | None:
        while not self._events:
            if not self._step():
                return None
        return self._events.popleft()

    def _drain(self) -> None:
        while not self._ended and self._step():
            pass

    def _step(self) -> bool:
        """Consume input towards one event; False when more bytes are needed."""
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if self._resync is not None:
            if avail < PLAUSIBLE_PREFIX:
                return False
            if plausible_tpkt(buf, pos):
                self._report_skipped()
                self._resync = None
                return True
            # Next candidate version byte; the last byte stays until we see what follows.
            found = buf.find(b"\x03\x00", pos + 1)
            self._skip_all((found if found >= 0 else len(buf) - 1) - pos)
            return True
        if avail < TPKT_HEADER:
            return False
        length = (buf[pos + 2] << 8) | buf[pos + 3]
        if buf[pos] != TPKT_VERSION or buf[pos + 1] != 0 or length < MIN_TPKT_LENGTH:
            self._resync = (
                f"invalid TPKT header {bytes(buf[pos : pos + TPKT_HEADER]).hex()}"
                f" (version must be 3, length >= {MIN_TPKT_LENGTH})"
            )
            self.resyncs += 1
            self._skip_all(1)
            return True
        if avail < length:
            return False
        offset = self._base + pos
        frame, ts_ns = self._completing_frame(offset, offset + length)
        packet = bytes(buf[pos : pos + length])
        self._advance(length)
        self.packets += 1
        self._packet(packet, offset, frame, ts_ns)
        return True

    def _packet(self, packet: bytes, offset: int, frame: int, ts_ns: int) -> None:
        result = parse_tpdu(packet, offset, frame, ts_ns)
        if isinstance(result, str):
            self._malformed(result, offset, frame, ts_ns, packet)
            return
        if isinstance(result, tuple):
            self._data(result[0], result[1], offset, frame, ts_ns)
            return
        if self._tsdu:
            self._malformed(
                f"TSDU without EOT interrupted by {TPDU_NAMES[result.code][:2]}",
                self._tsdu_offset,
                frame,
                ts_ns,
                bytes(self._tsdu),
            )
        self._reset_tsdu()
        self._events.append(result)

    def _data(self, eot: bool, data: bytes, offset: int, frame: int, ts_ns: int) -> None:
        if not self._tsdu_tpdus:
            self._tsdu_offset, self._tsdu_first_frame = offset, frame
        self._tsdu_tpdus += 1
        if not self._tsdu_dropping:
            if len(self._tsdu) + len(data) > self.max_tsdu:
                self._malformed(
                    f"TSDU exceeds {self.max_tsdu} bytes; dropped up to its EOT",
                    self._tsdu_offset,
                    frame,
                    ts_ns,
                    bytes(self._tsdu[:64]),
                )
                self._tsdu.clear()
                self._tsdu_dropping = True
            else:
                self._tsdu += data
        if not eot:
            return
        if not self._tsdu_dropping:
            self._events.append(
                CotpData(
                    payload=bytes(self._tsdu),
                    tpdus=self._tsdu_tpdus,
                    offset=self._tsdu_offset,
                    first_frame=self._tsdu_first_frame,
                    frame=frame,
                    ts_ns=ts_ns,
                )
            )
        self._reset_tsdu()

    def _reset_tsdu(self) -> None:
        self._tsdu.clear()
        self._tsdu_tpdus = 0
        self._tsdu_dropping = False

    def _flush_partial(self, where: str, frame: int, ts_ns: int) -> None:
        """Report an unfinished TSDU and unread bytes (gap or end of stream)."""
        if self._tsdu:
            self._malformed(
                f"TSDU without EOT {where}", self._tsdu_offset, frame, ts_ns, bytes(self._tsdu)
            )
        self._reset_tsdu()
        rest = bytes(self._buf[self._pos :])
        if self._resync is not None:
            self._skip_all(len(rest))
            self._skipped_at = (frame, ts_ns)
            self._report_skipped()
        elif rest:
            self._malformed(
                f"truncated TPKT packet {where}: {len(rest)} bytes",
                self._base + self._pos,
                frame,
                ts_ns,
                rest,
            )
        self._advance(len(self._buf) - self._pos)

    def _malformed(self, reason: str, offset: int, frame: int, ts_ns: int, data: bytes) -> None:
        self._report(reason, offset, (frame, ts_ns), data)

    def _skip_all(self, count: int) -> None:
        """Move ``count`` unread bytes to the skipped run, reporting it when it is full."""
        while count > 0:
            take = min(count, self._skip_limit - len(self._skipped))
            if self._skip(take):
                self._report_skipped()
            count -= take

    def _report_skipped(self) -> None:
        event = self._take_skipped()
        if event is not None:
            self._events.append(event)
