"""A capture of many short connections that never close (each left with a request in
flight, the way a test rig or a scanner leaves them) must not make the fast path hold
every connection a read block opened until the block ends: short of slots or buffer rows,
a pass first folds the connections that went silent an hour before it (as the idle
timeout would at the block's end). The tables stay small and the records are what the
per-packet path makes, hosts and counters included (told for many connections at
once)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from otconduit.analysis.fastpath.lane import LEND_BUFFERS, LEND_SLOTS, Lane
from otconduit.capture import pcapwriter as pw
from otconduit.capture.packet import TCP_ACK, TCP_PSH, TCP_SYN
from tests.bulkcap import snapshot

CONNECTIONS = 1500
APART_NS = 120 * 1_000_000_000  # two minutes: thirty connections an hour
T0 = 1_700_000_000_000_000_000


def _connection(k: int) -> list[tuple[int, bytes]]:
    """Connection ``k``: handshake, one answered read, one read never answered, silence."""
    ends = (("10.1.0.1", 20000 + k), ("10.2.0.1", 502))
    macs = ("02:00:00:00:00:01", "02:00:00:00:00:02")
    seq = [1000, 900000]
    steps = [
        (0, TCP_SYN, b""),
        (1, TCP_SYN | TCP_ACK, b""),
        (0, TCP_ACK, b""),
        (0, TCP_PSH | TCP_ACK, struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, k % 100, 2)),
        (1, TCP_PSH | TCP_ACK, struct.pack(">HHHBBB", 1, 0, 7, 1, 3, 4) + b"\x00\x01\x00\x02"),
        (0, TCP_PSH | TCP_ACK, struct.pack(">HHHBBHH", 2, 0, 6, 1, 3, 7, 1)),
    ]
    frames = []
    for n, (d, flags, payload) in enumerate(steps):
        (src, sport), (dst, dport) = ends[d], ends[1 - d]
        frame = pw.build_tcp_ipv4_frame(
            macs[d], macs[1 - d], src, dst, sport, dport, seq[d], seq[1 - d], flags, payload
        )
        frames.append((T0 + k * APART_NS + n * 1_000_000, frame))
        seq[d] += len(payload) + (1 if flags & TCP_SYN else 0)
    return frames


def _frames() -> list[tuple[int, bytes]]:
    return [f for k in range(CONNECTIONS) for f in _connection(k)]


def test_silent_connections_are_folded_before_the_tables_grow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = tmp_path / "short.pcap"
    pw.write_pcap(cap, _frames())
    biggest = {"buffers": 0, "slots": 0, "absorbed_together": 0}
    grow_buffers, grow, absorb_born = Lane._grow_buffers, Lane._grow, Lane._absorb_born

    def watch_buffers(self: Any, n: int) -> None:
        biggest["buffers"] = max(biggest["buffers"], n)
        grow_buffers(self, n)

    def watch_slots(self: Any, n: int) -> None:
        biggest["slots"] = max(biggest["slots"], n)
        grow(self, n)

    def watch_absorb(self: Any, rows: Any) -> None:
        biggest["absorbed_together"] = max(biggest["absorbed_together"], len(rows))
        absorb_born(self, rows)

    monkeypatch.setattr(Lane, "_absorb_born", watch_absorb)
    monkeypatch.setattr(Lane, "_grow_buffers", watch_buffers)
    monkeypatch.setattr(Lane, "_grow", watch_slots)
    slow = snapshot(tmp_path / "slow.db", cap, bulk=False, block_size=8 << 20)
    fast = snapshot(tmp_path / "fast.db", cap, bulk=True, block_size=8 << 20)
    for key in slow:
        if not key.startswith("_"):
            assert fast[key] == slow[key], key
    assert len(slow["operations"]) == 2 * CONNECTIONS  # the unanswered read too
    assert fast["_bulk"] > 0.9 * 6 * CONNECTIONS
    # Thirty connections an hour are alive at once, and a pass is lent LEND_BUFFERS rows
    # and LEND_SLOTS slots beside them. The whole block's 1,500 (each holding a buffer row
    # for its unanswered read) never are.
    assert biggest["buffers"] <= 2 * LEND_BUFFERS
    assert biggest["slots"] <= 2 * LEND_SLOTS
    # The hosts and counters of the connections the kernel opened were told in batches
    # (Lane._absorb_born), and came out as the per-packet path's above.
    assert biggest["absorbed_together"] > 16
