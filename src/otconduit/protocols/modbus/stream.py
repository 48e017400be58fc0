"""Sans-I/O Modbus/TCP framer for one direction of one TCP connection.

Bytes go in with :meth:`ModbusStream.feed` (and lost bytes are announced with
:meth:`ModbusStream.gap`); events come out of :meth:`ModbusStream.next_event`, which
returns a :class:`ModbusMessage`, a :class:`Malformed` or :data:`NEED_DATA`, and never
raises on any byte content.

Framing follows the MBAP header of the Modbus Messaging on TCP/IP Implementation Guide
V1.0b §3.1.3 (cited "IG §3.1.3") and the PDU size limit of the MODBUS Application
Protocol Specification V1.1b3 §4.1 ("MB §4.1"). A bad header never stalls the stream:
the framer reports the bytes it discards and resynchronises on the next offset where a
*plausible* ADU starts (see :func:`plausible_adu_start`).

Buffer bound: once ``next_event()`` has returned ``NEED_DATA`` the stream holds fewer
than ``max_buffer`` bytes (at most one incomplete ADU of <= 259 bytes plus a run of
skipped bytes that is reported as soon as it reaches ``max_buffer - 260``). Bytes
passed to ``feed()`` are held until the caller drains them, as in h11.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Final

from otconduit.protocols.events import NEED_DATA, Malformed, NeedData
from otconduit.protocols.modbus.functions import EXCEPTION_BIT, is_known_function
from otconduit.protocols.modbus.pdu import ModbusMessage, decode_pdu

# IG §3.1.3 MBAP header: transaction id(2), protocol id(2) = 0, length(2) counting the
# unit id and the PDU, unit id(1).
MBAP_SIZE: Final = 7
MAX_PDU: Final = 253  # MB §4.1
MIN_LENGTH: Final = 2  # unit id + function code
MAX_LENGTH: Final = MAX_PDU + 1
# Schneider's UMAS (FC 90) fills 254-byte PDUs, i.e. MBAP length 255, and tshark frames
# them: accept 255 as a message but flag it, so real Modicon traffic is not discarded.
TOLERATED_LENGTH: Final = 255
MAX_ADU: Final = 6 + TOLERATED_LENGTH  # 261: the largest ADU we frame

# Size bounds (inclusive) of a well-formed PDU, function code byte included, per
# direction; from the field layouts of MB §6.1-6.21. Used only to judge where a
# plausible ADU starts when resynchronising, never to reject an aligned message.
_ANY: Final = (1, MAX_PDU)
_REQUEST_PDU_SIZE: Final[Mapping[int, tuple[int, int]]] = MappingProxyType(
    {
        1: (5, 5),
        2: (5, 5),
        3: (5, 5),
        4: (5, 5),
        5: (5, 5),
        6: (5, 5),
        7: (1, 1),
        8: (3, MAX_PDU),
        11: (1, 1),
        12: (1, 1),
        15: (7, 252),
        16: (8, 252),
        17: (1, 1),
        20: (9, 247),
        21: (11, 253),
        22: (7, 7),
        23: (12, 252),
        24: (3, 3),
        43: (2, MAX_PDU),
    }
)
_RESPONSE_PDU_SIZE: Final[Mapping[int, tuple[int, int]]] = MappingProxyType(
    {
        1: (3, 252),
        2: (3, 252),
        3: (4, 252),
        4: (4, 252),
        5: (5, 5),
        6: (5, 5),
        7: (2, 2),
        8: (3, MAX_PDU),
        11: (5, 5),
        12: (8, 72),
        15: (5, 5),
        16: (5, 5),
        17: (3, MAX_PDU),
        20: (4, 247),
        21: (11, 253),
        22: (7, 7),
        23: (4, 252),
        24: (5, 67),
        43: (2, MAX_PDU),
    }
)
_EXCEPTION_PDU_SIZE: Final = 2  # MB §7: function code | 0x80, exception code

Event = ModbusMessage | Malformed | NeedData


def mbap_problem(protocol_id: int, length: int) -> str | None:
    """Why an MBAP header (IG §3.1.3) is invalid, or None when it is acceptable."""
    if protocol_id != 0:
        return f"protocol id {protocol_id} is not 0"
    if not MIN_LENGTH <= length <= TOLERATED_LENGTH:
        return f"length {length} outside {MIN_LENGTH}..{MAX_LENGTH}"
    return None


def plausible_adu_start(buf: bytes | bytearray, at: int, *, is_request: bool) -> bool:
    """Whether an ADU plausibly starts at ``buf[at]`` (needs 8 bytes from ``at``).

    Plausible means: protocol id 0, legal length, a function code with a name (or, in
    responses, a named code with the exception bit) and a PDU size that the code's
    field layout allows in this direction.
    """
    if at + MBAP_SIZE + 1 > len(buf):
        return False
    protocol_id = (buf[at + 2] << 8) | buf[at + 3]
    length = (buf[at + 4] << 8) | buf[at + 5]
    if mbap_problem(protocol_id, length) is not None:
        return False
    code, pdu_size = buf[at + 7], length - 1
    if code & EXCEPTION_BIT:
        base = code & ~EXCEPTION_BIT
        return not is_request and is_known_function(base) and pdu_size == _EXCEPTION_PDU_SIZE
    if not is_known_function(code):
        return False
    table = _REQUEST_PDU_SIZE if is_request else _RESPONSE_PDU_SIZE
    low, high = table.get(code, _ANY)
    return low <= pdu_size <= high


class ModbusStream:
    """Frames one direction of a Modbus/TCP connection into events.

    Counters: ``messages`` (ADUs framed, including those with a ``malformed_reason``),
    ``malformed_pdus`` (of those, how many break the spec), ``malformed`` (Malformed
    events), ``resyncs`` (times framing was lost and searched for), ``bytes_skipped``
    (bytes reported in Malformed events, bytes lost in gaps excluded).
    """

    def __init__(self, is_request: bool, max_buffer: int = 4096) -> None:
        if max_buffer < 2 * MAX_ADU:
            raise ValueError(f"max_buffer must be at least {2 * MAX_ADU}")
        self.is_request = is_request
        self.max_buffer = max_buffer
        self._skip_limit = max_buffer - MAX_ADU
        self._buf = bytearray()
        self._pos = 0  # read position in _buf
        self._base = 0  # stream offset of _buf[0]
        self._chunks: deque[tuple[int, int, int]] = deque()  # (end offset, frame, ts_ns)
        self._events: deque[ModbusMessage | Malformed] = deque()
        self._resync_reason: str | None = None  # set while searching for a header
        self._skipped = bytearray()
        self._skipped_offset = 0
        self._skipped_at = (0, 0)  # (frame, ts_ns) of the last skipped byte
        self._ended = False
        self.messages = 0
        self.malformed_pdus = 0
        self.malformed = 0
        self.resyncs = 0
        self.bytes_skipped = 0

    # --- inputs ---------------------------------------------------------------------

    def feed(self, data: bytes, frame: int, ts_ns: int) -> None:
        """Append bytes that arrived in capture frame ``frame`` at ``ts_ns``."""
        if self._ended:
            raise RuntimeError("feed() after end()")
        if data:
            self._buf += data
            self._chunks.append((self._base + len(self._buf), frame, ts_ns))

    def gap(self, nbytes: int, frame: int, ts_ns: int) -> None:
        """Announce ``nbytes`` lost bytes (a TCP hole) before the next ``feed()``.

        Complete ADUs already buffered are kept; a partial one is reported as
        Malformed, and framing resumes at the next plausible ADU start. Events made
        here carry the gap's ``frame``/``ts_ns``: that is when the loss was known.
        """
        if self._ended:
            raise RuntimeError("gap() after end()")
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        self._drain()
        pending = bytes(self._buf[self._pos :])
        if self._resync_reason is not None:
            self._skip_rest(at=(frame, ts_ns))
        elif pending:
            self._queue(
                Malformed(
                    reason=f"incomplete message before gap: {len(pending)} bytes",
                    offset=self._base + self._pos,
                    frame=frame,
                    ts_ns=ts_ns,
                    data=pending,
                ),
                len(pending),
            )
        self._base += len(self._buf) + nbytes
        self._buf.clear()
        self._pos = 0
        self._chunks.clear()
        self._resync_reason = "bytes before the first plausible ADU after a gap"
        self.resyncs += 1

    def end(self) -> None:
        """Announce the end of the capture: leftover bytes become Malformed events."""
        if self._ended:
            return
        self._drain()
        avail = len(self._buf) - self._pos
        if self._resync_reason is not None:
            self._skip_rest()
        elif avail:
            start = self._base + self._pos
            frame, ts_ns = self._frame_of(self._base + len(self._buf) - 1)
            data = bytes(self._buf[self._pos :])
            if avail >= 6:
                expected = f"{avail} of {6 + ((data[4] << 8) | data[5])} bytes"
            else:
                expected = f"{avail} bytes of an MBAP header"
            self._queue(
                Malformed(
                    reason=f"truncated message at end of stream: {expected}",
                    offset=start,
                    frame=frame,
                    ts_ns=ts_ns,
                    data=data,
                ),
                avail,
            )
            self._pos = len(self._buf)
        self._ended = True

    # --- outputs --------------------------------------------------------------------

    def next_event(self) -> Event:
        """The next message or Malformed event, or ``NEED_DATA``."""
        if self._events:
            return self._events.popleft()
        if self._ended:
            return NEED_DATA
        event = self._parse()
        return NEED_DATA if event is None else event

    def events(self) -> Iterator[ModbusMessage | Malformed]:
        """Every event available now (stops at ``NEED_DATA``)."""
        while not isinstance(event := self.next_event(), NeedData):
            yield event

    @property
    def buffered(self) -> int:
        """Bytes held and not yet reported (undrained input included)."""
        return len(self._buf) - self._pos + len(self._skipped)

    @property
    def idle(self) -> bool:
        """At a message boundary with nothing pending: the next byte starts an ADU.

        A bulk decoder may take over the direction from here and hand it back later
        without either side seeing a difference.
        """
        return (
            not self._events
            and self.buffered == 0
            and self._resync_reason is None
            and not self._ended
        )

    @property
    def offset(self) -> int:
        """Stream offset of the next unread byte (bytes lost in gaps counted)."""
        return self._base + self._pos

    # --- internals ------------------------------------------------------------------

    def _drain(self) -> None:
        while (event := self._parse()) is not None:
            self._events.append(event)

    def _parse(self) -> ModbusMessage | Malformed | None:
        """One event from the buffer, or None when more bytes are needed."""
        buf = self._buf
        while True:
            avail = len(buf) - self._pos
            if self._resync_reason is not None:
                if avail < MBAP_SIZE + 1:
                    return None
                if plausible_adu_start(buf, self._pos, is_request=self.is_request):
                    skipped = self._take_skipped()
                    self._resync_reason = None
                    if skipped is not None:
                        return skipped
                    continue
                # Next offset whose protocol id bytes are zero; the last three bytes
                # stay undecided until more data shows what follows them.
                found = buf.find(b"\x00\x00", self._pos + 3)
                target = found - 2 if found >= 0 else len(buf) - 3
                if self._skip(target - self._pos):
                    return self._take_skipped()
                continue
            if avail < 6:
                return None
            protocol_id = (buf[self._pos + 2] << 8) | buf[self._pos + 3]
            length = (buf[self._pos + 4] << 8) | buf[self._pos + 5]
            problem = mbap_problem(protocol_id, length)
            if problem is not None:
                self._resync_reason = f"invalid MBAP header: {problem}"
                self.resyncs += 1
                if self._skip(1):
                    return self._take_skipped()
                continue
            total = 6 + length
            if avail < total:
                return None
            return self._message(total)

    def _message(self, total: int) -> ModbusMessage:
        start = self._pos
        adu = bytes(self._buf[start : start + total])
        frame, ts_ns = self._completing_frame(self._base + start, self._base + start + total)
        self._advance(total)
        decoded = decode_pdu(adu[MBAP_SIZE:], is_request=self.is_request)
        self.messages += 1
        reason = decoded.malformed_reason
        if total - 6 > MAX_LENGTH:
            oversize = f"MBAP length {total - 6} exceeds {MAX_LENGTH}"
            reason = oversize if reason is None else f"{oversize}; {reason}"
        if reason is not None:
            self.malformed_pdus += 1
        return ModbusMessage(
            tid=(adu[0] << 8) | adu[1],
            pid=(adu[2] << 8) | adu[3],
            length=(adu[4] << 8) | adu[5],
            unit=adu[6],
            function_code=decoded.function_code,
            is_request=self.is_request,
            is_exception=decoded.is_exception,
            exception_code=decoded.exception_code,
            frame=frame,
            ts_ns=ts_ns,
            address=decoded.address,
            quantity=decoded.quantity,
            values=decoded.values,
            subfunction=decoded.subfunction,
            mei_type=decoded.mei_type,
            extra=decoded.extra,
            raw=adu,
            malformed_reason=reason,
        )

    def _skip(self, count: int) -> bool:
        """Move up to ``count`` unread bytes to the skipped run; True when it is full."""
        count = min(count, self._skip_limit - len(self._skipped))
        if count > 0:
            if not self._skipped:
                self._skipped_offset = self._base + self._pos
            self._skipped += self._buf[self._pos : self._pos + count]
            self._skipped_at = self._frame_of(self._base + self._pos + count - 1)
            self._advance(count)
        return len(self._skipped) >= self._skip_limit

    def _take_skipped(self, at: tuple[int, int] | None = None) -> Malformed | None:
        """Report the skipped run (if any) as one Malformed event."""
        if not self._skipped:
            return None
        frame, ts_ns = self._skipped_at if at is None else at
        why = self._resync_reason or "resynchronised"
        event = Malformed(
            reason=f"{why}; skipped {len(self._skipped)} bytes",
            offset=self._skipped_offset,
            frame=frame,
            ts_ns=ts_ns,
            data=bytes(self._skipped),
        )
        self.malformed += 1
        self.bytes_skipped += len(self._skipped)
        self._skipped.clear()
        return event

    def _skip_rest(self, at: tuple[int, int] | None = None) -> None:
        """Report every unread byte as skipped (the stream is cut by a gap or the end)."""
        while True:
            self._skip(len(self._buf) - self._pos)
            event = self._take_skipped(at)
            if event is None:
                return
            self._events.append(event)

    def _queue(self, event: Malformed, nbytes: int) -> None:
        self.malformed += 1
        self.bytes_skipped += nbytes
        self._events.append(event)

    def _advance(self, count: int) -> None:
        self._pos += count
        head = self._base + self._pos
        while self._chunks and self._chunks[0][0] <= head:
            self._chunks.popleft()
        # Compact once the consumed prefix dominates: amortised linear in bytes fed.
        if self._pos == len(self._buf) or self._pos > max(65536, len(self._buf) // 2):
            del self._buf[: self._pos]
            self._base += self._pos
            self._pos = 0

    def _completing_frame(self, begin: int, end: int) -> tuple[int, int]:
        """(frame, ts_ns) that completed the bytes ``[begin, end)``: the latest frame among
        the chunks holding them (after reordering, not the one holding the last byte),
        as Wireshark attributes a reassembled PDU."""
        best = self._frame_of(end - 1)
        for chunk_end, frame, ts_ns in self._chunks:
            if chunk_end <= begin:
                continue
            if frame > best[0]:
                best = (frame, ts_ns)
            if chunk_end >= end:
                break
        return best

    def _frame_of(self, offset: int) -> tuple[int, int]:
        """(frame, ts_ns) of the chunk that delivered the byte at stream ``offset``."""
        for end, frame, ts_ns in self._chunks:
            if offset < end:
                return frame, ts_ns
        return (self._chunks[-1][1], self._chunks[-1][2]) if self._chunks else (0, 0)
