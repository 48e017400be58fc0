"""Generate a large synthetic Modbus/TCP capture for throughput benchmarks.

Writing millions of packets one at a time in Python takes minutes, so frames are built with
numpy: every session (one TCP connection from handshake to FIN) has the same packet layout,
so position ``j`` of all sessions in a chunk is one strided block that is filled from a
template and patched with vectorised field writes. Only one chunk is in memory at a time.

Traffic: 8 clients x 4 servers, all connections active at once (interleaved). Each session
uses a fresh client port and fresh ISNs, starts with SYN/SYN-ACK/ACK, runs 32 request/
response pairs (FC3 x10 registers mostly, FC16, some FC1 and FC6) and closes with FIN.
Addresses are loopback (127/8) on purpose; the file never touches a network.

    python bench/make_capture.py OUT.pcap --packets 2000000
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[Any]  # uint64 in practice; numpy's int promotion typing is too loose

N_CLIENTS = 8
N_SERVERS = 4
CONC = N_CLIENTS * N_SERVERS  # sessions per round
OPS_PATTERN = (3, 3, 16, 3, 1, 3, 3, 6, 3, 16, 3, 3, 1, 3, 16, 3) * 2
N_REGS = 10
N_WRITE = 4
T0_US = 1_700_000_000_000_000
DT_US = 20

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
    pdu: bytes  # static PDU bytes (variable fields patched later), empty for no payload
    fc: int = 0
    request: bool = False
    op: int = -1  # index of the operation within the session

    @property
    def length(self) -> int:
        return PAY + (7 + len(self.pdu) if self.pdu else 0)


def _pdu(fc: int, request: bool) -> bytes:
    """Static PDU skeleton; address, values and tid are patched per packet."""
    if fc == 3:
        return (
            struct.pack(">BHH", 3, 0, N_REGS)
            if request
            else bytes([3, 2 * N_REGS]) + bytes(2 * N_REGS)
        )
    if fc == 16:
        if request:
            return struct.pack(">BHHB", 16, 0, N_WRITE, 2 * N_WRITE) + bytes(2 * N_WRITE)
        return struct.pack(">BHH", 16, 0, N_WRITE)
    if fc == 1:
        return struct.pack(">BHH", 1, 0, 16) if request else bytes([1, 2, 0, 0])
    if fc == 6:
        return struct.pack(">BHH", 6, 0, 0)
    raise ValueError(fc)


def ops_pattern(ops: int) -> tuple[int, ...]:
    """Function codes of the ``ops`` transactions of one session."""
    return (OPS_PATTERN * (ops // len(OPS_PATTERN) + 1))[:ops]


def session_layout(ops: int = len(OPS_PATTERN)) -> list[Pos]:
    """Packets of one session in order, with sequence offsets relative to the ISNs."""
    pos = [Pos(True, SYN, 0, -1, b""), Pos(False, SYN | ACK, 0, 1, b""), Pos(True, ACK, 1, 1, b"")]
    c_off = s_off = 1
    for m, fc in enumerate(ops_pattern(ops)):
        req, rsp = _pdu(fc, True), _pdu(fc, False)
        pos.append(Pos(True, PSH | ACK, c_off, s_off, req, fc, True, m))
        c_off += 7 + len(req)
        pos.append(Pos(False, PSH | ACK, s_off, c_off, rsp, fc, False, m))
        s_off += 7 + len(rsp)
    pos += [
        Pos(True, FIN | ACK, c_off, s_off, b""),
        Pos(False, FIN | ACK, s_off, c_off + 1, b""),
        Pos(True, ACK, c_off + 1, s_off + 1, b""),
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
    if p.pdu:
        struct.pack_into(">HHHB", rec, PAY, 0, 0, len(p.pdu) + 1, 0)
        rec[PAY + 7 :] = p.pdu
    return np.frombuffer(bytes(rec), dtype=np.uint8)


def _put16(view: U8, off: int, val: U64) -> None:
    view[..., off] = (val >> 8) & 0xFF
    view[..., off + 1] = val & 0xFF


def _put32(view: U8, off: int, val: U64) -> None:
    for k in range(4):
        view[..., off + k] = (val >> (24 - 8 * k)) & 0xFF


def _put32le(view: U8, off: int, val: U64) -> None:
    for k in range(4):
        view[..., off + k] = (val >> (8 * k)) & 0xFF


def _fold(total: U64) -> U64:
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def _words(view: U8, start: int, stop: int) -> U64:
    """Sum of big-endian 16-bit words of view[..., start:stop] (odd tail padded)."""
    seg = view[..., start:stop].astype(np.uint64)
    total = (seg[..., 0::2] << 8).sum(axis=-1) + seg[..., 1::2].sum(axis=-1)
    return total


class Generator:
    """Builds chunks of ``rounds`` x CONC sessions."""

    def __init__(self, rounds: int, seed: int = 1, ops: int = len(OPS_PATTERN)) -> None:
        self.rounds = rounds
        self.ops = ops
        self.layout = session_layout(ops)
        self.templates = [_template(p) for p in self.layout]
        self.lengths = np.array([p.length for p in self.layout], dtype=np.int64)
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths)[:-1]))
        self.session_bytes = int(self.lengths.sum())
        self.rng = np.random.default_rng(seed)
        s = np.arange(CONC, dtype=np.uint64)
        cli = s // N_SERVERS
        srv = s % N_SERVERS
        self.cli_ip = (127 << 24) | (1 << 16) | (cli + 11)  # 127.1.0.11..
        self.srv_ip = (127 << 24) | (2 << 16) | (srv + 1)  # 127.2.0.1..
        self.unit = (srv * 16 + 1).astype(np.uint64)  # 1, 17, 33, 49
        self.cli_mac = np.array([[2, 0, 0, 1, 0, int(c) + 11] for c in cli], dtype=np.uint8)
        self.srv_mac = np.array([[2, 0, 0, 2, 0, int(v) + 1] for v in srv], dtype=np.uint8)

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
        sport = np.full(shape, 502, dtype=np.uint64)
        cli_ip = np.broadcast_to(self.cli_ip, shape)
        srv_ip = np.broadcast_to(self.srv_ip, shape)
        unit = np.broadcast_to(self.unit, shape)
        s_idx = np.arange(CONC, dtype=np.uint64)[None, :]
        first_pkt = first_round * CONC * n_pos
        for j, p in enumerate(self.layout):
            length = int(self.lengths[j])
            lo = CONC * int(self.offsets[j])
            view = out[:, lo : lo + CONC * length].reshape(r_n, CONC, length)
            view[...] = self.templates[j]
            # pcap record timestamp: packet index within the file -> DT_US spacing.
            idx = first_pkt + (np.arange(r_n, dtype=np.uint64)[:, None] * n_pos + j) * CONC
            idx = idx + s_idx
            ts = T0_US + idx * DT_US
            _put32le(view, REC, ts // 1_000_000)
            _put32le(view, REC + 4, ts % 1_000_000)
            src_ip, dst_ip = (cli_ip, srv_ip) if p.c2s else (srv_ip, cli_ip)
            src_p, dst_p = (cport, sport) if p.c2s else (sport, cport)
            own, peer = (isn_c, isn_s) if p.c2s else (isn_s, isn_c)
            src_mac, dst_mac = (
                (self.cli_mac, self.srv_mac)
                if p.c2s
                else (
                    self.srv_mac,
                    self.cli_mac,
                )
            )
            view[..., ETH : ETH + 6] = dst_mac
            view[..., ETH + 6 : ETH + 12] = src_mac
            _put16(view, IP + 4, idx & 0xFFFF)
            _put32(view, IP + 12, src_ip)
            _put32(view, IP + 16, dst_ip)
            _put16(view, IP + 10, _fold(_words(view, IP, IP + 20)))
            _put16(view, TCP, src_p)
            _put16(view, TCP + 2, dst_p)
            _put32(view, TCP + 4, (own + p.seq_off) & 0xFFFFFFFF)
            if p.ack_off >= 0:
                _put32(view, TCP + 8, (peer + p.ack_off) & 0xFFFFFFFF)
            if p.pdu:
                self._patch_modbus(view, p, rnd, s_idx, unit)
            tcp_len = length - TCP
            pseudo = (src_ip >> 16) + (src_ip & 0xFFFF) + (dst_ip >> 16) + (dst_ip & 0xFFFF) + 6
            _put16(view, TCP + 16, _fold(pseudo + tcp_len + _words(view, TCP, length)))
        return out

    def _patch_modbus(self, view: U8, p: Pos, rnd: U64, s_idx: U64, unit: U64) -> None:
        m = np.uint64(p.op)
        tid = (rnd * self.ops + m + 1) & 0xFFFF
        _put16(view, PAY, tid)
        view[..., PAY + 6] = unit
        addr = (m * 10 + s_idx * 3 + rnd) % 1000
        body = PAY + 7
        if p.fc == 3 and not p.request:
            regs = (tid[..., None] * 7 + np.arange(N_REGS, dtype=np.uint64) * 13) & 0xFFFF
            view[..., body + 2 : body + 2 + 2 * N_REGS : 2] = regs >> 8
            view[..., body + 3 : body + 3 + 2 * N_REGS : 2] = regs & 0xFF
            return
        if p.fc == 1 and not p.request:
            view[..., body + 2] = tid & 0xFF
            view[..., body + 3] = (tid >> 8) & 0xFF
            return
        _put16(view, body + 1, np.broadcast_to(addr, tid.shape))
        if p.fc == 16 and p.request:
            vals = (tid[..., None] + np.arange(N_WRITE, dtype=np.uint64) * 1000) & 0xFFFF
            view[..., body + 6 : body + 6 + 2 * N_WRITE : 2] = vals >> 8
            view[..., body + 7 : body + 7 + 2 * N_WRITE : 2] = vals & 0xFF
        elif p.fc == 6:
            _put16(view, body + 3, tid ^ 0x5A5A)

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


def make_capture(
    path: str | Path,
    packets: int = 2_000_000,
    *,
    ops_per_session: int = len(OPS_PATTERN),
    rounds_per_chunk: int | None = None,
) -> int:
    """Write ``packets`` records to ``path``; returns the file size in bytes.

    ``ops_per_session`` sets how long each TCP connection lives: 32 transactions is a
    client that reconnects often, thousands is an HMI that keeps its connection open.
    """
    if rounds_per_chunk is None:  # keep a chunk near 48 x 32 short sessions in size
        rounds_per_chunk = max(1, 48 * len(OPS_PATTERN) // ops_per_session)
    gen = Generator(rounds_per_chunk, ops=ops_per_session)
    written = 0
    first_round = 0
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="synthetic Modbus/TCP pcap for benchmarks")
    parser.add_argument("out", type=Path)
    parser.add_argument("--packets", type=int, default=2_000_000)
    parser.add_argument(
        "--ops-per-session",
        type=int,
        default=len(OPS_PATTERN),
        help="transactions per TCP connection (default %(default)s)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    size = make_capture(args.out, args.packets, ops_per_session=args.ops_per_session)
    elapsed = time.perf_counter() - start
    print(f"{args.out}: {args.packets} packets, {size / 1e6:.1f} MB in {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
