"""Test helper: captures of several interleaved TCP connections, for holding the bulk
path to the per-packet path (tests/test_bulk_equivalence.py, tests/test_bulk_lanes.py).

A connection is a server port and a list of packets ``(direction, payload)`` (0: client
to server); a payload may hold several messages, or part of one. The capture opens each
connection with a handshake, interleaves the connections' packets in the given order
and closes them with FINs.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otconduit.analysis.run import analyze_file
from otconduit.capture import pcapwriter as pw
from otconduit.capture.packet import TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN
from otconduit.store import Store, views

T0 = 1_700_000_000_000_000_000


@dataclass
class Conn:
    server_port: int
    packets: list[tuple[int, bytes]]
    client: str = "10.1.0.1"
    server: str = "10.2.0.1"
    client_port: int = 40000
    seq: list[int] = field(default_factory=lambda: [1000, 900000])


def write(
    path: Path,
    conns: list[Conn],
    order: list[int],
    *,
    pause_at: int = -1,
    syn_again: bool = False,
    late: bool = False,
    midstream: frozenset[int] = frozenset(),
) -> None:
    """A pcap of ``conns``: handshakes, then packets taken from the connections in
    ``order`` (indexes into ``conns``; a connection's packets go in sequence), then FINs.
    Packets are 1 ms apart, but for two hours of silence before packet ``pause_at``.
    With ``syn_again`` every SYN is sent twice (the first one's answer lost); with
    ``late`` a connection's handshake comes just before its first packet; the
    connections listed in ``midstream`` have none (the capture starts inside them)."""
    frames: list[tuple[int, bytes]] = []
    ts = T0

    def seg(c: Conn, d: int, flags: int, payload: bytes = b"") -> None:
        nonlocal ts
        if len(frames) == pause_at:
            ts += 7200 * 1_000_000_000
        ends = ((c.client, c.client_port), (c.server, c.server_port))
        (src, sport), (dst, dport) = ends[d], ends[1 - d]
        macs = ("02:00:00:00:00:01", "02:00:00:00:00:02")
        frame = pw.build_tcp_ipv4_frame(
            macs[d], macs[1 - d], src, dst, sport, dport, c.seq[d], c.seq[1 - d], flags, payload
        )
        frames.append((ts, frame))
        c.seq[d] += len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
        ts += 1_000_000

    def handshake(c: Conn) -> None:
        if conns.index(c) in midstream:
            return
        if syn_again:
            seg(c, 0, TCP_SYN)
            c.seq[0] -= 1  # the same SYN again
        seg(c, 0, TCP_SYN)
        seg(c, 1, TCP_SYN | TCP_ACK)
        seg(c, 0, TCP_ACK)

    for c in [] if late else conns:
        handshake(c)
    at = [0] * len(conns)
    for k in order + [k for k, c in enumerate(conns) for _ in c.packets]:
        c = conns[k]
        if late and at[k] == 0:
            handshake(c)
        if at[k] < len(c.packets):
            d, payload = c.packets[at[k]]
            seg(c, d, TCP_PSH | TCP_ACK, payload)
            at[k] += 1
    for c in conns:
        seg(c, 0, TCP_FIN | TCP_ACK)
        seg(c, 1, TCP_FIN | TCP_ACK)
        seg(c, 0, TCP_ACK)
    pw.write_pcap(path, frames)


def _op_order(o: dict[str, Any]) -> tuple[Any, ...]:
    """Time order, ties (pipelined requests answered in one segment) broken by what
    tells the operations apart."""
    return (
        o["ts"], o["request_frame"] or 0, o["response_frame"] or 0, o["transaction_id"] or 0,
        o["function_code"] or 0, str(o["address"]), str(o["detail"]),
    )  # fmt: skip


def snapshot(db: Path, cap: Path, *, bulk: bool, block_size: int) -> dict[str, Any]:
    """What analysis stored, in a comparable form (and how much the bulk path took)."""
    with Store(db) as store:
        res = analyze_file(store, cap, bulk=bulk, block_size=block_size)
        ops = sorted(
            ({k: v for k, v in o.items() if k != "capture"} for o in views.operations(store)),
            key=_op_order,
        )
        out = {
            "packets": res.packets,
            "operations": ops,
            "assets": views.assets(store),
            "conversations": views.conversations(store),
            "problems": views.problem_summary(store),
            "functions": views.function_summary(store),
        }
    stats = json.loads(sqlite3.connect(db).execute("SELECT stats FROM captures").fetchone()[0])
    out["_bulk"] = stats.get("packets_bulk", 0)
    return out


def compare(tmp: Path, cap: Path, blocks: tuple[int, ...] = (8 << 20, 700)) -> list[int]:
    """Analyse ``cap`` per packet and with the bulk path (at each block size); assert
    the records are the same. Returns the packets the bulk path took, per block size."""
    slow = snapshot(tmp / "slow.db", cap, bulk=False, block_size=8 << 20)
    taken = []
    for k, block in enumerate(blocks):
        fast = snapshot(tmp / f"fast{k}.db", cap, bulk=True, block_size=block)
        for key in slow:
            if not key.startswith("_"):
                assert fast[key] == slow[key], (block, key)
        taken.append(fast["_bulk"])
    return taken
