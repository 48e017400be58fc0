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

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from otconduit.protocols.events import Malformed, NeedData
from otconduit.protocols.framing import Resync, StreamFramer
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


class ModbusStream(StreamFramer[ModbusMessage]):
    """Frames one direction of a Modbus/TCP connection into events.

    Counters: ``messages`` (ADUs framed, including those with a ``malformed_reason``),
    ``malformed_pdus`` (of those, how many break the spec), ``malformed`` (Malformed
    events), ``resyncs`` (times framing was lost and searched for), ``bytes_skipped``
    (bytes reported in Malformed events, bytes lost in gaps excluded).
    """

    resync_window = MBAP_SIZE + 1
    gap_incomplete = "incomplete message before gap"
    gap_resync = "bytes before the first plausible ADU after a gap"

    def __init__(self, is_request: bool, max_buffer: int = 4096) -> None:
        if max_buffer < 2 * MAX_ADU:
            raise ValueError(f"max_buffer must be at least {2 * MAX_ADU}")
        super().__init__(skip_limit=max_buffer - MAX_ADU)
        self.is_request = is_request
        self.max_buffer = max_buffer
        self.messages = 0
        self.malformed_pdus = 0

    @property
    def offset(self) -> int:
        """Stream offset of the next unread byte (bytes lost in gaps counted)."""
        return self._base + self._pos

    # --- protocol hooks -------------------------------------------------------------

    def _resync_start(self, at: int) -> bool:
        return plausible_adu_start(self._buf, at, is_request=self.is_request)

    def _next_candidate(self) -> int:
        # Next offset whose protocol id bytes are zero; the last three bytes stay
        # undecided until more data shows what follows them.
        found = self._buf.find(b"\x00\x00", self._pos + 3)
        return found - 2 if found >= 0 else len(self._buf) - 3

    def _truncated(self, data: bytes) -> str:
        if len(data) >= 6:
            return f"{len(data)} of {6 + ((data[4] << 8) | data[5])} bytes"
        return f"{len(data)} bytes of an MBAP header"

    def _frame_at(self, avail: int) -> ModbusMessage | Resync | None:
        if avail < 6:
            return None
        buf, pos = self._buf, self._pos
        protocol_id = (buf[pos + 2] << 8) | buf[pos + 3]
        length = (buf[pos + 4] << 8) | buf[pos + 5]
        problem = mbap_problem(protocol_id, length)
        if problem is not None:
            return Resync(f"invalid MBAP header: {problem}")
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
