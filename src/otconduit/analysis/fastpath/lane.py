"""A lane: the connections of one protocol that the fast path carries.

The per-packet engine is the authority: it decodes everything unusual. A lane's kernel
takes a connection's packets in two cases:

- it *opens* the connection itself when its first packet is the lane's to take (a SYN
  to the protocol's own port, or, mid-capture, a packet on it) and identifies the
  protocol from the first data as the engine would (``kernels.slots.birth``); such a
  connection has no object in the engine at all while the kernel carries it;
- the engine *registers* a connection of the lane's protocol once its decoder is quiet
  (:meth:`~otconduit.protocols.base.Resumable.quiescent`), with the state it exports.

The kernel takes TCP in order, retransmissions and keep-alives, FIN and RST, messages
split over segments or several in one, and pairs transactions and writes them from
templates. What it cannot take ends the run at that message: the lane hands the
connection back (:meth:`Lane.handover`; one it opened becomes an engine connection
first, :meth:`Lane.materialize`), its decoder resumes with the state the kernel changed
and the bytes it held, and decodes that message itself. A connection the kernel opened
and carried to its end is folded into its conversation here (:meth:`Lane.fold_many`),
never seen by the engine.

A transaction shape the lane has no template for is learned from that hand-over
(``learning``), so the next one of its shape stays in the kernel. A connection handed
back for any other reason waits a while before it is taken again, longer each time it
bounces (:meth:`Lane.backoff`); every hand-over is counted by reason.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from otconduit.analysis.connections import ConnStats, TcpConnection
from otconduit.analysis.engine import LINGER_NS, Analyzer
from otconduit.analysis.fastpath import emit as _emit
from otconduit.analysis.fastpath import learning
from otconduit.analysis.fastpath.arrays import Out, Shapes, Slots
from otconduit.analysis.fastpath.kernels import flowtable as _kf
from otconduit.analysis.fastpath.kernels import shapes as _ks
from otconduit.analysis.fastpath.kernels import slots as _kt
from otconduit.analysis.fastpath.learning import Exemplar
from otconduit.analysis.fastpath.templates import TemplateStore
from otconduit.analysis.ports import ICS_TCP_PORTS
from otconduit.capture.tcp import StreamData
from otconduit.model import Operation
from otconduit.protocols.base import Endpoints, Pending, ProtocolSpec

KF: Any = _kf
KS: Any = _ks
T: Any = _kt

WHY_NAMES = {
    T.WHY_SYN: "syn",
    T.WHY_IDLE: "idle_timeout",
    T.WHY_MAC: "mac_changed",
    T.WHY_AHEAD: "segment_after_hole",
    T.WHY_FRAMING: "framing",
    T.WHY_LARGE: "message_too_large",
    T.WHY_STATE: "protocol_state",
    T.WHY_FULL: "buffers_full",
    T.WHY_NEW: "new_shape",
    T.WHY_REFUSED: "decoder_only_shape",
    T.WHY_KIND: "message_kind",
    T.WHY_UNDECIDED: "first_data_unclear",
    T.WHY_LINGER: "after_close",
}
HELD_AT_END = "held_at_end"  # a connection ended holding what no template wrote
BACKOFF_PACKETS = 8  # a bounced connection's own packets before it is taken again ...
BACKOFF_MAX_DOUBLINGS = 12  # ... doubling with each bounce, up to 8 << 12 = 32,768
STEADY_TRANSACTIONS = 256  # a run this long in the kernel forgives earlier bounces
# Output buffers of a lane: a pass stops early (and the lane drains them) when full.
OUT_TRANSACTIONS = 1 << 14
OUT_LISTS = 1 << 15
OUT_VALUES = 1 << 19
OUT_MISSES = 1024
OUT_MISS_BYTES = 1 << 20
OUT_PROBLEMS = 1024  # decode problems one pass may report (more: a hand-over reports them)
FLUSH_MEMO = 4096  # flushes of held messages remembered per lane (Lane._flush) ...
FLUSH_MEMO_BYTES = 1024  # ... of at most this many bytes each
LEND_SLOTS = 1024  # free slots lent to one pass for the connections it opens (at most)
_ABSORB_TOGETHER = 16  # more slots than this in one absorb: those the kernel opened go together
LEND_BUFFERS = 256  # free buffer rows lent to one pass (it stops when they run out)
# Buffer rows a lane holds at most (17 KB each): connections that hold messages in flight
# at once. Past that, a connection whose data needs one goes to the per-packet path (a
# scan of many hosts that leaves requests unanswered must not grow memory).
MAX_BUFFERS = 1024
_RETRANSMITTED = (
    ("tcp", "retransmitted segments (client)"),
    ("tcp", "retransmitted segments (server)"),
)


@functools.lru_cache(maxsize=65536)
def ip_u32(ip: str) -> int | None:
    """An IPv4 address as a number (None: not IPv4). Cached: the per-packet path asks
    for the same few addresses on every packet of a connection it may hand over."""
    parts = ip.split(".")
    if len(parts) != 4:
        return None
    a, b, c, d = (int(x) for x in parts)
    return (a << 24) | (b << 16) | (c << 8) | d


@functools.lru_cache(maxsize=65536)
def mac_str(v: int) -> str:
    """A MAC column value (MAC + 1) as text."""
    raw = (v - 1).to_bytes(6, "big")
    return ":".join(f"{x:02x}" for x in raw)


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``keys`` grouped by equal rows: the order that sorts them, and where each
    group starts in it. The sort is stable, so a group's first row in that order is its
    first in ``keys``."""
    order = np.lexsort(keys.T[::-1])
    sk = keys[order]
    new = np.ones(len(sk), bool)
    new[1:] = (sk[1:] != sk[:-1]).any(axis=1)
    return order, np.flatnonzero(new)


class Lane:
    """Slots, kernel passes, hand-overs, learning and output for one protocol."""

    spec: ClassVar[ProtocolSpec]  # the protocol (its name is the connection protocol)
    op_protocol: ClassVar[str]  # the protocol of the operations it writes
    # ... when it writes those of several (S7comm and S7comm-plus on one connection):
    # a template's operations are of one of them (TemplateStore.t_proto indexes this).
    op_protocols: ClassVar[tuple[str, ...]] = ()
    # Transactions drained at a time: their operations stay in memory until stored.
    out_transactions: ClassVar[int] = OUT_TRANSACTIONS
    # numba kernels: the pass over a sub-block, and the shape of one transaction
    # (``shape_fn(raw_row, tq, qn, st_row, norm, xrow, lh, lv, cnt) -> shape length``).
    pass_fn: ClassVar[Any]
    shape_fn: ClassVar[Any]
    # Whether shape_fn reads the slot row (EtherNet/IP: the connections it opened); if
    # not, the flushes of messages seen before are remembered (:meth:`_flush`).
    shape_reads_row: ClassVar[bool] = False

    def __init__(self, analyzer: Analyzer, *, slots: int = 64) -> None:
        self.protocol = self.spec.name
        self.protocols = self.op_protocols or (self.op_protocol,)
        self.a = analyzer
        self.conns: list[TcpConnection | None] = []
        self.free: list[int] = []
        self.active: set[int] = set()
        self.store = TemplateStore()
        # Per registration id: conversation per protocol (-1: not looked up yet), the
        # connection's ends (client and server IPv4 as integers, server port, VLAN), and
        # (client port, server port, same ip).
        self.rid_conv = np.full((64, len(self.protocols)), -1, np.int64)
        self.rid_ends = np.zeros((64, 4), np.int64)
        self.rid_port = np.zeros((64, 3), np.int64)
        self.rids = 0
        self.rid_tx: dict[int, int] = {}  # transactions taken per live registration
        self.conv_keys: dict[int, tuple[str, str, str, int, int, str]] = {}
        self.claimed: set[tuple[int, int]] = set()  # (conversation, template) claims made
        self.acc_keys: list[np.ndarray] = []
        self.acc_counts: list[np.ndarray] = []
        self.acc_size = 0
        self.tx_bulk = 0
        self.born_count = 0
        self.max_slots = 0  # a sensor caps the connections a lane holds (0: no cap)
        self.evicted = 0  # connections ended early at that cap
        self.handovers: Counter[str] = Counter()
        # held messages' directions and bytes -> their flush row (template, holes) and
        # list holes (Lane._flush; bounded)
        self._flushes: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.st = np.zeros((0, T.N_FIELDS), np.int64)
        self.qm = np.zeros((0, T.MAX_KEPT, T.Q_FIELDS), np.int64)
        # Buffer rows (kept messages, carries): a slot takes one with its first data; row
        # 0 is never lent (the row of a slot with none).
        self.raw = np.zeros((1, T.RAW_BYTES + T.RAW_EXTRA), np.uint8)
        self.carry = np.zeros((1, 2, T.CARRY), np.uint8)
        self.bfree: list[int] = []
        self.bufs = np.zeros(LEND_BUFFERS, np.int64)
        self._lent_buffers = 0
        self._grow(slots)
        self.tk1 = np.zeros(4 * slots, np.int64)
        self.tk2 = np.zeros(4 * slots, np.int64)
        self.tv = np.full(4 * slots, -1, np.int64)
        self.table_used = 0
        self.norm = np.zeros(6 * T.RAW_BYTES, np.uint8)  # shapes, then kernel scratch
        # The protocol's own TCP ports: the kernel opens connections to them.
        self.born_ports = np.array(sorted(self.spec.ports), np.int64)
        self.known_ports = np.array(sorted(ICS_TCP_PORTS), np.int64)
        self.ports = np.full(4, -1, np.int64)  # server ports of the lane's connections
        for k, port in enumerate(self.born_ports[:3].tolist()):
            self.ports[k] = port
        self.init = np.zeros(T.N_FIELDS, np.int64)  # a connection the kernel opens
        self.initial_row(self.init)
        self.freelist = np.zeros(LEND_SLOTS, np.int64)
        self.ctl = np.zeros(T.N_CTL, np.int64)
        self._ips: dict[int, str] = {}
        self._out: Any = None  # Out bundle, made by begin_block
        self._flushed: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._flushed_rows: list[np.ndarray] = []  # flushes without list holes, as rows
        self._shape_lh = np.zeros((520, 2), np.int64)
        self._shape_lv = np.zeros(8 * T.RAW_BYTES, np.int64)

    # -- protocol hooks ------------------------------------------------------------------
    def eligible(self, conn: TcpConnection) -> bool:
        """Whether the kernel can carry on from ``conn``'s decoder as it stands."""
        dec: Any = conn.decoder
        return dec is not None and dec.quiescent()

    def initial_row(self, row: np.ndarray) -> None:
        """The protocol columns of a slot whose decoder has seen nothing yet."""

    def prepare(self, row: np.ndarray, state: Any) -> list[tuple[Pending, int, int]]:
        """Put the exported protocol state into the slot row (``st[s, F_P:]``); returns
        the messages in flight the kernel must keep, with their pairing keys."""
        self.initial_row(row)
        return []

    def resume_state(self, s: int) -> Any:
        """What the kernel changed of the protocol state, for the decoder's resume()."""
        return None

    def held_bytes(self, s: int) -> list[Pending]:
        """Octets the kernel took but the decoder has not seen (after the messages kept,
        before the carries): given back, and forgotten by the slot."""
        return []

    def holds_bytes(self, st: np.ndarray) -> np.ndarray:
        """Per slot row: whether it holds such octets."""
        return np.zeros(len(st), bool)

    def end_held_bytes(self, s: int) -> None:
        """The connection in slot ``s`` ended: report its held octets as the decoder
        would at its end (and forget them)."""

    # Whether a template may report the decode problems its exemplar had: only where
    # no problem's text can depend on a hole (DNP3: its holes are sequence numbers and
    # the response octets the decoder steps over without looking).
    carries_problems: ClassVar[bool] = False

    def frame_roles(self, ex: Exemplar, nth: int, op: Operation) -> tuple[int, int]:
        """Which messages are the request and the response (-1: none) of the
        transaction's ``nth`` operation (``op``, as the decoder made it)."""
        return 0, (1 if len(ex.messages) > 1 else -1)

    def learns_as_flush(self, messages: list[tuple[int, bytes, int, int]]) -> bool:
        """Whether the kernel wrote the miss of ``messages`` with their *flush* shape (a
        transaction the decoder completes only at ``finish()`` or when released)."""
        return False

    def holes(self, op: Operation, ex: Exemplar, nth: int) -> dict[str, Any] | None:
        """The fields of ``op`` (the transaction's ``nth`` operation) that come from the
        transaction's holes (``tid``, ``unit``, ``address``, ``quantity``, ``values``,
        ``response_values``: a Hole; ``detail``: the detail with Holes in it); None when
        the operation does not fit the lane's holes."""
        raise NotImplementedError

    # -- bundles for the kernels -------------------------------------------------------
    def slots(self) -> Any:
        return Slots(
            self.tk1, self.tk2, self.tv, self.ports, self.st, self.qm, self.raw, self.carry,
            self.init, self.born_ports, self.known_ports, self.freelist, self.bufs, self.ctl,
        )  # fmt: skip

    def shapes(self) -> Any:
        s = self.store
        return Shapes(s.th, s.tinfo, s.tnorm, self.norm)

    def shape(
        self, messages: list[tuple[int, bytes, int, int]], s: int, *, flush: bool = False
    ) -> Exemplar:
        """Shape and holes of ``messages`` (a transaction of slot ``s``) as the kernel
        computes them (empty shape: not a transaction of this lane). A *flush* shape is
        that of messages still held when their connection ends: its first byte is
        marked, so that it never meets the shape of a finished transaction."""
        raw = np.frombuffer(b"".join(m[1] for m in messages), np.uint8).copy()
        tq = np.zeros((T.MAX_MSGS, T.Q_FIELDS), np.int64)
        off = 0
        for k, (d, data, frame, ts) in enumerate(messages):
            tq[k, T.Q_OFF : T.Q_DIR + 1] = (off, len(data), frame, ts, d)
            off += len(data)
        xrow = np.zeros(KS.X_FIELDS, np.int64)
        lh, lv = self._shape_lh, self._shape_lv  # scratch: what the holes use is copied
        cnt = np.zeros(T.N_COUNTERS, np.int64)
        fn = type(self).shape_fn
        size = int(fn(raw, tq, len(messages), self.st[s].copy(), self.norm, xrow, lh, lv, cnt))
        lh = lh[: int(cnt[T.C_NLH])].copy()
        lv = lv[: int(cnt[T.C_NLV])].copy()
        norm = self.norm[: max(size, 0)].copy()
        if flush and len(norm):
            norm[0] |= 0x80
        for k in range(T.MAX_MSGS):
            _, _, frame, ts = messages[min(k, len(messages) - 1)]
            xrow[KS.X_F + 2 * k], xrow[KS.X_F + 2 * k + 1] = frame, ts
        return Exemplar(messages, norm, xrow, lh, lv)

    def endpoints(self, s: int) -> Endpoints:
        """Who is client and server of the connection in slot ``s``."""
        conn = self.conns[s] if s < len(self.conns) else None
        if conn is not None:
            return conn.endpoints
        row = self.st[s]
        return Endpoints(
            transport="tcp",
            client_ip=self._ip(int(row[T.F_CIP])),
            client_port=int(row[T.F_CPORT]),
            server_ip=self._ip(int(row[T.F_SIP])),
            server_port=int(row[T.F_SPORT]),
        )

    def sample_decoder(self, s: int) -> Any:
        """A decoder in the state of slot ``s``'s connection with nothing in flight."""
        conn = self.conns[s] if s < len(self.conns) else None
        if conn is not None and conn.decoder is not None:
            return conn.decoder.fork()  # type: ignore[attr-defined]
        return self.spec.factory(self.endpoints(s))

    def _ip(self, v: int) -> str:
        ip = self._ips.get(v)
        if ip is None:
            if len(self._ips) > 65536:
                self._ips.clear()
            ip = self._ips[v] = f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
        return ip

    # -- slots -------------------------------------------------------------------------
    def _grow(self, n: int) -> None:
        old_n = len(self.st)
        for name, extra in (
            ("st", (T.N_FIELDS,)),
            ("qm", (T.MAX_KEPT, T.Q_FIELDS)),
        ):
            old = getattr(self, name)
            arr = np.zeros((n, *extra), old.dtype)
            arr[: len(old)] = old
            setattr(self, name, arr)
        self.conns += [None] * (n - old_n)
        # Lowest slots are handed out first; slot 0 never: the flow table points the
        # flows the engine holds for a kernel pass's sake at it (kernels.slots.birth).
        self.free[:0] = range(n - 1, max(old_n, 1) - 1, -1)

    def _grow_buffers(self, n: int) -> None:
        old = len(self.raw)
        raw = np.zeros((n, T.RAW_BYTES + T.RAW_EXTRA), np.uint8)
        raw[:old] = self.raw
        carry = np.zeros((n, 2, T.CARRY), np.uint8)
        carry[:old] = self.carry
        self.raw, self.carry = raw, carry
        self.bfree[:0] = range(n - 1, old - 1, -1)

    def buffer(self, s: int) -> int:
        """Slot ``s``'s buffer row (taken now if it has none)."""
        b = int(self.st[s, T.F_BUF])
        if b == 0:
            if not self.bfree:
                self._grow_buffers(2 * len(self.raw))
            b = self.bfree.pop()
            self.st[s, T.F_BUF] = b
        return b

    def _drop_buffer(self, s: int) -> None:
        """Give slot ``s``'s buffer row back (what it held has been read)."""
        b = int(self.st[s, T.F_BUF])
        if b:
            self.bfree.append(b)
            self.st[s, T.F_BUF] = 0

    def _slot(self) -> int:
        if not self.free:
            self._grow(2 * len(self.st))
        return self.free.pop()

    def _table_room(self, need: int) -> None:
        """Make room for ``need`` more entries (live plus deleted stay under half)."""
        if 2 * (self.table_used + need) <= len(self.tv):
            return
        live = np.flatnonzero(self.tv >= 0)
        keys = [(int(self.tk1[i]), int(self.tk2[i]), int(self.tv[i])) for i in live]
        size = len(self.tv)
        while 2 * (len(keys) + need) > size // 2:
            size *= 2
        self.tk1 = np.zeros(size, np.int64)
        self.tk2 = np.zeros(size, np.int64)
        self.tv = np.full(size, -1, np.int64)
        for a, b, v in keys:
            KF.table_insert(self.tk1, self.tk2, self.tv, a, b, v)
        self.table_used = len(keys)

    def _table_put(self, k1: int, k2: int, value: int) -> None:
        self._table_room(1)
        self.table_used += int(KF.table_insert(self.tk1, self.tk2, self.tv, k1, k2, value))

    @staticmethod
    def _keys(conn: TcpConnection) -> list[tuple[int, int]] | None:
        c_ip, s_ip = ip_u32(conn.client_ip), ip_u32(conn.server_ip)
        if c_ip is None or s_ip is None:
            return None  # IPv6 stays per-packet
        out = []
        for a, ap, b, bp in (
            (c_ip, conn.client_port, s_ip, conn.server_port),
            (s_ip, conn.server_port, c_ip, conn.client_port),
        ):
            k1, k2 = KF.flow_keys(a, b, ap, bp, conn.vlan)
            out.append((int(k1), int(k2)))
        return out

    def takes_port(self, port: int) -> bool:
        return port in self.spec.ports

    def track(self, conn: TcpConnection) -> None:
        """An engine connection on the protocol's own port: hold its 4-tuple, so that the
        kernel never opens a second connection for it."""
        keys = self._keys(conn)
        if keys is None:
            return
        s = self._slot()
        self.conns[s] = conn
        self.st[s] = 0
        self.st[s, T.F_DECIDED] = 1
        for d, (k1, k2) in enumerate(keys):
            self._table_put(k1, k2, 2 * s + d)
        conn.slot = s
        conn.lane = self.protocol

    def ready(self, conn: TcpConnection) -> bool:
        """Whether ``conn`` may be registered now: not bouncing, clean TCP state, a
        quiet decoder."""
        if conn.closed or sum(conn.stats.packets) < conn.fast_retry:
            return False
        if conn.lane not in (None, self.protocol):
            return False
        if not all(r.clean for r in conn.reasm):
            return False
        return self._keys(conn) is not None and self.eligible(conn)

    def register(self, conn: TcpConnection) -> bool:
        keys = self._keys(conn)
        dec: Any = conn.decoder
        if keys is None or dec is None:
            return False
        if conn.slot < 0:
            conn.slot = self._slot()
            conn.lane = self.protocol
        s = conn.slot
        self.conns[s] = conn
        for d, (k1, k2) in enumerate(keys):
            self._table_put(k1, k2, 2 * s + d)
        row = self.st[s]
        row[:] = 0
        known = 0
        for d in (0, 1):
            nxt = conn.reasm[d].next_seq
            if nxt is not None:  # else nothing came that way yet: its first data sets it
                row[T.F_NEXT + d] = nxt
                known |= 1 << d
        row[T.F_KNOWN] = known
        row[T.F_DECIDED] = 1
        row[T.F_LAST] = conn.stats.last_ts
        row[T.F_PEND] = -1
        rid = row[T.F_RID] = self._new_rid()
        c_ip, s_ip = ip_u32(conn.client_ip), ip_u32(conn.server_ip)
        assert c_ip is not None and s_ip is not None  # IPv4: it has keys
        self.rid_ends[rid] = (c_ip, s_ip, conn.server_port, conn.vlan)
        same = int(conn.client_ip == conn.server_ip)
        self.rid_port[rid] = (conn.client_port, conn.server_port, same)
        self.rid_tx[rid] = 0
        used = 0
        for k, (p, key, key2) in enumerate(self.prepare(row, dec.export_state())):
            n = len(p.data)
            b = self.buffer(s)
            self.raw[b, used : used + n] = np.frombuffer(p.data, np.uint8)
            self.qm[s, k, : T.Q_KEY2 + 1] = (used, n, p.frame, p.ts_ns, p.direction, key, key2)
            used += n
            row[T.F_QN] = k + 1
        row[T.F_QUSED] = used
        if conn.server_port not in self.ports and self.ports[0] != -2:
            free = np.flatnonzero(self.ports == -1)
            if len(free):
                self.ports[free[0]] = conn.server_port
            else:
                self.ports[:] = -2  # too many to list: look every packet up
        row[T.F_FAST] = 1
        self.active.add(s)
        return True

    def _new_rid(self) -> int:
        rid = self.rids
        self.rids += 1
        self._rid_room(self.rids)
        return rid

    def _rid_room(self, n: int) -> None:
        while n > len(self.rid_conv):
            self.rid_conv = np.concatenate([self.rid_conv, np.full_like(self.rid_conv, -1)])
            self.rid_port = np.concatenate([self.rid_port, np.zeros_like(self.rid_port)])
            self.rid_ends = np.concatenate([self.rid_ends, np.zeros_like(self.rid_ends)])

    def compact_rids(self) -> None:
        """Renumber the registrations still held, so what is kept per registration
        (conversation ids, ports, ends) follows the open connections, not every
        connection ever seen. Only between blocks: no transaction is in flight then."""
        n = len(self.conns)
        if self.rids < 4096 or self.rids < 4 * n:
            return
        st = self.st[:n]
        held = np.flatnonzero(
            np.fromiter((c is not None for c in self.conns), bool, n) | (st[:, T.F_BORN] == 1)
        )
        old = st[held, T.F_RID]
        k = len(old)
        size = max(64, 1 << int(max(k, 1) * 2 - 1).bit_length())
        conv = np.full((size, self.rid_conv.shape[1]), -1, np.int64)
        conv[:k] = self.rid_conv[old]
        port = np.zeros((size, 3), np.int64)
        port[:k] = self.rid_port[old]
        ends = np.zeros((size, 4), np.int64)
        ends[:k] = self.rid_ends[old]
        olds = old.tolist()
        self.rid_tx = {i: self.rid_tx[r] for i, r in enumerate(olds) if r in self.rid_tx}
        self.rid_conv, self.rid_port, self.rid_ends = conv, port, ends
        st[held, T.F_RID] = np.arange(k, dtype=np.int64)
        self.rids = k

    def conversations(self, xo: np.ndarray) -> np.ndarray:
        """Per finished transaction: the conversation its operations belong to (the
        connection's ends and its template's protocol), looked up the first time."""
        rid = xo[:, KS.X_RID]
        proto = self.store.protocols()[xo[:, KS.X_TMPL]]
        conv = self.rid_conv[rid, proto]
        missing = conv < 0
        if missing.any():
            # Many connections share their ends (one client polling one server): each
            # distinct (ends, protocol) is looked up once.
            k = len(self.protocols)
            pairs = np.unique(rid[missing] * k + proto[missing])
            rs, ps = pairs // k, pairs % k
            looked: dict[tuple[int, ...], int] = {}
            ids = []
            for c, sv, port, vlan, p in zip(
                *self.rid_ends[rs].T.tolist(), ps.tolist(), strict=True
            ):
                key = (c, sv, port, vlan, p)
                cid = looked.get(key)
                if cid is None:
                    cid = looked[key] = self._conv_of(
                        self._ip(c), self._ip(sv), port, vlan, protocol=p
                    )
                ids.append(cid)
            self.rid_conv[rs, ps] = ids
            conv = self.rid_conv[rid, proto]
        return conv

    def seen_of(self, bits: int) -> set[str]:
        """The protocols of a slot's F_SEEN bits."""
        return {p for k, p in enumerate(self.protocols) if bits >> k & 1}

    def fold_protocol(self, decided: bool, bits: int) -> tuple[str, set[str]]:
        """The protocol a connection the kernel opened is counted under, and the others
        it carried operations of (listed with it), as the engine decides
        (``Analyzer._accumulate``)."""
        seen = self.seen_of(bits)
        protocol = self.protocol if decided else "unknown"
        if seen and protocol not in seen:
            protocol = min(seen)
        return protocol, seen - {protocol}

    def _conv_of(self, client: str, server: str, port: int, vlan: int, *, protocol: int = 0) -> int:
        a = self.a
        key = ("tcp", client, server, port, vlan, self.protocols[protocol])
        conv_id = a.conv_ids.get(key)
        if conv_id is None:
            conv_id = a.conv_ids[key] = a.store.conversation_id(*key)
        self.conv_keys[conv_id] = key
        return conv_id

    def release(self, conn: TcpConnection) -> None:
        """The engine folds ``conn``: settle it, hand it back, free its slot."""
        s = conn.slot
        if s in self.active:
            self.handover(s, None)
        self.absorb({s})
        for k1, k2 in self._keys(conn) or ():
            KF.table_delete(self.tk1, self.tk2, self.tv, k1, k2)
        self._free(s)
        conn.slot = -1
        conn.lane = None

    def _free(self, s: int) -> None:
        self.rid_tx.pop(int(self.st[s, T.F_RID]), None)
        self.active.discard(s)
        self.conns[s] = None
        self._drop_buffer(s)
        self.st[s] = 0
        self.free.append(s)

    def backoff(self, conn: TcpConnection, s: int) -> None:
        """A connection the kernel gave back is not taken again before it has sent
        BACKOFF_PACKETS << bounces more packets; a long steady run forgives bounces."""
        if self.rid_tx.get(int(self.st[s, T.F_RID]), 0) >= STEADY_TRANSACTIONS:
            conn.fast_bounces = 0
        conn.fast_bounces += 1
        shift = min(conn.fast_bounces, BACKOFF_MAX_DOUBLINGS)
        conn.fast_retry = sum(conn.stats.packets) + (BACKOFF_PACKETS << shift)

    # -- connections the kernel opened ---------------------------------------------------
    def _births(self, out: Any, n0: int) -> None:
        """Conversations and ports of the connections the last pass opened."""
        born = out.born[n0 : int(out.cnt[T.C_NBORN])]
        if not len(born):
            return
        self.born_count += len(born)
        rows = self.st[born]
        rid = rows[:, T.F_RID]
        self.rid_ends[rid] = rows[:, [T.F_CIP, T.F_SIP, T.F_SPORT, T.F_VLAN]]
        same = (rows[:, T.F_CIP] == rows[:, T.F_SIP]).astype(np.int64)
        self.rid_port[rid] = np.stack((rows[:, T.F_CPORT], rows[:, T.F_SPORT], same), axis=1)
        self.rid_tx.update(dict.fromkeys(rid.tolist(), 0))
        self.active.update(born.tolist())

    def materialize(self, s: int) -> TcpConnection:
        """The engine's connection for slot ``s``, which the kernel opened: what the
        engine would have built from the packets the kernel took (the decoder is resumed
        by the hand-over)."""
        row = self.st[s]
        ep = self.endpoints(s)
        stats = ConnStats(
            packets=[int(row[T.F_TPK]), int(row[T.F_TPK + 1])],
            bytes=[int(row[T.F_TBY]), int(row[T.F_TBY + 1])],
            first_ts=int(row[T.F_FIRST]),
            last_ts=int(row[T.F_LAST]),
        )
        vlan = int(row[T.F_VLAN])
        conn = TcpConnection(
            ep.client_ip, ep.client_port, ep.server_ip, ep.server_port, vlan, stats,
            oriented_by_syn=bool(row[T.F_SYN]),
        )  # fmt: skip
        if row[T.F_DECIDED]:
            conn.spec = self.spec
            conn.protocol = self.spec.name
            conn.decoder = self.spec.factory(conn.endpoints)
        fins = int(row[T.F_FINS])
        if fins:
            conn.closed = True
            conn.fins = fins
            if fins == 3:
                conn.finished_ts = int(row[T.F_CLOSED_TS])
                self.a.closing.append(conn)
        conn.seen_protocols.update(self.seen_of(int(row[T.F_SEEN])))
        row[T.F_FIN] = 0  # the connection has them now
        row[T.F_BORN] = 0
        conn.slot = s
        conn.lane = self.protocol
        self.conns[s] = conn
        self.a.tcp[(ep.client_ip, ep.client_port, ep.server_ip, ep.server_port, vlan)] = conn
        return conn

    def sweep_born(self, now: int) -> None:
        """Fold the connections the kernel opened that closed a while ago (or went
        silent), as the engine's sweep folds its own."""
        n = len(self.conns)
        if not n:
            return
        st = self.st[:n]
        born = st[:, T.F_BORN] == 1
        if not born.any():
            return
        closed = (st[:, T.F_FINS] == 3) & (now - st[:, T.F_CLOSED_TS] > LINGER_NS)
        idle = now - st[:, T.F_LAST] > T.IDLE_NS
        self.fold_many(np.flatnonzero(born & (closed | idle)))
        self._emit_flushed()

    def fold_many(self, slots: np.ndarray) -> None:
        """Add connections the kernel opened to their conversations and free their
        slots. What they still hold in flight becomes what the decoder makes of it when
        a connection ends (unanswered requests, an unconfirmed response), written from
        a template learned once (:meth:`_flush`), and skipped octets are reported as
        the decoder reports them at the end; a connection for which there is no such
        template ends in the engine. The rest are folded together, their counters
        summed per host and per conversation."""
        if not len(slots):
            return
        rows = self.st[slots]
        quiet = (rows[:, T.F_QN] == 0) & (rows[:, T.F_CARRY] == 0) & (rows[:, T.F_CARRY + 1] == 0)
        ended = quiet | (rows[:, T.F_DECIDED] != 0)  # a carry makes the decoder's end anyway
        ended &= (rows[:, T.F_CARRY] == 0) & (rows[:, T.F_CARRY + 1] == 0)
        for s in slots[ended & self.holds_bytes(rows)].tolist():
            self.end_held_bytes(s)
        if not quiet.all():
            held = ~quiet & (rows[:, T.F_CARRY] == 0) & (rows[:, T.F_CARRY + 1] == 0)
            held &= rows[:, T.F_DECIDED] != 0
            for s in self._flush_many(slots[held]):
                if not self._flush(s):  # (when written from their template: quiet now)
                    self._end_by_decoder(s)
            for s in slots[~quiet & ~held].tolist():
                self._end_by_decoder(s)
            slots = slots[self.st[slots, T.F_BORN] == 1]
            rows = self.st[slots]
            quiet = (rows[:, T.F_QN] == 0) & (rows[:, T.F_CARRY] == 0)
            quiet &= rows[:, T.F_CARRY + 1] == 0
        slots, rows = slots[quiet], rows[quiet]
        if not len(slots):
            return
        a = self.a
        for d in (0, 1):
            retx = int(rows[:, T.F_RETX + d].sum())
            if retx:  # as the engine reports them when it closes a connection
                a.problem_counts[_RETRANSMITTED[d]] += retx
        cip, sip = rows[:, T.F_CIP].tolist(), rows[:, T.F_SIP].tolist()
        vlan, first, last = (rows[:, f].tolist() for f in (T.F_VLAN, T.F_FIRST, T.F_LAST))
        hosts: dict[tuple[int, int, int, bool], list[int]] = {}
        for d in (0, 1):
            pk = rows[:, T.F_PK + d]
            sel = np.flatnonzero(pk).tolist()
            pkl = pk.tolist()
            smac, dmac = rows[:, T.F_SMAC + d].tolist(), rows[:, T.F_DMAC + d].tolist()
            for j in sel:
                src, dst = (cip[j], sip[j]) if d == 0 else (sip[j], cip[j])
                for key in ((src, vlan[j], smac[j], True), (dst, vlan[j], dmac[j], False)):
                    h = hosts.get(key)
                    if h is None:
                        hosts[key] = [first[j], last[j], pkl[j]]
                    else:
                        h[0] = min(h[0], first[j])
                        h[1] = max(h[1], last[j])
                        h[2] += pkl[j]
        tally = a.tally
        for (ip, v, mac, sending), (f, la, count) in hosts.items():
            tally.host(self._ip(ip), v, mac_str(mac) if mac else None, f, la, count, sending)
        self.add_conversations(rows)
        T.forget(self.st, slots, self.tk1, self.tk2, self.tv)
        for rid in rows[:, T.F_RID].tolist():
            self.rid_tx.pop(rid, None)
        listed = slots.tolist()
        self.bfree.extend(b for b in rows[:, T.F_BUF].tolist() if b)
        self.active.difference_update(listed)
        for s in listed:
            self.conns[s] = None
        self.st[slots] = 0
        self.free.extend(listed)

    def add_conversations(self, rows: np.ndarray) -> None:
        """Add connections the kernel opened (slot ``rows``) to their conversations'
        totals, as the engine counts a connection it folds (``Analyzer._accumulate``);
        the rows are only read (a sensor's checkpoint counts connections still open)."""
        a = self.a
        if not len(rows):
            return
        # Connections with the same ends and the same protocols seen are summed together
        # (a stable sort puts each group's first connection first; groups are told in
        # the order of their first connection, as one by one they would be).
        keys = rows[:, [T.F_CIP, T.F_SIP, T.F_SPORT, T.F_VLAN, T.F_DECIDED, T.F_SEEN]]
        order, starts = _groups(keys)
        sk, sr = keys[order], rows[order]
        sums = np.add.reduceat(sr[:, [T.F_TPK, T.F_TPK + 1, T.F_TBY, T.F_TBY + 1]], starts)
        firsts = np.minimum.reduceat(sr[:, T.F_FIRST], starts)
        lasts = np.maximum.reduceat(sr[:, T.F_LAST], starts)
        counts = np.diff(np.append(starts, len(sr)))
        kinds: dict[tuple[int, int], tuple[str, set[str]]] = {}
        convs: dict[tuple[int, int, int, int, str], list[int]] = {}
        for g in np.argsort(order[starts], kind="stable").tolist():
            c_ip, s_ip, port, vlan, decided, seen = sk[starts[g]].tolist()
            kind = kinds.get((decided, seen))
            if kind is None:
                kind = kinds[(decided, seen)] = self.fold_protocol(bool(decided), seen)
            protocol, others = kind
            first, last = int(firsts[g]), int(lasts[g])
            for other in others:
                okey = ("tcp", self._ip(c_ip), self._ip(s_ip), port, vlan, other)
                a.note_conversation(okey, first, last)
            ckey = (c_ip, s_ip, port, vlan, protocol)
            c = convs.get(ckey)
            if c is None:
                convs[ckey] = [int(counts[g]), *sums[g].tolist(), first, last]
            else:
                c[0] += int(counts[g])
                for k in range(4):
                    c[k + 1] += int(sums[g, k])
                c[5] = min(c[5], first)
                c[6] = max(c[6], last)
        for (c_ip, s_ip, p, v, protocol), c in convs.items():
            a.accumulate(("tcp", self._ip(c_ip), self._ip(s_ip), p, v, protocol), *c)

    def _evict_born(self, need: int) -> None:
        """At the slot cap: end the longest-silent connections the kernel opened (as
        the idle timeout would, only sooner), a fifth of the table at a time."""
        n = len(self.conns)
        st = self.st[:n]
        born = np.flatnonzero(st[:, T.F_BORN] == 1)
        if not len(born):
            return
        k = min(len(born), max(need, n // 5))
        oldest = born[np.argsort(st[born, T.F_LAST], kind="stable")[:k]]
        self.evicted += len(oldest)
        self.fold_many(oldest)
        self._emit_flushed()

    def _end_by_decoder(self, s: int) -> None:
        """A connection the kernel opened ends holding what no template writes: it
        becomes an engine connection, whose decoder ends it, and the engine folds it."""
        self.handovers[HELD_AT_END] += 1
        self.handover(s, None)
        conn = self.conns[s]
        if conn is not None:
            self.a._fold(conn)

    def _flush(self, s: int) -> bool:
        """The messages slot ``s`` holds at the end of its connection, written from
        their *flush* template (learned from the decoder's ``finish()`` the first time
        their shape is seen); False when there is none.

        Connections end alike, holding alike messages (a poll whose answer never came):
        where the shape depends on the bytes alone, the template and holes found for
        the same messages before are reused; only their frames and times are new."""
        row = self.st[s]
        qn = int(row[T.F_QN])
        if qn == 0:
            return True
        if qn > T.MAX_MSGS:
            return False
        q = self.qm[s, :qn, : T.Q_DIR + 1]
        held, key = self._held(self.raw[self.buffer(s)], q)
        known = self._flushes.get(key) if key is not None else None
        if known is not None:
            xrow, lh, lv = known
            xrow = xrow.copy()
            xrow[KS.X_F : KS.X_F + 2 * T.MAX_MSGS] = _frame_columns(q[None], np.array([qn]))[0]
            t = int(xrow[KS.X_TMPL])
        else:
            ex = self.shape(held, s, flush=True)
            if not len(ex.norm):
                return False
            t = self.store.find(ex.norm)
            if t == -1:
                t = learning.learn(self, s, held, flush=True, ex=ex)
            if t < 0:
                return False
            xrow, lh, lv = ex.xrow.copy(), ex.lh, ex.lv
            xrow[KS.X_TMPL] = t
            if key is not None:  # (a template once found stays: find gives it again)
                if len(self._flushes) >= FLUSH_MEMO:
                    self._flushes.clear()
                self._flushes[key] = (xrow.copy(), lh, lv)
        xrow[KS.X_RID] = row[T.F_RID]
        self._flushed.append((xrow, lh, lv))
        row[T.F_QN] = 0
        row[T.F_QUSED] = 0
        row[T.F_TTX] += 1
        row[T.F_SEEN] |= 1 << self.store.t_proto[t]
        return True

    def _held(
        self, raw: np.ndarray, q: np.ndarray
    ) -> tuple[list[tuple[int, bytes, int, int]], tuple[Any, ...] | None]:
        """The messages ``q`` (kept-message rows into the buffer row ``raw``) and their
        key in the flush memo (None: not remembered)."""
        held = [(d, raw[off : off + n].tobytes(), frame, ts) for off, n, frame, ts, d in q.tolist()]
        if self.shape_reads_row or sum(len(m[1]) for m in held) > FLUSH_MEMO_BYTES:
            return held, None
        return held, tuple((m[0], m[1]) for m in held)

    def _flush_many(self, slots: np.ndarray) -> list[int]:
        """:meth:`_flush` for many slots at once where the flush of the same messages
        was found before and has no list holes (connections that end alike); returns
        the other slots, for :meth:`_flush` one by one."""
        if self.shape_reads_row or not len(slots):
            return slots.tolist()
        st = self.st
        qn = st[slots, T.F_QN]
        held = self.qm[slots, : T.MAX_MSGS, : T.Q_DIR + 1]
        raws = [self.raw[b] for b in st[slots, T.F_BUF].tolist()]
        rest: list[int] = []
        found: list[int] = []
        rows: list[np.ndarray] = []
        for j, s in enumerate(slots.tolist()):
            n = int(qn[j])
            key = self._held(raws[j], held[j, :n])[1] if n <= T.MAX_MSGS else None
            known = self._flushes.get(key) if key is not None else None
            if known is None or known[0][KS.X_LN]:
                rest.append(s)
                continue
            found.append(j)
            rows.append(known[0])
        if not found:
            return rest
        at = np.array(found, np.int64)
        xs = np.stack(rows)  # a copy
        xs[:, KS.X_F : KS.X_F + 2 * T.MAX_MSGS] = _frame_columns(held[at], qn[at])
        done = slots[at]
        xs[:, KS.X_RID] = st[done, T.F_RID]
        self._flushed_rows.append(xs)
        st[done, T.F_QN] = 0
        st[done, T.F_QUSED] = 0
        st[done, T.F_TTX] += 1
        st[done, T.F_SEEN] |= 1 << self.store.protocols()[xs[:, KS.X_TMPL]]
        return rest

    def _emit_flushed(self) -> None:
        """Operations of the flushes of the last sweep, as one output batch."""
        if self._flushed_rows:
            xs = np.concatenate(self._flushed_rows)
            self._flushed_rows = []
            self.tx_bulk += len(xs)
            xs[:, KS.X_LH] = 0
            _emit.emit(self, xs, np.zeros((1, 2), np.int64), np.zeros(1, np.int64))
        if not self._flushed:
            return
        rows: list[np.ndarray] = []
        holes: list[tuple[int, int]] = []
        values: list[np.ndarray] = []
        nv = 0
        for xrow, lh, lv in self._flushed:
            row = xrow.copy()
            row[KS.X_LH] = len(holes)
            first, count = int(xrow[KS.X_LH]), int(xrow[KS.X_LN])
            for at, n in lh[first : first + count].tolist():
                holes.append((nv, n))
                values.append(lv[at : at + n])
                nv += n
            rows.append(row)
        self._flushed = []
        self.tx_bulk += len(rows)
        _emit.emit(
            self,
            np.stack(rows),
            np.array(holes or [(0, 0)], np.int64),
            np.concatenate(values) if nv else np.zeros(1, np.int64),
        )

    # -- hand-over -------------------------------------------------------------------------
    def handover(self, s: int, blk: Any) -> None:
        """Give slot ``s`` back to its decoder, exactly where the kernel left it: the
        messages it kept, the carries and (``blk``) the rest of the packet it stopped in."""
        self.absorb({s})
        row = self.st[s]
        conn = self.materialize(s) if row[T.F_BORN] else self.conns[s]
        assert conn is not None
        row[T.F_FAST] = 0
        self.active.discard(s)
        why = int(row[T.F_WHY])
        if why:
            self.handovers[WHY_NAMES.get(why, str(why))] += 1
            # A new connection, or one whose first data the kernel left the engine to
            # identify (S7 defers to MMS until the first COTP data), is no bounce.
            if why not in (T.WHY_NEW, T.WHY_UNDECIDED):
                self.backoff(conn, s)
            row[T.F_WHY] = 0
        for d in (0, 1):
            if not int(row[T.F_KNOWN]) & (1 << d):
                continue  # no data seen that way: the reassembler starts where it comes
            events = conn.reasm[d].sync_to(int(row[T.F_NEXT + d]))
            if events:  # cannot happen for a clean reassembler; kept for safety
                self.a._stream(conn, d, events)
        pending = []
        for k in range(int(row[T.F_QN])):
            off, n, frame, ts, d = (int(x) for x in self.qm[s, k, : T.Q_DIR + 1])
            b = self.buffer(s)
            pending.append(Pending(d, self.raw[b, off : off + n].tobytes(), frame, ts))
        pending += self.held_bytes(s)
        i = int(row[T.F_PEND])
        last = int(row[T.F_PEND_D]) if i >= 0 else 1
        for d in (1 - last, last):
            n = int(row[T.F_CARRY + d])
            if n:
                frame, ts = int(row[T.F_CFRAME + d]), int(row[T.F_CTS + d])
                b = self.buffer(s)
                pending.append(Pending(d, self.carry[b, d, :n].tobytes(), frame, ts))
        if i >= 0 and blk is not None:
            start, end = int(row[T.F_PEND_P]), int(blk.poff[i] + blk.plen[i])
            if end > start:
                data = blk.buf[start:end].tobytes()
                pending.append(Pending(last, data, blk.first_frame + i, int(blk.ts[i])))
        state = self.resume_state(s)
        self._drop_buffer(s)
        row[T.F_QN : T.F_QUSED + 1] = 0
        row[T.F_STATE] = 0
        row[T.F_CARRY : T.F_CARRY + 2] = 0
        row[T.F_PEND] = -1
        dec: Any = conn.decoder
        if dec is None:
            # A connection whose protocol the engine is yet to identify (S7 holds the
            # ISO-on-TCP set-up MMS shares): what the kernel held is its first data.
            pending.sort(key=lambda m: m.frame)
            for m in pending:
                self.a._stream(conn, m.direction, [StreamData(m.data, m.frame, m.ts_ns)])
            return
        dec.resume(state, pending)
        self.a._events(conn, dec.events())

    def close(self) -> None:
        """End of the capture: fold what the kernel opened, hand back the rest."""
        self.fold_many(np.flatnonzero(self.st[: len(self.conns), T.F_BORN] == 1))
        self._emit_flushed()
        for s in list(self.active):
            self.handover(s, None)
        _emit.settle(self)

    # -- blocks --------------------------------------------------------------------------
    def begin_block(self, n: int) -> Any:
        """The output buffers for a block of ``n`` packets: fixed in size (a pass stops
        early when they fill up, and the lane drains them), but for the lists of slots
        it gave back and opened, which hold one per packet at most."""
        if self._out is None:
            self._out = Out(
                np.empty((self.out_transactions, KS.X_FIELDS), np.int64),
                np.empty((OUT_LISTS, 2), np.int64),
                np.empty(OUT_VALUES, np.int64),
                np.zeros(T.N_COUNTERS, np.int64),
                np.empty(n + 1, np.int64),
                np.empty((OUT_MISSES, KS.M_FIELDS), np.int64),
                np.empty(OUT_MISS_BYTES, np.uint8),
                np.empty(n + 1, np.int64),
                np.empty((OUT_PROBLEMS, T.PR_FIELDS), np.int64),
            )
        if len(self._out.slowed) < n + 1:
            size = 2 * n + 2
            self._out = self._out._replace(
                slowed=np.empty(size, np.int64), born=np.empty(size, np.int64)
            )
        self._out.cnt[:] = 0
        return self._out

    def _lend(self, packets: int, now: int) -> int:
        """Free slots, registration ids and table room for the connections a pass over
        ``packets`` packets may open; returns how many slots it lends. Short of slots or
        buffer rows, the connections that closed or went silent before ``now`` (the
        pass's first packet) are folded first: a capture of many short connections
        would otherwise hold every one of a block's until the block ends."""
        want = min(packets, LEND_SLOTS)
        if len(self.free) < want or len(self.bfree) < LEND_BUFFERS:
            self.sweep_born(now)
        while len(self.free) < want:
            if self.max_slots and len(self.st) >= self.max_slots:
                self._evict_born(want - len(self.free))
                want = min(want, len(self.free))
                break
            size = 2 * len(self.st)
            self._grow(min(size, self.max_slots) if self.max_slots else size)
        self._table_room(2 * want)
        self._rid_room(self.rids + want)
        lent = self.free[-want:] if want else []
        self.freelist[: len(lent)] = lent
        ctl = self.ctl
        ctl[T.CTL_FREE] = len(lent)
        ctl[T.CTL_RID] = self.rids
        ctl[T.CTL_ROOM] = 2 * want
        ctl[T.CTL_USED] = 0
        while len(self.bfree) < LEND_BUFFERS and len(self.raw) <= MAX_BUFFERS:
            self._grow_buffers(min(2 * len(self.raw), MAX_BUFFERS + 1))
        if len(self.bfree) < LEND_BUFFERS:  # at the cap: take back what idle slots hold
            self._release_buffers()
        n = min(LEND_BUFFERS, len(self.bfree))
        self.bufs[:n] = self.bfree[len(self.bfree) - n :]
        self._lent_buffers = n
        ctl[T.CTL_BFREE] = n
        ctl[T.CTL_BCAP] = int(n < LEND_BUFFERS)  # at the cap: no more to lend
        return len(lent)

    def _settle_loan(self, lent: int) -> None:
        used = lent - int(self.ctl[T.CTL_FREE])
        if used:
            del self.free[-used:]
        used = self._lent_buffers - int(self.ctl[T.CTL_BFREE])
        if used:
            del self.bfree[-used:]
        self.rids = int(self.ctl[T.CTL_RID])
        self.table_used += int(self.ctl[T.CTL_USED])

    def run(self, blk: Any, lo: int, hi: int, out: Any) -> int:
        """The kernel over packets ``lo..hi-1``, then the connections it opened, new
        templates and hand-overs; returns where the kernel stopped (before ``hi`` when the
        output filled up)."""
        cnt = out.cnt
        sl0, miss0, born0 = int(cnt[T.C_NSL]), int(cnt[T.C_NMISS]), int(cnt[T.C_NBORN])
        lent = self._lend(hi - lo, int(blk.ts[lo]))
        stop = int(type(self).pass_fn(blk, self.slots(), self.shapes(), out, lo, hi))
        self._settle_loan(lent)
        self._births(out, born0)
        if cnt[T.C_NPROB]:
            self._problems(out.probs[: int(cnt[T.C_NPROB])])
            cnt[T.C_NPROB] = 0
        for row in out.miss[miss0 : int(cnt[T.C_NMISS])]:
            s, nk = int(row[0]), int(row[2])
            if s in self.active:
                messages = []
                for k in range(nk):
                    at, n, frame, ts, d = (
                        int(x) for x in row[KS.M_MSG + 5 * k : KS.M_MSG + 5 * k + 5]
                    )
                    messages.append((d, out.mb[at : at + n].tobytes(), frame, ts))
                learning.learn(self, s, messages, flush=self.learns_as_flush(messages))
        for s in dict.fromkeys(out.slowed[sl0 : int(cnt[T.C_NSL])].tolist()):
            if s in self.active:
                self.handover(s, blk)
        if stop < hi:
            self.drain(out)
        return stop

    def _problems(self, rows: np.ndarray) -> None:
        """Decode problems the kernel reported, as the decoder reports them (with its
        connection's client and server)."""
        layer = self.spec.name
        out = []
        for rid, frame, kind, n in rows.tolist():
            c_ip, s_ip = (int(v) for v in self.rid_ends[rid, :2])
            reason = self.problem_text(kind, n)
            out.append((frame, layer, layer, reason, self._ip(c_ip), self._ip(s_ip)))
        self.a.add_problems(out)

    def problem_text(self, kind: int, n: int) -> str:
        """The decoder's words for a problem the kernel reported (``PR_KIND``, ``PR_N``)."""
        raise NotImplementedError(f"{self.protocol}: problem {kind}")

    def drain(self, out: Any) -> None:
        """Turn what the passes finished into operations and counters, and empty the
        output buffers."""
        self.absorb(self._counted())
        n = int(out.cnt[T.C_NX])
        if n:
            self.tx_bulk += n
            _emit.emit(self, out.xo[:n], out.lh, out.lv)
        out.cnt[:] = 0

    def _counted(self) -> list[int]:
        """Slots whose kernel counters hold something not absorbed yet."""
        st = self.st[: len(self.conns)]
        counters = st[:, T.F_NTX] | st[:, T.F_FIN]
        for f in (T.F_PK, T.F_PK + 1, T.F_RETX, T.F_RETX + 1):
            counters = counters | st[:, f]
        return np.flatnonzero(counters).tolist()

    def end_block(self, out: Any) -> None:
        self.drain(out)
        self._release_buffers()

    def _release_buffers(self) -> None:
        """Buffer rows of slots that hold nothing now (no message in flight, no carry,
        no protocol state kept there) go back: a connection between transactions, or
        one that stays open and silent, costs its slot row alone."""
        n = len(self.conns)
        st = self.st[:n]
        idle = (
            (st[:, T.F_BUF] != 0)
            & (st[:, T.F_QN] == 0)
            & (st[:, T.F_CARRY] == 0)
            & (st[:, T.F_CARRY + 1] == 0)
            & ~self.holds_state(st)
        )
        rows = np.flatnonzero(idle)
        if len(rows):
            self.bfree.extend(st[rows, T.F_BUF].tolist())
            st[rows, T.F_BUF] = 0
            st[rows, T.F_QUSED] = 0

    def holds_state(self, st: np.ndarray) -> np.ndarray:
        """Per slot row: whether it keeps protocol state in its buffer row (beyond the
        messages in flight)."""
        return np.zeros(len(st), bool)

    # -- accounting ----------------------------------------------------------------------
    def absorb(self, slots: Iterable[int]) -> None:
        """Move the kernel's per-slot counters into the connection (or, for one the
        kernel opened, its totals) and the tally."""
        a = self.a
        tally = a.tally
        slots = [s for s in slots if 0 <= s < len(self.conns)]
        if len(slots) > _ABSORB_TOGETHER:
            conns = self.conns
            apart = [s for s in slots if conns[s] is not None]
            together = np.setdiff1d(np.asarray(slots, np.int64), apart)
            together = together[self.st[together, T.F_BORN] == 1]
            self._absorb_born(together)
            slots = apart
        for s in slots:
            row = self.st[s]
            conn = self.conns[s]
            born = row[T.F_BORN] == 1
            if conn is None and not born:
                continue
            ntx = int(row[T.F_NTX])
            if ntx:
                row[T.F_TTX] += ntx
                if conn is not None:
                    conn.seen_protocols.update(self.seen_of(int(row[T.F_SEEN])))
                rid = int(row[T.F_RID])
                self.rid_tx[rid] = self.rid_tx.get(rid, 0) + ntx
                row[T.F_NTX] = 0
            for d in (0, 1):
                retx = int(row[T.F_RETX + d])
                if retx:
                    if conn is not None:
                        conn.reasm[d].retransmitted += retx
                    else:  # as the engine reports them when it closes a connection
                        a.problem_counts[_RETRANSMITTED[d]] += retx
                    row[T.F_RETX + d] = 0
            pk = (int(row[T.F_PK]), int(row[T.F_PK + 1]))
            if pk[0] or pk[1]:
                last = int(row[T.F_LAST])
                if conn is not None:
                    st = conn.stats
                    for d in (0, 1):
                        st.packets[d] += pk[d]
                        st.bytes[d] += int(row[T.F_BY + d])
                    if last > st.last_ts:
                        st.last_ts = last
                    ends = (conn.client_ip, conn.server_ip)
                    vlan = conn.vlan
                    first = last
                else:
                    ends = (self._ip(int(row[T.F_CIP])), self._ip(int(row[T.F_SIP])))
                    vlan = int(row[T.F_VLAN])
                    first = int(row[T.F_FIRST])
                for d in (0, 1):
                    if not pk[d]:
                        continue
                    src, dst = ends if d == 0 else (ends[1], ends[0])
                    smac, dmac = int(row[T.F_SMAC + d]), int(row[T.F_DMAC + d])
                    tally.host(src, vlan, mac_str(smac) if smac else None, first, last, pk[d], True)
                    tally.host(
                        dst, vlan, mac_str(dmac) if dmac else None, first, last, pk[d], False
                    )
                row[T.F_PK : T.F_PK + 2] = 0
                row[T.F_BY : T.F_BY + 2] = 0
            fins = int(row[T.F_FIN])
            if fins and conn is not None:
                conn.closed = True
                conn.fins |= fins
                if conn.fins == 3 and conn.finished_ts is None:
                    conn.finished_ts = int(row[T.F_FIN_TS])
                    a.closing.append(conn)
                row[T.F_FIN] = 0

    def _absorb_born(self, rows: np.ndarray) -> None:
        """:meth:`absorb` for slots the kernel opened and the engine never held, all at
        once: a capture of many short connections has thousands in one drain, mostly
        between the same two hosts. Hosts are told in the order the one-by-one loop
        would tell them (a host's first MAC stays first)."""
        if not len(rows):
            return
        st = self.st
        a = self.a
        r = st[rows]
        ntx = r[:, T.F_NTX]
        has = ntx != 0
        if has.any():
            st[rows[has], T.F_TTX] += ntx[has]
            rid_tx = self.rid_tx
            for rid, n in zip(r[has, T.F_RID].tolist(), ntx[has].tolist(), strict=True):
                rid_tx[rid] = rid_tx.get(rid, 0) + n
        for d in (0, 1):
            retx = int(r[:, T.F_RETX + d].sum())
            if retx:
                a.problem_counts[_RETRANSMITTED[d]] += retx
        # Four host records per slot, in the loop's order: (ip, vlan, mac, sending),
        # first, last and packets; those of a direction without packets are left out.
        n = len(rows)
        keys = np.empty((n, 4, 4), np.int64)
        vals = np.empty((n, 4, 3), np.int64)
        pos = 0
        for d in (0, 1):
            src, dst = (T.F_CIP, T.F_SIP) if d == 0 else (T.F_SIP, T.F_CIP)
            for ip, mac, sending in ((src, T.F_SMAC + d, 1), (dst, T.F_DMAC + d, 0)):
                keys[:, pos] = np.stack(
                    (r[:, ip], r[:, T.F_VLAN], r[:, mac], np.full(n, sending)), axis=1
                )
                vals[:, pos] = np.stack((r[:, T.F_FIRST], r[:, T.F_LAST], r[:, T.F_PK + d]), 1)
                pos += 1
        flat_keys, flat_vals = keys.reshape(-1, 4), vals.reshape(-1, 3)
        kept = flat_vals[:, 2] != 0
        hk, hv = flat_keys[kept], flat_vals[kept]
        if len(hk):
            order, starts = _groups(hk)
            uniq, first_at = hk[order][starts], order[starts]
            sv = hv[order]
            lo = np.minimum.reduceat(sv[:, 0], starts)
            hi = np.maximum.reduceat(sv[:, 1], starts)
            count = np.add.reduceat(sv[:, 2], starts)
            tally = a.tally
            for g in np.argsort(first_at, kind="stable").tolist():
                ip, vlan, mac, sending = (int(x) for x in uniq[g])
                tally.host(
                    self._ip(ip), vlan, mac_str(mac) if mac else None, int(lo[g]), int(hi[g]),
                    int(count[g]), bool(sending),
                )  # fmt: skip
        for f in (T.F_NTX, T.F_RETX, T.F_RETX + 1, T.F_PK, T.F_PK + 1, T.F_BY, T.F_BY + 1):
            st[rows, f] = 0


__all__ = ["WHY_NAMES", "Lane", "ip_u32", "mac_str"]


def _frame_columns(held: np.ndarray, qn: np.ndarray) -> np.ndarray:
    """A transaction row's frame and time columns (``X_F``...) for kept-message rows
    ``held[j, :qn[j]]``: the last message's repeated past the messages it has."""
    pick = np.minimum(np.arange(T.MAX_MSGS)[None, :], qn[:, None] - 1)
    frames = held[np.arange(len(held))[:, None], pick][:, :, T.Q_FRAME : T.Q_TS + 1]
    return frames.reshape(len(held), -1)
