"""How a lane learns a template: from one transaction the kernel had no template for.

The transaction's messages (an *exemplar*) are decoded by a decoder in the connection's
state with nothing in flight (``Resumable.fork``); the lane's protocol says which
fields of each operation came from the transaction's holes; the result is a template
(``templates.OpTemplate``). It is only used once the exemplar's own holes, written into
it the way the kernel will write every later transaction of the shape, give back column
for column what the store would keep of the decoder's own operations (:func:`check`);
otherwise its shape is refused and stays with the per-packet decoder.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from otconduit.analysis.fastpath import emit as _emit
from otconduit.analysis.fastpath.kernels import shapes as _ks
from otconduit.analysis.fastpath.templates import ClaimTemplate, OpTemplate, detail_text
from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.store.opchunks import NULL, OpBatch, from_operations, ragged_lists
from otconduit.store.tdetails import TemplatedDetails

if TYPE_CHECKING:
    from otconduit.analysis.fastpath.lane import Lane

KS: Any = _ks


class Unclear(Exception):
    """This exemplar cannot say which of its messages an operation came from (two
    alike in one frame); another transaction of the same shape may: no template is
    made from this one, and the shape is not refused."""


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


def learn(
    lane: Lane,
    s: int,
    messages: list[tuple[int, bytes, int, int]],
    *,
    flush: bool = False,
    ex: Exemplar | None = None,
) -> int:
    """Make a template from ``messages``, a transaction of slot ``s`` (with ``flush``:
    the messages its connection still held when it ended, decoded up to the decoder's
    ``finish()``). Returns the template, or ``T_REFUSED`` / -1 when none was made."""
    store = lane.store
    if store.full():
        return -1
    if ex is None:
        ex = lane.shape(messages, s, flush=flush)
    if len(ex.norm) == 0:
        return -1
    known = store.find(ex.norm)
    if known != -1:  # several connections missed the same new shape in one pass
        return known
    ep = lane.endpoints(s)
    sample: Any = lane.sample_decoder(s)
    for d, data, frame, ts in messages:
        sample.feed(d, data, frame, ts)
    events = sample.events()
    if flush:
        events += sample.finish()
    roles = _claim_roles(lane, ep, messages, events, flush)
    try:
        made = _template(lane, ep, ex, events, roles)
    except Unclear:
        return -1
    if made is None:
        store.refuse(ex.norm)
        return KS.T_REFUSED
    ops, claims, protocol, problems = made
    try:
        built = store.build(ops)
    except ValueError:
        store.refuse(ex.norm)
        return KS.T_REFUSED
    t = store.add(ex.norm, built, ops, claims, protocol, problems)
    if not check(lane, t, ex, ep, [ev for ev in events if isinstance(ev, Operation)]):
        tinfo = store.tinfo
        for e in range(store.entries):
            if tinfo[e, 2] == t:
                tinfo[e, 2] = KS.T_REFUSED
        return KS.T_REFUSED
    return t


# Stand-ins for the two ends of a connection whose client and server share an address.
_APART = ("0.0.0.1", "0.0.0.2")


def _claim_roles(
    lane: Lane,
    ep: Endpoints,
    messages: list[tuple[int, bytes, int, int]],
    events: list[DecoderEvent],
    flush: bool,
) -> list[int] | None:
    """Which end each identity claim is about, when client and server share an address
    (a capture on one host): a fresh decoder that sees the two ends apart says; None
    when the ends are apart anyway, or the fresh decoder does not claim the same."""
    claims = [ev for ev in events if isinstance(ev, IdentityClaim)]
    if not claims or ep.client_ip != ep.server_ip:
        return None
    apart = replace(ep, client_ip=_APART[0], server_ip=_APART[1])
    fresh: Any = lane.spec.factory(apart)
    for d, data, frame, ts in messages:
        fresh.feed(d, data, frame, ts)
    seen = fresh.events() + (fresh.finish() if flush else [])
    again = [ev for ev in seen if isinstance(ev, IdentityClaim)]
    if [(c.attribute, c.value) for c in again] != [(c.attribute, c.value) for c in claims]:
        return None
    return [_APART.index(c.ip) for c in again]


def _template(
    lane: Lane,
    ep: Endpoints,
    ex: Exemplar,
    events: list[DecoderEvent],
    roles: list[int] | None = None,
) -> tuple[list[OpTemplate], list[ClaimTemplate], int, list[tuple[int, str]]] | None:
    ops: list[OpTemplate] = []
    claims: list[ClaimTemplate] = []
    problems: list[tuple[int, str]] = []
    protocols: set[str] = set()
    client = (ep.client_ip, ep.client_port)
    server = (ep.server_ip, ep.server_port)
    for ev in events:
        if isinstance(ev, Malformed):
            if not lane.carries_problems:
                return None
            problems.append((_problem_message(ex, ev), ev.reason))
            continue
        if isinstance(ev, IdentityClaim):
            if ep.client_ip == ep.server_ip:
                if roles is None:
                    return None  # which end it is about cannot be told
                role = roles[len(claims)]
            elif ev.ip not in (client[0], server[0]):
                return None
            else:
                role = 0 if ev.ip == client[0] else 1
            claims.append(ClaimTemplate(role, ev.attribute, ev.value, ev.source, ev.confidence))
            continue
        assert isinstance(ev, Operation)
        if ev.protocol not in lane.protocols or protocols - {ev.protocol}:
            return None  # another protocol, or operations of two in one transaction
        protocols.add(ev.protocol)
        ends = ((ev.src_ip, ev.src_port), (ev.dst_ip, ev.dst_port))
        if ends not in ((client, server), (server, client)):
            return None
        nth = len(ops)
        rq, rs = lane.frame_roles(ex, nth, ev)
        rq_frame, rq_ts = (ex.messages[rq][2], ex.messages[rq][3]) if rq >= 0 else (None, 0)
        rs_frame, rs_ts = (ex.messages[rs][2], ex.messages[rs][3]) if rs >= 0 else (None, 0)
        marked = lane.holes(ev, ex, nth)
        if marked is None:
            return None
        at = rq if rq >= 0 else max(rs, 0)  # the decoder's time: the request's, else the answer's
        if ev.ts_ns != ex.messages[at][3] or ev.request_frame not in (None, rq_frame):
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
                ts_message=at,
                detail=detail,
            )
        )
    if not ops:
        return None
    return ops, claims, lane.protocols.index(protocols.pop()), problems


def _problem_message(ex: Exemplar, ev: Malformed) -> int:
    """Which message of the transaction a decode problem is about (by its frame; -1:
    none named). Two messages of that frame cannot be told apart: :class:`Unclear`."""
    if ev.frame is None:
        return -1
    found = [m for m, msg in enumerate(ex.messages) if msg[2] == ev.frame]
    if len(found) != 1:
        raise Unclear("a problem of no one message")
    return found[0]


def check(lane: Lane, t: int, ex: Exemplar, ep: Endpoints, real: list[Operation]) -> bool:
    """The exemplar's holes written into template ``t`` give back, column for column,
    what the store would keep of the decoder's own operations."""
    xo = ex.xrow.reshape(1, -1).copy()
    xo[0, KS.X_RID] = 0
    xo[0, KS.X_TMPL] = t
    same = int(ep.client_ip == ep.server_ip)
    rid_port = np.array([[ep.client_port, ep.server_port, same]], np.int64)
    block, _, _ = _emit.expand(lane, xo, ex.lh, ex.lv, rid_port)
    got = _emit.join([(block, 0, len(block))])
    rev = [0 if op.src_ip == ep.client_ip else 1 for op in real]
    return same_operations(got, from_operations(real, rev))


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
