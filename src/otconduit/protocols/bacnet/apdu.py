"""BACnet APDU headers (135 §20.1): the eight PDU types and their fixed fields.

=====================  ==================================================================
Confirmed-Request      type|SEG|MOR|SA, max-segments|max-APDU, invoke id, [sequence
                       number, proposed window size when SEG], service choice, request
Unconfirmed-Request    type, service choice, request
SimpleACK              type, invoke id, service choice
ComplexACK             type|SEG|MOR, invoke id, [sequence number, proposed window size
                       when SEG], service choice, ACK
SegmentACK             type|NAK|SRV, invoke id, sequence number, actual window size
Error                  type, invoke id, service choice, error
Reject                 type, invoke id, reject reason
Abort                  type|SRV, invoke id, abort reason
=====================  ==================================================================

:func:`parse_apdu` returns an :class:`Apdu` (``body`` is the service data, a segment
of it when ``segmented``) or a string saying why the header cannot be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.bacnet import enums as E

_HEADER_SIZE: Final = (4, 2, 3, 3, 4, 3, 3, 3)  # header octets (service choice included)


@dataclass(frozen=True, slots=True)
class Apdu:
    pdu_type: int
    service: int | None = None  # service choice (not in SegmentACK, Reject, Abort)
    invoke_id: int | None = None  # not in Unconfirmed-Request
    body: bytes = b""
    segmented: bool = False
    more_follows: bool = False
    sequence: int | None = None  # segment sequence number
    window: int | None = None  # proposed (segments) or actual (SegmentACK) window size
    segmented_accepted: bool = False  # Confirmed-Request SA bit
    max_segments: int | None = None  # Confirmed-Request, decoded (None: unspecified)
    max_apdu: int | None = None  # Confirmed-Request, decoded octets
    reason: int | None = None  # Reject / Abort reason
    server: bool = False  # SegmentACK / Abort SRV bit: sent by the server
    nak: bool = False  # SegmentACK NAK bit
    problem: str | None = None

    @property
    def type_name(self) -> str:
        return E.PDU_TYPE_NAMES[self.pdu_type]


def parse_apdu(data: bytes) -> Apdu | str:
    """The APDU header in ``data``, or why it cannot be read."""
    if not data:
        return "empty APDU"
    first = data[0]
    kind = first >> 4
    if kind > E.ABORT:
        return f"APDU type {kind} is reserved"
    size = _HEADER_SIZE[kind]
    segmented = kind in (E.CONFIRMED_REQUEST, E.COMPLEX_ACK) and bool(first & 0x08)
    if segmented:
        size += 2
    if len(data) < size:
        return f"{E.PDU_TYPE_NAMES[kind]} cut short: {len(data)} of {size} header octets"
    problems = []
    if kind == E.CONFIRMED_REQUEST:
        seg_code, apdu_code = (data[1] >> 4) & 0x07, data[1] & 0x0F
        if apdu_code >= len(E.MAX_APDU_SIZES):
            problems.append(f"reserved max-APDU code {apdu_code}")
        at = 3
        seq = window = None
        if segmented:
            seq, window = data[3], data[4]
            at = 5
        if first & 0x01 or data[1] & 0x80:
            problems.append("reserved bits set in a Confirmed-Request header")
        return Apdu(
            kind,
            service=data[at],
            invoke_id=data[2],
            body=data[at + 1 :],
            segmented=segmented,
            more_follows=bool(first & 0x04),
            sequence=seq,
            window=window,
            segmented_accepted=bool(first & 0x02),
            max_segments=E.MAX_SEGMENTS[seg_code],
            max_apdu=E.MAX_APDU_SIZES[apdu_code] if apdu_code < len(E.MAX_APDU_SIZES) else None,
            problem="; ".join(problems) or None,
        )
    if kind == E.UNCONFIRMED_REQUEST:
        return Apdu(kind, service=data[1], body=data[2:])
    if kind == E.SIMPLE_ACK:
        extra = f"{len(data) - 3} octets after a SimpleACK" if len(data) > 3 else None
        return Apdu(kind, service=data[2], invoke_id=data[1], problem=extra)
    if kind == E.COMPLEX_ACK:
        at = 2
        seq = window = None
        if segmented:
            seq, window = data[2], data[3]
            at = 4
        return Apdu(
            kind,
            service=data[at],
            invoke_id=data[1],
            body=data[at + 1 :],
            segmented=segmented,
            more_follows=bool(first & 0x04),
            sequence=seq,
            window=window,
        )
    if kind == E.SEGMENT_ACK:
        return Apdu(
            kind,
            invoke_id=data[1],
            sequence=data[2],
            window=data[3],
            server=bool(first & 0x01),
            nak=bool(first & 0x02),
        )
    if kind == E.ERROR:
        return Apdu(kind, service=data[2], invoke_id=data[1], body=data[3:])
    extra = f"{len(data) - 3} octets after the reason" if len(data) > 3 else None
    return Apdu(
        kind,
        invoke_id=data[1],
        reason=data[2],
        server=kind == E.ABORT and bool(first & 0x01),
        problem=extra,
    )
