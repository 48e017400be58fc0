"""Builders for EtherNet/IP + CIP test traffic, written from the field layouts of the
ODVA specifications (Vol 1 for CIP, Vol 2 for the encapsulation), and a runner that
feeds a decoder. Real captures checked against tshark and Zeek cover the same code
with bytes we did not write."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.enip import EnipDecoder
from otconduit.protocols.events import Malformed

CTX = b"ctx00001"
SESSION = 0x11223344
TCP = Endpoints(
    transport="tcp",
    client_ip="10.0.0.1",
    client_port=50000,
    server_ip="10.0.0.2",
    server_port=44818,
)
UDP = Endpoints(
    transport="udp",
    client_ip="10.0.0.1",
    client_port=50001,
    server_ip="10.0.0.2",
    server_port=44818,
)
UDP_IO = Endpoints(
    transport="udp", client_ip="10.0.0.1", client_port=2222, server_ip="10.0.0.2", server_port=2222
)


def encap(
    command: int,
    body: bytes = b"",
    *,
    session: int = SESSION,
    status: int = 0,
    context: bytes = CTX,
    options: int = 0,
    length: int | None = None,
) -> bytes:
    """Vol 2 §2-3.1: command, length, session, status, context (8), options."""
    size = len(body) if length is None else length
    return struct.pack("<HHII8sI", command, size, session, status, context, options) + body


def cpf(items: Iterable[tuple[int, bytes]]) -> bytes:
    items = list(items)
    out = struct.pack("<H", len(items))
    for type_id, data in items:
        out += struct.pack("<HH", type_id, len(data)) + data
    return out


def rr(cip: bytes, *, context: bytes = CTX, session: int = SESSION, status: int = 0) -> bytes:
    """SendRRData: interface handle 0, timeout, null address item, unconnected data."""
    body = struct.pack("<IH", 0, 10) + cpf([(0x0000, b""), (0x00B2, cip)])
    return encap(0x6F, body, context=context, session=session, status=status)


def unit(conn: int, seq: int, cip: bytes, *, session: int = SESSION) -> bytes:
    """SendUnitData: connected address item + connected data (sequence count, CIP)."""
    items = [(0x00A1, struct.pack("<I", conn)), (0x00B1, struct.pack("<H", seq) + cip)]
    return encap(0x70, struct.pack("<IH", 0, 0) + cpf(items), session=session, context=bytes(8))


def logical(kind: int, value: int, width: int = 8) -> bytes:
    """Padded logical segment (Vol 1 §C-1.4.3): kind 0 class, 1 instance, 2 member,
    3 connection point, 4 attribute."""
    seg = 0x20 | kind << 2
    if width == 8:
        return bytes([seg, value])
    if width == 16:
        return bytes([seg | 1, 0]) + struct.pack("<H", value)
    return bytes([seg | 2, 0]) + struct.pack("<I", value)


def path(cls: int, inst: int, attr: int | None = None) -> bytes:
    out = logical(0, cls, 8 if cls < 256 else 16) + logical(1, inst, 8 if inst < 256 else 16)
    if attr is not None:
        out += logical(4, attr, 8 if attr < 256 else 16)
    return out


def symbol(name: str) -> bytes:
    """ANSI extended symbol segment (Vol 1 §C-1.4.6.2), padded to a word."""
    raw = name.encode()
    return bytes([0x91, len(raw)]) + raw + (b"\x00" if len(raw) % 2 else b"")


def request(service: int, epath: bytes, data: bytes = b"") -> bytes:
    assert len(epath) % 2 == 0
    return bytes([service, len(epath) // 2]) + epath + data


def reply(service: int, status: int = 0, data: bytes = b"", ext: tuple[int, ...] = ()) -> bytes:
    extended = b"".join(struct.pack("<H", e) for e in ext)
    return bytes([service | 0x80, 0, status, len(ext)]) + extended + data


def multiple(parts: list[bytes]) -> bytes:
    """Multiple Service Packet body (Vol 1 §A-4.10): count, offsets, messages."""
    offset = 2 + 2 * len(parts)
    offsets = []
    for part in parts:
        offsets.append(offset)
        offset += len(part)
    return struct.pack(f"<H{len(parts)}H", len(parts), *offsets) + b"".join(parts)


def unconnected_send(embedded: bytes, route: bytes = b"\x01\x00") -> bytes:
    """Unconnected Send to the Connection Manager (Vol 1 §3-5.5.4)."""
    data = struct.pack("<BBH", 0x0A, 0xF0, len(embedded)) + embedded
    if len(embedded) % 2:
        data += b"\x00"
    data += bytes([len(route) // 2, 0]) + route
    return request(0x52, path(0x06, 1), data)


def forward_open(
    *, ot: int = 0, to: int = 0x2000_0001, serial: int = 7, rpi: int = 100_000, large: bool = False
) -> bytes:
    """Forward Open / Large Forward Open request (Vol 1 §3-5.5.2)."""
    params = (0x43F4 if not large else 0x4200_01F4, "<I" if large else "<H")
    data = struct.pack("<BBIIHHIB3s", 0x0A, 0x0E, ot, to, serial, 0x4D, 0xCAFE, 3, b"\0\0\0")
    data += struct.pack("<I", rpi) + struct.pack(params[1], params[0])
    data += struct.pack("<I", rpi) + struct.pack(params[1], params[0])
    conn_path = b"\x01\x00" + path(0x02, 1)
    data += bytes([0xA3, len(conn_path) // 2]) + conn_path
    return request(0x5B if large else 0x54, path(0x06, 1), data)


def forward_open_reply(*, ot: int, to: int, serial: int = 7, status: int = 0) -> bytes:
    service = 0x54
    if status:
        return reply(service, status, struct.pack("<HHIBB", serial, 0x4D, 0xCAFE, 0, 0), (0x0100,))
    data = struct.pack("<IIHHIIIBB", ot, to, serial, 0x4D, 0xCAFE, 100_000, 100_000, 0, 0)
    return reply(service, 0, data)


def forward_close(serial: int = 7) -> bytes:
    conn_path = b"\x01\x00" + path(0x02, 1)
    data = struct.pack("<BBHHIBB", 0x0A, 0x0E, serial, 0x4D, 0xCAFE, len(conn_path) // 2, 0)
    return request(0x4E, path(0x06, 1), data + conn_path)


def identity_attrs(
    *,
    vendor: int = 1,
    device_type: int = 14,
    product: int = 54,
    rev: tuple[int, int] = (20, 11),
    serial: int = 0x00C0FFEE,
    name: str = "1756-L61/B LOGIX5561",
    state: int | None = 3,
) -> bytes:
    """Identity attributes 1-7 (+8) as Get_Attributes_All returns them (Vol 1 §5-2)."""
    out = struct.pack("<HHHBBHI", vendor, device_type, product, rev[0], rev[1], 0x0030, serial)
    out += bytes([len(name)]) + name.encode()
    if state is not None:
        out += bytes([state])
    return out


def list_identity_item(
    ip: str = "10.0.0.2",
    *,
    vendor: int = 1,
    device_type: int = 14,
    product: int = 54,
    rev: tuple[int, int] = (20, 11),
) -> bytes:
    """ListIdentity CIP Identity item body (Vol 2 Table 2-4.4)."""
    sockaddr = struct.pack(">HH4s8s", 2, 44818, bytes(int(x) for x in ip.split(".")), bytes(8))
    attrs = identity_attrs(vendor=vendor, device_type=device_type, product=product, rev=rev)
    return struct.pack("<H", 1) + sockaddr + attrs


def io_packet(conn: int, seq: int, data: bytes = b"\x01\x00\x00\x00") -> bytes:
    """Implicit I/O datagram: sequenced address item + connected data item."""
    return cpf([(0x8002, struct.pack("<II", conn, seq)), (0x00B1, data)])


Chunk = tuple[int, bytes]  # (direction, bytes)


def run(
    chunks: Iterable[Chunk], endpoints: Endpoints = TCP, *, split: int | None = None
) -> list[DecoderEvent]:
    """Feed ``chunks`` (optionally re-split into pieces of ``split`` bytes) and finish.

    Frames count the chunks (1, 2, ...); every piece of a chunk carries its frame, so
    re-splitting changes nothing a decoder should report.
    """
    dec = EnipDecoder(endpoints)
    out: list[DecoderEvent] = []
    for frame, (direction, data) in enumerate(chunks, start=1):
        pieces = (
            [data] if split is None else [data[i : i + split] for i in range(0, len(data), split)]
        )
        for piece in pieces:
            dec.feed(direction, piece, frame, frame * 1000)
            out += dec.events()
    return out + dec.finish()


def ops(events: list[DecoderEvent]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation)]


def claims(events: list[DecoderEvent]) -> dict[str, str]:
    return {e.attribute: e.value for e in events if isinstance(e, IdentityClaim)}


def malformed(events: list[DecoderEvent]) -> list[Malformed]:
    return [e for e in events if isinstance(e, Malformed)]
