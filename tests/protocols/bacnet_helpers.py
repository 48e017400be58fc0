"""Helpers for the BACnet tests: an encoder for tags, APDUs, NPDUs and BVLL messages
(written from ASHRAE 135 §20.2, §20.1, §6.2 and Annex J, independently of the decoder),
and capture decoding."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from otconduit.protocols.bacnet import BacnetConnectionDecoder
from otconduit.protocols.base import DecoderEvent, Endpoints
from tests.streams import Flow, flows

PORT = 47808
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus"
ICSNPP = CORPUS / "icsnpp" / "bacnet" / "bacnet_example"
ITI = CORPUS / "iti" / "BACnet"
ENDPOINTS = Endpoints(
    transport="udp",
    client_ip="10.0.0.1",
    client_port=PORT,
    server_ip="10.0.0.2",
    server_port=PORT,
)


# -- tags (135 §20.2.1) --------------------------------------------------------------------
def tag(number: int, context: bool, content: bytes) -> bytes:
    head = (min(number, 15) << 4) | (0x08 if context else 0)
    extra = bytes([number]) if number >= 15 else b""
    size = len(content)
    if size <= 4:
        return bytes([head | size]) + extra + content
    if size <= 253:
        return bytes([head | 5]) + extra + bytes([size]) + content
    return bytes([head | 5]) + extra + b"\xfe" + size.to_bytes(2, "big") + content


def uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def ctx(number: int, value: int) -> bytes:
    return tag(number, True, uint(value))


def ctx_obj(number: int, obj_type: int, instance: int) -> bytes:
    return tag(number, True, ((obj_type << 22) | instance).to_bytes(4, "big"))


def opening(number: int) -> bytes:
    return bytes([(number << 4) | 0x0E])


def closing(number: int) -> bytes:
    return bytes([(number << 4) | 0x0F])


def app_bool(value: bool) -> bytes:
    return bytes([0x10 | int(value)])


def app_uint(value: int) -> bytes:
    return tag(2, False, uint(value))


def app_int(value: int) -> bytes:
    size = 1
    while not -(1 << (8 * size - 1)) <= value < (1 << (8 * size - 1)):
        size += 1
    return tag(3, False, value.to_bytes(size, "big", signed=True))


def app_real(value: float) -> bytes:
    return tag(4, False, struct.pack(">f", value))


def app_octets(value: bytes) -> bytes:
    return tag(6, False, value)


def app_text(value: str) -> bytes:
    return tag(7, False, b"\x00" + value.encode())


def app_enum(value: int) -> bytes:
    return tag(9, False, uint(value))


def app_obj(obj_type: int, instance: int) -> bytes:
    return tag(12, False, ((obj_type << 22) | instance).to_bytes(4, "big"))


def app_date(year: int, month: int, day: int, dow: int) -> bytes:
    return tag(10, False, bytes([year - 1900, month, day, dow]))


def app_time(h: int, m: int, s: int, hundredths: int) -> bytes:
    return tag(11, False, bytes([h, m, s, hundredths]))


# -- APDUs (135 §20.1) ---------------------------------------------------------------------
def confirmed(
    invoke: int,
    service: int,
    body: bytes,
    *,
    seg: tuple[int, bool] | None = None,
    max_apdu: int = 5,
) -> bytes:
    """A Confirmed-Request; ``seg`` = (sequence number, more follows)."""
    flags = 0x02  # segmented response accepted
    extra = b""
    if seg is not None:
        flags |= 0x08 | (0x04 if seg[1] else 0)
        extra = bytes([seg[0], 4])
    return bytes([flags, 0x50 | max_apdu, invoke]) + extra + bytes([service]) + body


def unconfirmed(service: int, body: bytes) -> bytes:
    return bytes([0x10, service]) + body


def simple_ack(invoke: int, service: int) -> bytes:
    return bytes([0x20, invoke, service])


def complex_ack(
    invoke: int, service: int, body: bytes, *, seg: tuple[int, bool] | None = None
) -> bytes:
    first, extra = 0x30, b""
    if seg is not None:
        first |= 0x08 | (0x04 if seg[1] else 0)
        extra = bytes([seg[0], 4])
    return bytes([first, invoke]) + extra + bytes([service]) + body


def segment_ack(invoke: int, seq: int, *, server: bool) -> bytes:
    return bytes([0x40 | (1 if server else 0), invoke, seq, 4])


def error(invoke: int, service: int, error_class: int, code: int) -> bytes:
    return bytes([0x50, invoke, service]) + app_enum(error_class) + app_enum(code)


def reject(invoke: int, reason: int) -> bytes:
    return bytes([0x60, invoke, reason])


def abort(invoke: int, reason: int, *, server: bool) -> bytes:
    return bytes([0x70 | (1 if server else 0), invoke, reason])


# -- NPDU and BVLL ---------------------------------------------------------------------------
def npdu(
    apdu: bytes = b"",
    *,
    dnet: tuple[int, bytes] | None = None,
    snet: tuple[int, bytes] | None = None,
    message: int | None = None,
    expecting_reply: bool = False,
) -> bytes:
    control = (0x80 if message is not None else 0) | (0x04 if expecting_reply else 0)
    out = b""
    if dnet is not None:
        control |= 0x20
        out += dnet[0].to_bytes(2, "big") + bytes([len(dnet[1])]) + dnet[1]
    if snet is not None:
        control |= 0x08
        out += snet[0].to_bytes(2, "big") + bytes([len(snet[1])]) + snet[1]
    if dnet is not None:
        out += b"\xff"  # hop count
    if message is not None:
        out += bytes([message])
    return bytes([1, control]) + out + apdu


def bvll(function: int, body: bytes) -> bytes:
    return bytes([0x81, function]) + (4 + len(body)).to_bytes(2, "big") + body


def unicast(
    apdu: bytes,
    *,
    dnet: tuple[int, bytes] | None = None,
    snet: tuple[int, bytes] | None = None,
) -> bytes:
    return bvll(0x0A, npdu(apdu, dnet=dnet, snet=snet))


def broadcast(apdu: bytes) -> bytes:
    return bvll(0x0B, npdu(apdu))


def forwarded(origin: tuple[int, int, int, int, int], apdu: bytes) -> bytes:
    addr = bytes(origin[:4]) + origin[4].to_bytes(2, "big")
    return bvll(0x04, addr + npdu(apdu))


# -- common services ----------------------------------------------------------------------
def read_property(obj_type: int, instance: int, prop: int, index: int | None = None) -> bytes:
    out = ctx_obj(0, obj_type, instance) + ctx(1, prop)
    return out + (ctx(2, index) if index is not None else b"")


def read_property_ack(obj_type: int, instance: int, prop: int, value: bytes) -> bytes:
    return ctx_obj(0, obj_type, instance) + ctx(1, prop) + opening(3) + value + closing(3)


def i_am(instance: int, vendor: int, max_apdu: int = 1476, seg: int = 3) -> bytes:
    return app_obj(8, instance) + app_uint(max_apdu) + app_enum(seg) + app_uint(vendor)


# -- decoding ------------------------------------------------------------------------------
def decode(
    datagrams: Iterable[tuple[int, bytes]], endpoints: Endpoints = ENDPOINTS
) -> list[DecoderEvent]:
    """Feed (direction, datagram) pairs as frames 1, 2, ... one second apart."""
    dec = BacnetConnectionDecoder(endpoints)
    out: list[DecoderEvent] = []
    for frame, (d, data) in enumerate(datagrams, 1):
        dec.feed(d, data, frame, frame * 1_000_000_000)
        out += dec.events()
    return out + dec.finish()


def capture_flows(pcap: Path) -> list[Flow]:
    return flows(pcap, {PORT})


def decode_capture(pcap: Path) -> tuple[list[DecoderEvent], list[BacnetConnectionDecoder]]:
    events: list[DecoderEvent] = []
    decoders = []
    for flow in capture_flows(pcap):
        dec = BacnetConnectionDecoder(flow.endpoints)
        for d, data, _n, frame, ts in flow.chunks:
            if data is not None:
                dec.feed(d, data, frame, ts)
                events += dec.events()
        events += dec.finish()
        decoders.append(dec)
    return events, decoders
