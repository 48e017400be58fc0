"""Baseline Modbus/TCP decoder built on dpkt, the peer in the throughput benchmark.

It does what a straightforward pure-Python monitor would: parse Ethernet/IPv4/TCP per
packet, walk the MBAP ADUs in each segment, pair requests with responses by
(connection, transaction id) and count completed operations per function code.

    python bench/dpkt_decoder.py FILE.pcap
"""

from __future__ import annotations

import struct
import sys
import time
from collections import Counter
from pathlib import Path

import dpkt

_MBAP = struct.Struct(">HHHB")
_ADDR_QTY = struct.Struct(">HH")
_READ_WRITE = {1, 2, 3, 4, 15, 16}  # address + quantity
_SINGLE = {5, 6}  # address + value


def decode(path: str | Path, ports: frozenset[int] = frozenset({502})) -> dict[str, object]:
    """Decode ``path`` and return operation counts."""
    pending: dict[tuple[bytes, int, bytes, int, int], tuple[int, int, int, float]] = {}
    ops: Counter[int] = Counter()
    exceptions = unmatched = packets = adus = 0
    with open(path, "rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            packets += 1
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            except dpkt.UnpackError:
                continue
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP) or not tcp.data:
                continue
            if tcp.dport in ports:
                request, key_base = True, (ip.src, tcp.sport, ip.dst, tcp.dport)
            elif tcp.sport in ports:
                request, key_base = False, (ip.dst, tcp.dport, ip.src, tcp.sport)
            else:
                continue
            data = bytes(tcp.data)
            pos = 0
            while pos + 8 <= len(data):
                tid, proto, length, _unit = _MBAP.unpack_from(data, pos)
                if proto != 0 or length < 2 or pos + 6 + length > len(data):
                    break
                fc = data[pos + 7]
                adus += 1
                key = (*key_base, tid)
                if request:
                    addr = qty = 0
                    if (fc in _READ_WRITE or fc in _SINGLE) and length >= 6:
                        addr, qty = _ADDR_QTY.unpack_from(data, pos + 8)
                        if fc in _SINGLE:
                            qty = 1
                    pending[key] = (fc, addr, qty, ts)
                else:
                    req = pending.pop(key, None)
                    if req is None:
                        unmatched += 1
                    else:
                        ops[req[0]] += 1
                        if fc & 0x80:
                            exceptions += 1
                pos += 6 + length
    return {
        "packets": packets,
        "adus": adus,
        "operations": sum(ops.values()),
        "by_function": dict(sorted(ops.items())),
        "exceptions": exceptions,
        "unmatched_responses": unmatched,
        "outstanding_requests": len(pending),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: dpkt_decoder.py FILE.pcap", file=sys.stderr)
        return 2
    start = time.perf_counter()
    result = decode(args[0])
    elapsed = time.perf_counter() - start
    print(result["operations"])
    print(
        f"# {result['packets']} packets, {result['adus']} ADUs, by fc {result['by_function']}, "
        f"{elapsed:.2f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
