"""Templates of the bulk path's transaction lanes.

A template is what the per-packet decoder made of one transaction of a given *shape*
(its bytes with the varying fields zeroed, see :mod:`otconduit.analysis.kernels_tx`):
the operations, each with its static fields, its detail as JSON text with *holes* where
the varying fields go, and the identity claims it made. Later transactions of the same
shape get the same operations with their own hole values, so the bulk path needs no
decoder of its own for names, classes or detail layouts: those always come from the
per-packet decoder, which stays the authority.

A template is only accepted when the exemplar's own hole values, written into it, give
back exactly the exemplar's operations (:meth:`TemplateStore.check`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from otconduit.analysis import kernels_tx as _ktx
from otconduit.model import OpClass, OpStatus
from otconduit.store.opchunks import NULL, OP_CLASS_CODE, STATUS_CODE, _jsonable

K: Any = _ktx
MAX_TEMPLATES = 4096  # shapes remembered per lane; beyond, new shapes stay per-packet
_SENTINEL = "\x00{}\x00"
_SPLIT = re.compile(r'"\\u0000(\d+)\\u0000"')


@dataclass(frozen=True, slots=True)
class Hole:
    """Marks where a varying field goes: ``kind`` is one of ``kernels_tx.H_*``."""

    kind: int
    index: int = 0


@dataclass(slots=True, kw_only=True)
class OpTemplate:
    """One operation of a template. ``role`` 0: the operation's source is the client
    side of the connection, 1: the server side. Its time is the first message's."""

    function: str
    function_code: int
    operation: OpClass
    unit: int | None
    address: int | None
    quantity: int | None
    status: OpStatus
    exception: str | None
    exception_code: int | None
    role: int
    tid: int | Hole | None
    values: tuple[int, ...] | Hole | None
    request_frame: int  # which message's frame (-1: none)
    response_frame: int
    latency: bool  # time of the response_frame message minus the request_frame one
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClaimTemplate:
    role: int  # 0: about the client, 1: about the server
    attribute: str
    value: str
    source: str
    confidence: float


def detail_text(detail: dict[str, Any]) -> str:
    """A detail as the store writes it."""
    return json.dumps(detail, separators=(",", ":"), default=_jsonable)


def _segments(detail: dict[str, Any]) -> list[tuple[str, int, int]] | None:
    """(text, hole kind, hole index) pieces of a detail with holes; None when the text
    could be ambiguous."""
    holes: list[Hole] = []

    def sub(v: Any) -> Any:
        if isinstance(v, Hole):
            holes.append(v)
            return _SENTINEL.format(len(holes) - 1)
        if isinstance(v, dict):
            return {k: sub(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [sub(x) for x in v]
        return v

    text = detail_text(sub(detail))
    parts = _SPLIT.split(text)
    if len(parts) != 2 * len(holes) + 1 or "\\u0000" in "".join(parts[::2]):
        return None
    out = []
    for k, hole in enumerate(holes):
        if int(parts[2 * k + 1]) != k:
            return None
        out.append((parts[2 * k], hole.kind, hole.index))
    out.append((parts[-1], K.H_END, 0))
    return out


_OP_COLUMNS = (
    "function",
    "function_code",
    "operation",
    "unit",
    "address",
    "quantity",
    "status",
    "exception",
    "exception_code",
    "role",
    "tid_kind",
    "tid",
    "values_kind",
    "values_index",
    "values_off",
    "values_len",
    "request_frame",
    "response_frame",
    "latency",
    "has_detail",
)


class TemplateStore:
    """Shapes and their templates: arrays for the kernels (``th``, ``tinfo``,
    ``tnorm``) and column tables for expanding transactions into operations."""

    def __init__(self) -> None:
        self.th = np.full((1024, 2), -1, np.int64)  # (hash, entry)
        self.tinfo = np.zeros((64, 3), np.int64)  # entry: (shape offset, length, template)
        self.tnorm = np.zeros(1 << 16, np.uint8)
        self.entries = 0
        self.norm_used = 0
        self.templates = 0
        self.first: list[int] = []  # per template: first operation template, count
        self.count: list[int] = []
        self.claims: list[list[ClaimTemplate]] = []
        self.names: list[str] = []
        self.exceptions: list[str] = []
        self.static_values: list[int] = []
        self.protocol_ops: list[OpTemplate] = []
        self._rows: list[list[int]] = []
        self._segs: list[tuple[int, int, int, int]] = []
        self._text = bytearray()
        self._seg_at: list[tuple[int, int]] = []
        self._tables: dict[str, np.ndarray] | None = None

    # -- shapes ------------------------------------------------------------------------
    def _index(self, norm: np.ndarray, template: int) -> None:
        if self.entries == len(self.tinfo):
            self.tinfo = np.concatenate([self.tinfo, np.zeros_like(self.tinfo)])
        n = len(norm)
        while self.norm_used + n > len(self.tnorm):
            self.tnorm = np.concatenate([self.tnorm, np.zeros_like(self.tnorm)])
        self.tnorm[self.norm_used : self.norm_used + n] = norm
        self.tinfo[self.entries] = (self.norm_used, n, template)
        self.norm_used += n
        if 2 * (self.entries + 1) > len(self.th):
            self.th = np.full((2 * len(self.th), 2), -1, np.int64)
            for e in range(self.entries):
                off, size, _ = self.tinfo[e]
                K.template_insert(self.th, K.fnv(self.tnorm[off : off + size], size), e)
        K.template_insert(self.th, K.fnv(norm, n), self.entries)
        self.entries += 1

    def full(self) -> bool:
        return self.entries >= MAX_TEMPLATES

    def refuse(self, norm: np.ndarray) -> None:
        """The per-packet path must always take transactions of this shape."""
        if not self.full():
            self._index(norm, K.T_REFUSED)

    # -- templates ---------------------------------------------------------------------
    def _name(self, table: list[str], name: str) -> int:
        try:
            return table.index(name)
        except ValueError:
            table.append(name)
            return len(table) - 1

    def build(self, ops: list[OpTemplate]) -> list[tuple[list[int], list[tuple[str, int, int]]]]:
        """Column rows and detail segments of ``ops``; raises ValueError when a detail
        cannot be templated."""
        out = []
        for op in ops:
            segs = _segments(op.detail)
            if segs is None:
                raise ValueError("ambiguous detail text")
            if isinstance(op.tid, Hole):
                tid_kind, tid = 2, op.tid.index
            else:
                tid_kind, tid = (0, 0) if op.tid is None else (1, op.tid)
            v_kind, v_index, v_off, v_len = 0, 0, 0, 0
            if isinstance(op.values, Hole):
                v_kind, v_index = 2, op.values.index
            elif op.values is not None:
                v_kind, v_off, v_len = 1, len(self.static_values), len(op.values)
                self.static_values.extend(op.values)
            row = [
                self._name(self.names, op.function),
                op.function_code,
                OP_CLASS_CODE[op.operation],
                NULL if op.unit is None else op.unit,
                NULL if op.address is None else op.address,
                NULL if op.quantity is None else op.quantity,
                STATUS_CODE[op.status],
                NULL if op.exception is None else self._name(self.exceptions, op.exception),
                NULL if op.exception_code is None else op.exception_code,
                op.role,
                tid_kind,
                tid,
                v_kind,
                v_index,
                v_off,
                v_len,
                op.request_frame,
                op.response_frame,
                int(op.latency),
                int(bool(op.detail)),
            ]
            out.append((row, segs))
        return out

    def add(
        self,
        norm: np.ndarray,
        built: list[tuple[list[int], list[tuple[str, int, int]]]],
        ops: list[OpTemplate],
        claims: list[ClaimTemplate],
    ) -> int:
        """Store a checked template for shape ``norm``; returns its id."""
        t = self.templates
        self.first.append(len(self._rows))
        self.count.append(len(built))
        self.claims.append(claims)
        for (row, segs), op in zip(built, ops, strict=True):
            self._rows.append(row)
            self.protocol_ops.append(op)
            self._seg_at.append((len(self._segs), len(segs)))
            for text, kind, index in segs:
                raw = text.encode("ascii")
                self._segs.append((len(self._text), len(raw), kind, index))
                self._text += raw
        self.templates += 1
        self._tables = None
        self._index(norm, t)
        return t

    def tables(self) -> dict[str, np.ndarray]:
        """Column tables over operation templates, and the detail segments."""
        if self._tables is None:
            rows = np.array(self._rows, np.int64).reshape(-1, len(_OP_COLUMNS))
            tab = {name: rows[:, k] for k, name in enumerate(_OP_COLUMNS)}
            tab["t_first"] = np.array(self.first, np.int64)
            tab["t_count"] = np.array(self.count, np.int64)
            tab["seg_at"] = np.array(self._seg_at, np.int64).reshape(-1, 2)
            tab["sg"] = np.array(self._segs, np.int64).reshape(-1, 4)
            text_len = np.array([s[1] for s in self._segs], np.int64)
            bounds = np.append(tab["seg_at"][:, 0], len(text_len))
            csum = np.concatenate(([0], np.cumsum(text_len)))
            tab["text_len"] = csum[bounds[1:]] - csum[bounds[:-1]]
            tab["text"] = np.frombuffer(bytes(self._text) or b" ", np.uint8)
            tab["static"] = np.array(self.static_values or [0], np.int64)
            self._tables = tab
        return self._tables

    def render(
        self,
        rows: np.ndarray,
        xo: np.ndarray,
        lh: np.ndarray,
        lv: np.ndarray,
        tab: dict[str, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Detail JSON of operations ``rows`` ((transaction, operation template) pairs),
        each followed by a comma (none for an empty detail): all the text, and where each
        operation's part starts and ends."""
        per = tab["text_len"][rows[:, 1]] if len(rows) else np.zeros(0, np.int64)
        size = int(per.sum()) + 64 * len(rows) + 256
        offs = np.zeros(len(rows) + 1, np.int64)
        while True:
            out = np.empty(size, np.uint8)  # batches keep views of it: never reused
            n = K.render_details(
                rows,
                tab["seg_at"],
                tab["has_detail"],
                tab["sg"],
                tab["text"],
                xo,
                lh,
                lv,
                out,
                offs,
            )
            if n >= 0:
                return out[:n], offs
            size = 4 * len(out)
