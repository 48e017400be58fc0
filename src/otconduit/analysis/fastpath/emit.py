"""Operations out of the transactions a lane's kernel finished.

A block's transactions become one :class:`LaneBlock`: the stored integer columns,
written values and values read back as ragged columns, and the details as templates
plus holes (``store.tdetails``), all sorted by conversation. A conversation keeps only
``(block, lo, hi)`` references until it is stored, when :func:`join` builds its batch
once from all its slices. The counters, role evidence and identity claims that the
per-packet engine reports per operation go to the analyzer's tally per (connection,
template operation) instead (:func:`account`, :func:`settle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from otconduit.analysis.fastpath.kernels import columns as _kc
from otconduit.analysis.fastpath.kernels import shapes as _ks
from otconduit.store.detail_holes import H_FRAME, H_INT
from otconduit.store.opchunks import INT_COLUMNS, OpBatch, ragged_from_arrays
from otconduit.store.tdetails import TemplatedDetails, Templates, prefix_sums

if TYPE_CHECKING:
    from otconduit.analysis.fastpath.lane import Lane
    from otconduit.analysis.fastpath.templates import OpTemplate, Tables

KC: Any = _kc
KS: Any = _ks


@dataclass(slots=True, eq=False)  # holds arrays: identity, not value, equality
class LaneBlock:
    """Operations ``0..n-1`` of one block: ``cols`` (the INT_COLUMNS rows), written
    values (``v_off``: n+1 offsets into ``flat``, ``v_null``) and values read back
    (``r_off``, ``rflat``, ``r_null``), the operations with a detail (``det``, and
    ``d_before``: how many come before each operation) and their templated ``details``."""

    cols: np.ndarray
    names: list[str]
    exceptions: list[str]
    v_off: np.ndarray
    flat: np.ndarray
    v_null: np.ndarray
    r_off: np.ndarray
    rflat: np.ndarray
    r_null: np.ndarray
    det: np.ndarray
    d_before: np.ndarray
    details: TemplatedDetails
    _hs: np.ndarray = field(init=False)  # list holes before each detailed operation
    _vs: np.ndarray = field(init=False)  # values before each list hole

    def __post_init__(self) -> None:
        self._hs = prefix_sums(self.details.ln)
        self._vs = prefix_sums(self.details.h_len)

    def __len__(self) -> int:
        return self.cols.shape[1]

    def details_of(self, lo: int, hi: int) -> TemplatedDetails:
        """Templated details of the detailed operations among ``lo..hi-1``."""
        a, b = int(self.d_before[lo]), int(self.d_before[hi])
        return self.details.part(a, b, self._hs, self._vs)


Slice = tuple[LaneBlock, int, int]


def _ragged(slices: Sequence[Slice], which: str) -> tuple[np.ndarray, np.ndarray]:
    offs = [np.zeros(1, np.int64)]
    flats, nulls = [], []
    shift = 0
    for b, lo, hi in slices:
        off, flat, null = (
            (b.v_off, b.flat, b.v_null) if which == "values" else (b.r_off, b.rflat, b.r_null)
        )
        first = int(off[lo])
        offs.append(off[lo + 1 : hi + 1] - first + shift)
        flats.append(flat[first : int(off[hi])])
        shift += int(off[hi]) - first
        nulls.append(null[lo:hi])
    return ragged_from_arrays(np.concatenate(offs), np.concatenate(flats), np.concatenate(nulls))


def join(slices: Sequence[Slice]) -> OpBatch:
    """One conversation's operations from its slices of one lane's blocks, in order.
    Name tables only grow, so the newest block's serve every slice."""
    newest = max((b for b, _, _ in slices), key=lambda b: len(b.names) + len(b.exceptions))
    cols = np.concatenate([b.cols[:, lo:hi] for b, lo, hi in slices], axis=1)
    ints = {c: cols[k] for k, c in enumerate(INT_COLUMNS)}  # rows of one copy
    dets = []
    base = 0
    for b, lo, hi in slices:
        dets.append(b.det[int(b.d_before[lo]) : int(b.d_before[hi])] - lo + base)
        base += hi - lo
    details = TemplatedDetails.merge([b.details_of(lo, hi) for b, lo, hi in slices])
    assert details is not None  # one lane's blocks: one template store
    return OpBatch(
        ints=ints,
        names=newest.names,
        exceptions=newest.exceptions,
        ragged={
            "values": _ragged(slices, "values"),
            "response_values": _ragged(slices, "response_values"),
        },
        detail_index=np.concatenate(dets),
        details=details,
    )


def _lists(
    tab: Tables, kind: str, o_of: np.ndarray, x_of: np.ndarray, xo: np.ndarray, lh: np.ndarray,
    lv: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """A ragged column (offsets, flat values, nulls) of ``kind`` (values or rvalues)."""
    op = tab.op
    off, null, flat = KC.gather_lists(
        getattr(op, f"{kind}_kind")[o_of], getattr(op, f"{kind}_index")[o_of],
        getattr(op, f"{kind}_off")[o_of], getattr(op, f"{kind}_len")[o_of], tab.static, x_of,
        xo, lh, lv,
    )  # fmt: skip
    return off, flat, null


def expand(
    lane: Lane,
    xo: np.ndarray,
    lh: np.ndarray,
    lv: np.ndarray,
    rid_port: np.ndarray,
    order_by: np.ndarray | None = None,
) -> tuple[LaneBlock, np.ndarray, np.ndarray]:
    """The operations of transactions ``xo`` (their templates' operations, sorted by
    ``order_by[transaction]`` when given): the block, and per operation its
    transaction row and registration."""
    tab = lane.store.tables()
    tmpl = xo[:, KS.X_TMPL]
    per = tab.t_count[tmpl]
    x_of = np.repeat(np.arange(len(xo)), per)
    starts = np.cumsum(per) - per
    o_of = tab.t_first[tmpl][x_of] + (np.arange(len(x_of)) - starts[x_of])
    rid = xo[x_of, KS.X_RID]
    if order_by is not None:
        order = np.argsort(order_by[x_of], kind="stable")
        x_of, o_of, rid = x_of[order], o_of[order], rid[order]
    n = len(x_of)
    cols = np.empty((len(INT_COLUMNS), n), np.int64)
    KC.expand_columns(x_of, o_of, rid, xo, rid_port, tab.op, cols)
    v_off, flat, v_null = _lists(tab, "values", o_of, x_of, xo, lh, lv)
    r_off, rflat, r_null = _lists(tab, "rvalues", o_of, x_of, xo, lh, lv)
    has_detail = tab.op.has_detail[o_of] == 1
    det = np.flatnonzero(has_detail)
    templates = Templates(tab.seg_at, tab.sg, tab.text, id(lane.store))
    every = _details(templates, o_of[det], x_of[det], xo, lh, lv)
    d_before = np.zeros(n + 1, np.int64)
    np.cumsum(has_detail, out=d_before[1:])
    block = LaneBlock(
        cols, list(lane.store.names), list(lane.store.exceptions), v_off, flat, v_null,
        r_off, rflat, r_null, det, d_before, every,
    )  # fmt: skip
    return block, x_of, rid


def emit(lane: Lane, xo: np.ndarray, lh: np.ndarray, lv: np.ndarray) -> None:
    """Turn finished transactions into per-conversation slices and counters."""
    a = lane.a
    conv_x = lane.conversations(xo)
    block, x_of, rid = expand(lane, xo, lh, lv, lane.rid_port, conv_x)
    conv = conv_x[x_of]
    cuts = np.flatnonzero(np.diff(conv)) + 1
    for lo, hi in pairwise([0, *cuts.tolist(), len(rid)]):
        a.add_slice(int(conv[lo]), block, lo, hi)
    account(lane, xo, conv_x)
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
    ints = np.empty((n, _width(templates, H_INT)), np.int64)
    frames = np.empty((n, _width(templates, H_FRAME)), np.int64)
    ln = np.empty(n, np.int64)
    h_len, vals = KC.gather_holes(x, xo, lh, lv, ints, frames, ln)
    return TemplatedDetails(templates, op.astype(np.int64), ints, frames, ln, h_len, vals)


def _width(templates: Templates, kind: int) -> int:
    """How many holes of ``kind`` the templates' texts reach (at least one column)."""
    sg = templates.sg
    used = sg[sg[:, 2] == kind, 3]
    return int(used.max()) + 1 if len(used) else 1


KEY_WIDTH = 1 << 24  # template operations per lane stay far below this
SETTLE_EVERY = 1 << 20  # accumulated (registration, template) rows before settling early


def account(lane: Lane, xo: np.ndarray, conv: np.ndarray) -> None:
    """Counters, behaviour and identity claims. Transactions per (conversation,
    template) are only counted here; :func:`settle` adds what they stand for to the
    tally, once per pair rather than once per pair per block (everything the tally
    keeps is per conversation or per host: a thousand short connections of one
    conversation settle as one). Units served that vary from one transaction to the next
    (a hole) are collected here."""
    tmpl = xo[:, KS.X_TMPL]
    uniq, counts = np.unique(conv * KEY_WIDTH + tmpl, return_counts=True)
    lane.acc_keys.append(uniq)
    lane.acc_counts.append(counts)
    lane.acc_size += len(uniq)
    if lane.acc_size >= SETTLE_EVERY:
        settle(lane)
    _units(lane, conv, tmpl, xo)
    _claims(lane, conv, tmpl)
    _problems(lane, conv, tmpl, xo)


def settle(lane: Lane) -> None:
    """Add the accumulated counts to the tally (at the end of a capture, before its
    records are built, or when the accumulator grows large): each transaction of
    template t counts once for every operation template t holds."""
    if not lane.acc_keys:
        return
    keys = np.concatenate(lane.acc_keys)
    uniq, inv = np.unique(keys, return_inverse=True)
    totals = np.bincount(inv, weights=np.concatenate(lane.acc_counts)).astype(np.int64)
    lane.acc_keys, lane.acc_counts, lane.acc_size = [], [], 0
    ops = lane.store.protocol_ops
    first, count = lane.store.first, lane.store.count
    for k, n in zip(uniq.tolist(), totals.tolist(), strict=True):
        conv, t = divmod(k, KEY_WIDTH)
        for o in range(first[t], first[t] + count[t]):
            _settle_one(lane, conv, ops[o], n)


def _settle_one(lane: Lane, conv: int, op: OpTemplate, n: int) -> None:
    """``n`` operations of template operation ``op`` on conversation ``conv``."""
    ckey = lane.conv_keys[conv]
    _, client_ip, server_ip, _, _, _ = ckey
    src, dst = (client_ip, server_ip) if op.role == 0 else (server_ip, client_ip)
    unit = op.unit if isinstance(op.unit, int) else None
    lane.a.tally.operations_of(ckey, op.function, op.status, op.operation, unit, src, dst, n)


def _units(lane: Lane, conv: np.ndarray, tmpl: np.ndarray, xo: np.ndarray) -> None:
    """Units served, for templates whose operations take the unit from a hole."""
    hole, roles = lane.store.unit_holes()  # per template: hole of its unit (or -1), role
    h = hole[tmpl]
    keep = np.flatnonzero(h >= 0)
    if not len(keep):
        return
    units = xo[keep, KS.X_INT + h[keep]]  # 0..255 (a Modbus unit id)
    pairs = np.unique((conv[keep] * len(roles) + tmpl[keep]) * 256 + (units & 0xFF))
    tally = lane.a.tally
    for key in pairs.tolist():
        ct, unit = divmod(key, 256)
        c, t = divmod(ct, len(roles))
        _, client_ip, server_ip, _, vlan, proto = lane.conv_keys[c]
        served = client_ip if roles[t] == 1 else server_ip  # the operation's destination
        tally.units_served(served, vlan, proto, unit)


def _claims(lane: Lane, conv: np.ndarray, tmpl: np.ndarray) -> None:
    """Identity claims of the templates, once per (conversation, template)."""
    store = lane.store
    with_claims = np.fromiter((bool(c) for c in store.claims), bool, len(store.claims))
    keep = with_claims[tmpl]
    if not keep.any():
        return
    width = len(store.claims) + 1
    pairs = np.unique(conv[keep] * width + tmpl[keep])
    tally = lane.a.tally
    for c, t in zip(*np.divmod(pairs, width), strict=True):
        if (int(c), int(t)) in lane.claimed:
            continue
        lane.claimed.add((int(c), int(t)))
        _, client_ip, server_ip, _, vlan, _ = lane.conv_keys[int(c)]
        for claim in store.claims[t]:
            ip = client_ip if claim.role == 0 else server_ip
            tally.claim(ip, vlan, claim.attribute, claim.value, claim.source, claim.confidence)


def _problems(lane: Lane, conv: np.ndarray, tmpl: np.ndarray, xo: np.ndarray) -> None:
    """Decode problems of the templates that report some, once per transaction (as
    the decoder reports them, with the frame of the message they are about), in frame
    order: grouped per conversation and template, each group's frames taken together."""
    store = lane.store
    if not any(store.problems):
        return
    with_problems = np.fromiter((bool(p) for p in store.problems), bool, len(store.problems))
    rows = np.flatnonzero(with_problems[tmpl])
    if not len(rows):
        return
    layer = lane.spec.name
    key = conv[rows] * len(store.problems) + tmpl[rows]
    order = np.argsort(key, kind="stable")
    rows = rows[order]
    out: list[tuple[int | None, str, str | None, str, str | None, str | None]] = []
    for group in np.split(rows, np.flatnonzero(np.diff(key[order])) + 1):
        _, client_ip, server_ip, _, _, _ = lane.conv_keys[int(conv[group[0]])]
        for m, reason in store.problems[int(tmpl[group[0]])]:
            frames = xo[group, KS.X_F + 2 * m].tolist() if m >= 0 else [None] * len(group)
            out += [(f, layer, layer, reason, client_ip, server_ip) for f in frames]
    out.sort(key=lambda p: -1 if p[0] is None else p[0])
    lane.a.add_problems(out)
