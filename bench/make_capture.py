"""Generate large synthetic industrial captures for throughput benchmarks.

Writing millions of packets one at a time in Python takes minutes, so frames are built with
numpy: every session (one TCP connection from handshake to FIN) of a protocol has the same
packet layout, so position ``j`` of all sessions in a chunk is one strided block that is
filled from a template and patched with vectorised field writes. Only one chunk is in
memory at a time.

Traffic per protocol (bench/ics_pdus.py has the messages): 8 clients x 4 servers, all
connections active at once (interleaved). Each session uses a fresh client port and fresh
ISNs, starts with SYN/SYN-ACK/ACK, runs the protocol's set-up and ``ops`` request/response
transactions and closes with FIN. Checksums (IPv4, TCP, DNP3 link CRCs) are valid.
``--protocol mixed`` interleaves Modbus/TCP, S7comm, EtherNet/IP and DNP3 sessions,
a quarter of the packets each. Addresses are loopback (127/8) on purpose; the file never
touches a network.

    python bench/make_capture.py OUT.pcap --packets 2000000 [--protocol s7comm]
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ics_pdus import (
    MB_PATTERN,
    PROTOCOLS,
    U8,
    U64,
    Ctx,
    Msg,
    Protocol,
    put16,
    put32,
    put32le,
)

N_CLIENTS = 8
N_SERVERS = 4
CONC = N_CLIENTS * N_SERVERS  # sessions per round
OPS_PATTERN = MB_PATTERN  # default transactions per session: 32
T0_US = 1_700_000_000_000_000
DT_US = 20
MIXED = ("modbus", "s7comm", "enip", "dnp3")

# Byte offsets inside one pcap record (16-byte record header + Ethernet/IPv4/TCP).
REC, ETH, IP, TCP, PAY = 0, 16, 30, 50, 70
SYN, FIN, PSH, ACK = 0x02, 0x01, 0x08, 0x10


@dataclass(frozen=True)
class Pos:
    """One packet position in the session layout."""

    c2s: bool
    flags: int
    seq_off: int  # added to the sender's ISN
    ack_off: int  # added to the receiver's ISN (-1: no ACK)
    msg: Msg | None = None

    @property
    def length(self) -> int:
        return PAY + (len(self.msg.app) if self.msg else 0)


def session_layout(proto: Protocol, ops: int) -> list[Pos]:
    """Packets of one session in order, with sequence offsets relative to the ISNs."""
    pos = [Pos(True, SYN, 0, -1), Pos(False, SYN | ACK, 0, 1), Pos(True, ACK, 1, 1)]
    off = {True: 1, False: 1}
    msgs = proto.opening()
    for m in range(ops):
        msgs += proto.operation(m)
    for msg in msgs:
        own, peer = off[msg.c2s], off[not msg.c2s]
        pos.append(Pos(msg.c2s, PSH | ACK, own, peer, msg))
        off[msg.c2s] += len(msg.app)
    c_off, s_off = off[True], off[False]
    pos += [
        Pos(True, FIN | ACK, c_off, s_off),
        Pos(False, FIN | ACK, s_off, c_off + 1),
        Pos(True, ACK, c_off + 1, s_off + 1),
    ]
    return pos


def _template(p: Pos) -> U8:
    """A complete record for position ``p`` with all per-session fields zeroed."""
    n = p.length
    rec = bytearray(n)
    struct.pack_into("<II", rec, REC + 8, n - ETH, n - ETH)
    rec[ETH + 12 : ETH + 14] = b"\x08\x00"
    struct.pack_into(">BBHHHBB", rec, IP, 0x45, 0, n - IP, 0, 0x4000, 64, 6)
    struct.pack_into(">BBH", rec, TCP + 12, 0x50, p.flags, 64240)
    if p.msg:
        rec[PAY:] = p.msg.app
    return np.frombuffer(bytes(rec), dtype=np.uint8)


def _fold(total: U64) -> U64:
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def _words(view: U8, start: int, stop: int) -> U64:
    """Sum of big-endian 16-bit words of view[..., start:stop] (odd tail padded)."""
    seg = view[..., start:stop].astype(np.uint64)
    return (seg[..., 0::2] << 8).sum(axis=-1) + seg[..., 1::2].sum(axis=-1)


class Generator:
    """Builds chunks of ``rounds`` x CONC sessions of one protocol."""

    def __init__(self, proto: Protocol, rounds: int, seed: int = 1, ops: int = 32) -> None:
        self.proto = proto
        self.rounds = rounds
        self.ops = ops
        self.layout = session_layout(proto, ops)
        self.templates = [_template(p) for p in self.layout]
        self.lengths = np.array([p.length for p in self.layout], dtype=np.int64)
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths)[:-1]))
        self.session_bytes = int(self.lengths.sum())
        self.rng = np.random.default_rng(seed)
        s = np.arange(CONC, dtype=np.uint64)
        cli = s // N_SERVERS
        srv = s % N_SERVERS
        net = proto.net
        self.cli_ip = (127 << 24) | (net << 16) | (cli + 11)  # 127.<net>.0.11..
        self.srv_ip = (127 << 24) | ((net + 1) << 16) | (srv + 1)  # 127.<net+1>.0.1..
        self.cli_mac = np.array([[2, 0, net, 1, 0, int(c) + 11] for c in cli], dtype=np.uint8)
        self.srv_mac = np.array([[2, 0, net, 2, 0, int(v) + 1] for v in srv], dtype=np.uint8)

    @property
    def packets_per_chunk(self) -> int:
        return self.rounds * CONC * len(self.layout)

    def chunk(self, first_round: int) -> U8:
        """Bytes of rounds [first_round, first_round + rounds) as a (rounds, ...) array."""
        r_n, n_pos = self.rounds, len(self.layout)
        out = np.empty((r_n, CONC * self.session_bytes), dtype=np.uint8)
        shape = (r_n, CONC)
        rnd = (first_round + np.arange(r_n, dtype=np.uint64))[:, None] + np.zeros(
            CONC, dtype=np.uint64
        )
        isn_c = self.rng.integers(0, 2**32, size=shape, dtype=np.uint64)
        isn_s = self.rng.integers(0, 2**32, size=shape, dtype=np.uint64)
        cport = 10000 + (rnd % 55000)
        sport = np.full(shape, self.proto.port, dtype=np.uint64)
        cli_ip = np.broadcast_to(self.cli_ip, shape)
        srv_ip = np.broadcast_to(self.srv_ip, shape)
        s_idx = np.arange(CONC, dtype=np.uint64)[None, :]
        sess = rnd * CONC + s_idx
        first_pkt = first_round * CONC * n_pos
        for j, p in enumerate(self.layout):
            length = int(self.lengths[j])
            lo = CONC * int(self.offsets[j])
            view = out[:, lo : lo + CONC * length].reshape(r_n, CONC, length)
            view[...] = self.templates[j]
            # pcap record timestamp: packet index within the file -> DT_US spacing.
            idx = first_pkt + (np.arange(r_n, dtype=np.uint64)[:, None] * n_pos + j) * CONC
            idx = idx + s_idx
            stamp = T0_US + idx * DT_US
            put32le(view, REC, stamp // 1_000_000)
            put32le(view, REC + 4, stamp % 1_000_000)
            src_ip, dst_ip = (cli_ip, srv_ip) if p.c2s else (srv_ip, cli_ip)
            src_p, dst_p = (cport, sport) if p.c2s else (sport, cport)
            own, peer = (isn_c, isn_s) if p.c2s else (isn_s, isn_c)
            src_mac, dst_mac = (
                (self.cli_mac, self.srv_mac) if p.c2s else (self.srv_mac, self.cli_mac)
            )
            view[..., ETH : ETH + 6] = dst_mac
            view[..., ETH + 6 : ETH + 12] = src_mac
            put16(view, IP + 4, idx & 0xFFFF)
            put32(view, IP + 12, src_ip)
            put32(view, IP + 16, dst_ip)
            put16(view, IP + 10, _fold(_words(view, IP, IP + 20)))
            put16(view, TCP, src_p)
            put16(view, TCP + 2, dst_p)
            put32(view, TCP + 4, (own + p.seq_off) & 0xFFFFFFFF)
            if p.ack_off >= 0:
                put32(view, TCP + 8, (peer + p.ack_off) & 0xFFFFFFFF)
            if p.msg:
                self.proto.patch(view[..., PAY:], p.msg, Ctx(sess, s_idx, p.msg.op, self.ops))
            tcp_len = length - TCP
            pseudo = (src_ip >> 16) + (src_ip & 0xFFFF) + (dst_ip >> 16) + (dst_ip & 0xFFFF) + 6
            put16(view, TCP + 16, _fold(pseudo + tcp_len + _words(view, TCP, length)))
        return out

    def record_end(self, n_packets: int) -> int:
        """Byte offset in a chunk just after its first ``n_packets`` records."""
        n_pos = len(self.layout)
        per_round = CONC * n_pos
        r, rem = divmod(n_packets, per_round)
        j, s = divmod(rem, CONC)
        base = r * CONC * self.session_bytes
        if j == n_pos:
            return base
        return base + CONC * int(self.offsets[j]) + s * int(self.lengths[j])

    def pieces(self, rounds_per_chunk: int) -> Iterator[tuple[memoryview, int]]:
        """Endless (bytes, record length) runs of CONC records, one per layout position."""
        first_round = 0
        while True:
            chunk = self.chunk(first_round)
            for r in range(self.rounds):
                for j in range(len(self.layout)):
                    lo = CONC * int(self.offsets[j])
                    length = int(self.lengths[j])
                    yield chunk[r, lo : lo + CONC * length].data, length
            first_round += rounds_per_chunk


def _header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def make_capture(
    path: str | Path,
    packets: int = 2_000_000,
    *,
    ops_per_session: int = len(OPS_PATTERN),
    rounds_per_chunk: int | None = None,
    protocol: str = "modbus",
) -> int:
    """Write ``packets`` records to ``path``; returns the file size in bytes.

    ``ops_per_session`` sets how long each TCP connection lives: 32 transactions is a
    client that reconnects often, thousands is an HMI that keeps its connection open.
    """
    if protocol == "mixed":
        return _make_mixed(path, packets, ops_per_session)
    if rounds_per_chunk is None:
        rounds_per_chunk = max(1, 48 * len(OPS_PATTERN) // ops_per_session)
    gen = Generator(PROTOCOLS[protocol](), rounds_per_chunk, ops=ops_per_session)
    written = 0
    first_round = 0
    with open(path, "wb") as fh:
        fh.write(_header())
        while written < packets:
            chunk = gen.chunk(first_round)
            todo = packets - written
            if todo >= gen.packets_per_chunk:
                fh.write(chunk.data)
                written += gen.packets_per_chunk
            else:
                fh.write(chunk.reshape(-1)[: gen.record_end(todo)].data)
                written += todo
            first_round += rounds_per_chunk
        return fh.tell()


def _make_mixed(path: str | Path, packets: int, ops: int) -> int:
    """Sessions of every protocol at once: runs of CONC records taken in turn from each
    protocol's generator, then every record's timestamp rewritten in file order."""
    rounds = max(1, 48 * len(OPS_PATTERN) // ops)
    streams = [
        Generator(PROTOCOLS[name](), rounds, seed=k + 1, ops=ops).pieces(rounds)
        for k, name in enumerate(MIXED)
    ]
    written = 0
    with open(path, "wb") as fh:
        fh.write(_header())
        while written < packets:
            parts: list[memoryview] = []
            lengths: list[int] = []
            for _ in range(256):
                for stream in streams:
                    data, length = next(stream)
                    parts.append(data)
                    lengths.append(length)
            buf = np.frombuffer(b"".join(parts), dtype=np.uint8).copy()
            rec_len = np.repeat(np.array(lengths, dtype=np.int64), CONC)
            take = min(len(rec_len), packets - written)
            starts = np.cumsum(rec_len) - rec_len
            stamp = T0_US + (written + np.arange(len(rec_len), dtype=np.uint64)) * DT_US
            for k, field in ((0, stamp // 1_000_000), (4, stamp % 1_000_000)):
                for b in range(4):
                    buf[starts + k + b] = (field >> np.uint64(8 * b)) & 0xFF
            end = int(starts[take - 1] + rec_len[take - 1])
            fh.write(buf[:end].data)
            written += take
        return fh.tell()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="synthetic industrial pcap for benchmarks")
    parser.add_argument("out", type=Path)
    parser.add_argument("--packets", type=int, default=2_000_000)
    parser.add_argument(
        "--ops-per-session",
        type=int,
        default=len(OPS_PATTERN),
        help="transactions per TCP connection (default %(default)s)",
    )
    parser.add_argument("--protocol", choices=[*PROTOCOLS, "mixed"], default="modbus")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    size = make_capture(
        args.out, args.packets, ops_per_session=args.ops_per_session, protocol=args.protocol
    )
    elapsed = time.perf_counter() - start
    print(f"{args.out}: {args.packets} packets, {size / 1e6:.1f} MB in {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
