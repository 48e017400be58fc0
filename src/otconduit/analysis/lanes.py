"""Transaction lanes of the bulk path: S7comm, EtherNet/IP and DNP3 decoded by templates.

A lane owns the connections of one protocol that the per-packet engine registered with
it (their *slots*), runs its pass kernel over each sub-block of packets, and turns the
transactions the kernel finished into operations. What a transaction *means* (function
names, classes, detail) comes from templates made by the protocol's own per-packet
decoder (:mod:`otconduit.analysis.templates`): when the kernel meets a transaction of a
shape it has no template for, the lane replays that transaction into a fresh decoder,
checks that the result can be written from the shape and the holes, keeps it as a
template and gives the connection back to the per-packet path, which decodes that
transaction itself.

Hand-over: the kernel keeps the raw bytes of the transaction in progress; giving a
connection back re-synchronises its TCP reassemblers and replays those bytes into the
connection's real decoder, which then is exactly where the per-packet path would have
left it (protocols with more state, e.g. DNP3's transport sequence, add a hook).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from otconduit.analysis import kernels as _kernels
from otconduit.analysis import kernels_tx as _ktx
from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.engine import Analyzer
from otconduit.analysis.lane_emit import emit, settle
from otconduit.analysis.templates import (
    ClaimTemplate,
    Hole,
    OpTemplate,
    TemplateStore,
    detail_text,
)
from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.events import Malformed
from otconduit.store.opchunks import (
    ragged_from_arrays,
)

K: Any = _kernels
T: Any = _ktx
_EMPTY_RAGGED = ragged_from_arrays(np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0))


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
class BlockView:
    """One block's packets as the kernels see them (header columns and bookkeeping)."""

    buf: np.ndarray
    ts: np.ndarray
    first_frame: int
    cols: dict[str, np.ndarray]
    done: np.ndarray

    def payload(self, i: int) -> bytes:
        p = int(self.cols["poff"][i])
        return self.buf[p : p + int(self.cols["plen"][i])].tobytes()


@dataclass(slots=True)
class Exemplar:
    """A transaction the kernel had no template for: its messages, shape and holes."""

    messages: list[tuple[int, bytes, int, int]]  # (direction, bytes, frame, ts_ns)
    norm: np.ndarray
    xrow: np.ndarray
    lh: np.ndarray
    lv: np.ndarray

    def ints(self, k: int) -> int:
        return int(self.xrow[T.X_INT + k])

    def lists(self) -> list[tuple[int, ...]]:
        base = int(self.xrow[T.X_LH])
        out = []
        for r in range(base, base + int(self.xrow[T.X_LN])):
            off, n = int(self.lh[r, 0]), int(self.lh[r, 1])
            out.append(tuple(int(v) for v in self.lv[off : off + n]))
        return out


class TxLane:
    """Slots, kernel calls, hand-overs and operation output for one protocol."""

    protocol: ClassVar[str]  # the connection protocol this lane takes (conn.protocol)
    op_protocol: ClassVar[str]  # the protocol of the operations it writes
    # numba kernels: the pass over a sub-block, and the shape of one transaction
    # (``shape_fn(raw, qm, qn, st_row, norm, xrow, lh, lv, cnt) -> shape length``).
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
        self.conv_keys: dict[int, tuple[str, str, str, int, int, str]] = {}
        self.claimed: set[tuple[int, int]] = set()  # (conversation, template) claims made
        # Operations per (registration, template operation), counted per block and added
        # to the analyzer's counters in one go (see lane_emit.settle).
        self.acc_keys: list[np.ndarray] = []
        self.acc_counts: list[np.ndarray] = []
        self.acc_size = 0
        self.tx_bulk = 0
        self.st = np.zeros((0, T.N_FIELDS), np.int64)
        self.qm = np.zeros((0, T.MAX_KEPT, T.Q_FIELDS), np.int64)
        self.raw = np.zeros((0, T.RAW_BYTES + T.RAW_EXTRA), np.uint8)
        self._grow(slots)
        self.tk1 = np.zeros(4 * slots, np.int64)
        self.tk2 = np.zeros(4 * slots, np.int64)
        self.tv = np.full(4 * slots, -1, np.int64)
        self.table_used = 0
        self.norm = np.zeros(6 * T.RAW_BYTES, np.uint8)  # shapes, then kernel scratch
        self.ports = np.full(4, -1, np.int64)  # server ports of the lane's connections
        self._out: dict[str, Any] = {}

    # -- protocol hooks ------------------------------------------------------------------
    def eligible(self, conn: TcpConnection) -> bool:
        """Whether ``conn``'s decoder is idle in a state the kernel can carry on from."""
        raise NotImplementedError

    def prepare(self, conn: TcpConnection, s: int) -> None:
        """Protocol state of a slot being registered (in ``st[s, F_P:]``)."""

    def before_replay(self, conn: TcpConnection, s: int) -> None:
        """Bring the decoder's own state up to where the kernel left it."""

    def exemplar_events(self, conn: TcpConnection, ex: Exemplar) -> list[DecoderEvent]:
        """What a fresh decoder in the connection's state makes of the messages."""
        raise NotImplementedError

    def frame_roles(self, ex: Exemplar) -> tuple[int, int]:
        """Which messages are the request and the response (-1: none)."""
        return 0, 1

    def holes(self, op: Operation, ex: Exemplar) -> tuple[Any, Any, dict[str, Any]] | None:
        """(transaction id, values, detail) of ``op`` with the holes marked; None when
        the operation does not fit the lane's holes."""
        raise NotImplementedError

    def shape(self, raw: np.ndarray, qm: np.ndarray, qn: int, st_row: np.ndarray) -> Exemplar:
        """Shape and holes of the ``qn`` messages kept in ``raw``/``qm``, as the kernel
        computes them (empty shape: not a transaction of this lane)."""
        xrow = np.zeros(T.X_FIELDS, np.int64)
        lh = np.zeros((520, 2), np.int64)
        lv = np.zeros(2 * T.RAW_BYTES + 16, np.int64)
        cnt = np.zeros(T.N_COUNTERS, np.int64)
        size = int(type(self).shape_fn(raw, qm, qn, st_row, self.norm, xrow, lh, lv, cnt))
        messages = []
        for k in range(qn):
            off, n, frame, ts, d = (int(x) for x in qm[k, : T.Q_DIR + 1])
            messages.append((d, raw[off : off + n].tobytes(), frame, ts))
        for k in range(T.MAX_MSGS):
            _, _, frame, ts = messages[min(k, qn - 1)]
            xrow[T.X_F + 2 * k], xrow[T.X_F + 2 * k + 1] = frame, ts
        norm = self.norm[: max(size, 0)].copy()
        return Exemplar(messages, norm, xrow, lh, lv)

    # -- slots -------------------------------------------------------------------------
    def _grow(self, n: int) -> None:
        for name, extra in (
            ("st", (T.N_FIELDS,)),
            ("qm", (T.MAX_KEPT, T.Q_FIELDS)),
            ("raw", (T.RAW_BYTES + T.RAW_EXTRA,)),
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
                K.table_insert(self.tk1, self.tk2, self.tv, a, b, v)
            self.table_used = len(keys)
        self.table_used += int(K.table_insert(self.tk1, self.tk2, self.tv, k1, k2, value))

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
            k1, k2 = K.flow_keys(a, b, ap, bp, conn.vlan)
            out.append((int(k1), int(k2)))
        return out

    def register(self, conn: TcpConnection) -> bool:
        keys = self._keys(conn)
        if keys is None:
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
        rid = row[T.F_RID] = self.rids
        if rid == len(self.rid_conv):
            self.rid_conv = np.concatenate([self.rid_conv, np.zeros_like(self.rid_conv)])
            self.rid_port = np.concatenate([self.rid_port, np.zeros_like(self.rid_port)])
        self.rids += 1
        self.rid_conv[rid] = self._conv_of(conn)
        same = int(conn.client_ip == conn.server_ip)
        self.rid_port[rid] = (conn.client_port, conn.server_port, same)
        self.prepare(conn, s)
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
        ckey = ("tcp", conn.client_ip, conn.server_ip, conn.server_port, conn.vlan)
        key = (*ckey, self.op_protocol)
        conv_id = a.conv_ids.get(key)
        if conv_id is None:
            conv_id = a.conv_ids[key] = a.store.conversation_id(*key)
        self.conv_keys[conv_id] = key
        return conv_id

    def release(self, conn: TcpConnection) -> None:
        """The engine folds ``conn``: settle it, hand it back, free its slot."""
        s = conn.slot
        self.absorb({s})
        if s in self.active:
            self.handover(s)
        for k1, k2 in self._keys(conn) or ():
            K.table_delete(self.tk1, self.tk2, self.tv, k1, k2)
        self.conns[s] = None
        self.free.append(s)
        conn.slot = -1

    def handover(self, s: int) -> None:
        """Give slot ``s`` back to the per-packet engine, exactly where the kernel left it."""
        conn = self.conns[s]
        assert conn is not None
        self.absorb({s})
        row = self.st[s]
        row[T.F_FAST] = 0
        self.active.discard(s)
        for d in (0, 1):
            events = conn.reasm[d].sync_to(int(row[T.F_NEXT + d]))
            if events:  # cannot happen for a clean reassembler; kept for safety
                self.a._stream(conn, d, events)
        self.before_replay(conn, s)
        dec = conn.decoder
        assert dec is not None
        for k in range(int(row[T.F_QN])):
            off, n, frame, ts, d = (int(x) for x in self.qm[s, k, : T.Q_DIR + 1])
            dec.feed(d, self.raw[s, off : off + n].tobytes(), frame, ts)
            self.a._events(conn, dec.events())
        row[T.F_QN] = 0
        row[T.F_QUSED] = 0
        row[T.F_STATE] = 0

    def close(self) -> None:
        for s in list(self.active):
            self.handover(s)
        settle(self)

    # -- blocks --------------------------------------------------------------------------
    def begin_block(self, n: int, payload: int) -> dict[str, Any]:
        """Output buffers for one block of ``n`` packets carrying ``payload`` bytes
        (kept from block to block, grown when a block needs more)."""
        out = self._out
        sizes = {
            "xo": (n + 1, T.X_FIELDS),
            "lh": (n + payload // 2 + 16, 2),
            "lv": (payload + T.RAW_BYTES + 16,),
            "slowed": (n + 1,),
            "miss": (n // 4 + 16, T.M_FIELDS),
        }
        for name, shape in sizes.items():
            have = out.get(name)
            if have is None or len(have) < shape[0]:
                out[name] = np.empty((2 * shape[0], *shape[1:]), np.int64)
        if len(out.get("mb", ())) < payload + 2 * T.RAW_BYTES:
            out["mb"] = np.empty(2 * payload + 2 * T.RAW_BYTES, np.uint8)
        out["cnt"] = np.zeros(T.N_COUNTERS, np.int64)
        return out

    def run(self, view: BlockView, lo: int, hi: int, out: dict[str, Any]) -> None:
        """The kernel over packets ``lo..hi-1``; then new templates and hand-overs."""
        cnt = out["cnt"]
        sl0, miss0 = int(cnt[T.C_NSL]), int(cnt[T.C_NMISS])
        self.dirty |= self.active
        c = view.cols
        type(self).pass_fn(
            view.buf,
            view.ts,
            view.first_frame,
            c["ok"],
            c["src"],
            c["dst"],
            c["sport"],
            c["dport"],
            c["vlan"],
            c["seq"],
            c["flags"],
            c["poff"],
            c["plen"],
            c["iplen"],
            c["smac"],
            c["dmac"],
            self.tk1,
            self.tk2,
            self.tv,
            self.ports,
            self.st,
            self.qm,
            self.raw,
            self.store.th,
            self.store.tinfo,
            self.store.tnorm,
            self.norm,
            out["xo"],
            out["lh"],
            out["lv"],
            cnt,
            out["slowed"],
            out["miss"],
            out["mb"],
            view.done,
            lo,
            hi,
        )
        for row in out["miss"][miss0 : int(cnt[T.C_NMISS])]:
            if int(row[0]) in self.active:
                self.learn(row, out["mb"])
        for s in set(out["slowed"][sl0 : int(cnt[T.C_NSL])].tolist()):
            if s in self.active:
                self.handover(s)

    def learn(self, row: np.ndarray, mb: np.ndarray) -> None:
        """Make a template from a transaction the kernel could not place (a miss row:
        slot, packet, messages, then each message's place in ``mb``, frame, time, way)."""
        s, nk = int(row[0]), int(row[2])
        conn = self.conns[s]
        if conn is None or self.store.full():
            return
        tq = np.zeros((T.MAX_MSGS, T.Q_FIELDS), np.int64)
        for k in range(nk):
            tq[k, : T.Q_DIR + 1] = row[T.M_MSG + 5 * k : T.M_MSG + 5 * k + 5]
        ex = self.shape(mb, tq, nk, self.st[s])
        if len(ex.norm) == 0:
            return
        events = self.exemplar_events(conn, ex)
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
        if not self._check(t, ex, ops, events):
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
            if marked is None or "response_values" in ev.detail:
                return None
            tid, values, detail = marked
            if ev.ts_ns != ex.messages[0][3] or ev.request_frame not in (None, rq_frame):
                return None
            if ev.response_frame not in (None, rs_frame):
                return None
            if ev.latency_ns is not None and (rq < 0 or rs < 0 or ev.latency_ns != rs_ts - rq_ts):
                return None
            ops.append(
                OpTemplate(
                    function=ev.function,
                    function_code=ev.function_code,
                    operation=ev.operation,
                    unit=ev.unit,
                    address=ev.address,
                    quantity=ev.quantity,
                    status=ev.status,
                    exception=ev.exception,
                    exception_code=ev.exception_code,
                    role=0 if ends[0] == client else 1,
                    tid=tid,
                    values=values,
                    request_frame=-1 if ev.request_frame is None else rq,
                    response_frame=-1 if ev.response_frame is None else rs,
                    latency=ev.latency_ns is not None,
                    detail=detail,
                )
            )
        return (ops, claims) if ops else None

    def _check(
        self, t: int, ex: Exemplar, ops: list[OpTemplate], events: list[DecoderEvent]
    ) -> bool:
        """The exemplar's holes written into template ``t`` give back its operations."""
        tab = self.store.tables()
        xo = ex.xrow.reshape(1, -1).copy()
        xo[0, T.X_TMPL] = t
        first, count = int(tab["t_first"][t]), int(tab["t_count"][t])
        rows = np.array([(0, first + k) for k in range(count)], np.int64).reshape(-1, 2)
        text, offs = self.store.render(rows, xo, ex.lh, ex.lv, tab)
        real = [ev for ev in events if isinstance(ev, Operation)]
        lists = ex.lists()
        for k, (op, tmpl) in enumerate(zip(real, ops, strict=True)):
            got = text[offs[k] : offs[k + 1]].tobytes().decode("ascii")
            if got != (detail_text(op.detail) + "," if op.detail else ""):
                return False
            tid = tmpl.tid
            if isinstance(tid, Hole):
                tid = ex.ints(tid.index)
            values = tmpl.values
            if isinstance(values, Hole):
                if values.index >= len(lists):
                    return False
                values = lists[values.index]
            if tid != op.transaction_id or values != op.values:
                return False
        return True

    def _disable(self, t: int) -> None:
        """A template that failed its check: its shape is refused from now on."""
        tinfo = self.store.tinfo
        for e in range(self.store.entries):
            if tinfo[e, 2] == t:
                tinfo[e, 2] = T.T_REFUSED

    # -- accounting ----------------------------------------------------------------------
    def absorb(self, slots: set[int]) -> None:
        """Move the kernel's per-slot counters into the engine's connection and host state."""
        a = self.a
        for s in slots:
            if s < 0 or s >= len(self.conns):
                continue
            conn = self.conns[s]
            row = self.st[s]
            if conn is None:
                continue
            if row[T.F_NTX]:
                conn.seen_protocols.add(self.op_protocol)
                row[T.F_NTX] = 0
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
                    for ip, mac, sending in (
                        (src, int(row[T.F_SMAC + d]), True),
                        (dst, int(row[T.F_DMAC + d]), False),
                    ):
                        h = a.hosts.get((ip, conn.vlan))
                        if h is None:
                            continue
                        if last > h.last:
                            h.last = last
                        if sending:
                            h.sent += pk[d]
                        else:
                            h.received += pk[d]
                        if mac:
                            h.macs[mac_str(mac)] += pk[d]
                row[T.F_PK : T.F_PK + 2] = 0
                row[T.F_BY : T.F_BY + 2] = 0
            fins = int(row[T.F_FIN])
            if fins:
                conn.closed = True
                conn.fins |= fins
                if conn.fins == 3 and conn.finished_ts is None:
                    conn.finished_ts = int(row[T.F_FIN_TS])
                    a.closing.append(conn)
                row[T.F_FIN] = 0

    def end_block(self, out: dict[str, Any]) -> None:
        self.absorb(self.dirty)
        self.dirty = set(self.active)
        n = int(out["cnt"][T.C_NX])
        if n:
            self.tx_bulk += n
            emit(self, out["xo"][:n], out["lh"], out["lv"])


__all__ = ["BlockView", "Exemplar", "TxLane", "ip_u32", "mac_str"]
