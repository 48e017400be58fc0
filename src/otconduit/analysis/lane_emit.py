"""Operations out of the transactions a lane's kernel finished: column batches per
conversation, and the counters, role evidence and identity claims that the per-packet
engine keeps for each operation (:meth:`Analyzer._operation`), kept here per
(connection, template operation) instead of per operation."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from otconduit.analysis import kernels_tx as _ktx
from otconduit.analysis.laneblock import LaneBlock
from otconduit.inventory.roles import Behaviour
from otconduit.store.opchunks import (
    INT_COLUMNS,
)
from otconduit.store.tdetails import N_FRAMES, N_INTS, TemplatedDetails, Templates

if TYPE_CHECKING:
    from otconduit.analysis.lanes import TxLane
    from otconduit.analysis.templates import OpTemplate

T: Any = _ktx


def emit(lane: TxLane, xo: np.ndarray, lh: np.ndarray, lv: np.ndarray) -> None:
    """Turn finished transactions into per-conversation batches and counters."""
    a = lane.a
    tab = lane.store.tables()
    tmpl = xo[:, T.X_TMPL]
    per = tab["t_count"][tmpl]
    x_of = np.repeat(np.arange(len(xo)), per)
    starts = np.cumsum(per) - per
    o_of = tab["t_first"][tmpl][x_of] + (np.arange(len(x_of)) - starts[x_of])
    rid = xo[x_of, T.X_RID]
    conv = lane.rid_conv[rid]
    order = np.argsort(conv, kind="stable")
    x_of, o_of, rid, conv = x_of[order], o_of[order], rid[order], conv[order]
    n = len(x_of)
    cols = np.empty((len(INT_COLUMNS), n), np.int64)
    T.expand_columns(
        x_of, o_of, rid, xo, lane.rid_port, tab["role"], tab["request_frame"],
        tab["response_frame"], tab["tid_kind"], tab["tid"], tab["latency"],
        tab["function_code"], tab["unit"], tab["address"], tab["quantity"], tab["status"],
        tab["exception_code"], tab["operation"], tab["function"], tab["exception"], cols,
    )  # fmt: skip
    flat = np.empty(len(lv) + int(tab["values_len"][o_of].sum()) + 1, np.int64)
    v_off, v_null, v_n = T.gather_lists(
        tab["values_kind"][o_of],
        tab["values_index"][o_of],
        tab["values_off"][o_of],
        tab["values_len"][o_of],
        tab["static"],
        x_of,
        xo,
        lh,
        lv,
        flat,
    )
    flat = flat[:v_n].copy()  # batches wait in memory: keep only what they use
    # Details stay template + holes (rendered when read): see otconduit.store.tdetails.
    has_detail = tab["has_detail"][o_of] == 1
    det = np.flatnonzero(has_detail)
    templates = Templates(tab["seg_at"], tab["sg"], tab["text"], id(lane.store))
    every = _details(templates, o_of[det], x_of[det], xo, lh, lv)
    d_before = np.zeros(n + 1, np.int64)
    np.cumsum(has_detail, out=d_before[1:])
    block = LaneBlock(
        cols, list(lane.store.names), list(lane.store.exceptions), v_off, flat, v_null,
        det, d_before, every,
    )  # fmt: skip
    cuts = np.flatnonzero(np.diff(conv)) + 1
    bounds = [0, *cuts.tolist(), n]
    for lo, hi in pairwise(bounds):
        a.add_slice(int(conv[lo]), block, lo, hi)
    _account(lane, xo)
    a.operations += n
    if a.flush_due:
        a.flush_operations()


def _details(
    templates: Templates,
    op: np.ndarray,
    x: np.ndarray,
    xo: np.ndarray,
    lh: np.ndarray,
    lv: np.ndarray,
) -> TemplatedDetails:
    """Details of operations with template operation ``op`` of transactions ``x``,
    their holes copied out of the block (which the next block reuses)."""
    n = len(x)
    ints = np.empty((n, N_INTS), np.int64)
    frames = np.empty((n, N_FRAMES), np.int64)
    ln = np.empty(n, np.int64)
    h_len, vals = T.gather_holes(x, xo, lh, lv, ints, frames, ln)
    return TemplatedDetails(templates, op.astype(np.int64), ints, frames, ln, h_len, vals)


KEY_WIDTH = 1 << 24  # template operations per lane stay far below this
SETTLE_EVERY = 1 << 20  # accumulated (registration, operation) rows before settling early


def _account(lane: TxLane, xo: np.ndarray) -> None:
    """Counters, behaviour and identity claims. Transactions per (connection, template)
    are only counted here; :func:`settle` adds what they stand for to the analyzer's
    counters, once per pair rather than once per pair per block."""
    rid, tmpl = xo[:, T.X_RID], xo[:, T.X_TMPL]
    uniq, counts = np.unique(rid * KEY_WIDTH + tmpl, return_counts=True)
    lane.acc_keys.append(uniq)
    lane.acc_counts.append(counts)
    lane.acc_size += len(uniq)
    if lane.acc_size >= SETTLE_EVERY:
        settle(lane)
    _claims(lane, rid, tmpl)


def settle(lane: TxLane) -> None:
    """Add the accumulated counts to the analyzer's counters (at the end of a capture,
    before its records are built, or when the accumulator grows large): each
    transaction of template t counts once for every operation template t holds."""
    if not lane.acc_keys:
        return
    keys = np.concatenate(lane.acc_keys)
    uniq, inv = np.unique(keys, return_inverse=True)
    totals = np.bincount(inv, weights=np.concatenate(lane.acc_counts)).astype(np.int64)
    lane.acc_keys, lane.acc_counts, lane.acc_size = [], [], 0
    ops = lane.store.protocol_ops
    first, count = lane.store.first, lane.store.count
    for k, cnt_ in zip(uniq.tolist(), totals.tolist(), strict=True):
        r, t = divmod(k, KEY_WIDTH)
        for o in range(first[t], first[t] + count[t]):
            _settle_one(lane, r, ops[o], cnt_)


def _settle_one(lane: TxLane, r: int, op: OpTemplate, cnt_: int) -> None:
    """``cnt_`` operations of template operation ``op`` on registration ``r``."""
    a = lane.a
    ckey = lane.conv_keys[lane.rid_conv[r]]
    _, client_ip, server_ip, _, vlan, proto = ckey
    a.ops_by_status[op.status] += cnt_
    a.conv_functions.setdefault(ckey, Counter())[op.function] += cnt_
    src, dst = (client_ip, server_ip) if op.role == 0 else (server_ip, client_ip)
    for ip, serving in ((src, False), (dst, True)):
        b = a.behaviour.get((ip, vlan, proto))
        if b is None:
            b = a.behaviour[(ip, vlan, proto)] = Behaviour()
        if serving:
            b.operations_served += cnt_
            b.clients_served.add(src)
            if op.unit is not None:
                b.units_served.add(op.unit)
        else:
            b.operations_sent += cnt_
            b.servers_polled.add(dst)
            b.classes_sent[op.operation] = b.classes_sent.get(op.operation, 0) + cnt_


def _claims(lane: TxLane, rid: np.ndarray, tmpl: np.ndarray) -> None:
    """Identity claims of the templates, once per (conversation, template)."""
    a = lane.a
    with_claims = np.fromiter((bool(c) for c in lane.store.claims), bool, len(lane.store.claims))
    keep = with_claims[tmpl]
    if not keep.any():
        return
    width = len(lane.store.claims) + 1
    pairs = np.unique(rid[keep] * width + tmpl[keep])
    for r, t in zip(*np.divmod(pairs, width), strict=True):
        conv_id = int(lane.rid_conv[r])
        if (conv_id, t) in lane.claimed:
            continue
        lane.claimed.add((conv_id, int(t)))
        _, client_ip, server_ip, _, vlan, _ = lane.conv_keys[conv_id]
        for c in lane.store.claims[t]:
            ip = client_ip if c.role == 0 else server_ip
            claims = a.identity.setdefault((ip, vlan), {})
            ck = (c.attribute, c.value, c.source)
            claims[ck] = max(claims.get(ck, 0.0), c.confidence)
