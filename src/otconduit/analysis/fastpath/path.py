"""The fast path: whole blocks of packets through the lanes' kernels, the rest through
the per-packet engine, in capture order.

Per block: the kernels read every packet's headers at once (``kernels.headers``); then,
sub-block by sub-block, each lane's kernel takes the packets of the connections it
carries, and the per-packet engine takes the others in order. A connection the engine
finds quiet is registered with its lane at once, and the kernel resumes right after
that packet, so a new connection leaves the per-packet path within a packet or two.
``tests/test_bulk_equivalence.py`` holds both paths to the same records on every
capture we have.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from otconduit.analysis import kernel_cache
from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.engine import Analyzer
from otconduit.analysis.fastpath.arrays import HEADER_COLUMNS, Block
from otconduit.analysis.fastpath.kernels import headers as _kh
from otconduit.analysis.fastpath.lane import Lane
from otconduit.capture.decode import decode_frame
from otconduit.capture.reader import RawBlock
from otconduit.protocols import registry

KH: Any = _kh

# Packets per kernel call: a connection registered after one sub-block is decoded in
# bulk from the next, so short connections still mostly take the fast path.
SUB_BLOCK = 256
MAX_SUB_BLOCK = 16384
PORT_TABLE = 65537  # TCP/UDP ports 0-65535, and one for values out of that range


def lane_classes() -> list[type[Lane]]:
    """The lanes the registered protocols name (``ProtocolSpec.fast_lane``), in
    registry order; each must carry the spec that names it."""
    out: list[type[Lane]] = []
    for spec in registry.default_protocols():
        if spec.fast_lane is None:
            continue
        module, _, attr = spec.fast_lane.lane.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if not (isinstance(cls, type) and issubclass(cls, Lane)) or cls.spec is not spec:
            raise TypeError(f"{spec.fast_lane.lane} is not the fast lane of {spec.name}")
        out.append(cls)
    return out


class FastPath:
    """Feeds blocks to the lanes and keeps them in step with the engine."""

    def __init__(self, analyzer: Analyzer) -> None:
        kernel_cache.check()  # before any kernel loads its compiled code
        self.a = analyzer
        analyzer.on_fold = self._release
        self.packets_fast = 0
        self.lanes: dict[str, Lane] = {
            lane.protocol: lane for lane in (cls(analyzer) for cls in lane_classes())
        }
        # Which lane holds the engine's connections on each protocol's own ports.
        self._port_lane = {p: lane for lane in self.lanes.values() for p in lane.spec.ports}
        # Per port (and one past 65535, where out-of-range values clip): whether a lane
        # serves it. Looked up per packet, as np.isin would sort every block to tell.
        self._lane_port = np.zeros(PORT_TABLE, bool)
        self._lane_port[sorted(self._port_lane)] = True
        self._seen = np.zeros(PORT_TABLE, bool)  # scratch: the server ports of a block
        self._cols: dict[str, np.ndarray] = {}
        # Sub-block length carried from one block to the next: a steady capture does not
        # start every block over with short kernel calls.
        self._sub = SUB_BLOCK

    def _try_register(self, conn: TcpConnection) -> bool:
        """Register ``conn`` with its lane if it is in a state the kernel takes on; hold
        its 4-tuple in the lane of a protocol whose port it uses, so that the kernel never
        opens a second connection for it."""
        if conn.slot < 0:
            lane = self._port_lane.get(conn.server_port) or self._port_lane.get(conn.client_port)
            if lane is not None:
                lane.track(conn)
        lane = self.lanes.get(conn.protocol or "")
        if lane is None or (conn.slot >= 0 and conn.slot in lane.active):
            return False
        return lane.ready(conn) and lane.register(conn)

    def _release(self, conn: TcpConnection) -> None:
        """The engine folds ``conn``: its lane settles it and frees its slot."""
        lane = self.lanes.get(conn.lane or "")
        if conn.slot >= 0 and lane is not None:
            lane.release(conn)

    def _block(self, block: RawBlock) -> Any:
        n = len(block.offsets)
        cols = self._cols
        if len(cols.get("ok", ())) < n:
            cols.clear()
            for name, dt in HEADER_COLUMNS:
                cols[name] = np.empty(max(n, 1024), dt)
            cols["done"] = np.empty(max(n, 1024), np.uint8)
        view = {name: arr[:n] for name, arr in cols.items()}
        view["done"][:] = 0
        return Block(
            buf=block.buf,
            ts=block.ts_ns,
            first_frame=block.first_frame,
            **{name: view[name] for name, _ in HEADER_COLUMNS},
            done=view["done"],
        )

    def feed_block(self, block: RawBlock) -> None:
        n = len(block.offsets)
        if n == 0:
            return
        a = self.a
        blk = self._block(block)
        KH.parse_headers(block.offsets, block.caplens, block.linktypes, blk)
        outs: dict[str, Any] = {}  # output buffers of the lanes that ran in this block
        done, ts = blk.done, blk.ts
        # Lanes whose ports the block uses as a server's run even before they hold a
        # connection: the kernel opens connections itself (a capture of many short ones
        # may never give the engine one to hand over). A packet's server side is its
        # lower port when that is a lane's, else its higher one: a Modbus client whose
        # ephemeral port happens to be 44818 does not load and run the EtherNet/IP
        # kernel (the engine, which decides by content, would hand such a connection to
        # its lane anyway).
        low = np.minimum(blk.sport, blk.dport)
        servers = np.where(
            self._lane_port.take(low, mode="clip"), low, np.maximum(blk.sport, blk.dport)
        )
        seen = self._seen
        seen[:] = False
        seen[np.clip(servers, 0, PORT_TABLE - 1)] = True
        wanted = {name for name, lane in self.lanes.items() if seen[lane.born_ports].any()}
        slow_count = 0
        lo = 0
        sub = self._sub
        buf = block.buf.data  # a packet's bytes: copied out of a view's slice
        first_frame = block.first_frame
        while lo < n:
            hi = min(n, lo + sub)
            for name, lane in self.lanes.items():
                if lane.active or name in wanted:
                    out = outs.get(name)
                    if out is None:
                        out = outs[name] = lane.begin_block(n)
                    hi = min(hi, lane.run(blk, lo, hi, out))
            # The rest, in capture order, through the per-packet engine. A connection that
            # becomes eligible is registered at once and the kernels resume right after
            # its packet.
            registered = False
            slow = np.flatnonzero(done[lo:hi] == 0) + lo
            # the packets' fields as Python numbers at once (numpy scalars one by one
            # cost more than decoding some of these packets)
            fields = zip(
                slow.tolist(),
                block.offsets[slow].tolist(),
                block.caplens[slow].tolist(),
                block.linktypes[slow].tolist(),
                ts[slow].tolist(),
                block.wirelens[slow].tolist(),
                strict=True,
            )
            taken = 0
            for i, off, caplen, linktype, t, wirelen in fields:
                res = decode_frame(buf[off : off + caplen], linktype, first_frame + i, t, wirelen)
                a.last_conn = None
                a.feed(res, t)
                taken += 1
                conn = a.last_conn
                if conn is not None and self._try_register(conn):
                    hi = i + 1
                    registered = True
                    break
            done[slow[:taken]] = 1
            slow_count += taken
            touched, a.touched = a.touched, set()
            for conn in touched:
                registered |= self._try_register(conn)
            # A connection just taken on: short sub-blocks again (what it holds may go
            # back soon, and the kernels scan again from the packet after it: a long
            # sub-block here would be scanned over and over); otherwise longer ones,
            # fewer kernel calls.
            sub = SUB_BLOCK if registered else min(sub * 2, MAX_SUB_BLOCK)
            lo = hi
        self._sub = sub
        fast_count = n - slow_count
        self.packets_fast += fast_count
        a.packets += fast_count
        if a.first_ts is None:
            a.first_ts = int(ts[0])
        a.last_ts = int(ts[-1])
        for name, lane in self.lanes.items():
            if name in outs:
                lane.end_block(outs[name])
            lane.sweep_born(int(ts[-1]))
        a.sweep(int(ts[-1]))
        for lane in self.lanes.values():
            lane.compact_rids()

    def close(self) -> None:
        """Hand every connection back before the engine closes them (end of capture)."""
        for lane in self.lanes.values():
            lane.close()

    def stats(self) -> dict[str, Any]:
        """What the fast path took, and why it gave connections back (per protocol)."""
        return {
            "packets_bulk": self.packets_fast,
            "transactions_bulk": {
                p: lane.tx_bulk for p, lane in self.lanes.items() if lane.tx_bulk
            },
            "handovers": {
                p: dict(sorted(lane.handovers.items()))
                for p, lane in self.lanes.items()
                if lane.handovers
            },
            "templates": {
                p: lane.store.templates for p, lane in self.lanes.items() if lane.store.templates
            },
            "connections_opened_bulk": {
                p: lane.born_count for p, lane in self.lanes.items() if lane.born_count
            },
        }
