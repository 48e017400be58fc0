"""Helpers for the IEC 104 tests: APDU and ASDU builders (written from IEC 60870-5-104
§5 and 60870-5-101 §7, independently of the decoder) and capture decoding."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.iec104 import Iec104ConnectionDecoder
from tests.streams import flows

PORT = 2404
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus"
ITI = CORPUS / "iti" / "IEC60870-5-104"
CAPTURES = [ITI / "090813_diverse.pcap", ITI / "TestDissectIec104.pcap"]
ENDPOINTS = Endpoints(
    transport="tcp",
    client_ip="10.0.0.1",
    client_port=50000,
    server_ip="10.0.0.2",
    server_port=PORT,
)

STARTDT_ACT = bytes([0x68, 4, 0x07, 0, 0, 0])
STARTDT_CON = bytes([0x68, 4, 0x0B, 0, 0, 0])
STOPDT_ACT = bytes([0x68, 4, 0x13, 0, 0, 0])
STOPDT_CON = bytes([0x68, 4, 0x23, 0, 0, 0])
TESTFR_ACT = bytes([0x68, 4, 0x43, 0, 0, 0])
TESTFR_CON = bytes([0x68, 4, 0x83, 0, 0, 0])


def i_frame(ns: int, nr: int, asdu: bytes) -> bytes:
    control = struct.pack("<HH", ns << 1, nr << 1)
    return bytes([0x68, 4 + len(asdu)]) + control + asdu


def s_frame(nr: int) -> bytes:
    return bytes([0x68, 4, 0x01, 0x00]) + struct.pack("<H", nr << 1)


def asdu(
    type_id: int,
    cot: int,
    objects: Iterable[tuple[int, bytes]],
    *,
    ca: int = 1,
    oa: int = 0,
    negative: bool = False,
    test: bool = False,
    sq: bool = False,
) -> bytes:
    """``objects``: (IOA, element) pairs; with ``sq`` the first IOA only is written."""
    items = list(objects)
    cot_octet = cot | (0x40 if negative else 0) | (0x80 if test else 0)
    head = bytes([type_id, (0x80 if sq else 0) | len(items), cot_octet, oa]) + struct.pack("<H", ca)
    if sq:
        return head + items[0][0].to_bytes(3, "little") + b"".join(e for _, e in items)
    return head + b"".join(ioa.to_bytes(3, "little") + e for ioa, e in items)


def cp56(year: int, month: int, day: int, hour: int, minute: int, ms: int) -> bytes:
    return struct.pack("<H", ms) + bytes([minute, hour, day, month, year % 100])


def decode(
    messages: Iterable[tuple[int, bytes]], endpoints: Endpoints = ENDPOINTS
) -> list[DecoderEvent]:
    """Feed (direction, bytes) as frames 1, 2, ... one second apart."""
    dec = Iec104ConnectionDecoder(endpoints)
    out: list[DecoderEvent] = []
    for frame, (d, data) in enumerate(messages, 1):
        dec.feed(d, data, frame, frame * 1_000_000_000)
        out += dec.events()
    return out + dec.finish()


def decode_capture(pcap: Path) -> tuple[list[DecoderEvent], list[Iec104ConnectionDecoder]]:
    events: list[DecoderEvent] = []
    decoders = []
    for flow in flows(pcap, {PORT}):
        dec = Iec104ConnectionDecoder(flow.endpoints)
        for d, data, n, frame, ts in flow.chunks:
            if data is None:
                dec.gap(d, n, frame, ts)
            else:
                dec.feed(d, data, frame, ts)
            events += dec.events()
        events += dec.finish()
        decoders.append(dec)
    return events, decoders
