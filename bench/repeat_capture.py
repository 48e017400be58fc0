"""Repeat a real capture to a target packet count, as plant traffic over a longer time.

Each repetition is the original capture shifted in time (by its own duration plus a
second) with every TCP/UDP client port moved, so that each repetition is new
connections to both conduit and tshark (a replayed 4-tuple would be one long connection
with sequence numbers jumping back). The server side is the side on a well-known
industrial port; when both or neither are, one end (the same both ways) is moved.
Checksums are kept valid by adjusting them for the changed port (RFC 1624 incremental
update).

Pipelining, split PDUs, retransmissions and keep-alives stay exactly as the plant sent
them: only ports and times change.

    python bench/repeat_capture.py IN.pcap OUT.pcap --packets 2000000
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from otconduit.capture.reader import open_capture  # noqa: E402

# Server ports of the protocols in the corpus: Modbus, S7comm (ISO-TSAP), EtherNet/IP
# (explicit and implicit I/O), DNP3, IEC 104, BACnet, OPC UA, PROFINET RPC, HART-IP, FINS.
SERVER_PORTS = frozenset({502, 102, 44818, 2222, 20000, 2404, 47808, 4840, 34964, 5094, 9600})
PORT_STEP = 7919  # prime: repetitions walk the ephemeral range without early repeats
PORT_LO, PORT_SPAN = 1024, 64000


def _fold(v: int) -> int:
    while v >> 16:
        v = (v & 0xFFFF) + (v >> 16)
    return v


def _patch_port(frame: bytearray, port_at: int, csum_at: int | None, new: int) -> None:
    old = struct.unpack_from("!H", frame, port_at)[0]
    struct.pack_into("!H", frame, port_at, new)
    if csum_at is None:
        return
    csum = struct.unpack_from("!H", frame, csum_at)[0]
    # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
    v = _fold((~csum & 0xFFFF) + (~old & 0xFFFF) + new)
    struct.pack_into("!H", frame, csum_at, ~v & 0xFFFF)


def _l4(frame: bytes, linktype: int) -> tuple[int, int, bytes, bytes] | None:
    """(offset of the L4 header, IP protocol, source and destination address) for IPv4
    TCP/UDP frames, else None."""
    p = 0
    if linktype == 1:
        if len(frame) < 14:
            return None
        et = struct.unpack_from("!H", frame, 12)[0]
        p = 14
        while et in (0x8100, 0x88A8, 0x9100) and len(frame) >= p + 4:
            et = struct.unpack_from("!H", frame, p + 2)[0]
            p += 4
        if et != 0x0800:
            return None
    elif linktype == 113:
        p = 16
    elif linktype == 276:
        p = 20
    elif linktype not in (101, 228, 12, 14):
        return None
    if len(frame) < p + 20 or frame[p] >> 4 != 4:
        return None
    if struct.unpack_from("!H", frame, p + 6)[0] & 0x1FFF:
        return None  # a later fragment: no L4 header
    proto = frame[p + 9]
    if proto not in (6, 17):
        return None
    l4 = p + (frame[p] & 15) * 4
    if len(frame) < l4 + (18 if proto == 6 else 8):
        return None
    return l4, proto, frame[p + 12 : p + 16], frame[p + 16 : p + 20]


def load(path: Path) -> tuple[list[tuple[int, bytes, int]], int]:
    """Packets as (ts_ns, frame, linktype) and the link type they share."""
    packets: list[tuple[int, bytes, int]] = []
    with open_capture(path) as reader:
        for block in reader:
            for i in range(len(block)):
                packets.append((int(block.ts_ns[i]), block.data(i), int(block.linktypes[i])))
    kinds = {lt for _, _, lt in packets}
    if len(kinds) != 1:
        raise SystemExit(f"repeat_capture: {path} mixes link types {sorted(kinds)}")
    return packets, kinds.pop()


def repeat(src: Path, dst: Path, packets: int) -> int:
    """Write ``packets`` packets of repetitions of ``src`` to ``dst`` (pcap, ns)."""
    base, linktype = load(src)
    if not base:
        raise SystemExit(f"repeat_capture: {src} holds no packets")
    t0 = base[0][0]
    span = max(ts for ts, _, _ in base) - t0 + 1_000_000_000
    # Where each packet's client port and checksum sit (None: leave it alone).
    where: list[tuple[int, int | None, int] | None] = []
    for _, frame, lt in base:
        hit = _l4(frame, lt)
        if hit is None:
            where.append(None)
            continue
        l4, proto, saddr, daddr = hit
        sport, dport = struct.unpack_from("!HH", frame, l4)
        csum_at: int | None = l4 + (16 if proto == 6 else 6)
        if proto == 17 and struct.unpack_from("!H", frame, l4 + 6)[0] == 0:
            csum_at = None  # UDP without a checksum
        if dport in SERVER_PORTS and sport not in SERVER_PORTS:
            where.append((l4, csum_at, sport))
        elif sport in SERVER_PORTS and dport not in SERVER_PORTS:
            where.append((l4 + 2, csum_at, dport))
        elif (saddr, sport) > (daddr, dport):
            # Both ports well known (DNP3 outstations talking 20000 to 20000) or neither:
            # move one end's port, the same end both ways.
            where.append((l4, csum_at, sport))
        else:
            where.append((l4 + 2, csum_at, dport))
    written = 0
    with dst.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
        rep = 0
        while written < packets:
            shift = rep * span
            for (ts, frame, _), w in zip(base, where, strict=True):
                if written == packets:
                    break
                data: bytes | bytearray = frame
                if w is not None and rep:
                    at, csum_at, port = w
                    new = PORT_LO + (port - PORT_LO + rep * PORT_STEP) % PORT_SPAN
                    buf = bytearray(frame)
                    _patch_port(buf, at, csum_at, new)
                    data = buf
                t = ts - t0 + shift + 1_700_000_000_000_000_000
                sec, ns = divmod(t, 1_000_000_000)
                f.write(struct.pack("<IIII", sec, ns, len(data), len(data)))
                f.write(data)
                written += 1
            rep += 1
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--packets", type=int, default=200_000)
    args = ap.parse_args(argv)
    n = repeat(args.src, args.dst, args.packets)
    print(f"{args.dst}: {n} packets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
