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
from otconduit.store import Store
from otconduit.store.chunks import ChunkRef, chunk_data, chunk_index
from otconduit.store.opchunks import unpack
from otconduit.store.views import CaptureChunk, OperationFilter, row_mask

__all__ = ["ChunkRef", "OpQuery", "chunk_index", "page_operations", "parse_cursor"]


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

    def row_filter(self) -> OperationFilter:
        """The fields matched per operation (the CLI's ``conduit operations`` filter)."""
        return OperationFilter(
            src_ip=self.src_ip,
            dst_ip=self.dst_ip,
            operation=self.operation,
            function=self.function,
            status=self.status,
        )


def parse_cursor(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    try:
        ts, chunk, row = (int(x) for x in text.split("."))
    except ValueError:
        raise ApiError(422, f"cursor {text[:40]!r} is not one this API gave out") from None
    return ts, chunk, row


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


def page_operations(
    store: Store, oq: OpQuery, chunks: list[ChunkRef] | None = None
) -> dict[str, Any]:
    """``{"items": [...], "next": cursor | None, "total": int | None}`` (total only
    when it is known without decoding: no per-row filter and no cursor). ``chunks`` is
    :func:`chunk_index` of the store (computed when not given; cached per store change
    by the console)."""
    cur = parse_cursor(oq.cursor)
    row_flt = oq.row_filter()
    refs = _selected(chunk_index(store) if chunks is None else chunks, oq, cur[0] if cur else None)
    total = sum(k.count for k in refs) if not oq.row_filtered and cur is None else None
    want = oq.limit + 1  # one more than a page tells whether there is a next one
    kept: list[tuple[int, int, int]] = []  # (ts, chunk id, row), newest first
    loaded: dict[int, CaptureChunk] = {}
    for ref in refs:
        if len(kept) >= want and ref.last_ts < kept[want - 1][0]:
            break
        blob = chunk_data(store, ref.id)
        if blob is None:  # the store changed under a cached index
            continue
        batch = unpack(blob)
        conv = {
            "protocol": ref.protocol,
            "client_ip": ref.client_ip,
            "server_ip": ref.server_ip,
            "server_port": ref.server_port,
        }
        mask = row_mask(batch, ref.client_ip, ref.server_ip, row_flt)
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
