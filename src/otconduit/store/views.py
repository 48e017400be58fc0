"""Read-side views: assets, conversations and operations as plain dicts.

These shapes are the CLI's JSON/CSV output contract (documented in the README), so
keys only ever get added, never renamed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from otconduit.model import OpClass, OpStatus
from otconduit.store import assets as asset_rows
from otconduit.store import conversations as conversation_rows
from otconduit.store.assets import CONFIRMED_SQL, AssetFilter, asset_name, confirmed_hosts
from otconduit.store.conversations import ConversationFilter
from otconduit.store.match import ip_matcher, is_network, iso, names
from otconduit.store.opchunks import (
    INT_COLUMNS,
    NULL,
    OP_CLASS_CODE,
    OP_CLASSES,
    STATUS_CODE,
    STATUSES,
    LazyDetails,
    OpBatch,
    ragged_lists,
    unpack,
)
from otconduit.store.sqlite import Store

# Kept importable from here: the CLI, detection and the console name them so.
__all__ = [
    "CONFIRMED_SQL",
    "AssetFilter",
    "ConversationFilter",
    "OperationFilter",
    "asset_name",
    "assets",
    "confirmed_hosts",
    "conversations",
    "iso",
    "operations",
]


def assets(store: Store, flt: AssetFilter | None = None) -> list[dict[str, Any]]:
    """All assets with their merged identity, roles and protocols across captures."""
    flt = flt or AssetFilter()
    network = flt.ip if flt.ip and is_network(flt.ip) else None
    base = asset_rows.rows(store, replace(flt, ip=None) if network else flt)
    out = asset_rows.records(store, base, every_attribute=True)
    for rec in out:
        del rec["id"]
    if network:
        hit = ip_matcher(network)
        out = [r for r in out if hit(r["ip"])]
    if flt.vendor:
        needle = flt.vendor.lower()
        out = [r for r in out if r["vendor"] and needle in r["vendor"].lower()]
    from otconduit.store.advisories import attach as attach_advisories  # CSAF: when listed

    attach_advisories(store, out)
    return out


def conversations(store: Store, flt: ConversationFilter | None = None) -> list[dict[str, Any]]:
    """Conversations aggregated over every capture in the store."""
    flt = flt or ConversationFilter()
    network = flt.ip if flt.ip and is_network(flt.ip) else None
    out = conversation_rows.rows(store, replace(flt, ip=None) if network else flt)
    if network:
        hit = ip_matcher(network)
        out = [r for r in out if hit(r["client_ip"]) or hit(r["server_ip"])]
    for rec in out:
        del rec["id"]
    return out


@dataclass(slots=True)
class OperationFilter:
    protocol: str | tuple[str, ...] | None = None
    ip: str | None = None
    src_ip: str | None = None
    dst_ip: str | None = None
    operation: str | None = None
    function: str | None = None
    status: str | None = None
    unit: int | None = None
    capture: str | None = None
    limit: int | None = None
    start_ns: int | None = None  # at or after
    end_ns: int | None = None  # before


@dataclass(slots=True)
class _ChunkRef:
    id: int
    first_ts: int
    conv: dict[str, Any]
    capture: str


@dataclass(slots=True)
class _Chunk:
    """A loaded chunk and the rows of it that pass the filter, in time order."""

    batch: OpBatch
    conv: dict[str, Any]
    capture: str
    rows: np.ndarray


def _chunk_refs(store: Store, flt: OperationFilter) -> list[_ChunkRef]:
    """Chunks that may hold matching operations, by first timestamp (data not loaded)."""
    where: list[str] = []
    params: list[Any] = []
    protos = names(flt.protocol)
    if protos:
        where.append(f"v.protocol IN ({', '.join('?' * len(protos))})")
        params += protos
    # An operation may run server -> client, so either end may be its source: chunks are
    # chosen broadly here and operations narrowed per row in _load. Networks are
    # matched in Python below.
    ends = [v for v in (flt.src_ip, flt.dst_ip, flt.ip or None) if v is not None]
    for val in ends:
        if not is_network(val):
            where.append("(v.client_ip = ? OR v.server_ip = ?)")
            params += [val, val]
    if flt.start_ns is not None:
        where.append("k.last_ts >= ?")
        params.append(flt.start_ns)
    if flt.end_ns is not None:
        where.append("k.first_ts < ?")
        params.append(flt.end_ns)
    nets = [ip_matcher(v) for v in ends if is_network(v)]
    if flt.capture:
        where.append("(c.path = ? OR c.path LIKE ?)")
        params += [flt.capture, f"%/{flt.capture}"]
    sql = (
        "SELECT k.id, k.first_ts, v.protocol, v.client_ip, v.server_ip, v.server_port, c.path "
        "FROM op_chunks k JOIN conversations v ON v.id = k.conversation_id "
        "JOIN captures c ON c.id = k.capture_id "
        + (f"WHERE {' AND '.join(where)} " if where else "")
        + "ORDER BY k.first_ts, k.id"
    )
    return [
        _ChunkRef(
            r[0],
            r[1],
            {"protocol": r[2], "client_ip": r[3], "server_ip": r[4], "server_port": r[5]},
            r[6],
        )
        for r in store.conn.execute(sql, params)
        if all(hit(r[3]) or hit(r[4]) for hit in nets)
    ]


def _load(store: Store, ref: _ChunkRef, flt: OperationFilter) -> _Chunk | None:
    (blob,) = store.conn.execute("SELECT data FROM op_chunks WHERE id = ?", (ref.id,)).fetchone()
    batch = unpack(blob)
    mask = row_mask(batch, ref.conv["client_ip"], ref.conv["server_ip"], flt)
    rows = np.flatnonzero(mask)
    if not len(rows):
        return None
    rows = rows[np.argsort(batch.ints["ts"][rows], kind="stable")]
    return _Chunk(batch, ref.conv, ref.capture, rows)


def row_mask(batch: OpBatch, client: str, server: str, flt: OperationFilter) -> np.ndarray:
    """Which operations of one conversation's chunk pass ``flt``'s per-operation fields
    (status, class, unit, time, direction-aware source and destination, function by
    code or by name in any case): the one place the CLI and the console narrow rows."""
    ints = batch.ints
    mask = np.ones(len(batch), bool)
    if flt.status is not None:
        code = STATUS_CODE.get(OpStatus(flt.status)) if flt.status in set(OpStatus) else -1
        mask &= ints["status"] == code
    if flt.operation is not None:
        code = OP_CLASS_CODE.get(OpClass(flt.operation)) if flt.operation in set(OpClass) else -1
        mask &= ints["op_class"] == code
    if flt.unit is not None:
        mask &= ints["unit"] == flt.unit
    if flt.start_ns is not None:
        mask &= ints["ts"] >= flt.start_ns
    if flt.end_ns is not None:
        mask &= ints["ts"] < flt.end_ns
    rev = ints["reversed"] == 1
    if flt.src_ip is not None:
        hit = ip_matcher(flt.src_ip)
        mask &= np.where(rev, hit(server), hit(client))
    if flt.dst_ip is not None:
        hit = ip_matcher(flt.dst_ip)
        mask &= np.where(rev, hit(client), hit(server))
    if flt.function is not None:
        if flt.function.isascii() and flt.function.isdigit():
            mask &= ints["function_code"] == int(flt.function)
        else:  # names as the protocol spells them ("Read Variable"), any case
            want = flt.function.casefold()
            idx = [i for i, n in enumerate(batch.names) if n.casefold() == want]
            mask &= np.isin(ints["function"], idx)
    return mask


def _chunks(store: Store, flt: OperationFilter) -> Iterator[_Chunk]:
    for ref in _chunk_refs(store, flt):
        chunk = _load(store, ref, flt)
        if chunk is not None:
            yield chunk


def _int(v: int) -> int | None:
    return None if v == NULL else int(v)


class _RaggedRows:
    """Row ``i`` of a ragged column as a list (None where the row has none), read on
    demand."""

    __slots__ = ("flat", "nulls", "offsets")

    def __init__(self, col: tuple[np.ndarray, np.ndarray], n: int) -> None:
        packed, self.flat = col
        self.offsets, self.nulls = packed[: n + 1], packed[n + 1 :]

    def __getitem__(self, i: int) -> list[int] | None:
        if self.nulls[i]:
            return None
        return self.flat[int(self.offsets[i]) : int(self.offsets[i + 1])].tolist()


class _Cursor:
    """Walks one chunk's matching rows, turning each into the output dict. The first
    few rows are read from the columns one by one (a detector reports a row or two of
    a chunk); past that the whole chunk is turned into lists at once."""

    EAGER_AFTER = 256

    def __init__(self, chunk: _Chunk) -> None:
        b = chunk.batch
        self.chunk = chunk
        self.rows = chunk.rows.tolist()
        self._ts: list[int] | None = None
        self.cols: dict[str, Any] | None = None  # lists, once eager
        self.detail_index = b.detail_index
        self.details = b.details
        self.vals: Any = _RaggedRows(b.ragged["values"], len(b))
        self.rvals: Any = _RaggedRows(b.ragged["response_values"], len(b))
        self.served = 0

    @property
    def ts(self) -> list[int]:
        """The rows' timestamps (for the merge in time order)."""
        if self._ts is None:
            self._ts = self.chunk.batch.ints["ts"][self.chunk.rows].tolist()
        return self._ts

    def _eager(self) -> None:
        b = self.chunk.batch
        n = len(b)
        self.cols = {c: b.ints[c].tolist() for c in INT_COLUMNS}
        self.vals = ragged_lists(b.ragged["values"], n)
        self.rvals = ragged_lists(b.ragged["response_values"], n)

    def _detail(self, i: int) -> dict[str, Any]:
        """A copy of operation ``i``'s detail ({} without one); templated details are
        rendered one at a time (LazyDetails.one)."""
        pos = int(np.searchsorted(self.detail_index, i))
        if pos == len(self.detail_index) or int(self.detail_index[pos]) != i:
            return {}
        d = self.details
        return dict(d.one(pos) if isinstance(d, LazyDetails) else d[pos])

    def row(self, k: int) -> dict[str, Any]:
        self.served += 1
        if self.served == self.EAGER_AFTER:
            self._eager()
        i = self.rows[k]
        ch, b = self.chunk, self.chunk.batch
        cols = self.cols
        if cols is None:  # this row's values alone, as Python ints
            at = getattr(b.ints, "at", None)
            if at is not None:
                cols = {c: {i: at(c, i)} for c in INT_COLUMNS}
            else:
                cols = {c: {i: int(b.ints[c][i])} for c in INT_COLUMNS}
        exc = cols["exception"][i]
        detail = self._detail(i)
        if self.rvals[i] is not None:
            detail["response_values"] = self.rvals[i]
        lat = cols["latency_ns"][i]
        req, resp = _int(cols["request_frame"][i]), _int(cols["response_frame"][i])
        conv = ch.conv
        client = (conv["client_ip"], cols["src_port"][i])
        server = (conv["server_ip"], conv["server_port"])
        src, dst = (server, client) if cols["reversed"][i] == 1 else (client, server)
        return {
            "ts": iso(cols["ts"][i]),
            "protocol": conv["protocol"],
            "src_ip": src[0],
            "src_port": src[1],
            "dst_ip": dst[0],
            "dst_port": dst[1],
            "operation": str(OP_CLASSES[cols["op_class"][i]]),
            "function": b.names[cols["function"][i]],
            "function_code": cols["function_code"][i],
            "unit": _int(cols["unit"][i]),
            "address": _int(cols["address"][i]),
            "quantity": _int(cols["quantity"][i]),
            "values": self.vals[i],
            "status": str(STATUSES[cols["status"][i]]),
            "exception": None if exc == NULL else b.exceptions[exc],
            "exception_code": _int(cols["exception_code"][i]),
            "latency_ms": None if lat == NULL else lat / 1e6,
            "transaction_id": _int(cols["tid"][i]),
            "capture": ch.capture,
            "frame": req if req is not None else resp,
            "request_frame": req,
            "response_frame": resp,
            "detail": detail,
        }


def operations(store: Store, flt: OperationFilter | None = None) -> Iterator[dict[str, Any]]:
    """Operations in time order (ties in chunk order), streamed: a k-way merge over the
    chunks, each loaded only when the merge reaches its first timestamp, so memory
    follows the chunks that overlap in time, not the number of operations."""
    flt = flt or OperationFilter()
    refs = _chunk_refs(store, flt)
    heap: list[tuple[int, int, int, _Cursor]] = []
    nxt = 0
    emitted = 0
    while True:
        while nxt < len(refs) and (not heap or refs[nxt].first_ts <= heap[0][0]):
            chunk = _load(store, refs[nxt], flt)
            if chunk is not None:
                cur = _Cursor(chunk)
                heapq.heappush(heap, (cur.ts[0], nxt, 0, cur))
            nxt += 1
        if not heap:
            return
        _, seq, k, cur = heapq.heappop(heap)
        yield cur.row(k)
        emitted += 1
        if flt.limit and emitted >= flt.limit:
            return
        if k + 1 < len(cur.rows):
            heapq.heappush(heap, (cur.ts[k + 1], seq, k + 1, cur))


def _distinct_functions(
    fc: np.ndarray, fn: np.ndarray, oc: np.ndarray
) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """The distinct (function code, function, class) rows of a chunk and each operation's
    index among them. The three columns are packed into one integer first: a 1-D unique
    sorts a million operations in milliseconds, where ``np.unique(axis=0)`` took half a
    second (it sorts rows as opaque records)."""
    fc64, fn64, oc64 = (c.astype(np.int64) for c in (fc, fn, oc))
    if not len(fc64):
        return [], np.zeros(0, dtype=np.int64)
    lo = int(fc64.min())
    n_fn, n_oc = int(fn64.max()) + 1, int(oc64.max()) + 1
    span = int(fc64.max()) - lo + 1
    if int(fn64.min()) < 0 or int(oc64.min()) < 0 or span * n_fn * n_oc >= 1 << 62:
        rows, inv = np.unique(np.stack([fc64, fn64, oc64], axis=1), axis=0, return_inverse=True)
        return [tuple(r) for r in rows.tolist()], inv.reshape(-1)
    keys, inv = np.unique(((fc64 - lo) * n_fn + fn64) * n_oc + oc64, return_inverse=True)
    out = []
    for k in keys.tolist():
        rest, o = divmod(k, n_oc)
        c, f = divmod(rest, n_fn)
        out.append((c + lo, f, o))
    return out, inv.reshape(-1)


def function_summary(store: Store) -> list[dict[str, Any]]:
    """Operation counts per protocol and function, with exceptions and unanswered requests."""
    agg: dict[tuple[str, int, str, str], list[int]] = {}
    for ch in _chunks(store, OperationFilter()):
        ints = ch.batch.ints
        uniq, inv = _distinct_functions(ints["function_code"], ints["function"], ints["op_class"])
        counts = np.bincount(inv, minlength=len(uniq))
        exc = np.bincount(
            inv, weights=ints["status"] == STATUS_CODE[OpStatus.EXCEPTION], minlength=len(uniq)
        )
        nores = np.bincount(
            inv, weights=ints["status"] == STATUS_CODE[OpStatus.NO_RESPONSE], minlength=len(uniq)
        )
        for j, (fc, fn, oc) in enumerate(uniq):
            key = (ch.conv["protocol"], fc, ch.batch.names[fn], str(OP_CLASSES[oc]))
            acc = agg.setdefault(key, [0, 0, 0])
            acc[0] += int(counts[j])
            acc[1] += int(exc[j])
            acc[2] += int(nores[j])
    return [
        {
            "protocol": p,
            "function_code": fc,
            "function": fn,
            "operation": oc,
            "count": a[0],
            "exceptions": a[1],
            "no_response": a[2],
        }
        for (p, fc, fn, oc), a in sorted(agg.items())
    ]


def problem_summary(store: Store) -> list[dict[str, Any]]:
    return list(
        store.query(
            "SELECT p.layer, p.reason, sum(p.count) AS count FROM problem_counts p "
            "GROUP BY p.layer, p.reason ORDER BY count DESC"
        )
    )


@dataclass(slots=True)
class OpGroup:
    """Operations of one conversation that share direction, class and function: what a
    policy check needs, without building a dict per operation (there may be millions)."""

    protocol: str
    src_ip: str
    dst_ip: str
    src_port: int  # the first operation's (client ports vary per connection)
    dst_port: int
    operation: str
    function: str
    count: int
    first_ts: int
    last_ts: int
    capture: str
    frame: int | None  # of the earliest operation
    ts: np.ndarray  # every operation's timestamp (ns), for time-window checks


def operation_groups(store: Store) -> Iterator[OpGroup]:
    """Operations grouped per chunk by (direction, class, function), vectorised."""
    flt = OperationFilter()
    for ref in _chunk_refs(store, flt):
        chunk = _load(store, ref, flt)
        if chunk is None:
            continue
        b = chunk.batch
        ints = b.ints
        key = np.stack([ints["reversed"] == 1, ints["op_class"], ints["function"]], axis=1)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        ts = ints["ts"]
        conv = ref.conv
        for j, (rev, cls, fn) in enumerate(uniq.tolist()):
            rows = np.flatnonzero(inv == j)
            first = rows[np.argmin(ts[rows])]
            req, resp = ints["request_frame"][first], ints["response_frame"][first]
            frame = _int(req) if req != NULL else _int(resp)
            client = (conv["client_ip"], int(ints["src_port"][first]))
            server = (conv["server_ip"], conv["server_port"])
            src, dst = (server, client) if rev else (client, server)
            yield OpGroup(
                protocol=conv["protocol"],
                src_ip=src[0],
                dst_ip=dst[0],
                src_port=src[1],
                dst_port=dst[1],
                operation=str(OP_CLASSES[cls]),
                function=b.names[fn],
                count=len(rows),
                first_ts=int(ts[first]),
                last_ts=int(ts[rows].max()),
                capture=ref.capture,
                frame=frame,
                ts=ts[rows],
            )


@dataclass(slots=True)
class CaptureChunk:
    """One stored chunk of a capture's operations, with its conversation, for detectors
    that work on whole columns and only build dicts for the rows they report."""

    batch: OpBatch
    conv: dict[str, Any]  # protocol, client_ip, server_ip, server_port
    capture: str
    _cursor: _Cursor | None = None
    chunk_id: int = 0  # its row in op_chunks (0: not a stored chunk)

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` of the batch in the ``operations()`` dict shape."""
        if self._cursor is None:
            self._cursor = _Cursor(
                _Chunk(self.batch, self.conv, self.capture, np.arange(len(self.batch)))
            )
        return self._cursor.row(i)


# A chunk's conversation and capture (what CaptureChunk carries beside the batch).
_CHUNK_CONV = (
    "v.protocol, v.client_ip, v.server_ip, v.server_port, c.path "
    "FROM op_chunks k JOIN conversations v ON v.id = k.conversation_id "
    "JOIN captures c ON c.id = k.capture_id"
)


def _capture_chunk(
    chunk_id: int, data: bytes, proto: str, client: str, server: str, port: int, path: str
) -> CaptureChunk:
    conv = {"protocol": proto, "client_ip": client, "server_ip": server, "server_port": port}
    return CaptureChunk(unpack(data, lazy_details=True), conv, path, chunk_id=chunk_id)


def capture_chunks(store: Store, capture_id: int, after_chunk: int = 0) -> Iterator[CaptureChunk]:
    """Every operation chunk of one capture (those written after chunk ``after_chunk``),
    conversation by conversation. The order is found first and each chunk read when its
    turn comes: sorting the rows themselves would hold every chunk in memory at once."""
    sql = (
        f"SELECT k.id, {_CHUNK_CONV} WHERE k.capture_id = ? AND k.id > ? "
        "ORDER BY k.conversation_id, k.first_ts, k.id"
    )
    rows = store.conn.execute(sql, (capture_id, after_chunk)).fetchall()
    for chunk_id, proto, client, server, port, path in rows:
        found = store.conn.execute("SELECT data FROM op_chunks WHERE id = ?", (chunk_id,))
        row = found.fetchone()
        if row is None:  # removed meanwhile (the capture was re-analysed)
            continue
        yield _capture_chunk(chunk_id, row[0], proto, client, server, port, path)


def chunk_rows(store: Store, wanted: dict[int, list[int]]) -> dict[tuple[int, int], dict[str, Any]]:
    """Rows of stored chunks in the ``operations()`` dict shape, by (chunk id, row): each
    chunk read once. A chunk gone meanwhile (its capture re-analysed) gives none."""
    sql = f"SELECT k.data, {_CHUNK_CONV} WHERE k.id = ?"
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for chunk_id, rows in wanted.items():
        found = store.conn.execute(sql, (chunk_id,)).fetchone()
        if found is None:
            continue
        chunk = _capture_chunk(chunk_id, *found)
        for r in rows:
            out[(chunk_id, r)] = chunk.row(r)
    return out
