"""Helpers for the DNP3 tests: frame builders and capture decoding.

``tests.streams.flows`` takes the side on a server port as the server. When both ends
of a connection use port 20000 (common for DNP3) each direction becomes a flow of its
own, so :func:`dnp3_flows` joins such mirrored flows back into one connection.
"""

from __future__ import annotations

from pathlib import Path

from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.dnp3 import Dnp3ConnectionDecoder, crc16
from tests.streams import Flow, flows

PORT = 20000
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
ICSNPP = SHARED / "corpus" / "icsnpp" / "dnp3" / "dnp3_example"
ITI = SHARED / "corpus" / "iti" / "dnp3"


def _crc_bytes(data: bytes) -> bytes:
    return crc16(data).to_bytes(2, "little")


def link_frame(
    user_data: bytes, *, dst: int = 10, src: int = 1, control: int = 0xC4, corrupt: int = -1
) -> bytes:
    """A link frame (1815 §9.2.4.1) around ``user_data``; ``corrupt`` = index of a data
    block whose CRC is spoiled (-2: the header CRC)."""
    head = b"\x05\x64" + bytes([5 + len(user_data), control])
    head += dst.to_bytes(2, "little") + src.to_bytes(2, "little")
    crc = bytearray(_crc_bytes(head))
    if corrupt == -2:
        crc[0] ^= 0xFF
    out = bytearray(head + crc)
    for i in range(0, len(user_data), 16):
        block = user_data[i : i + 16]
        crc = bytearray(_crc_bytes(block))
        if corrupt == i // 16:
            crc[1] ^= 0x5A
        out += block + crc
    return bytes(out)


def segments(fragment: bytes, *, first_seq: int = 0, size: int = 249) -> list[bytes]:
    """Transport segments (1815 §8.2.1) carrying one application fragment."""
    pieces = [fragment[i : i + size] for i in range(0, len(fragment), size)] or [b""]
    out = []
    for n, piece in enumerate(pieces):
        header = (first_seq + n) & 0x3F
        header |= 0x40 if n == 0 else 0
        header |= 0x80 if n == len(pieces) - 1 else 0
        out.append(bytes([header]) + piece)
    return out


def request(
    fc: int, seq: int, objects: bytes = b"", *, master: int = 1, outstation: int = 10
) -> bytes:
    """A whole single-fragment request from master to outstation, as stream bytes."""
    frag = bytes([0xC0 | seq, fc]) + objects
    return b"".join(link_frame(s, dst=outstation, src=master, control=0xC4) for s in segments(frag))


def response(
    fc: int,
    seq: int,
    objects: bytes = b"",
    *,
    iin: int = 0,
    control: int | None = None,
    master: int = 1,
    outstation: int = 10,
    tseq: int = 0,
) -> bytes:
    """A whole single-fragment response from outstation to master, as stream bytes."""
    ac = (0xC0 | seq) if control is None else control
    frag = bytes([ac, fc]) + iin.to_bytes(2, "big") + objects
    return b"".join(
        link_frame(s, dst=master, src=outstation, control=0x44)
        for s in segments(frag, first_seq=tseq)
    )


ENDPOINTS = Endpoints(
    transport="tcp", client_ip="10.0.0.1", client_port=40000, server_ip="10.0.0.2", server_port=PORT
)


def dnp3_flows(pcap: Path) -> list[Flow]:
    """Flows touching port 20000, with mirrored port-20000-to-20000 flows joined."""
    out: list[Flow] = []
    by_key: dict[tuple[str, int, str, int, str], Flow] = {}
    for flow in flows(pcap, {PORT}):
        e = flow.endpoints
        mirror = by_key.get((e.server_ip, e.server_port, e.client_ip, e.client_port, e.transport))
        if e.client_port == PORT and mirror is not None:
            mirror.chunks += [(1 - d, data, n, fr, ts) for d, data, n, fr, ts in flow.chunks]
            mirror.chunks.sort(key=lambda c: c[3])
            continue
        by_key[(e.client_ip, e.client_port, e.server_ip, e.server_port, e.transport)] = flow
        out.append(flow)
    return out


def decode_capture(pcap: Path) -> list[tuple[Endpoints, list[DecoderEvent], Dnp3ConnectionDecoder]]:
    """Every event of every DNP3 connection of a capture, per connection, with the
    decoder (for its counters)."""
    result = []
    for flow in dnp3_flows(pcap):
        dec = Dnp3ConnectionDecoder(flow.endpoints)
        events: list[DecoderEvent] = []
        for d, data, n, frame, ts in flow.chunks:
            if data is None:
                dec.gap(d, n, frame, ts)
            else:
                dec.feed(d, data, frame, ts)
            events += dec.events()
        events += dec.finish()
        result.append((flow.endpoints, events, dec))
    return result


def write_tcp_capture(
    path: Path, payloads: list[tuple[int, bytes]], *, client_port: int = 40000
) -> None:
    """A pcap of one TCP connection (handshake, then one segment per payload; direction 0
    is client to server), for tests that compare with tshark."""
    from otconduit.capture import pcapwriter as pw
    from otconduit.capture.packet import TCP_ACK, TCP_PSH, TCP_SYN

    macs = ("00:00:5e:00:53:01", "00:00:5e:00:53:02")
    ips = (ENDPOINTS.client_ip, ENDPOINTS.server_ip)
    ports = (client_port, PORT)
    seq = [1000, 5000]
    ts = 1_700_000_000_000_000_000
    frames: list[tuple[int, bytes]] = []

    def seg(d: int, flags: int, payload: bytes = b"") -> None:
        nonlocal ts
        o = 1 - d
        frames.append(
            (
                ts,
                pw.build_tcp_ipv4_frame(
                    macs[d],
                    macs[o],
                    ips[d],
                    ips[o],
                    ports[d],
                    ports[o],
                    seq[d],
                    seq[o],
                    flags,
                    payload,
                ),
            )
        )
        seq[d] += len(payload) + (1 if flags & TCP_SYN else 0)
        ts += 1_000_000

    seg(0, TCP_SYN)
    seg(1, TCP_SYN | TCP_ACK)
    seg(0, TCP_ACK)
    for d, payload in payloads:
        seg(d, TCP_PSH | TCP_ACK, payload)
    pw.write_pcap(path, frames)


def confirm(control: int, *, master: int = 1, outstation: int = 10) -> bytes:
    """A master's CONFIRM with application control ``control`` (its SEQ, UNS bits)."""
    frag = bytes([control, 0])
    return b"".join(link_frame(s, dst=outstation, src=master) for s in segments(frag))
