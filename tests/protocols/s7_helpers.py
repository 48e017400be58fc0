"""Hand-built TPKT / COTP / S7comm PDUs for the S7 tests.

Every builder writes the field layout it cites, independently of the decoder:
TPKT RFC 1006 §6, COTP ISO 8073 §13, S7comm after the Wireshark S7comm dissector
documentation (WS), S7comm-plus after the Wireshark S7comm-plus plugin (WSP).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from otconduit.protocols.base import CLIENT_TO_SERVER, SERVER_TO_CLIENT, DecoderEvent, Endpoints
from otconduit.protocols.s7 import S7Decoder

ENDPOINTS = Endpoints(
    transport="tcp", client_ip="10.0.0.1", client_port=40000, server_ip="10.0.0.2", server_port=102
)
C2S, S2C = CLIENT_TO_SERVER, SERVER_TO_CLIENT


# --- TPKT / COTP ---------------------------------------------------------------------------


def tpkt(tpdu: bytes) -> bytes:
    """RFC 1006 §6: version 3, reserved 0, length (2) including these 4 bytes."""
    return struct.pack(">BBH", 3, 0, 4 + len(tpdu)) + tpdu


def dt(user_data: bytes, *, eot: bool = True, nr: int = 0) -> bytes:
    """A TPKT-framed COTP DT, class 0 (ISO 8073 §13.7): LI=2, 0xF0, EOT|TPDU-NR."""
    return tpkt(bytes([2, 0xF0, (0x80 if eot else 0) | nr]) + user_data)


def segmented(user_data: bytes, size: int) -> bytes:
    """One TSDU split into DTs of ``size`` user-data bytes; only the last has EOT."""
    parts = [user_data[i : i + size] for i in range(0, len(user_data), size)] or [b""]
    return b"".join(dt(p, eot=i == len(parts) - 1, nr=i) for i, p in enumerate(parts))


def cr(
    calling: bytes = b"\x01\x00", called: bytes = b"\x01\x02", *, code: int = 0xE0, src_ref: int = 1
) -> bytes:
    """COTP CR/CC (ISO 8073 §13.3/13.4): LI, code, dst-ref (2), src-ref (2), class (1),
    parameters 0xC0 TPDU size (1 byte exponent), 0xC1 calling TSAP, 0xC2 called TSAP."""
    params = bytes([0xC0, 1, 0x0A, 0xC1, len(calling)]) + calling + bytes([0xC2, len(called)])
    params += called
    fixed = bytes([code]) + struct.pack(">HHB", 0, src_ref, 0)
    return tpkt(bytes([len(fixed) + len(params)]) + fixed + params)


def cc(calling: bytes = b"\x01\x00", called: bytes = b"\x01\x02") -> bytes:
    return cr(calling, called, code=0xD0, src_ref=2)


def dr(reason: int = 0x80) -> bytes:
    """COTP DR (ISO 8073 §13.5): LI=6, 0x80, dst-ref, src-ref, reason."""
    return tpkt(bytes([6, 0x80, 0, 1, 0, 2, reason]))


# --- S7comm --------------------------------------------------------------------------------


def s7(
    rosctr: int, ref: int, param: bytes, data: bytes = b"", *, error: int | None = None
) -> bytes:
    """S7 header (WS): 0x32, ROSCTR, redundancy id (2), PDU ref (2), param length (2),
    data length (2), and for Ack/Ack-Data error class (1) + error code (1)."""
    head = struct.pack(">BBHHHH", 0x32, rosctr, 0, ref, len(param), len(data))
    if rosctr in (2, 3):
        head += struct.pack(">H", error or 0)
    return head + param + data


def job(ref: int, param: bytes, data: bytes = b"") -> bytes:
    return dt(s7(1, ref, param, data))


def ack_data(ref: int, param: bytes, data: bytes = b"", *, error: int = 0) -> bytes:
    return dt(s7(3, ref, param, data, error=error))


def ack(ref: int, *, error: int = 0) -> bytes:
    return dt(s7(2, ref, b"", error=error))


def setup_param(pdu: int = 480, amq: int = 1) -> bytes:
    """Setup communication (WS): 0xF0, reserved, max AmQ calling, called, PDU length."""
    return struct.pack(">BBHHH", 0xF0, 0, amq, amq, pdu)


def any_item(
    area: int, db: int, byte: int, bit: int = 0, *, size: int = 2, count: int = 1
) -> bytes:
    """S7ANY item (WS): 0x12, 10, syntax 0x10, transport size, length (2), DB (2), area,
    address (3) = byte << 3 | bit."""
    addr = (byte << 3) | bit
    return bytes([0x12, 10, 0x10, size]) + struct.pack(">HHB", count, db, area) + addr.to_bytes(3)


def var_param(func: int, items: Sequence[bytes]) -> bytes:
    """Read (0x04) / write (0x05) variable request parameter: function, count, items."""
    return bytes([func, len(items)]) + b"".join(items)


def data_item(value: bytes, *, rc: int = 0xFF, size: int = 0x04, last: bool = True) -> bytes:
    """Data item (WS): return code, transport size, length (bits for sizes 3/4/5, else
    bytes), data, and a fill byte after odd-length data that is not last."""
    length = len(value) * 8 if size in (0x04, 0x05) else len(value)
    if size == 0x03:
        length = 1
    out = bytes([rc, size]) + struct.pack(">H", length) + value
    return out + (b"\x00" if len(value) % 2 and not last else b"")


def block_job_param(
    func: int, filename: bytes = b"", *, session: int = 0, tail: bytes = b""
) -> bytes:
    """Upload/download jobs (ICSNPP s7comm-protocol.pac): function, status, reserved (2),
    upload id (4), then file name length + name when it names a block."""
    out = bytes([func, 0, 0, 0]) + struct.pack(">I", session)
    if filename:
        out += bytes([len(filename)]) + filename
    return out + tail


def pi_param(service: bytes, block: bytes = b"") -> bytes:
    """PI service 0x28 (ICSNPP ROSCTR_Job_PLC_Control): 7 reserved bytes (WS shows
    00 00 00 00 00 00 FD), block length (2), block, name length (1), name."""
    return (
        bytes([0x28, 0, 0, 0, 0, 0, 0, 0xFD])
        + struct.pack(">H", len(block))
        + block
        + (bytes([len(service)]) + service)
    )


def plc_stop_param() -> bytes:
    """PLC stop 0x29 (WS): 5 reserved bytes, name length, "P_PROGRAM"."""
    return bytes([0x29, 0, 0, 0, 0, 0, 9]) + b"P_PROGRAM"


def userdata(
    ref: int,
    group: int,
    sub: int,
    *,
    type_: int = 4,
    seq: int = 0,
    body: bytes | None = None,
    rc: int = 0xFF,
    last: int | None = None,
    error: int = 0,
) -> bytes:
    """Userdata PDU (WS): parameter head 00 01 12, length (4 or 8), method (0x11
    request / 0x12 response), type << 4 | group, subfunction, sequence number, and in
    the 8-byte form data unit ref, last data unit (0 = last), error code (2). Data:
    return code, transport size 0x09, length (2), body; or 0x0A 00 0000 without a body."""
    long_form = last is not None or type_ == 8
    param = bytes([0, 1, 0x12, 8 if long_form else 4, 0x12 if long_form else 0x11])
    param += bytes([(type_ << 4) | group, sub, seq])
    if long_form:
        param += bytes([0, last or 0]) + struct.pack(">H", error)
    data = (
        bytes([0x0A, 0, 0, 0])
        if body is None
        else bytes([rc, 0x09]) + struct.pack(">H", len(body)) + body
    )
    return dt(s7(7, ref, param, data))


def szl_body(szl_id: int, index: int, records: Sequence[bytes]) -> bytes:
    """Read SZL list (Siemens SFC manual §33.2): id, index, LENTHDR, N_DR, records."""
    size = len(records[0]) if records else 0
    return struct.pack(">HHHH", szl_id, index, size, len(records)) + b"".join(records)


def szl_0011_records() -> list[bytes]:
    """SZL 0x0011 records (§33.5): index, MlfB (20), BGTyp, Ausbg1, Ausbg2."""

    def rec(index: int, mlfb: bytes, a1: int, a2: int) -> bytes:
        return struct.pack(">H", index) + mlfb.ljust(20) + struct.pack(">HHH", 0xC0, a1, a2)

    return [
        rec(1, b"6ES7 315-2EH14-0AB0", 0x0003, 0x0001),
        rec(6, b"6ES7 315-2EH14-0AB0", 0x0003, 0x0001),
        rec(7, b"", 0x5603, 0x0206),  # "V" 3 . 2 . 6
    ]


def szl_001c_records(names: dict[int, bytes]) -> list[bytes]:
    """SZL 0x001C records (§33.11): index, 32-byte NUL-padded text."""
    return [struct.pack(">H", i) + text.ljust(32, b"\x00") for i, text in names.items()]


def plus_pdu(
    opcode: int, function: int, seq: int, *, version: int = 2, session: int = 0x3BE
) -> bytes:
    """S7comm-plus (WSP): 0x72, version, data length (2); data: opcode, reserved (2),
    function (2), reserved (2), sequence (2), [request: session id (4), flags (1)],
    payload; trailer 0x72, version, 0x0000."""
    data = bytes([opcode, 0, 0]) + struct.pack(">HHH", function, 0, seq)
    data += struct.pack(">IB", session, 0x34) if opcode == 0x31 else b"\x34"
    data += b"\x00\x00\x00\x00"
    return dt(bytes([0x72, version]) + struct.pack(">H", len(data)) + data + b"\x72\x02\x00\x00")


# --- running a decoder ---------------------------------------------------------------------


Chunk = tuple[int, bytes]  # (direction, stream bytes)


def conversation(*steps: Chunk) -> list[Chunk]:
    return list(steps)


def run(steps: Iterable[Chunk], *, split: int | None = None, **kwargs: int) -> list[DecoderEvent]:
    """Feed (direction, bytes) steps, one frame each (or ``split``-byte chunks of it)."""
    dec = S7Decoder(ENDPOINTS, **kwargs)
    out: list[DecoderEvent] = []
    for frame, (direction, data) in enumerate(steps, start=1):
        chunks = (
            [data] if split is None else [data[i : i + split] for i in range(0, len(data), split)]
        )
        for chunk in chunks:
            dec.feed(direction, chunk, frame, frame * 1_000_000)
            out += dec.events()
    return out + dec.finish()
