"""Test helper: a capture file as per-connection chunks, for decoder-level tests.

Uses the project's own capture reader, frame decoder and TCP reassembler (tested against
tshark on their own), so protocol tests can feed real captures to a sans-I/O decoder
without the analysis engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from otconduit.capture.decode import DecodeProblem, decode_frame
from otconduit.capture.ipfrag import Defragmenter
from otconduit.capture.packet import IPPROTO_TCP, IPPROTO_UDP, TCP_SYN
from otconduit.capture.reader import open_capture
from otconduit.capture.tcp import StreamData, StreamGap, TcpReassembler
from otconduit.protocols.base import ConnectionDecoder, DecoderEvent, Endpoints


@dataclass
class Flow:
    endpoints: Endpoints
    # (direction, data or None for a gap, nbytes, frame, ts_ns) in delivery order
    chunks: list[tuple[int, bytes | None, int, int, int]] = field(default_factory=list)
    reasm: tuple[TcpReassembler, TcpReassembler] = field(
        default_factory=lambda: (TcpReassembler(), TcpReassembler())
    )


def flows(pcap: Path, server_ports: set[int]) -> list[Flow]:
    """TCP connections and UDP flows that touch ``server_ports``, with their data in the
    order the reassembler released it. The side on a server port is the server."""
    table: dict[tuple[str, str, int, int, str], Flow] = {}
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
                if isinstance(res, DecodeProblem) or res.ip_proto not in (IPPROTO_TCP, IPPROTO_UDP):
                    continue
                pkt = defrag.feed(res)
                if pkt is None:
                    continue
                if pkt.dport in server_ports:
                    d, c, s, cp, sp = 0, pkt.src_ip, pkt.dst_ip, pkt.sport, pkt.dport
                elif pkt.sport in server_ports:
                    d, c, s, cp, sp = 1, pkt.dst_ip, pkt.src_ip, pkt.dport, pkt.sport
                else:
                    continue
                transport = "tcp" if pkt.ip_proto == IPPROTO_TCP else "udp"
                key = (c, s, cp, sp, transport)
                flow = table.get(key)
                if flow is None and (s, c, sp, cp, transport) in table:
                    # Both ends on a server port (DNP3 20000<->20000): one flow, the
                    # side that spoke first is the client.
                    key = (s, c, sp, cp, transport)
                    flow = table[key]
                    d = 1 - d
                if flow is None or (
                    transport == "tcp" and d == 0 and pkt.tcp_flags & TCP_SYN and flow.chunks
                ):
                    flow = Flow(
                        Endpoints(
                            transport=transport,
                            client_ip=c,
                            client_port=cp,
                            server_ip=s,
                            server_port=sp,
                        )
                    )
                    table[key] = flow
                if transport == "udp":
                    flow.chunks.append((d, pkt.payload, len(pkt.payload), pkt.frame, pkt.ts_ns))
                    continue
                for ev in flow.reasm[d].feed(
                    pkt.tcp_seq, pkt.tcp_flags, pkt.payload, pkt.frame, pkt.ts_ns
                ):
                    _add(flow, d, ev)
    for flow in table.values():
        if flow.endpoints.transport == "tcp":
            for d in (0, 1):
                for ev in flow.reasm[d].flush():
                    _add(flow, d, ev)
    return list(table.values())


def _add(flow: Flow, d: int, ev: StreamData | StreamGap) -> None:
    if isinstance(ev, StreamData):
        flow.chunks.append((d, ev.data, len(ev.data), ev.frame, ev.ts_ns))
    else:
        flow.chunks.append((d, None, ev.nbytes, ev.frame, ev.ts_ns))


def decode_flows(
    pcap: Path, server_ports: set[int], factory: Callable[[Endpoints], ConnectionDecoder]
) -> list[DecoderEvent]:
    """Every event a decoder produces over every matching flow of a capture."""
    out: list[DecoderEvent] = []
    for flow in flows(pcap, server_ports):
        dec = factory(flow.endpoints)
        for d, data, n, frame, ts in flow.chunks:
            if data is None:
                dec.gap(d, n, frame, ts)
            else:
                dec.feed(d, data, frame, ts)
            out += dec.events()
        out += dec.finish()
    return out
