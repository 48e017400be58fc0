"""Helpers for the PROFINET tests: the corpus, every frame of a capture decoded to its
layer-2 payload or UDP datagram, and encoders for DCP, RTA and DCE/RPC PDUs written from
IEC 61158-6-10 and C706 independently of the decoder."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from otconduit.capture.decode import DecodeProblem, decode_frame
from otconduit.capture.ipfrag import Defragmenter
from otconduit.capture.packet import IPPROTO_UDP
from otconduit.capture.reader import open_capture
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.profinet import ProfinetDecoder
from otconduit.protocols.profinet.rpc import looks_like_rpc

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
ICSNPP = CORPUS / "icsnpp" / "profinet"
ICSNPP_CASES = sorted(p for p in ICSNPP.glob("*") if p.is_dir()) if ICSNPP.is_dir() else []
CAPTURES = (
    sorted([*ICSNPP.glob("*/*.pcap*"), *(CORPUS / "iti" / "profinet").glob("*/*.pcap*")])
    if CORPUS.is_dir()
    else []
)

ETHERTYPE = 0x8892
DEVICE_IF = uuid.UUID("dea00001-6c97-11d1-8271-00a02442df7d")
CONTROLLER_IF = uuid.UUID("dea00002-6c97-11d1-8271-00a02442df7d")


@dataclass(frozen=True)
class L2:
    frame: int
    ts_ns: int
    ethertype: int
    src_mac: str
    dst_mac: str
    payload: bytes
    vlan: int | None


@dataclass(frozen=True)
class Datagram:
    frame: int
    ts_ns: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    payload: bytes


def packets(pcap: Path) -> Iterator[L2 | Datagram]:
    """Non-IP frames and UDP datagrams of a capture, in capture order."""
    defrag = Defragmenter()
    with open_capture(pcap) as reader:
        for block in reader:
            for i in range(len(block.offsets)):
                off, cap = int(block.offsets[i]), int(block.caplens[i])
                res = decode_frame(
                    block.buf[off : off + cap].tobytes(),
                    int(block.linktypes[i]),
                    block.first_frame + i,
                    int(block.ts_ns[i]),
                    int(block.wirelens[i]),
                )
                if isinstance(res, DecodeProblem):
                    continue
                if res.ip_version == 0:
                    yield L2(
                        res.frame,
                        res.ts_ns,
                        res.ethertype,
                        res.src_mac or "",
                        res.dst_mac or "",
                        res.payload,
                        res.vlan,
                    )
                    continue
                if res.ip_proto != IPPROTO_UDP:
                    continue
                pkt = defrag.feed(res)
                if pkt is None:
                    continue
                yield Datagram(
                    pkt.frame, pkt.ts_ns, pkt.src_ip, pkt.sport, pkt.dst_ip, pkt.dport, pkt.payload
                )


def decode_capture(pcap: Path) -> tuple[ProfinetDecoder, list[DecoderEvent]]:
    """Every PROFINET frame and every DCE/RPC datagram of a capture through one decoder."""
    dec = ProfinetDecoder()
    events: list[DecoderEvent] = []
    for p in packets(pcap):
        if isinstance(p, L2):
            dec.feed_frame(p.ethertype, p.src_mac, p.dst_mac, p.payload, p.frame, p.ts_ns, p.vlan)
        elif looks_like_rpc(p.payload):
            dec.feed_datagram(
                p.src_ip, p.src_port, p.dst_ip, p.dst_port, p.payload, p.frame, p.ts_ns
            )
        events += dec.events()
    return dec, events + dec.finish()


# -- encoders (IEC 61158-6-10; C706 chapter 12) ----------------------------------------------
def dcp_pdu(
    frame_id: int, service: int, stype: int, xid: int, blocks: bytes, delay: int = 0
) -> bytes:
    """FrameID, then the DCP header and blocks; padded as on the wire to 46 bytes."""
    pdu = struct.pack(">HBBIHH", frame_id, service, stype, xid, delay, len(blocks)) + blocks
    return pdu + bytes(max(0, 46 - len(pdu)))


def dcp_block(option: int, sub: int, data: bytes, info: int | None = 0) -> bytes:
    """A block with BlockInfo/BlockQualifier (``info``) or without (None), padded even."""
    head = b"" if info is None else struct.pack(">H", info)
    body = head + data
    out = struct.pack(">BBH", option, sub, len(body)) + body
    return out + (b"\x00" if len(body) % 2 else b"")


def ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def rta(
    frame_id: int,
    pdu_type: int,
    sdu: bytes = b"",
    send_seq: int = 0,
    ack_seq: int = 0xFFFE,
) -> bytes:
    head = struct.pack(">HHHBBHHH", frame_id, 1, 2, 0x10 | pdu_type, 1, send_seq, ack_seq, len(sdu))
    pdu = head + sdu
    return pdu + bytes(max(0, 46 - len(pdu)))


def alarm_notification(
    alarm_type: int, seq: int, *, high: bool = False, slot: int = 1, subslot: int = 1
) -> bytes:
    body = struct.pack(">HIHHIIH", alarm_type, 0, slot, subslot, 0x10, 0x20, seq)
    return struct.pack(">HHBB", 1 if high else 2, 2 + len(body), 1, 0) + body


def alarm_ack(alarm_type: int, seq: int, status: bytes = bytes(4), *, high: bool = False) -> bytes:
    body = struct.pack(">HIHHH", alarm_type, 0, 1, 1, seq) + status
    return struct.pack(">HHBB", 0x8001 if high else 0x8002, 2 + len(body), 1, 0) + body


def pnio_block(btype: int, body: bytes) -> bytes:
    return struct.pack(">HHBB", btype, 2 + len(body), 1, 0) + body


def rpc_datagram(
    ptype: int,
    opnum: int,
    activity: uuid.UUID,
    seq: int,
    body: bytes,
    *,
    little: bool = False,
    interface: uuid.UUID = DEVICE_IF,
    obj: uuid.UUID | None = None,
    flags1: int = 0x20,
    fragment: int = 0,
) -> bytes:
    order = "<" if little else ">"
    obj = obj or uuid.UUID("dea00000-6c97-11d1-8271-000100030042")

    def u(v: uuid.UUID) -> bytes:
        return v.bytes_le if little else v.bytes

    head = bytes([4, ptype, flags1, 0, 0x10 if little else 0, 0, 0, 0])
    head += u(obj) + u(interface) + u(activity)
    head += struct.pack(order + "IIIHHHHH", 0, 1, seq, opnum, 0xFFFF, 0xFFFF, len(body), fragment)
    return head + b"\x00\x00" + body


def ndr_request(args: bytes, *, little: bool = False) -> bytes:
    order = "<" if little else ">"
    return struct.pack(order + "5I", 0x1000, len(args), 0x1000, 0, len(args)) + args


def ndr_response(args: bytes, status: bytes = bytes(4), *, little: bool = False) -> bytes:
    order = "<" if little else ">"
    st = status[::-1] if little else status
    return st + struct.pack(order + "4I", len(args), 0x1000, 0, len(args)) + args


def record_header(btype: int, index: int, length: int, ar: uuid.UUID, seq: int = 0) -> bytes:
    """IODRead/WriteReqHeader or Res header (64 bytes with the block header)."""
    body = struct.pack(">H", seq) + ar.bytes + struct.pack(">IHHHHI", 0, 1, 1, 0, index, length)
    body += bytes(24)
    return pnio_block(btype, body)
