"""Write a SYN scan: one scanner probing N (address, port) pairs, the way nmap -sS sweeps
a plant network. A share of the probes is answered (SYN-ACK, then the scanner's RST),
the rest get a RST or nothing, so the capture holds half-open, refused and silent
connections: what fills a monitor's connection table.

    python bench/make_scan.py OUT.pcap --connections 1000000 [--rate 50000] [--ics-ports]

Records are built with numpy (a fixed Ethernet/IPv4/TCP template, addresses, ports and
checksums filled per row), so a million connections take a couple of seconds.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np

ETH = bytes.fromhex("0200000000020200000000010800")
ICS_PORTS = np.array([502, 102, 44818, 20000], np.int64)
COMMON = np.array([21, 22, 23, 25, 53, 80, 110, 135, 139, 143, 443, 445, 3389, 8080], np.int64)


def _csum16(words: np.ndarray) -> np.ndarray:
    """Ones' complement sum of 16-bit words per row, folded, complemented."""
    s = words.sum(axis=1, dtype=np.int64)
    while (s >> 16).any():
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def _records(
    src: np.ndarray,
    dst: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    flags: np.ndarray,
    seq: np.ndarray,
    ack: np.ndarray,
    ts_us: np.ndarray,
) -> bytes:
    n = len(src)
    rec = np.zeros((n, 16 + 54), np.uint8)
    hdr = rec[:, :16].view("<u4")
    hdr[:, 0] = ts_us // 1_000_000
    hdr[:, 1] = ts_us % 1_000_000
    hdr[:, 2] = 54
    hdr[:, 3] = 54
    pkt = rec[:, 16:]
    pkt[:, :14] = np.frombuffer(ETH, np.uint8)
    ip = pkt[:, 14:34]
    ip[:, 0] = 0x45
    ip[:, 2:4] = np.frombuffer(struct.pack(">H", 40), np.uint8)
    ip[:, 8] = 64
    ip[:, 9] = 6
    for col, v in ((12, src), (16, dst)):
        ip[:, col : col + 4] = v.astype(">u4").view(np.uint8).reshape(n, 4)
    words = ip.reshape(n, 10, 2).astype(np.int64)
    ipsum = _csum16(words[:, :, 0] * 256 + words[:, :, 1])
    ip[:, 10] = ipsum >> 8
    ip[:, 11] = ipsum & 0xFF
    tcp = pkt[:, 34:54]
    tcp[:, 0:2] = sport.astype(">u2").view(np.uint8).reshape(n, 2)
    tcp[:, 2:4] = dport.astype(">u2").view(np.uint8).reshape(n, 2)
    tcp[:, 4:8] = seq.astype(">u4").view(np.uint8).reshape(n, 4)
    tcp[:, 8:12] = ack.astype(">u4").view(np.uint8).reshape(n, 4)
    tcp[:, 12] = 0x50
    tcp[:, 13] = flags
    tcp[:, 14:16] = np.frombuffer(struct.pack(">H", 1024), np.uint8)
    # TCP checksum over the pseudo-header (src, dst, zero+proto, length) and the header.
    pseudo = np.concatenate(
        [ip[:, 12:20], np.tile(np.frombuffer(bytes([0, 6, 0, 20]), np.uint8), (n, 1)), tcp],
        axis=1,
    ).astype(np.int64)
    tsum = _csum16(pseudo[:, 0::2] * 256 + pseudo[:, 1::2])
    tcp[:, 16] = tsum >> 8
    tcp[:, 17] = tsum & 0xFF
    return rec.tobytes()


def write_scan(out: Path, connections: int, rate: float, ics_ports: bool, seed: int = 7) -> int:
    rng = np.random.default_rng(seed)
    scanner = np.int64(0x0A630063)  # 10.99.0.99
    n = connections
    # Targets: walk 10.100.0.0/14 by port set, as a sweep does.
    ports = ICS_PORTS if ics_ports else np.concatenate([COMMON, ICS_PORTS])
    dst = 0x0A640000 + (np.arange(n, dtype=np.int64) // len(ports)) % (1 << 18)
    dport = ports[np.arange(n) % len(ports)]
    sport = 40000 + (np.arange(n, dtype=np.int64) % 20000)
    t0 = 1_700_000_000_000_000
    ts = t0 + (np.arange(n, dtype=np.int64) * 1e6 / rate).astype(np.int64)
    seq = rng.integers(0, 1 << 32, n, dtype=np.int64)
    fate = rng.random(n)  # < 0.1 open (SYN-ACK, RST), < 0.5 refused (RST-ACK), else silent
    syn = (scanner.repeat(n), dst, sport, dport, np.full(n, 0x02), seq, np.zeros(n, np.int64), ts)
    parts = [syn]
    open_ = np.flatnonzero(fate < 0.1)
    refused = np.flatnonzero((fate >= 0.1) & (fate < 0.5))
    srv_seq = rng.integers(0, 1 << 32, n, dtype=np.int64)
    for idx, flags in ((open_, 0x12), (refused, 0x14)):
        parts.append(
            (
                dst[idx],
                scanner.repeat(len(idx)),
                dport[idx],
                sport[idx],
                np.full(len(idx), flags),
                srv_seq[idx],
                (seq[idx] + 1) & 0xFFFFFFFF,
                ts[idx] + 300,
            )
        )
    parts.append(
        (
            scanner.repeat(len(open_)),
            dst[open_],
            sport[open_],
            dport[open_],
            np.full(len(open_), 0x04),
            (seq[open_] + 1) & 0xFFFFFFFF,
            np.zeros(len(open_), np.int64),
            ts[open_] + 600,
        )
    )
    cols = [np.concatenate([p[k] for p in parts]) for k in range(8)]
    order = np.argsort(cols[7], kind="stable")
    cols = [c[order] for c in cols]
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    with out.open("wb") as f:
        f.write(header)
        step = 500_000
        for i in range(0, len(order), step):
            f.write(_records(*(c[i : i + step] for c in cols)))
    return len(order)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--connections", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=50_000.0, help="probes per second")
    ap.add_argument("--ics-ports", action="store_true", help="probe industrial ports only")
    a = ap.parse_args()
    n = write_scan(a.out, a.connections, a.rate, a.ics_ports)
    print(f"{a.out}: {n} packets, {a.connections} connections")


if __name__ == "__main__":
    main()
