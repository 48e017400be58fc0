"""A lane: the connections of one protocol that the fast path carries.

The per-packet engine decides what every connection speaks and decodes everything
unusual. When a connection of a lane's protocol is quiet (its decoder
:meth:`~otconduit.protocols.base.Resumable.quiescent`), the lane registers it in a slot,
with the state its decoder exports, and the lane's kernel takes its next packets: TCP
in order, retransmissions and keep-alives, messages split over segments or several in
one (``kernels.slots``), transactions paired and written from templates
(``kernels.shapes``). What the kernel cannot take ends the run at that message: the
lane hands the connection back (:meth:`Lane.handover`): its decoder resumes with the
state the kernel changed and the bytes it held, and decodes that message itself.

A transaction shape the lane has no template for is learned from that hand-over's
exemplar (:meth:`Lane.learn`), so the next one of its shape stays in the kernel. A
connection handed back for any other reason waits a while before it is taken again,
longer each time it bounces (:meth:`Lane.backoff`); every hand-over is counted by
reason (``stats.handovers`` of the capture).
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.engine import Analyzer
from otconduit.analysis.fastpath import emit as _emit
from otconduit.analysis.fastpath.arrays import Out, Shapes, Slots
from otconduit.analysis.fastpath.kernels import flowtable as _kf
from otconduit.analysis.fastpath.kernels import shapes as _ks
from otconduit.analysis.fastpath.kernels import slots as _kt
from otconduit.analysis.fastpath.templates import (
    ClaimTemplate,
    Hole,
    OpTemplate,
    TemplateStore,
    detail_text,
)
from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.base import DecoderEvent, Pending
from otconduit.protocols.events import Malformed
from otconduit.store.opchunks import NULL, OpBatch, from_operations, ragged_lists
from otconduit.store.tdetails import TemplatedDetails

KF: Any = _kf
KS: Any = _ks
T: Any = _kt

WHY_NAMES = {
    T.WHY_SYN: "syn_or_rst",
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
}
BACKOFF_PACKETS = 8  # a bounced connection's own packets before it is taken again ...
BACKOFF_MAX_DOUBLINGS = 12  # ... doubling with each bounce, up to 8 << 12 = 32,768
STEADY_TRANSACTIONS = 256  # a run this long in the kernel forgives earlier bounces


def ip_u32(ip: str) -> int | None:
    parts = ip.split(".")
    if len(parts) != 4:
        return None
    a, b, c, d = (int(x) for x in parts)
    return (a << 24) | (b << 16) | (c << 8) | d


def mac_str(v: int) -> str:
    raw = (v - 1).to_bytes(6, "big")
    return ":".join(f"{x:02x}" for x in raw)


@dataclass(slots=True)
class Exemplar:
    """A transaction the kernel had no template for: its messages, shape and holes."""

    messages: list[tuple[int, bytes, int, int]]  # (direction, bytes, frame, ts_ns)
    norm: np.ndarray
    xrow: np.ndarray
    lh: np.ndarray
    lv: np.ndarray

    def ints(self, k: int) -> int:
        return int(self.xrow[KS.X_INT + k])

    def lists(self) -> list[tuple[int, ...]]:
        base = int(self.xrow[KS.X_LH])
        out = []
        for r in range(base, base + int(self.xrow[KS.X_LN])):
            off, n = int(self.lh[r, 0]), int(self.lh[r, 1])
            out.append(tuple(int(v) for v in self.lv[off : off + n]))
        return out


class Lane:
    """Slots, kernel passes, hand-overs, learning and output for one protocol."""

    protocol: ClassVar[str]  # the connection protocol this lane takes (conn.protocol)
    op_protocol: ClassVar[str]  # the protocol of the operations it writes
    # numba kernels: the pass over a sub-block, and the shape of one transaction
    # (``shape_fn(raw_row, tq, qn, st_row, norm, xrow, lh, lv, cnt) -> shape length``).
    pass_fn: ClassVar[Any]
    shape_fn: ClassVar[Any]

    def __init__(self, analyzer: Analyzer, *, slots: int = 64) -> None:
        self.a = analyzer
        self.conns: list[TcpConnection | None] = []
        self.free: list[int] = []
        self.active: set[int] = set()
        self.dirty: set[int] = set()
        self.store = TemplateStore()
        # Per registration id: conversation, and (client port, server port, same ip).
        self.rid_conv = np.zeros(64, np.int64)
        self.rid_port = np.zeros((64, 3), np.int64)
        self.rids = 0
        self.rid_tx: dict[int, int] = {}  # transactions taken per live registration
        self.conv_keys: dict[int, tuple[str, str, str, int, int, str]] = {}
        self.claimed: set[tuple[int, int]] = set()  # (conversation, template) claims made
        self.acc_keys: list[np.ndarray] = []
        self.acc_counts: list[np.ndarray] = []
        self.acc_size = 0
        self.tx_bulk = 0
        self.handovers: Counter[str] = Counter()
        self.st = np.zeros((0, T.N_FIELDS), np.int64)
        self.qm = np.zeros((0, T.MAX_KEPT, T.Q_FIELDS), np.int64)
        self.raw = np.zeros((0, T.RAW_BYTES + T.RAW_EXTRA), np.uint8)
        self.carry = np.zeros((0, 2, T.CARRY), np.uint8)
        self._grow(slots)
        self.tk1 = np.zeros(4 * slots, np.int64)
        self.tk2 = np.zeros(4 * slots, np.int64)
        self.tv = np.full(4 * slots, -1, np.int64)
        self.table_used = 0
        self.norm = np.zeros(6 * T.RAW_BYTES, np.uint8)  # shapes, then kernel scratch
        self.ports = np.full(4, -1, np.int64)  # server ports of the lane's connections
        self._out: dict[str, np.ndarray] = {}

    # -- protocol hooks ------------------------------------------------------------------
    def eligible(self, conn: TcpConnection) -> bool:
        """Whether the kernel can carry on from ``conn``'s decoder as it stands."""
        dec: Any = conn.decoder
        return dec is not None and dec.quiescent()

    def prepare(self, row: np.ndarray, state: Any) -> list[tuple[Pending, int, int]]:
        """Put the exported protocol state into the slot row (``st[s, F_P:]``); returns
        the messages in flight the kernel must keep, with their pairing keys."""
        return []

    def resume_state(self, conn: TcpConnection, s: int) -> Any:
        """What the kernel changed of the protocol state, for the decoder's resume()."""
        return None

    def frame_roles(self, ex: Exemplar) -> tuple[int, int]:
        """Which messages are the request and the response (-1: none)."""
        return 0, 1

    def holes(self, op: Operation, ex: Exemplar) -> dict[str, Any] | None:
        """The fields of ``op`` that come from the transaction's holes (``tid``,
        ``unit``, ``address``, ``quantity``, ``values``, ``response_values``: a Hole;
        ``detail``: the detail with Holes in it); None when the operation does not fit
        the lane's holes."""
        raise NotImplementedError

    # -- bundles for the kernels -------------------------------------------------------
    def slots(self) -> Any:
        return Slots(
            self.tk1, self.tk2, self.tv, self.ports, self.st, self.qm, self.raw, self.carry
        )

    def shapes(self) -> Any:
        s = self.store
        return Shapes(s.th, s.tinfo, s.tnorm, self.norm)

    def shape(self, messages: list[tuple[int, bytes, int, int]], s: int) -> Exemplar:
        """Shape and holes of ``messages`` (a transaction of slot ``s``) as the kernel
        computes them (empty shape: not a transaction of this lane)."""
        raw = np.frombuffer(b"".join(m[1] for m in messages), np.uint8).copy()
        tq = np.zeros((T.MAX_MSGS, T.Q_FIELDS), np.int64)
        off = 0
        for k, (d, data, frame, ts) in enumerate(messages):
            tq[k, T.Q_OFF : T.Q_DIR + 1] = (off, len(data), frame, ts, d)
            off += len(data)
        xrow = np.zeros(KS.X_FIELDS, np.int64)
        lh = np.zeros((520, 2), np.int64)
        lv = np.zeros(8 * T.RAW_BYTES, np.int64)
        cnt = np.zeros(T.N_COUNTERS, np.int64)
        fn = type(self).shape_fn
        size = int(fn(raw, tq, len(messages), self.st[s].copy(), self.norm, xrow, lh, lv, cnt))
        for k in range(T.MAX_MSGS):
            _, _, frame, ts = messages[min(k, len(messages) - 1)]
            xrow[KS.X_F + 2 * k], xrow[KS.X_F + 2 * k + 1] = frame, ts
        norm = self.norm[: max(size, 0)].copy()
        return Exemplar(messages, norm, xrow, lh, lv)

    # -- slots -------------------------------------------------------------------------
    def _grow(self, n: int) -> None:
        for name, extra in (
            ("st", (T.N_FIELDS,)),
            ("qm", (T.MAX_KEPT, T.Q_FIELDS)),
            ("raw", (T.RAW_BYTES + T.RAW_EXTRA,)),
            ("carry", (2, T.CARRY)),
        ):
            old = getattr(self, name)
            arr = np.zeros((n, *extra), old.dtype)
            arr[: len(old)] = old
            setattr(self, name, arr)

    def _table_put(self, k1: int, k2: int, value: int) -> None:
        if 2 * (self.table_used + 1) > len(self.tv):
            live = np.flatnonzero(self.tv >= 0)
            keys = [(int(self.tk1[i]), int(self.tk2[i]), int(self.tv[i])) for i in live]
            size = len(self.tv) * (4 if 4 * len(keys) > len(self.tv) else 1)
            self.tk1 = np.zeros(size, np.int64)
            self.tk2 = np.zeros(size, np.int64)
            self.tv = np.full(size, -1, np.int64)
            for a, b, v in keys:
                KF.table_insert(self.tk1, self.tk2, self.tv, a, b, v)
            self.table_used = len(keys)
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

    def ready(self, conn: TcpConnection) -> bool:
        """Whether ``conn`` may be registered now: not bouncing, clean TCP state, a
        quiet decoder."""
        if conn.closed or sum(conn.stats.packets) < conn.fast_retry:
            return False
        if not all(r.clean and r.next_seq is not None for r in conn.reasm):
            return False
        return self._keys(conn) is not None and self.eligible(conn)

    def register(self, conn: TcpConnection) -> bool:
        keys = self._keys(conn)
        dec: Any = conn.decoder
        if keys is None or dec is None:
            return False
        if conn.slot < 0:
            if self.free:
                conn.slot = self.free.pop()
                self.conns[conn.slot] = conn
            else:
                if len(self.conns) == len(self.st):
                    self._grow(2 * len(self.st))
                conn.slot = len(self.conns)
                self.conns.append(conn)
        s = conn.slot
        for d, (k1, k2) in enumerate(keys):
            self._table_put(k1, k2, 2 * s + d)
        row = self.st[s]
        row[:] = 0
        for d in (0, 1):
            row[T.F_NEXT + d] = conn.reasm[d].next_seq
        row[T.F_LAST] = conn.stats.last_ts
        row[T.F_PEND] = -1
        rid = row[T.F_RID] = self.rids
        if rid == len(self.rid_conv):
            self.rid_conv = np.concatenate([self.rid_conv, np.zeros_like(self.rid_conv)])
            self.rid_port = np.concatenate([self.rid_port, np.zeros_like(self.rid_port)])
        self.rids += 1
        self.rid_conv[rid] = self._conv_of(conn)
        same = int(conn.client_ip == conn.server_ip)
        self.rid_port[rid] = (conn.client_port, conn.server_port, same)
        self.rid_tx[rid] = 0
        used = 0
        for k, (p, key, key2) in enumerate(self.prepare(row, dec.export_state())):
            n = len(p.data)
            self.raw[s, used : used + n] = np.frombuffer(p.data, np.uint8)
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
        self.dirty.add(s)
        return True

    def _conv_of(self, conn: TcpConnection) -> int:
        a = self.a
        key = ("tcp", conn.client_ip, conn.server_ip, conn.server_port, conn.vlan, self.op_protocol)
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
        self.rid_tx.pop(int(self.st[s, T.F_RID]), None)
        self.conns[s] = None
        self.free.append(s)
        conn.slot = -1

    def backoff(self, conn: TcpConnection, s: int) -> None:
        """A connection the kernel gave back is not taken again before it has sent
        BACKOFF_PACKETS << bounces more packets; a long steady run forgives bounces."""
        if self.rid_tx.get(int(self.st[s, T.F_RID]), 0) >= STEADY_TRANSACTIONS:
            conn.fast_bounces = 0
        conn.fast_bounces += 1
        shift = min(conn.fast_bounces, BACKOFF_MAX_DOUBLINGS)
        conn.fast_retry = sum(conn.stats.packets) + (BACKOFF_PACKETS << shift)

    def handover(self, s: int, blk: Any) -> None:
        """Give slot ``s`` back to its decoder, exactly where the kernel left it: the
        messages it kept, the carries and (``blk``) the rest of the packet it stopped in."""
        conn = self.conns[s]
        assert conn is not None
        self.absorb({s})
        row = self.st[s]
        row[T.F_FAST] = 0
        self.active.discard(s)
        why = int(row[T.F_WHY])
        if why:
            self.handovers[WHY_NAMES.get(why, str(why))] += 1
            if why != T.WHY_NEW:
                self.backoff(conn, s)
            row[T.F_WHY] = 0
        for d in (0, 1):
            events = conn.reasm[d].sync_to(int(row[T.F_NEXT + d]))
            if events:  # cannot happen for a clean reassembler; kept for safety
                self.a._stream(conn, d, events)
        pending = []
        for k in range(int(row[T.F_QN])):
            off, n, frame, ts, d = (int(x) for x in self.qm[s, k, : T.Q_DIR + 1])
            pending.append(Pending(d, self.raw[s, off : off + n].tobytes(), frame, ts))
        i = int(row[T.F_PEND])
        last = int(row[T.F_PEND_D]) if i >= 0 else 1
        for d in (1 - last, last):
            n = int(row[T.F_CARRY + d])
            if n:
                frame, ts = int(row[T.F_CFRAME + d]), int(row[T.F_CTS + d])
                pending.append(Pending(d, self.carry[s, d, :n].tobytes(), frame, ts))
        if i >= 0 and blk is not None:
            start, end = int(row[T.F_PEND_P]), int(blk.poff[i] + blk.plen[i])
            if end > start:
                data = blk.buf[start:end].tobytes()
                pending.append(Pending(last, data, blk.first_frame + i, int(blk.ts[i])))
        state = self.resume_state(conn, s)
        row[T.F_QN : T.F_QUSED + 1] = 0
        row[T.F_STATE] = 0
        row[T.F_CARRY : T.F_CARRY + 2] = 0
        row[T.F_PEND] = -1
        dec: Any = conn.decoder
        dec.resume(state, pending)
        self.a._events(conn, dec.events())

    def close(self) -> None:
        for s in list(self.active):
            self.handover(s, None)
        _emit.settle(self)

    # -- blocks --------------------------------------------------------------------------
    def begin_block(self, n: int, payload: int) -> Any:
        """Output buffers for one block of ``n`` packets carrying ``payload`` bytes
        (kept from block to block, grown when a block needs more)."""
        out = self._out
        sizes = {
            "xo": (n + 1, KS.X_FIELDS),
            "lh": (n + payload // 2 + 1024, 2),
            "lv": (8 * payload + 8 * T.RAW_BYTES, 1),  # coils: a value per bit
            "slowed": (n + 1,),
            "miss": (n // 4 + 16, KS.M_FIELDS),
        }
        for name, shape in sizes.items():
            have = out.get(name)
            if have is None or len(have) < shape[0]:
                dims = (2 * shape[0],) if name == "lv" else (2 * shape[0], *shape[1:])
                out[name] = np.empty(dims, np.int64)
        if len(out.get("mb", ())) < payload + 2 * T.RAW_BYTES:
            out["mb"] = np.empty(2 * payload + 2 * T.RAW_BYTES, np.uint8)
        cnt = np.zeros(T.N_COUNTERS, np.int64)
        return Out(out["xo"], out["lh"], out["lv"], cnt, out["slowed"], out["miss"], out["mb"])

    def run(self, blk: Any, lo: int, hi: int, out: Any) -> None:
        """The kernel over packets ``lo..hi-1``; then new templates and hand-overs."""
        cnt = out.cnt
        sl0, miss0 = int(cnt[T.C_NSL]), int(cnt[T.C_NMISS])
        self.dirty |= self.active
        type(self).pass_fn(blk, self.slots(), self.shapes(), out, lo, hi)
        for row in out.miss[miss0 : int(cnt[T.C_NMISS])]:
            if int(row[0]) in self.active:
                self.learn(row, out.mb)
        for s in dict.fromkeys(out.slowed[sl0 : int(cnt[T.C_NSL])].tolist()):
            if s in self.active:
                self.handover(s, blk)

    def learn(self, row: np.ndarray, mb: np.ndarray) -> None:
        """Make a template from a transaction the kernel could not place (a miss row:
        slot, packet, messages, then each message's place in ``mb``, frame, time, way)."""
        s, nk = int(row[0]), int(row[2])
        conn = self.conns[s]
        if conn is None or self.store.full():
            return
        messages = []
        for k in range(nk):
            at, n, frame, ts, d = (int(x) for x in row[KS.M_MSG + 5 * k : KS.M_MSG + 5 * k + 5])
            messages.append((d, mb[at : at + n].tobytes(), frame, ts))
        ex = self.shape(messages, s)
        if len(ex.norm) == 0:
            return
        dec: Any = conn.decoder
        fresh = dec.fork()
        for d, data, frame, ts in messages:
            fresh.feed(d, data, frame, ts)
        events = fresh.events()
        made = self._template(conn, ex, events)
        if made is None:
            self.store.refuse(ex.norm)
            return
        ops, claims = made
        try:
            built = self.store.build(ops)
        except ValueError:
            self.store.refuse(ex.norm)
            return
        t = self.store.add(ex.norm, built, ops, claims)
        real = [ev for ev in events if isinstance(ev, Operation)]
        if not self._check(t, ex, conn, real):
            self._disable(t)

    def _template(
        self, conn: TcpConnection, ex: Exemplar, events: list[DecoderEvent]
    ) -> tuple[list[OpTemplate], list[ClaimTemplate]] | None:
        ops: list[OpTemplate] = []
        claims: list[ClaimTemplate] = []
        client = (conn.client_ip, conn.client_port)
        server = (conn.server_ip, conn.server_port)
        rq, rs = self.frame_roles(ex)
        rq_frame, rq_ts = (ex.messages[rq][2], ex.messages[rq][3]) if rq >= 0 else (None, 0)
        rs_frame, rs_ts = (ex.messages[rs][2], ex.messages[rs][3]) if rs >= 0 else (None, 0)
        for ev in events:
            if isinstance(ev, Malformed):
                return None
            if isinstance(ev, IdentityClaim):
                if conn.client_ip == conn.server_ip or ev.ip not in (client[0], server[0]):
                    return None
                role = 0 if ev.ip == client[0] else 1
                claims.append(ClaimTemplate(role, ev.attribute, ev.value, ev.source, ev.confidence))
                continue
            assert isinstance(ev, Operation)
            if ev.protocol != self.op_protocol:
                return None
            ends = ((ev.src_ip, ev.src_port), (ev.dst_ip, ev.dst_port))
            if ends not in ((client, server), (server, client)):
                return None
            marked = self.holes(ev, ex)
            if marked is None:
                return None
            if ev.ts_ns != ex.messages[0][3] or ev.request_frame not in (None, rq_frame):
                return None
            if ev.response_frame not in (None, rs_frame):
                return None
            if ev.latency_ns is not None and (rq < 0 or rs < 0 or ev.latency_ns != rs_ts - rq_ts):
                return None
            detail = copy.deepcopy(marked.get("detail", ev.detail))
            read_back = detail.pop("response_values", None)
            ops.append(
                OpTemplate(
                    function=ev.function,
                    function_code=ev.function_code,
                    operation=ev.operation,
                    unit=marked.get("unit", ev.unit),
                    address=marked.get("address", ev.address),
                    quantity=marked.get("quantity", ev.quantity),
                    status=ev.status,
                    exception=ev.exception,
                    exception_code=ev.exception_code,
                    role=0 if ends[0] == client else 1,
                    tid=marked.get("tid", ev.transaction_id),
                    values=marked.get("values", ev.values),
                    response_values=marked.get(
                        "response_values", None if read_back is None else tuple(read_back)
                    ),
                    request_frame=-1 if ev.request_frame is None else rq,
                    response_frame=-1 if ev.response_frame is None else rs,
                    latency=ev.latency_ns is not None,
                    detail=detail,
                )
            )
        return (ops, claims) if ops else None

    def _check(self, t: int, ex: Exemplar, conn: TcpConnection, real: list[Operation]) -> bool:
        """The exemplar's holes written into template ``t`` give back, column for column,
        what the store would keep of the decoder's own operations."""
        xo = ex.xrow.reshape(1, -1).copy()
        xo[0, KS.X_RID] = 0
        xo[0, KS.X_TMPL] = t
        rid_port = np.array(
            [[conn.client_port, conn.server_port, int(conn.client_ip == conn.server_ip)]],
            np.int64,
        )
        block, _, _ = _emit.expand(self, xo, ex.lh, ex.lv, rid_port)
        got = _emit.join([(block, 0, len(block))])
        rev = [0 if op.src_ip == conn.client_ip else 1 for op in real]
        return same_operations(got, from_operations(real, rev))

    def _disable(self, t: int) -> None:
        """A template that failed its check: its shape is refused from now on."""
        tinfo = self.store.tinfo
        for e in range(self.store.entries):
            if tinfo[e, 2] == t:
                tinfo[e, 2] = KS.T_REFUSED

    # -- accounting ----------------------------------------------------------------------
    def absorb(self, slots: set[int]) -> None:
        """Move the kernel's per-slot counters into the connection and the tally."""
        tally = self.a.tally
        for s in slots:
            if s < 0 or s >= len(self.conns):
                continue
            conn = self.conns[s]
            if conn is None:
                continue
            row = self.st[s]
            ntx = int(row[T.F_NTX])
            if ntx:
                conn.seen_protocols.add(self.op_protocol)
                rid = int(row[T.F_RID])
                self.rid_tx[rid] = self.rid_tx.get(rid, 0) + ntx
                row[T.F_NTX] = 0
            for d in (0, 1):
                retx = int(row[T.F_RETX + d])
                if retx:
                    conn.reasm[d].retransmitted += retx
                    row[T.F_RETX + d] = 0
            pk = (int(row[T.F_PK]), int(row[T.F_PK + 1]))
            if pk[0] or pk[1]:
                st = conn.stats
                last = int(row[T.F_LAST])
                for d in (0, 1):
                    st.packets[d] += pk[d]
                    st.bytes[d] += int(row[T.F_BY + d])
                if last > st.last_ts:
                    st.last_ts = last
                for d in (0, 1):
                    if not pk[d]:
                        continue
                    src, dst = (
                        (conn.client_ip, conn.server_ip)
                        if d == 0
                        else (conn.server_ip, conn.client_ip)
                    )
                    smac, dmac = int(row[T.F_SMAC + d]), int(row[T.F_DMAC + d])
                    tally.host(
                        src, conn.vlan, mac_str(smac) if smac else None, last, last, pk[d], True
                    )
                    tally.host(
                        dst, conn.vlan, mac_str(dmac) if dmac else None, last, last, pk[d], False
                    )
                row[T.F_PK : T.F_PK + 2] = 0
                row[T.F_BY : T.F_BY + 2] = 0
            fins = int(row[T.F_FIN])
            if fins:
                conn.closed = True
                conn.fins |= fins
                if conn.fins == 3 and conn.finished_ts is None:
                    conn.finished_ts = int(row[T.F_FIN_TS])
                    self.a.closing.append(conn)
                row[T.F_FIN] = 0

    def end_block(self, out: Any) -> None:
        self.absorb(self.dirty)
        self.dirty = set(self.active)
        n = int(out.cnt[T.C_NX])
        if n:
            self.tx_bulk += n
            _emit.emit(self, out.xo[:n], out.lh, out.lv)


def _names(batch: OpBatch, col: str) -> list[str | None]:
    table = batch.names if col == "function" else batch.exceptions
    return [None if v == NULL else table[v] for v in batch.ints[col].tolist()]


def same_operations(got: OpBatch, want: OpBatch) -> bool:
    """Whether two batches hold the same operations, column for column (name tables
    may differ), written values, values read back and details."""
    n = len(want)
    if len(got) != n:
        return False
    for col, arr in want.ints.items():
        if col in ("function", "exception"):
            if _names(got, col) != _names(want, col):
                return False
        elif not np.array_equal(got.ints[col], arr):
            return False
    for name in ("values", "response_values"):
        if ragged_lists(got.ragged[name], n) != ragged_lists(want.ragged[name], n):
            return False
    if list(got.detail_index) != list(want.detail_index):
        return False
    text = got.details.render() if isinstance(got.details, TemplatedDetails) else b""
    return text == ",".join(detail_text(d) for d in want.details).encode()


__all__ = ["WHY_NAMES", "Exemplar", "Hole", "Lane", "ip_u32", "mac_str", "same_operations"]
