"""Industrial protocol sessions for the synthetic benchmark captures (bench/make_capture.py).

Each protocol describes one TCP session as a list of messages: static skeletons built
here from the protocol specifications, plus a vectorised ``patch`` that writes the fields
that differ between sessions and transactions (transaction ids, PDU references,
sequence counts, process values, and the checksums that cover them) into a
(rounds, sessions, length) block of records at once.

- Modbus/TCP: Modbus Messaging on TCP/IP Implementation Guide §3.1.3 (MBAP), Modbus
  Application Protocol V1.1b3 §6.1-6.12.
- S7comm over ISO-on-TCP: RFC 1006 §6 (TPKT), ISO 8073 §13.3/§13.4/§13.7 (COTP CR, CC,
  DT); S7 header, Setup Communication, Read/Write Variable with S7ANY items as the
  Wireshark S7comm dissector documents them.
- EtherNet/IP + CIP: ODVA Vol 2 §2-3 (encapsulation header), §2-4.4 RegisterSession,
  §2-4.7/§2-4.8 SendRRData/SendUnitData, §2-6 common packet format; Vol 1 §3-5.5.2
  Forward Open, §2-4 Message Router request/reply, §A-4.10 Multiple Service Packet;
  Rockwell 1756-PM020 Read Tag (0x4C) / Write Tag (0x4D).
- DNP3 over TCP: IEEE 1815-2012 §9.2.4 (link frames, CRC), §8.2 (transport header),
  §4.2.2 (application header, object headers, confirms); objects from Annex A.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[Any]  # uint64 in practice


@dataclass(frozen=True)
class Msg:
    """One application message of a session: direction, skeleton bytes, what it is."""

    c2s: bool
    app: bytes
    kind: str
    op: int = -1  # the operation it belongs to (-1: session set-up)


@dataclass
class Ctx:
    """Per-block context handed to ``patch``: which session and operation a record is."""

    sess: U64  # (rounds, sessions) unique session number
    s_idx: U64  # (1, sessions) session position in a round
    op: int
    ops: int


# -- vectorised field writers -----------------------------------------------------------
def put16(view: U8, off: int, val: U64) -> None:
    view[..., off] = (val >> 8) & 0xFF
    view[..., off + 1] = val & 0xFF


def put16le(view: U8, off: int, val: U64) -> None:
    view[..., off] = val & 0xFF
    view[..., off + 1] = (val >> 8) & 0xFF


def put32(view: U8, off: int, val: U64) -> None:
    for k in range(4):
        view[..., off + k] = (val >> (24 - 8 * k)) & 0xFF


def put32le(view: U8, off: int, val: U64) -> None:
    for k in range(4):
        view[..., off + k] = (val >> (8 * k)) & 0xFF


def fill(view: U8, off: int, n: int, seed: U64) -> None:
    """``n`` bytes of varying process data derived from ``seed`` (any shape)."""
    k = np.arange(n, dtype=np.uint64)
    view[..., off : off + n] = ((seed[..., None] * 2654435761 + k * 40503) >> 7) & 0xFF


class Protocol:
    name: str
    port: int
    net: int  # client addresses 127.<net>.0.x, servers 127.<net + 1>.0.x

    def opening(self) -> list[Msg]:
        return []

    def operation(self, m: int) -> list[Msg]:
        raise NotImplementedError

    def patch(self, view: U8, msg: Msg, ctx: Ctx) -> None:
        """Write the varying fields of ``msg`` into ``view`` (app bytes start at 0)."""


# -- Modbus/TCP ------------------------------------------------------------------------
MB_PATTERN = (3, 3, 16, 3, 1, 3, 3, 6, 3, 16, 3, 3, 1, 3, 16, 3) * 2
MB_REGS = 10
MB_WRITE = 4


class Modbus(Protocol):
    """HMI-style polling: FC3 x10 registers mostly, FC16 writes, some FC1 and FC6."""

    name = "modbus"
    port = 502
    net = 1

    @staticmethod
    def _pdu(fc: int, request: bool) -> bytes:
        if fc == 3:
            return (
                struct.pack(">BHH", 3, 0, MB_REGS)
                if request
                else bytes([3, 2 * MB_REGS]) + bytes(2 * MB_REGS)
            )
        if fc == 16:
            if request:
                return struct.pack(">BHHB", 16, 0, MB_WRITE, 2 * MB_WRITE) + bytes(2 * MB_WRITE)
            return struct.pack(">BHH", 16, 0, MB_WRITE)
        if fc == 1:
            return struct.pack(">BHH", 1, 0, 16) if request else bytes([1, 2, 0, 0])
        if fc == 6:
            return struct.pack(">BHH", 6, 0, 0)
        raise ValueError(fc)

    def operation(self, m: int) -> list[Msg]:
        fc = MB_PATTERN[m % len(MB_PATTERN)]
        out = []
        for c2s in (True, False):
            pdu = self._pdu(fc, c2s)
            adu = struct.pack(">HHHB", 0, 0, len(pdu) + 1, 0) + pdu
            out.append(Msg(c2s, adu, f"fc{fc}", m))
        return out

    def patch(self, view: U8, msg: Msg, ctx: Ctx) -> None:
        m = np.uint64(msg.op)
        tid = (ctx.sess * ctx.ops + m + 1) & 0xFFFF
        put16(view, 0, tid)
        srv = ctx.s_idx % 4
        view[..., 6] = np.broadcast_to(srv * 16 + 1, tid.shape)  # unit 1, 17, 33, 49
        body = 7
        fc = int(msg.kind[2:])
        addr = (m * 10 + ctx.s_idx * 3 + ctx.sess) % 1000
        if fc == 3 and not msg.c2s:
            regs = (tid[..., None] * 7 + np.arange(MB_REGS, dtype=np.uint64) * 13) & 0xFFFF
            view[..., body + 2 : body + 2 + 2 * MB_REGS : 2] = regs >> 8
            view[..., body + 3 : body + 3 + 2 * MB_REGS : 2] = regs & 0xFF
            return
        if fc == 1 and not msg.c2s:
            view[..., body + 2] = tid & 0xFF
            view[..., body + 3] = (tid >> 8) & 0xFF
            return
        put16(view, body + 1, np.broadcast_to(addr, tid.shape))
        if fc == 16 and msg.c2s:
            vals = (tid[..., None] + np.arange(MB_WRITE, dtype=np.uint64) * 1000) & 0xFFFF
            view[..., body + 6 : body + 6 + 2 * MB_WRITE : 2] = vals >> 8
            view[..., body + 7 : body + 7 + 2 * MB_WRITE : 2] = vals & 0xFF
        elif fc == 6:
            put16(view, body + 3, tid ^ 0x5A5A)


# -- S7comm ----------------------------------------------------------------------------
def _tpkt_dt(s7: bytes) -> bytes:
    """TPKT (RFC 1006) + COTP DT class 0 with EOT (ISO 8073 §13.7) around one S7 PDU."""
    return struct.pack(">BBH", 3, 0, 7 + len(s7)) + b"\x02\xf0\x80" + s7


def _s7(rosctr: int, param: bytes, data: bytes = b"", ack: bool = False) -> bytes:
    head = struct.pack(">BBHHHH", 0x32, rosctr, 0, 0, len(param), len(data))
    return head + (b"\x00\x00" if ack else b"") + param + data


def _any_item(db: int, start: int, length: int, ts: int = 2, area: int = 0x84) -> bytes:
    """S7ANY address item: spec 0x12, length 10, syntax 0x10, transport size, count,
    DB number, area, 3-byte bit address."""
    addr = start << 3
    return struct.pack(">BBBBHHB", 0x12, 10, 0x10, ts, length, db, area) + addr.to_bytes(3, "big")


S7_READS = ((1, 0, 10), (2, 4, 4))  # (DB, start, bytes) of the items an HMI polls
S7_WRITE = (3, 8, 2)
S7_PATTERN = "rrrrwrrr"


class S7(Protocol):
    """An HMI on a PLC: COTP connect, Setup Communication, then Read Var of two DB
    items, with a Write Var now and then; one job in flight at a time."""

    name = "s7comm"
    port = 102
    net = 3

    def opening(self) -> list[Msg]:
        cr = b"\xe0\x00\x00\x00\x01\x00" + b"\xc1\x02\x01\x00\xc2\x02\x01\x02\xc0\x01\x0a"
        cc = b"\xd0\x00\x01\x00\x44\x00" + b"\xc0\x01\x0a\xc1\x02\x01\x00\xc2\x02\x01\x02"
        setup = b"\xf0\x00" + struct.pack(">HHH", 1, 1, 480)
        setup_ack = b"\xf0\x00" + struct.pack(">HHH", 1, 1, 240)
        return [
            Msg(True, struct.pack(">BBHB", 3, 0, 5 + len(cr), len(cr)) + cr, "cr"),
            Msg(False, struct.pack(">BBHB", 3, 0, 5 + len(cc), len(cc)) + cc, "cc"),
            Msg(True, _tpkt_dt(_s7(1, setup)), "setup"),
            Msg(False, _tpkt_dt(_s7(3, setup_ack, ack=True)), "setup"),
        ]

    def operation(self, m: int) -> list[Msg]:
        if S7_PATTERN[m % len(S7_PATTERN)] == "w":
            db, start, n = S7_WRITE
            item = _any_item(db, start, n)
            req = _s7(1, b"\x05\x01" + item, b"\x00\x04" + struct.pack(">H", 8 * n) + bytes(n))
            rsp = _s7(3, b"\x05\x01", b"\xff", ack=True)
            return [Msg(True, _tpkt_dt(req), "write", m), Msg(False, _tpkt_dt(rsp), "wack", m)]
        items = b"".join(_any_item(db, start, n) for db, start, n in S7_READS)
        req = _s7(1, bytes([4, len(S7_READS)]) + items)
        data = b""
        for k, (_, _, n) in enumerate(S7_READS):
            data += b"\xff\x04" + struct.pack(">H", 8 * n) + bytes(n)
            if n % 2 and k < len(S7_READS) - 1:
                data += b"\x00"
        rsp = _s7(3, bytes([4, len(S7_READS)]), data, ack=True)
        return [Msg(True, _tpkt_dt(req), "read", m), Msg(False, _tpkt_dt(rsp), "rack", m)]

    def patch(self, view: U8, msg: Msg, ctx: Ctx) -> None:
        pdu = 7  # TPKT + COTP DT
        if msg.kind == "setup":
            put16(view, pdu + 4, np.broadcast_to(np.uint64(0xFFFF), ctx.sess.shape))
            return
        if msg.op < 0:
            return
        ref = (ctx.sess * ctx.ops + np.uint64(msg.op) + 1) & 0xFFFF
        put16(view, pdu + 4, ref)
        if msg.kind == "rack":
            at = pdu + 12 + 2 + 4  # header, parameter, first data item header
            for k, (_, _, n) in enumerate(S7_READS):
                fill(view, at, n, ref * 8 + np.uint64(k))
                at += n + 4 + (n % 2 if k < len(S7_READS) - 1 else 0)
        elif msg.kind == "write":
            fill(view, pdu + 10 + 14 + 4, S7_WRITE[2], ref)


# -- EtherNet/IP + CIP -----------------------------------------------------------------
def _encap(command: int, body: bytes, context: bytes = bytes(8)) -> bytes:
    """Encapsulation header (Vol 2 §2-3.1): command, length, session, status, sender
    context, options; all little-endian."""
    return struct.pack("<HHII8sI", command, len(body), 0, 0, context, 0) + body


def _cpf(*items: tuple[int, bytes]) -> bytes:
    out = struct.pack("<H", len(items))
    for type_id, data in items:
        out += struct.pack("<HH", type_id, len(data)) + data
    return out


def _symbol(tag: str) -> bytes:
    """ANSI extended symbolic segment (PM020): 0x91, length, name, pad to a word."""
    raw = tag.encode()
    return bytes([0x91, len(raw)]) + raw + (b"\x00" if len(raw) % 2 else b"")


def _read_tag(tag: str, elements: int = 1) -> bytes:
    path = _symbol(tag)
    return bytes([0x4C, len(path) // 2]) + path + struct.pack("<H", elements)


ENIP_TAGS = ("Line1_Speed", "Tank_Level", "Motor_Current")
ENIP_PATTERN = "rrmrrrwm"
ENIP_OT_BASE = 0x10000000
ENIP_TO_BASE = 0x20000000
_DINT = 0xC4


class Enip(Protocol):
    """A Logix client: RegisterSession, Forward Open (class 3), then connected
    SendUnitData: Read Tag, Multiple Service Packets of Read Tags, some Write Tags."""

    name = "enip"
    port = 44818
    net = 5

    def opening(self) -> list[Msg]:
        reg = _encap(0x65, b"\x01\x00\x00\x00")
        fo = struct.pack(
            "<BBIIHHIB3xIHIHB",
            0x0A,  # priority/time tick
            0x0E,  # timeout ticks
            0,  # O->T connection id: the target chooses
            0,  # T->O connection id (patched)
            0x1234,  # connection serial
            0x004D,  # originator vendor
            0x00C0FFEE,  # originator serial
            1,  # timeout multiplier
            500_000,  # O->T RPI (us)
            0x43F4,  # O->T parameters: point to point, 500 bytes
            500_000,  # T->O RPI
            0x43F4,
            0xA3,  # transport class 3, application trigger, server
        ) + bytes([2, 0x20, 0x02, 0x24, 0x01])  # path to the Message Router
        fo_req = bytes([0x54, 2, 0x20, 0x06, 0x24, 0x01]) + fo
        fo_rsp = bytes([0xD4, 0, 0, 0]) + struct.pack(
            "<IIHHIIIBB", 0, 0, 0x1234, 0x004D, 0x00C0FFEE, 500_000, 500_000, 0, 0
        )
        rr = b"\x00\x00\x00\x00\x00\x00"  # interface handle, timeout
        return [
            Msg(True, reg, "reg"),
            Msg(False, reg, "reg"),
            Msg(True, _encap(0x6F, rr + _cpf((0, b""), (0xB2, fo_req))), "fo"),
            Msg(False, _encap(0x6F, rr + _cpf((0, b""), (0xB2, fo_rsp))), "fo_rsp"),
        ]

    @staticmethod
    def _unit(cip: bytes) -> bytes:
        body = b"\x00\x00\x00\x00\x00\x00" + _cpf((0xA1, bytes(4)), (0xB1, bytes(2) + cip))
        return _encap(0x70, body)

    def operation(self, m: int) -> list[Msg]:
        kind = ENIP_PATTERN[m % len(ENIP_PATTERN)]
        tag = ENIP_TAGS[m % len(ENIP_TAGS)]
        value = bytes([0xCC, 0, 0, 0]) + struct.pack("<H", _DINT) + bytes(4)
        if kind == "r":
            req, rsp = _read_tag(tag), value
        elif kind == "w":
            path = _symbol("Setpoint")
            req = bytes([0x4D, len(path) // 2]) + path + struct.pack("<HHi", _DINT, 1, 1500)
            rsp = bytes([0xCD, 0, 0, 0])
        else:
            parts = [_read_tag(t) for t in ENIP_TAGS]
            replies = [value] * len(ENIP_TAGS)
            req = bytes([0x0A, 2, 0x20, 0x02, 0x24, 0x01]) + _msp(parts)
            rsp = bytes([0x8A, 0, 0, 0]) + _msp(replies)
        return [Msg(True, self._unit(req), f"{kind}_req", m), Msg(False, self._unit(rsp), kind, m)]

    def patch(self, view: U8, msg: Msg, ctx: Ctx) -> None:
        session = (ctx.sess * 2654435761 + 0x1000) & 0xFFFFFFFF
        if msg.kind != "reg" or not msg.c2s:
            put32le(view, 4, session)
        ot = ENIP_OT_BASE + ctx.sess
        to = ENIP_TO_BASE + ctx.sess
        if msg.kind in ("fo", "fo_rsp"):
            put32le(view, 12, ctx.sess)  # sender context
            cip = 24 + 6 + 2 + 4 + 4
            if msg.kind == "fo":
                put32le(view, cip + 6 + 2 + 4, to)
            else:
                put32le(view, cip + 4, ot)
                put32le(view, cip + 8, to)
            return
        if msg.op < 0:
            return
        seq = (np.uint64(msg.op) + 2) & 0xFFFF
        put32le(view, 24 + 6 + 2 + 4, ot if msg.c2s else to)
        put16le(view, 24 + 6 + 2 + 8 + 4, np.broadcast_to(seq, ctx.sess.shape))
        cip = 24 + 6 + 2 + 8 + 4 + 2
        seed = ctx.sess * 131 + np.uint64(msg.op)
        if msg.kind == "r":
            fill(view, cip + 6, 4, seed)
        elif msg.kind == "m":
            n = len(ENIP_TAGS)
            first = cip + 4 + 2 + 2 * n
            for k in range(n):
                fill(view, first + 10 * k + 6, 4, seed * 4 + np.uint64(k))


def _msp(parts: list[bytes]) -> bytes:
    """Multiple Service Packet body (Vol 1 §A-4.10): count, offsets from the count, parts."""
    offsets, at = [], 2 + 2 * len(parts)
    for p in parts:
        offsets.append(at)
        at += len(p)
    return struct.pack(f"<H{len(parts)}H", len(parts), *offsets) + b"".join(parts)


# -- DNP3 ------------------------------------------------------------------------------
def _crc_table() -> npt.NDArray[np.uint64]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
        table.append(crc)
    return np.array(table, dtype=np.uint64)


CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """DNP3 CRC (1815 §9.2.4): reflected 0x3D65, initial 0, complemented."""
    crc = 0
    for b in data:
        crc = (crc >> 8) ^ int(CRC_TABLE[(crc ^ b) & 0xFF])
    return crc ^ 0xFFFF


def _link(control: int, dst: int, src: int, user: bytes) -> bytes:
    """One link frame: header with CRC, user data in 16-octet blocks each with a CRC."""
    head = struct.pack("<BBBBHH", 0x05, 0x64, 5 + len(user), control, dst, src)
    out = head + struct.pack("<H", crc16(head))
    for at in range(0, len(user), 16):
        block = user[at : at + 16]
        out += block + struct.pack("<H", crc16(block))
    return out


def _frames(control: int, dst: int, src: int, fragment: bytes, tseq: int) -> tuple[bytes, int]:
    """A fragment split into transport segments of up to 249 octets, one frame each."""
    out = b""
    chunks = [fragment[at : at + 249] for at in range(0, len(fragment), 249)]
    for k, chunk in enumerate(chunks):
        th = (0x80 if k == len(chunks) - 1 else 0) | (0x40 if k == 0 else 0) | (tseq & 0x3F)
        out += _link(control, dst, src, bytes([th]) + chunk)
        tseq += 1
    return out, tseq


DNP3_MASTER = 1
DNP3_OUTSTATION = 10
DNP3_PATTERN = "ceeeceee"  # class 0 integrity polls and event polls


class Dnp3(Protocol):
    """A master polling an outstation: integrity (class 0) polls answered in two link
    frames, and event polls (class 1-3) answered with analog events and a confirm."""

    name = "dnp3"
    port = 20000
    net = 7

    def __init__(self) -> None:
        self._tseq = [0, 0]  # transport sequence per direction, following the layout

    def opening(self) -> list[Msg]:
        self._tseq = [0, 0]
        return []

    def _msg(self, c2s: bool, fragment: bytes, kind: str, m: int) -> Msg:
        d = 0 if c2s else 1
        control = 0xC4 if c2s else 0x44  # DIR (from master), PRM, unconfirmed user data
        dst, src = (DNP3_OUTSTATION, DNP3_MASTER) if c2s else (DNP3_MASTER, DNP3_OUTSTATION)
        raw, self._tseq[d] = _frames(control, dst, src, fragment, self._tseq[d])
        return Msg(c2s, raw, kind, m)

    def operation(self, m: int) -> list[Msg]:
        seq = m & 0x0F
        if DNP3_PATTERN[m % len(DNP3_PATTERN)] == "c":
            req = bytes([0xC0 | seq, 0x01]) + b"\x3c\x01\x06"
            objs = (
                b"\x01\x02\x00\x00\x1f"
                + b"\x01" * 32  # g1v2 binary inputs 0-31, online
                + b"\x1e\x01\x00\x00\x27"
                + b"\x01\x00\x00\x00\x00" * 40  # g30v1 0-39
                + b"\x14\x01\x00\x00\x07"
                + b"\x01\x00\x00\x00\x00" * 8  # g20v1 0-7
            )
            rsp = bytes([0xC0 | seq, 0x81, 0, 0]) + objs
            return [self._msg(True, req, "int_req", m), self._msg(False, rsp, "int", m)]
        req = bytes([0xC0 | seq, 0x01]) + b"\x3c\x02\x06\x3c\x03\x06\x3c\x04\x06"
        events = b"\x03\x01" + bytes(4) + b"\x05\x01" + bytes(4)  # index, flags, value
        rsp = bytes([0xE0 | seq, 0x81, 0, 0]) + b"\x20\x01\x17\x02" + events  # g32v1, CON
        confirm = bytes([0xC0 | seq, 0x00])
        return [
            self._msg(True, req, "ev_req", m),
            self._msg(False, rsp, "ev", m),
            self._msg(True, confirm, "confirm", m),
        ]

    def patch(self, view: U8, msg: Msg, ctx: Ctx) -> None:
        seed = ctx.sess * 977 + np.uint64(max(msg.op, 0))
        if msg.kind == "int":
            for k in range(40):  # the analog inputs' values (after each one's flags)
                fill(view, _wire(4 + 5 + 32 + 5 + 5 * k + 1), 1, seed * 64 + np.uint64(k))
                fill(view, _wire(4 + 5 + 32 + 5 + 5 * k + 2), 1, seed * 32 + np.uint64(k))
            _fix_crcs(view, len(msg.app))
        elif msg.kind == "ev":
            for f in (10, 11, 16, 17):
                fill(view, _wire(f), 1, seed * 8 + np.uint64(f))
            _fix_crcs(view, len(msg.app))


def _wire(f: int) -> int:
    """Wire offset of octet ``f`` of a fragment sent in frames of 249 fragment octets
    (each frame: 10-octet header, transport octet, blocks of 16 with a CRC each)."""
    k, u = divmod(f, 249)
    u += 1
    return 292 * k + 10 + u + 2 * (u // 16)


def _fix_crcs(view: U8, total: int) -> None:
    """Recompute every data-block CRC of the frames in ``view[..., :total]``."""
    at = 0
    while at < total:
        length = int(view.reshape(-1, view.shape[-1])[0, at + 2])
        user = length - 5
        end = at + 10 + user + 2 * (-(-user // 16))
        block = at + 10
        while block < end:
            stop = min(block + 16, end - 2)
            crc = np.zeros(view.shape[:-1], dtype=np.uint64)
            for b in range(block, stop):
                crc = (crc >> 8) ^ CRC_TABLE[(crc ^ view[..., b]) & 0xFF]
            put16le(view, stop, crc ^ 0xFFFF)
            block = stop + 2
        at = end


PROTOCOLS: dict[str, type[Protocol]] = {
    "modbus": Modbus,
    "s7comm": S7,
    "enip": Enip,
    "dnp3": Dnp3,
}
