"""Operations for the console: newest first, one page at a time, without walking the
millions before it.

Operations live column-packed in ``op_chunks`` (see :mod:`otconduit.store.opchunks`),
one chunk per conversation and batch, each with its time range. A page is the ``limit``
newest matching rows before a cursor: chunks are visited by ``last_ts`` descending and
the walk stops as soon as the next chunk ends before the oldest row already kept, so a
page costs a handful of chunk loads whatever the store holds. Rows come out in the
``conduit operations -f json`` shape (:meth:`otconduit.store.views.CaptureChunk.row`).

The cursor names the last row of a page (``ts.chunk.row``); the next page holds the rows
strictly older in (ts, chunk, row) order, so pages never repeat or skip a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from otconduit.console.errors import ApiError
from otconduit.model import OpClass, OpStatus
from otconduit.store import Store
from otconduit.store.opchunks import OP_CLASS_CODE, STATUS_CODE, unpack
from otconduit.store.views import CaptureChunk


@dataclass(slots=True)
class OpQuery:
    protocol: str | None = None
    ip: str | None = None  # either end
    src_ip: str | None = None
    dst_ip: str | None = None
    operation: str | None = None  # class
    function: str | None = None  # name or code
    status: str | None = None
    conversation: int | None = None
    cursor: str | None = None
    limit: int = 50

    @property
    def row_filtered(self) -> bool:
        return any(
            v is not None
            for v in (self.src_ip, self.dst_ip, self.operation, self.function, self.status)
        )


def parse_cursor(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    try:
        ts, chunk, row = (int(x) for x in text.split("."))
    except ValueError:
        raise ApiError(422, f"cursor {text[:40]!r} is not one this API gave out") from None
    return ts, chunk, row


def _refs(store: Store, oq: OpQuery, before_ts: int | None) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if oq.protocol is not None:
        where.append("v.protocol = ?")
        params.append(oq.protocol)
    for val in (oq.ip, oq.src_ip, oq.dst_ip):
        if val is not None:  # either end: an operation may run server -> client
            where.append("(v.client_ip = ? OR v.server_ip = ?)")
            params += [val, val]
    if oq.conversation is not None:
        where.append("k.conversation_id = ?")
        params.append(oq.conversation)
    if before_ts is not None:
        where.append("k.first_ts <= ?")
        params.append(before_ts)
    return (" WHERE " + " AND ".join(where)) if where else "", params


def _mask(batch: Any, conv: dict[str, Any], oq: OpQuery) -> np.ndarray:
    ints = batch.ints
    mask = np.ones(len(batch), bool)
    if oq.status is not None:
        code = STATUS_CODE.get(OpStatus(oq.status)) if oq.status in set(OpStatus) else -1
        mask &= ints["status"] == code
    if oq.operation is not None:
        code = OP_CLASS_CODE.get(OpClass(oq.operation)) if oq.operation in set(OpClass) else -1
        mask &= ints["op_class"] == code
    rev = ints["reversed"] == 1
    client, server = conv["client_ip"], conv["server_ip"]
    if oq.src_ip is not None:
        mask &= np.where(rev, server == oq.src_ip, client == oq.src_ip)
    if oq.dst_ip is not None:
        mask &= np.where(rev, client == oq.dst_ip, server == oq.dst_ip)
    if oq.function is not None:
        if oq.function.isdigit():
            mask &= ints["function_code"] == int(oq.function)
        else:
            want = oq.function.upper()
            idx = [i for i, n in enumerate(batch.names) if n == want]
            mask &= ints["function"] == (idx[0] if idx else -1)
    return mask


def page_operations(store: Store, oq: OpQuery) -> dict[str, Any]:
    """``{"items": [...], "next": cursor | None, "total": int | None}`` (total only
    when it is known without decoding: no per-row filter and no cursor)."""
    cur = parse_cursor(oq.cursor)
    where, params = _refs(store, oq, cur[0] if cur else None)
    total: int | None = None
    if not oq.row_filtered and cur is None:
        (n,) = store.conn.execute(
            "SELECT coalesce(sum(k.count), 0) FROM op_chunks k "
            f"JOIN conversations v ON v.id = k.conversation_id{where}",
            params,
        ).fetchone()
        total = int(n)
    sql = (
        "SELECT k.id, k.last_ts, k.data, v.protocol, v.client_ip, v.server_ip, v.server_port, "
        "c.path FROM op_chunks k JOIN conversations v ON v.id = k.conversation_id "
        f"JOIN captures c ON c.id = k.capture_id{where} ORDER BY k.last_ts DESC, k.id DESC"
    )
    want = oq.limit + 1  # one more than a page tells whether there is a next one
    kept: list[tuple[int, int, int]] = []  # (ts, chunk id, row), newest first
    chunks: dict[int, CaptureChunk] = {}
    for cid, last_ts, blob, proto, client, server, port, path in store.conn.execute(sql, params):
        if len(kept) >= want and last_ts < kept[want - 1][0]:
            break
        batch = unpack(blob)
        conv = {"protocol": proto, "client_ip": client, "server_ip": server, "server_port": port}
        mask = _mask(batch, conv, oq)
        ts = batch.ints["ts"]
        rows = np.arange(len(batch))
        if cur is not None:
            cts, cchunk, crow = cur
            older = (ts < cts) | (
                (ts == cts) & ((cid < cchunk) | ((cid == cchunk) & (rows < crow)))
            )
            mask &= older
        sel = np.flatnonzero(mask)
        if not len(sel):
            continue
        # Newest ``want`` of this chunk, then merge with what is kept.
        order = np.lexsort((-sel, -ts[sel]))[:want]
        sel = sel[order]
        kept.extend((int(ts[i]), cid, int(i)) for i in sel)
        kept.sort(key=lambda k: (-k[0], -k[1], -k[2]))
        del kept[want:]
        chunks[cid] = CaptureChunk(batch, conv, path)
    page = kept[: oq.limit]
    items = []
    for ts_ns, cid, i in page:
        row = chunks[cid].row(i)
        row["id"] = f"{ts_ns}.{cid}.{i}"
        items.append(row)
    nxt = f"{page[-1][0]}.{page[-1][1]}.{page[-1][2]}" if len(kept) > oq.limit else None
    return {"items": items, "next": nxt, "total": total}
