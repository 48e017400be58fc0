"""Continuous analysis: one analysis that never ends, written out at checkpoints.

``conduit analyze`` writes a capture's conversations and assets once, at its end. A
sensor's traffic has no end, so :class:`LiveAnalysis` keeps the same engine and fast
path running across ring files and, at each checkpoint, takes what changed: operations
(written by the chunk writer), conversations of the connections that ended, the
connections still open (as they stand), host counters, problems. Checkpoint totals add
up to exactly what one analysis of the whole stream would have written
(``tests/sensor/test_live.py`` holds them to that).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from otconduit.analysis.engine import MAX_PROBLEMS_KEPT, Analyzer
from otconduit.analysis.fastpath import emit as _emit
from otconduit.analysis.fastpath.kernels import slots as _kt
from otconduit.analysis.fastpath.path import FastPath
from otconduit.capture.reader import RawBlock
from otconduit.store.sensing import Delta
from otconduit.store.sqlite import ConversationRecord, Store
from otconduit.store.writer import ChunkWriter

T: Any = _kt
ConvKey = tuple[str, str, str, int, int, str]
# Connections kept open at once; past it the longest-silent are ended early (counted),
# so a scan of a million addresses costs the store rows, not the sensor memory.
MAX_OPEN_CONNECTIONS = 50_000
EVICT_TO = 0.8  # evict down to this share of the cap
LANE_MIN_SLOTS = 2048


class LiveAnalysis:
    """The engine and fast path of one sensor, fed block by block, read at checkpoints."""

    def __init__(self, store: Store, capture_id: int) -> None:
        self.store = store
        self.a = Analyzer(store, capture_id)
        self.a.writer = ChunkWriter(store.target, capture_id)
        self.fast = FastPath(self.a)
        self._packets_written = 0
        self._first_ts_written: int | None = None
        self._problems_room = MAX_PROBLEMS_KEPT
        self._writer: ChunkWriter | None = None
        self._evicted = 0
        self.max_open = MAX_OPEN_CONNECTIONS
        self.names: dict[str, str] = {}  # ip -> device name (the gateway's configuration)

    # -- a restart's warm-up ---------------------------------------------------------
    def begin_warmup(self) -> None:
        """Replay packets from before the restart point only to rebuild state
        (connections, requests awaiting their answers): what they produce was stored
        by the run that crashed, and is dropped at :meth:`end_warmup`."""
        self.a.writer, self._writer = _Discard(), self.a.writer  # type: ignore[assignment]

    def end_warmup(self, seed: Seed) -> None:
        """The restart point: drop what the replay produced, keep the state, and go on
        from the store's totals (``seed``)."""
        a = self.a
        for lane in self.fast.lanes.values():
            lane.acc_keys, lane.acc_counts, lane.acc_size = [], [], 0  # the replay's counts
            n = len(lane.conns)
            for s in np.flatnonzero(lane.st[:n, T.F_BORN] == 1).tolist():
                lane.handover(s, None)  # an engine connection now, whose totals we reset
        a.ops_pending.clear()
        a.slices_pending.clear()
        a.pending_per_conv.clear()
        a.ops_pending_count = 0
        a.writer = self._writer
        a.conv_acc = {}
        a.tally.hosts.clear()
        a.tally.conv_functions = {k: Counter(v) for k, v in seed.functions.items()}
        a.tally.operations = seed.operations
        a.tally.ops_by_status = Counter(seed.ops_by_status)
        a.problems = []
        a.problem_counts = Counter()
        self._problems_room = MAX_PROBLEMS_KEPT - seed.problems_kept
        self._packets_written = a.packets
        # Connections open now were counted, up to here, by the run that crashed.
        for flow in [*a.tcp.values(), *a.udp.values(), *a.icmp.values(), *a.layer2.flows.values()]:
            flow.stats.packets = [0, 0]
            flow.stats.bytes = [0, 0]
            flow.stats.connections = 0

    def set_cap(self, connections: int) -> None:
        """At most ``connections`` open in the engine, and a share of them in each lane
        (a lane's slot costs about 2 KB; four lanes at the whole cap would be most of
        the sensor's memory)."""
        self.max_open = connections
        share = max(LANE_MIN_SLOTS, connections // max(len(self.fast.lanes), 1))
        for lane in self.fast.lanes.values():
            lane.max_slots = share

    def feed(self, block: RawBlock) -> None:
        self.fast.feed_block(block)
        if len(self.a.tcp) > self.max_open:
            self._evict()

    @property
    def evicted_connections(self) -> int:
        return self._evicted + sum(lane.evicted for lane in self.fast.lanes.values())

    def _evict(self) -> None:
        """End the longest-silent engine connections (as an idle timeout would)."""
        conns = sorted(self.a.tcp.values(), key=lambda c: c.stats.last_ts)
        excess = len(conns) - int(self.max_open * EVICT_TO)
        for conn in conns[:excess]:
            self.a._fold(conn)
        self._evicted += max(excess, 0)

    def open_connections(self) -> int:
        return (
            len(self.a.tcp)
            + len(self.a.udp)
            + sum(
                int((lane.st[: len(lane.conns), T.F_BORN] == 1).sum())
                for lane in self.fast.lanes.values()
            )
        )

    def checkpoint(self, *, final: bool = False) -> Delta:
        """What changed since the last checkpoint; with ``final`` every connection is
        ended first (a clean stop). Operations are written before this returns."""
        a = self.a
        if final:
            self.fast.close()
            a._conversation_records()  # folds every open connection into conv_acc
        else:
            for lane in self.fast.lanes.values():
                _emit.settle(lane)  # the lanes' operation counts, into the tally now
        a.flush_operations(final=True)
        if a.writer is not None:
            if final:
                a.writer.close()
                a.writer = None
            else:
                a.writer.sync()
        folded = list(a.conv_acc.values())
        a.conv_acc = {}
        open_recs = [] if final else self._open_records()
        # Operation counts per function are running totals: they go with the ended
        # connections' row of each conversation (the one that persists).
        by_key = {_key(r): r for r in folded}
        for rec in open_recs:
            k = _key(rec)
            if k not in by_key and k in a.tally.conv_functions:
                by_key[k] = ConversationRecord(*k, 0, 0, 0, 0, 0, rec.first_seen, rec.last_seen, {})
        for k, rec in by_key.items():
            rec.functions = dict(a.tally.conv_functions.get(k, {}))
        assets = a.layer2.assets(a._asset_records())  # MAC-only devices folded
        for asset in assets:
            name = self.names.get(asset.ip)
            if name:
                asset.attributes.append(
                    ("identity", "name", name, "gateway", 0.9, "gateway configuration")
                )
        a.tally.answered -= a.tally.hosts.keys()
        a.tally.hosts.clear()
        problems = a.problems
        self._problems_room -= len(problems)
        a.problems = []
        counts = dict(a.problem_counts)
        a.problem_counts = Counter()
        packets = a.packets - self._packets_written
        self._packets_written = a.packets
        stats = {
            "packets": a.packets,
            "operations": a.tally.operations,
            "operations_by_status": dict(a.tally.ops_by_status),
            "open_connections": 0 if final else self.open_connections(),
            "evicted_connections": self.evicted_connections,
            **self.fast.stats(),
        }
        return Delta(
            packets=packets,
            first_ts=a.first_ts,
            last_ts=a.last_ts,
            stats=stats,
            folded=list(by_key.values()),
            open=open_recs,
            assets=assets,
            problems=problems[: max(self._problems_room + len(problems), 0)],
            problem_counts=counts,
        )

    def _open_records(self) -> list[ConversationRecord]:
        """Conversation records of the connections open now, as they stand (nothing is
        ended or changed)."""
        a = self.a
        saved = a.conv_acc
        tmp: dict[ConvKey, ConversationRecord] = {}
        a.conv_acc = tmp
        try:
            for conn in a.tcp.values():
                a._accumulate("tcp", conn, conn.protocol or "unknown", tmp)
            for flow in a.udp.values():
                a._accumulate("udp", flow, flow.protocol or "unknown", tmp)
            for iflow in a.icmp.values():
                a._accumulate("icmp", iflow, "icmp", tmp)
            for l2flow in a.layer2.flows.values():  # PROFINET, GOOSE: never "closed"
                a._accumulate(l2flow.transport, l2flow, l2flow.protocol or "unknown", tmp)
            for lane in self.fast.lanes.values():
                _born_records(lane)
        finally:
            a.conv_acc = saved
        for rec in tmp.values():
            rec.functions = {}
        return list(tmp.values())

    def close(self) -> None:
        """Stop without a final checkpoint (the writer thread ends)."""
        if self.a.writer is not None:
            self.a.writer.close()
            self.a.writer = None


@dataclass(slots=True)
class Seed:
    """The totals a restarted sensor goes on from (what the store holds)."""

    functions: dict[ConvKey, dict[str, int]] = field(default_factory=dict)
    operations: int = 0
    ops_by_status: dict[str, int] = field(default_factory=dict)
    problems_kept: int = 0


class _Discard:
    """A chunk writer that writes nothing (a warm-up's operations are stored already)."""

    def submit(self, job: Any) -> None:
        del job

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


def _key(r: ConversationRecord) -> ConvKey:
    return (r.transport, r.client_ip, r.server_ip, r.server_port, r.vlan, r.protocol)


def _born_records(lane: Any) -> None:
    """Connections a lane's kernel opened and still holds (not the engine's), added to
    the analyzer's conversation totals as they stand."""
    n = len(lane.conns)
    if not n:
        return
    st = lane.st[:n]
    held = np.fromiter((c is not None for c in lane.conns), bool, n)
    rows = st[(st[:, T.F_BORN] == 1) & ~held]
    if len(rows):
        lane.add_conversations(rows)
