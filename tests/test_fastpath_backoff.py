"""A connection the fast path keeps handing back is pinned to the per-packet path for a
while (``Lane.backoff``): hand-overs stay rare and bounded however often it would bounce,
and both paths still store the same records."""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path

from otconduit.analysis.fastpath.lane import BACKOFF_MAX_DOUBLINGS, BACKOFF_PACKETS
from tests.bulkcap import Conn, compare, write

TRANSACTIONS = 400
ORPHAN_EVERY = 5  # an answer to nothing asked: the kernel hands the connection back


def _bouncing_modbus() -> list[tuple[int, bytes]]:
    """Read holding registers, with a response nobody asked for after every fifth
    transaction (an orphan: the Modbus kernel gives the connection to the decoder)."""
    packets: list[tuple[int, bytes]] = []
    for tid in range(1, TRANSACTIONS + 1):
        packets.append((0, struct.pack(">HHHBBHH", tid, 0, 6, 1, 3, tid % 100, 2)))
        packets.append((1, struct.pack(">HHHBBB", tid, 0, 7, 1, 3, 4) + bytes([tid % 256] * 4)))
        if tid % ORPHAN_EVERY == 0:
            orphan = 60000 + tid  # a transaction id never requested
            packets.append((1, struct.pack(">HHHBBB", orphan, 0, 5, 1, 3, 2) + b"\x00\x01"))
    return packets


def _handovers(db: Path) -> dict[str, dict[str, int]]:
    stats = sqlite3.connect(db).execute("SELECT stats FROM captures").fetchone()[0]
    handovers: dict[str, dict[str, int]] = json.loads(stats).get("handovers", {})
    return handovers


def test_a_bouncing_connection_is_pinned_to_the_engine(tmp_path: Path) -> None:
    packets = _bouncing_modbus()
    cap = tmp_path / "bounce.pcap"
    write(cap, [Conn(502, packets)], [])
    taken = compare(tmp_path, cap)  # same records with the fast path on and off
    orphans = TRANSACTIONS // ORPHAN_EVERY
    # Each bounce doubles the wait (8, 16, 32, ... packets of its own): about log2 of the
    # connection's length in hand-overs, not one per orphan.
    bound = max(len(packets) // BACKOFF_PACKETS, 1).bit_length() + 1
    assert bound < BACKOFF_MAX_DOUBLINGS
    for k in range(len(taken)):
        handed = _handovers(tmp_path / f"fast{k}.db")
        bounces = sum(handed.get("modbus", {}).values())
        assert 1 <= bounces <= bound < orphans, handed
    # Pinned, not lost: the lane still took the quiet stretches before the waits grew.
    assert min(taken) > 0


def test_a_pinned_connection_returns_to_the_lane_after_its_wait(tmp_path: Path) -> None:
    """Bounces early in a connection, then a long clean stretch: once its wait is over the
    connection goes back to the lane and stays there (the stretch is not spent in the
    per-packet path)."""
    packets = _bouncing_modbus()[: 6 * (2 * ORPHAN_EVERY + 1)]  # six bounces' worth
    for tid in range(1000, 3000):
        packets.append((0, struct.pack(">HHHBBHH", tid, 0, 6, 1, 3, tid % 100, 2)))
        packets.append((1, struct.pack(">HHHBBB", tid, 0, 7, 1, 3, 4) + bytes([tid % 256] * 4)))
    cap = tmp_path / "steady.pcap"
    write(cap, [Conn(502, packets)], [])
    taken = compare(tmp_path, cap, blocks=(8 << 20,))
    # At most the longest wait (8 << 6 packets after the sixth bounce) and the bounces
    # themselves go per packet; the rest of the 4,000-packet stretch is the lane's.
    assert taken[0] >= len(packets) - (BACKOFF_PACKETS << 7)
