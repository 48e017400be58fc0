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


@dataclass(frozen=True, slots=True)
class ChunkRef:
    id: int
    conversation: int
    first_ts: int
    last_ts: int
    count: int
    protocol: str
    client_ip: str
    server_ip: str
    server_port: int
    capture: str


def chunk_index(store: Store) -> list[ChunkRef]:
    """Every chunk without its data, newest ``last_ts`` first. Cheap to keep (a few MB
    for a hundred thousand chunks) and, cached per store change, it spares each page
    two scans of ``op_chunks``."""
    rows = store.conn.execute(
        "SELECT k.id, k.conversation_id, k.first_ts, k.last_ts, k.count, v.protocol, "
        "v.client_ip, v.server_ip, v.server_port, c.path FROM op_chunks k "
        "JOIN conversations v ON v.id = k.conversation_id "
        "JOIN captures c ON c.id = k.capture_id ORDER BY k.last_ts DESC, k.id DESC"
    ).fetchall()
    return [ChunkRef(*r) for r in rows]


def _selected(chunks: list[ChunkRef], oq: OpQuery, before_ts: int | None) -> list[ChunkRef]:
    ends = [v for v in (oq.ip, oq.src_ip, oq.dst_ip) if v is not None]
    return [
        k
        for k in chunks
        if (oq.protocol is None or k.protocol == oq.protocol)
        # either end: an operation may run server -> client
        and all(v in (k.client_ip, k.server_ip) for v in ends)
        and (oq.conversation is None or k.conversation == oq.conversation)
        and (before_ts is None or k.first_ts <= before_ts)
    ]


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
        if oq.function.isascii() and oq.function.isdigit():
            mask &= ints["function_code"] == int(oq.function)
        else:
            want = oq.function.upper()
            idx = [i for i, n in enumerate(batch.names) if n == want]
            mask &= ints["function"] == (idx[0] if idx else -1)
    return mask


def page_operations(
    store: Store, oq: OpQuery, chunks: list[ChunkRef] | None = None
) -> dict[str, Any]:
    """``{"items": [...], "next": cursor | None, "total": int | None}`` (total only
    when it is known without decoding: no per-row filter and no cursor). ``chunks`` is
    :func:`chunk_index` of the store (computed when not given)."""
    cur = parse_cursor(oq.cursor)
    refs = _selected(chunk_index(store) if chunks is None else chunks, oq, cur[0] if cur else None)
    total = sum(k.count for k in refs) if not oq.row_filtered and cur is None else None
    want = oq.limit + 1  # one more than a page tells whether there is a next one
    kept: list[tuple[int, int, int]] = []  # (ts, chunk id, row), newest first
    loaded: dict[int, CaptureChunk] = {}
    for ref in refs:
        if len(kept) >= want and ref.last_ts < kept[want - 1][0]:
            break
        row = store.conn.execute("SELECT data FROM op_chunks WHERE id = ?", (ref.id,)).fetchone()
        if row is None:  # the store changed under a cached index
            continue
        batch = unpack(row[0])
        conv = {
            "protocol": ref.protocol,
            "client_ip": ref.client_ip,
            "server_ip": ref.server_ip,
            "server_port": ref.server_port,
        }
        mask = _mask(batch, conv, oq)
        ts = batch.ints["ts"]
        rows = np.arange(len(batch))
        cid = ref.id
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
        loaded[cid] = CaptureChunk(batch, conv, ref.capture)
    page = kept[: oq.limit]
    items = []
    for ts_ns, cid, i in page:
        item = loaded[cid].row(i)
        item["id"] = f"{ts_ns}.{cid}.{i}"
        items.append(item)
    nxt = f"{page[-1][0]}.{page[-1][1]}.{page[-1][2]}" if len(kept) > oq.limit else None
    return {"items": items, "next": nxt, "total": total}
