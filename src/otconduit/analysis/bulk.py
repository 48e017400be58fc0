"""The bulk path: whole blocks of steady Modbus/TCP polling decoded by compiled loops.

The per-packet engine stays the authority. It decides what every connection speaks and
handles everything unusual; once a Modbus connection is in a clean state (both
directions in sequence, no partial ADU, few requests in flight) it is *registered*
here, and its following packets are decoded in bulk by :func:`kernels.modbus_pass`.
A packet the kernel cannot take exactly as the per-packet path would (retransmission,
SYN/FIN/RST, an unusual function code, a malformed PDU, ...) turns its connection back
over: the kernel's sequence numbers and open requests are handed to the engine's
reassemblers and Modbus session, and the rest of that connection's packets in the block
go through the per-packet path, in order. ``tests/test_bulk_equivalence.py`` holds both
paths to the same records on every capture we have.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from otconduit.analysis import kernel_cache
from otconduit.analysis import kernels as _kernels
from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.engine import Analyzer
from otconduit.analysis.lane_dnp3 import Dnp3Lane
from otconduit.analysis.lane_enip import EnipLane
from otconduit.analysis.lane_s7 import S7Lane
from otconduit.analysis.lanes import BlockView, TxLane, ip_u32, mac_str
from otconduit.capture.decode import decode_frame
from otconduit.capture.reader import RawBlock
from otconduit.inventory.roles import Behaviour
from otconduit.model import OpClass, OpStatus
from otconduit.protocols.modbus.decoder import ModbusConnectionDecoder
from otconduit.protocols.modbus.functions import exception_name, function_name
from otconduit.protocols.modbus.pdu import ModbusMessage
from otconduit.store.opchunks import (
    NULL,
    OP_CLASS_CODE,
    STATUS_CODE,
    OpBatch,
    ragged_from_arrays,
)

K: Any = _kernels  # numba dispatchers: argument types are checked when they compile

FAST_CODES = frozenset({1, 2, 3, 4, 5, 6, 15, 16})
# Function-name table shared by every bulk batch: index = position of the code.
_FN_CODES = sorted(FAST_CODES)
_FN_NAMES = [function_name(c) for c in _FN_CODES]
_FN_INDEX = np.zeros(256, np.int64)
_FN_INDEX[_FN_CODES] = np.arange(len(_FN_CODES))
_ST_OK = STATUS_CODE[OpStatus.OK]
_ST_EXC = STATUS_CODE[OpStatus.EXCEPTION]
_CLS_READ = OP_CLASS_CODE[OpClass.READ]
_CLS_WRITE = OP_CLASS_CODE[OpClass.WRITE]
POOL_MIN = 1 << 16
# Packets per kernel call: a connection registered after one sub-block is decoded in
# bulk from the next, so short connections still mostly take the fast path.
SUB_BLOCK = 256
MAX_SUB_BLOCK = 16384


class BulkPath:
    """Feeds blocks to the kernels and keeps their state in step with the engine."""

    # Per-slot state (allocated and grown by _alloc_slots): s_* connection, o_* open requests.
    s_fast: np.ndarray
    s_next: np.ndarray
    s_pk: np.ndarray
    s_by: np.ndarray
    s_last: np.ndarray
    s_smac: np.ndarray
    s_dmac: np.ndarray
    s_conv: np.ndarray
    s_port: np.ndarray
    s_fin: np.ndarray
    s_fin_ts: np.ndarray
    o_used: np.ndarray
    o_tid: np.ndarray
    o_fc: np.ndarray
    o_unit: np.ndarray
    o_addr: np.ndarray
    o_qty: np.ndarray
    o_ts: np.ndarray
    o_frame: np.ndarray
    o_voff: np.ndarray
    o_vlen: np.ndarray

    def __init__(self, analyzer: Analyzer, *, slots: int = 256) -> None:
        kernel_cache.check()  # before any kernel loads its compiled code
        self.a = analyzer
        analyzer.on_fold = self._release
        self.conns: list[TcpConnection | None] = []
        self.free: list[int] = []
        self.active: set[int] = set()
        self.conv_keys: dict[int, tuple[str, str, str, int, int, str]] = {}
        self._alloc_slots(slots)
        self._alloc_table(4 * slots)
        self.pool = np.zeros(POOL_MIN, np.int64)
        self.pool_used = 0
        self.packets_bulk = 0
        # Transaction lanes for the other protocols, by the connection protocol they take.
        self.lanes: dict[str, TxLane] = {
            lane.protocol: lane
            for lane in (S7Lane(analyzer), EnipLane(analyzer), Dnp3Lane(analyzer))
        }

    # -- state arrays ------------------------------------------------------------------
    def _alloc_slots(self, n: int) -> None:
        w = K.MAX_OUTSTANDING
        old = getattr(self, "s_fast", None)
        fields: dict[str, tuple[tuple[int, ...], Any]] = {
            "s_fast": ((n,), np.int8),
            "s_next": ((n, 2), np.int64),
            "s_pk": ((n, 2), np.int64),
            "s_by": ((n, 2), np.int64),
            "s_last": ((n,), np.int64),
            "s_smac": ((n, 2), np.int64),
            "s_dmac": ((n, 2), np.int64),
            "s_conv": ((n,), np.int64),
            "s_port": ((n,), np.int64),
            "s_fin": ((n,), np.int64),
            "s_fin_ts": ((n,), np.int64),
            "o_used": ((n, w), np.int8),
            "o_tid": ((n, w), np.int64),
            "o_fc": ((n, w), np.int64),
            "o_unit": ((n, w), np.int64),
            "o_addr": ((n, w), np.int64),
            "o_qty": ((n, w), np.int64),
            "o_ts": ((n, w), np.int64),
            "o_frame": ((n, w), np.int64),
            "o_voff": ((n, w), np.int64),
            "o_vlen": ((n, w), np.int64),
        }
        for name, (shape, dt) in fields.items():
            arr = np.zeros(shape, dt)
            if old is not None:
                prev = getattr(self, name)
                arr[: len(prev)] = prev
            setattr(self, name, arr)
        self.capacity = n

    def _alloc_table(self, n: int) -> None:
        self.tk1 = np.zeros(n, np.int64)
        self.tk2 = np.zeros(n, np.int64)
        self.tv = np.full(n, -1, np.int64)
        self.table_used = 0

    def _table_put(self, k1: int, k2: int, value: int) -> None:
        if 2 * (self.table_used + 1) > len(self.tv):
            live = np.flatnonzero(self.tv >= 0)
            keys = [(int(self.tk1[i]), int(self.tk2[i]), int(self.tv[i])) for i in live]
            size = len(self.tv) * (4 if 4 * len(keys) > len(self.tv) else 1)
            self._alloc_table(size)
            for a, b, v in keys:
                K.table_insert(self.tk1, self.tk2, self.tv, a, b, v)
            self.table_used = len(keys)
        self.table_used += int(K.table_insert(self.tk1, self.tk2, self.tv, k1, k2, value))

    def _keys(self, conn: TcpConnection) -> list[tuple[int, int]] | None:
        """Hash keys of both directions (None for IPv6, which stays per-packet)."""
        c_ip, s_ip = ip_u32(conn.client_ip), ip_u32(conn.server_ip)
        if c_ip is None or s_ip is None:
            return None
        out = []
        for a, ap, b, bp in (
            (c_ip, conn.client_port, s_ip, conn.server_port),
            (s_ip, conn.server_port, c_ip, conn.client_port),
        ):
            k1, k2 = K.flow_keys(a, b, ap, bp, conn.vlan)
            out.append((int(k1), int(k2)))
        return out

    # -- registration and handover -------------------------------------------------------
    def _eligible(self, conn: TcpConnection) -> bool:
        dec = conn.decoder
        if not isinstance(dec, ModbusConnectionDecoder) or conn.closed:
            return False
        if not all(r.clean and r.next_seq is not None for r in conn.reasm):
            return False
        if not all(s.idle for s in dec.streams):
            return False
        pending = [m for q in dec.session._open.values() for m in q]
        if len(pending) >= K.MAX_OUTSTANDING:
            return False
        if len({m.tid for m in pending}) != len(pending):
            return False
        return all(
            m.function_code in FAST_CODES and m.malformed_reason is None and not m.is_exception
            for m in pending
        )

    def _try_register(self, conn: TcpConnection) -> bool:
        """Register ``conn`` with the bulk path if it is in a state the kernels take on."""
        if conn.protocol == "modbus":
            if conn.slot in self.active or not self._eligible(conn):
                return False
            self._register(conn)
            return True
        lane = self.lanes.get(conn.protocol or "")
        if lane is None or conn.slot in lane.active or not lane.eligible(conn):
            return False
        return lane.register(conn)

    def _register(self, conn: TcpConnection) -> None:
        keys = self._keys(conn)
        if keys is None:
            return
        if conn.slot < 0:
            if self.free:
                conn.slot = self.free.pop()
                self.conns[conn.slot] = conn
            else:
                if len(self.conns) == self.capacity:
                    self._alloc_slots(2 * self.capacity)
                conn.slot = len(self.conns)
                self.conns.append(conn)
        s = conn.slot
        for d, (k1, k2) in enumerate(keys):
            self._table_put(k1, k2, 2 * s + d)
            self.s_next[s, d] = conn.reasm[d].next_seq
        self.s_conv[s] = self._conv_of(conn)
        self.s_last[s] = conn.stats.last_ts
        self.s_port[s] = conn.client_port
        self.s_smac[s] = 0
        self.s_dmac[s] = 0
        self.s_fin[s] = 0
        self.o_used[s] = 0
        assert isinstance(conn.decoder, ModbusConnectionDecoder)
        session = conn.decoder.session
        pending = sorted(
            (m for q in session._open.values() for m in q), key=lambda m: (m.ts_ns, m.frame)
        )
        session._open.clear()
        session._count = 0
        for k, m in enumerate(pending):
            self._put_request(s, k, m)
        self.s_fast[s] = 1
        self.active.add(s)

    def _release(self, conn: TcpConnection) -> None:
        """The engine folds ``conn``: settle its counters, hand it back, free its slot."""
        s = conn.slot
        if s < 0:
            return
        lane = self.lanes.get(conn.protocol or "")
        if lane is not None:
            lane.release(conn)
            return
        self._absorb_stats({s})
        if s in self.active:
            self._handover(s)
        for k1, k2 in self._keys(conn) or ():
            K.table_delete(self.tk1, self.tk2, self.tv, k1, k2)
        self.conns[s] = None
        self.free.append(s)
        conn.slot = -1

    def _put_request(self, s: int, k: int, m: ModbusMessage) -> None:
        self.o_used[s, k] = 1
        self.o_tid[s, k] = m.tid
        self.o_fc[s, k] = m.function_code
        self.o_unit[s, k] = m.unit
        self.o_addr[s, k] = m.address if m.address is not None else 0
        self.o_qty[s, k] = m.quantity if m.quantity is not None else 0
        self.o_ts[s, k] = m.ts_ns
        self.o_frame[s, k] = m.frame
        values = m.values if m.function_code in (5, 6, 15, 16) else None
        if values is None:
            self.o_voff[s, k] = self.pool_used
            self.o_vlen[s, k] = -1
            return
        self._pool_room(len(values))
        self.o_voff[s, k] = self.pool_used
        self.o_vlen[s, k] = len(values)
        self.pool[self.pool_used : self.pool_used + len(values)] = values
        self.pool_used += len(values)

    def _pool_room(self, need: int) -> None:
        if self.pool_used + need + 4096 <= len(self.pool):
            return
        self._compact_pool(extra=need)

    def _compact_pool(self, extra: int = 0) -> None:
        """Keep only the written values of requests still in flight."""
        live = np.argwhere(
            (self.o_used[: len(self.conns)] == 1) & (self.o_vlen[: len(self.conns)] > 0)
        )
        total = int(sum(self.o_vlen[s, k] for s, k in live))
        size = max(POOL_MIN, 2 * (total + extra + 4096))
        new = np.zeros(size, np.int64)
        pos = 0
        for s, k in live:
            n, off = int(self.o_vlen[s, k]), int(self.o_voff[s, k])
            new[pos : pos + n] = self.pool[off : off + n]
            self.o_voff[s, k] = pos
            pos += n
        self.pool, self.pool_used = new, pos

    def _handover(self, s: int) -> None:
        """Give slot ``s`` back to the per-packet engine, exactly where the kernel left it."""
        conn = self.conns[s]
        assert conn is not None
        self._absorb_stats({s})  # counters and FINs first: the engine decides on them
        self.s_fast[s] = 0
        self.active.discard(s)
        for d in (0, 1):
            events = conn.reasm[d].sync_to(int(self.s_next[s, d]))
            if events:  # cannot happen for a clean reassembler; kept for safety
                self.a._stream(conn, d, events)
        pending = [k for k in range(K.MAX_OUTSTANDING) if self.o_used[s, k]]
        pending.sort(key=lambda k: (int(self.o_ts[s, k]), int(self.o_frame[s, k])))
        assert isinstance(conn.decoder, ModbusConnectionDecoder)
        for k in pending:
            self.o_used[s, k] = 0
            fc = int(self.o_fc[s, k])
            n = int(self.o_vlen[s, k])
            off = int(self.o_voff[s, k])
            values = tuple(int(v) for v in self.pool[off : off + n]) if n > 0 else None
            qty = int(self.o_qty[s, k])
            pdu_len = 5 if fc <= 6 else 6 + ((qty + 7) // 8 if fc == 15 else 2 * qty)
            msg = ModbusMessage(
                tid=int(self.o_tid[s, k]),
                pid=0,
                length=pdu_len + 1,
                unit=int(self.o_unit[s, k]),
                function_code=fc,
                is_request=True,
                is_exception=False,
                exception_code=None,
                frame=int(self.o_frame[s, k]),
                ts_ns=int(self.o_ts[s, k]),
                address=int(self.o_addr[s, k]),
                quantity=qty,
                values=values,
                subfunction=None,
                mei_type=None,
                extra={},
                raw=b"",
                malformed_reason=None,
            )
            conn.decoder.transactions(conn.decoder.session.request(msg))
            self.a._events(conn, conn.decoder.events())

    # -- blocks ------------------------------------------------------------------------
    def feed_block(self, block: RawBlock) -> None:
        n = len(block.offsets)
        if n == 0:
            return
        a = self.a
        cols = {
            name: np.empty(n, dt)
            for name, dt in (
                ("ok", np.uint8),
                ("src", np.int64),
                ("dst", np.int64),
                ("sport", np.int64),
                ("dport", np.int64),
                ("vlan", np.int64),
                ("seq", np.int64),
                ("ack", np.int64),
                ("flags", np.int64),
                ("poff", np.int64),
                ("plen", np.int64),
                ("iplen", np.int64),
                ("smac", np.int64),
                ("dmac", np.int64),
            )
        }
        buf = block.buf
        ts = block.ts_ns
        K.parse_headers(buf, block.offsets, block.caplens, block.linktypes, *cols.values())
        done = np.zeros(n, np.uint8)  # 1: taken by the kernel or the per-packet engine
        slowed = np.empty(n + 1, np.int64)  # slots the kernel turned slow (one pass)
        slow_count = 0
        payload = int(cols["plen"][cols["ok"] == 1].sum())
        vcap = 8 * payload + 4096
        out = {
            name: np.empty(n + 1, np.int64)
            for name in (
                "conv",
                "port",
                "ts",
                "fc",
                "unit",
                "addr",
                "qty",
                "status",
                "exc",
                "lat",
                "rf",
                "sf",
                "tid",
                "voff",
                "vlen",
                "roff",
                "rlen",
            )
        }
        ov = np.empty(vcap, np.int64)
        orv = np.empty(vcap, np.int64)
        nops = nov = nor = 0
        dirty = set(self.active)
        view = BlockView(buf, ts, block.first_frame, cols, done)
        lane_out = {name: lane.begin_block(n, payload) for name, lane in self.lanes.items()}
        lo = 0
        sub = SUB_BLOCK
        while lo < n:
            hi = min(n, lo + sub)
            for name, lane in self.lanes.items():
                if lane.active:
                    lane.run(view, lo, hi, lane_out[name])
            if self.active:
                if self.pool_used > len(self.pool) // 2:
                    self._compact_pool()
                nops, nov, nor, self.pool_used, hi, nsl = K.modbus_pass(
                    buf,
                    ts,
                    block.first_frame,
                    cols["ok"],
                    cols["src"],
                    cols["dst"],
                    cols["sport"],
                    cols["dport"],
                    cols["vlan"],
                    cols["seq"],
                    cols["flags"],
                    cols["poff"],
                    cols["plen"],
                    cols["iplen"],
                    cols["smac"],
                    cols["dmac"],
                    self.tk1,
                    self.tk2,
                    self.tv,
                    self.s_fast,
                    self.s_next,
                    self.s_pk,
                    self.s_by,
                    self.s_last,
                    self.s_smac,
                    self.s_dmac,
                    self.s_conv,
                    self.s_port,
                    self.s_fin,
                    self.s_fin_ts,
                    self.o_used,
                    self.o_tid,
                    self.o_fc,
                    self.o_unit,
                    self.o_addr,
                    self.o_qty,
                    self.o_ts,
                    self.o_frame,
                    self.o_voff,
                    self.o_vlen,
                    self.pool,
                    self.pool_used,
                    done,
                    *out.values(),
                    ov,
                    orv,
                    lo,
                    hi,
                    nops,
                    nov,
                    nor,
                    slowed,
                )
                for s in set(slowed[:nsl].tolist()):
                    if s in self.active:
                        self._handover(s)
            # The rest, in capture order, through the per-packet engine. A connection that
            # becomes eligible is registered at once and the kernel resumes right after
            # its packet, so a new connection leaves the per-packet path within a packet.
            for i in (np.flatnonzero(done[lo:hi] == 0) + lo).tolist():
                off = int(block.offsets[i])
                res = decode_frame(
                    buf[off : off + int(block.caplens[i])].tobytes(),
                    int(block.linktypes[i]),
                    block.first_frame + i,
                    int(ts[i]),
                    int(block.wirelens[i]),
                )
                a.last_conn = None
                a.feed(res, int(ts[i]))
                done[i] = 1
                slow_count += 1
                conn = a.last_conn
                if conn is not None and self._try_register(conn):
                    if conn.protocol == "modbus":
                        dirty.add(conn.slot)
                    hi = i + 1
                    break
            touched, a.touched = a.touched, set()
            registered = False
            for conn in touched:
                if self._try_register(conn):
                    if conn.protocol == "modbus":
                        dirty.add(conn.slot)
                    registered = True
            # New connections being taken on: keep sub-blocks short so they join soon;
            # steady state: long sub-blocks, fewer kernel calls.
            sub = SUB_BLOCK if registered or touched else min(sub * 2, MAX_SUB_BLOCK)
            lo = hi
        fast_count = n - slow_count
        self.packets_bulk += fast_count
        a.packets += fast_count
        if a.first_ts is None:
            a.first_ts = int(ts[0])
        a.last_ts = int(ts[-1])
        self._absorb_stats(dirty)
        if nops:
            self._emit(out, nops, ov[:nov], orv[:nor])
        for name, lane in self.lanes.items():
            lane.end_block(lane_out[name])
        a.sweep(int(ts[-1]))

    def _absorb_stats(self, slots: set[int]) -> None:
        """Move the kernel's per-slot counters into the engine's connection and host state."""
        a = self.a
        for s in slots:
            pk0, pk1 = int(self.s_pk[s, 0]), int(self.s_pk[s, 1])
            if not (pk0 or pk1):
                continue
            conn = self.conns[s]
            if conn is None:
                continue
            st = conn.stats
            st.packets[0] += pk0
            st.packets[1] += pk1
            st.bytes[0] += int(self.s_by[s, 0])
            st.bytes[1] += int(self.s_by[s, 1])
            last = int(self.s_last[s])
            if last > st.last_ts:
                st.last_ts = last
            for d, count in ((0, pk0), (1, pk1)):
                if not count:
                    continue
                src_ip, dst_ip = (
                    (conn.client_ip, conn.server_ip) if d == 0 else (conn.server_ip, conn.client_ip)
                )
                for ip, mac, sending in (
                    (src_ip, int(self.s_smac[s, d]), True),
                    (dst_ip, int(self.s_dmac[s, d]), False),
                ):
                    h = a.hosts.get((ip, conn.vlan))
                    if h is None:
                        continue
                    if last > h.last:
                        h.last = last
                    if sending:
                        h.sent += count
                    else:
                        h.received += count
                    if mac:
                        h.macs[mac_str(mac)] += count
            self.s_pk[s] = 0
            self.s_by[s] = 0
            fins = int(self.s_fin[s])
            if fins:
                # FIN/ACK seen in bulk: the same bookkeeping the engine does for one
                conn.closed = True
                conn.fins |= fins
                if conn.fins == 3 and conn.finished_ts is None:
                    conn.finished_ts = int(self.s_fin_ts[s])
                    a.closing.append(conn)
                self.s_fin[s] = 0

    def _conv_of(self, conn: TcpConnection) -> int:
        """Conversation id of a registered connection's Modbus operations (cached)."""
        a = self.a
        ckey = ("tcp", conn.client_ip, conn.server_ip, conn.server_port, conn.vlan, "modbus")
        conv_id = a.conv_ids.get(ckey)
        if conv_id is None:
            conv_id = a.conv_ids[ckey] = a.store.conversation_id(*ckey)
        self.conv_keys[conv_id] = ckey
        return conv_id

    def _emit(self, out: dict[str, np.ndarray], n: int, ov: np.ndarray, orv: np.ndarray) -> None:
        """Turn the kernel's operation columns into per-conversation batches and counters.

        Everything is computed once over the block's operations sorted by conversation;
        each conversation's batch is then a set of slices.
        """
        a = self.a
        order = np.argsort(out["conv"][:n], kind="stable")
        c = {k: v[:n][order] for k, v in out.items()}
        conv, fc, status = c["conv"], c["fc"], c["status"]
        is_exc = status == K.STATUS_EXCEPTION
        n_exc = int(np.count_nonzero(is_exc))
        a.operations += n
        a.ops_by_status[OpStatus.EXCEPTION] += n_exc
        a.ops_by_status[OpStatus.OK] += n - n_exc
        fn_index = _FN_INDEX[fc]
        exc_code = np.where(is_exc, c["exc"], NULL)
        st_code = np.where(is_exc, _ST_EXC, _ST_OK)
        op_class = np.where(fc >= 5, _CLS_WRITE, _CLS_READ)
        vals = _Ragged(c["voff"], c["vlen"], ov)
        rvals = _Ragged(c["roff"], c["rlen"], orv)
        starts = np.concatenate(([0], np.flatnonzero(np.diff(conv)) + 1))
        ends = np.append(starts[1:], n)
        for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
            conv_id = int(conv[lo])
            ckey = self.conv_keys[conv_id]
            sl = slice(lo, hi)
            exc_here = is_exc[sl]
            if exc_here.any():
                exc_codes = np.unique(c["exc"][sl][exc_here])
                exc_index = np.where(exc_here, np.searchsorted(exc_codes, c["exc"][sl]), NULL)
                exc_names = [exception_name(int(x)) for x in exc_codes]
            else:
                exc_index = np.full(hi - lo, NULL, np.int64)
                exc_names = []
            ints = {
                "ts": c["ts"][sl],
                "src_port": c["port"][sl],
                "function_code": fc[sl],
                "unit": c["unit"][sl],
                "address": c["addr"][sl],
                "quantity": c["qty"][sl],
                "status": st_code[sl],
                "exception_code": exc_code[sl],
                "latency_ns": c["lat"][sl],
                "request_frame": c["rf"][sl],
                "response_frame": c["sf"][sl],
                "tid": c["tid"][sl],
                "op_class": op_class[sl],
                "function": fn_index[sl],
                "exception": exc_index,
                "reversed": np.zeros(hi - lo, np.int64),
            }
            batch = OpBatch(
                ints=ints,
                names=_FN_NAMES,
                exceptions=exc_names,
                ragged={"values": vals.slice(lo, hi), "response_values": rvals.slice(lo, hi)},
            )
            a.add_batch(conv_id, batch)
            counts = np.bincount(fn_index[sl], minlength=len(_FN_NAMES))
            funcs = a.conv_functions.setdefault(ckey, Counter())
            for k in np.flatnonzero(counts).tolist():
                funcs[_FN_NAMES[k]] += int(counts[k])
            self._behaviour(ckey, fc[sl], c["unit"][sl])
        if a.flush_due:
            a.flush_operations()

    def _behaviour(
        self, ckey: tuple[str, str, str, int, int, str], fc: np.ndarray, units: np.ndarray
    ) -> None:
        """Role evidence for both ends of a conversation, as the engine's _operation keeps."""
        a = self.a
        _, client_ip, server_ip, _, vlan, _ = ckey
        m = len(fc)
        writes = int(np.count_nonzero(fc >= 5))
        for ip, serving in ((client_ip, False), (server_ip, True)):
            key = (ip, vlan, "modbus")
            b = a.behaviour.get(key)
            if b is None:
                b = a.behaviour[key] = Behaviour()
            if serving:
                b.operations_served += m
                b.clients_served.add(client_ip)
                b.units_served.update(np.unique(units).tolist())
            else:
                b.operations_sent += m
                b.servers_polled.add(server_ip)
                for cls, cnt in ((OpClass.WRITE, writes), (OpClass.READ, m - writes)):
                    if cnt:
                        b.classes_sent[cls] = b.classes_sent.get(cls, 0) + cnt

    def close(self) -> None:
        """Hand every connection back before the engine closes them (end of capture)."""
        for s in list(self.active):
            self._handover(s)
        for lane in self.lanes.values():
            lane.close()


class _Ragged:
    """A ragged column for a whole block (gathered once), sliced per conversation."""

    def __init__(self, off: np.ndarray, length: np.ndarray, flat: np.ndarray) -> None:
        self.nulls = length < 0
        lens = np.where(self.nulls, 0, length)
        self.offsets = np.zeros(len(off) + 1, np.int64)
        np.cumsum(lens, out=self.offsets[1:])
        total = int(self.offsets[-1])
        if total:
            self.values = flat[np.repeat(off - self.offsets[:-1], lens) + np.arange(total)]
        else:
            self.values = np.zeros(0, np.int64)

    def slice(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        base = int(self.offsets[lo])
        return ragged_from_arrays(
            self.offsets[lo : hi + 1] - base,
            self.values[base : int(self.offsets[hi])],
            self.nulls[lo:hi],
        )
