"""Templates of the fast path's lanes.

A template is what the per-packet decoder made of one transaction of a given *shape*
(its bytes with the varying fields taken out, see ``kernels.shapes``): the operations,
each with its constant fields, the fields that come from the transaction's holes (its
id, unit, address or quantity; written values and values read back), its detail as JSON
text with holes, and the identity claims it made. Later transactions of the same shape
get the same operations with their own hole values, so the lanes need no decoder of
their own for names, classes or detail layouts: those always come from the per-packet
decoder, which stays the authority.

A template is only used once the exemplar's own hole values, written into it, give back
exactly the exemplar's operations (``Lane._check``).
"""

from __future__ import annotations

import re
from collections import namedtuple
from dataclasses import dataclass
from typing import Any

import numpy as np

from otconduit.analysis.fastpath.kernels import columns as _kc
from otconduit.analysis.fastpath.kernels import shapes as _ks
from otconduit.model import OpClass, OpStatus
from otconduit.store.detail_holes import H_END
from otconduit.store.detail_render import render
from otconduit.store.opchunks import NULL, OP_CLASS_CODE, STATUS_CODE, detail_json

KS: Any = _ks
MAX_TEMPLATES = 4096  # shapes remembered per lane; beyond, new shapes stay per-packet
_SENTINEL = "\x00{}\x00"
_SPLIT = re.compile(r'"\\u0000(\d+)\\u0000"')

KIND_NONE, KIND_CONST, KIND_HOLE = _kc.KIND_NONE, _kc.KIND_CONST, _kc.KIND_HOLE


@dataclass(frozen=True, slots=True)
class Hole:
    """Marks where a varying field goes: ``kind`` is one of ``detail_render.H_*`` (in a
    detail) or just says which integer or list hole fills an operation field."""

    kind: int
    index: int = 0


IntField = int | Hole | None
ListField = tuple[int, ...] | Hole | None


@dataclass(slots=True, kw_only=True)
class OpTemplate:
    """One operation of a template. ``role`` 0: the operation's source is the client
    side of the connection, 1: the server side. Its time is message ``ts_message``'s."""

    function: str
    function_code: int
    operation: OpClass
    unit: IntField
    address: IntField
    quantity: IntField
    status: OpStatus
    exception: str | None
    exception_code: int | None
    role: int
    tid: IntField
    values: ListField
    response_values: ListField
    request_frame: int  # which message's frame (-1: none)
    response_frame: int
    latency: bool  # time of the response_frame message minus the request_frame one
    ts_message: int = 0  # which message's time is the operation's
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
    return detail_json(detail)


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
    out.append((parts[-1], H_END, 0))
    return out


# Operation table columns (one row per template operation); the kernels read them as the
# OpTable named tuple (kernels.columns.expand_columns).
_OP_COLUMNS = (
    "function",
    "function_code",
    "operation",
    "unit_kind",
    "unit",
    "address_kind",
    "address",
    "quantity_kind",
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
    "rvalues_kind",
    "rvalues_index",
    "rvalues_off",
    "rvalues_len",
    "request_frame",
    "response_frame",
    "latency",
    "ts_message",
    "has_detail",
)
OpTable = namedtuple("OpTable", _OP_COLUMNS)  # type: ignore[misc]  # dynamic fields


@dataclass(slots=True)
class Tables:
    """Everything about a store's templates that expanding transactions needs: the
    operation table, each template's operations (``t_first``, ``t_count``), detail
    segments and text, and the pool of static value lists."""

    op: Any  # OpTable of int64 arrays
    t_first: np.ndarray
    t_count: np.ndarray
    seg_at: np.ndarray
    sg: np.ndarray
    text: np.ndarray
    text_len: np.ndarray
    static: np.ndarray


def _int_field(value: IntField) -> tuple[int, int]:
    if isinstance(value, Hole):
        return KIND_HOLE, value.index
    return (KIND_NONE, NULL) if value is None else (KIND_CONST, value)


class TemplateStore:
    """Shapes and their templates: arrays for the kernels (``th``, ``tinfo``,
    ``tnorm``) and the tables for expanding transactions into operations."""

    def __init__(self) -> None:
        self.th = np.full((1024, 2), -1, np.int64)  # (hash, entry)
        # entry: (shape offset, length, template, 1 << its operations' protocol)
        self.tinfo = np.zeros((64, 4), np.int64)
        self.tnorm = np.zeros(1 << 16, np.uint8)
        self.entries = 0
        self.norm_used = 0
        self.templates = 0
        self.first: list[int] = []  # per template: first operation template, count
        self.count: list[int] = []
        self.t_proto: list[int] = []  # per template: its operations' protocol (Lane.protocols)
        self.claims: list[list[ClaimTemplate]] = []
        # per template: the decode problems it reports, (which message's frame, reason)
        self.problems: list[list[tuple[int, str]]] = []
        self.names: list[str] = []
        self.exceptions: list[str] = []
        self.static_values: list[int] = []
        self.protocol_ops: list[OpTemplate] = []
        self._rows: list[list[int]] = []
        self._segs: list[tuple[int, int, int, int]] = []
        self._text = bytearray()
        self._seg_at: list[tuple[int, int]] = []
        self._tables: Tables | None = None
        self._unit_hole: list[int] = []  # per template: integer hole of a unit, or -1
        self._unit_role: list[int] = []  # ... and the role of the operation it is in

    # -- shapes ------------------------------------------------------------------------
    def _index(self, norm: np.ndarray, template: int) -> None:
        if self.entries == len(self.tinfo):
            self.tinfo = np.concatenate([self.tinfo, np.zeros_like(self.tinfo)])
        n = len(norm)
        while self.norm_used + n > len(self.tnorm):
            self.tnorm = np.concatenate([self.tnorm, np.zeros_like(self.tnorm)])
        self.tnorm[self.norm_used : self.norm_used + n] = norm
        bit = 1 << self.t_proto[template] if template >= 0 else 0
        self.tinfo[self.entries] = (self.norm_used, n, template, bit)
        self.norm_used += n
        if 2 * (self.entries + 1) > len(self.th):
            self.th = np.full((2 * len(self.th), 2), -1, np.int64)
            for e in range(self.entries):
                off, size = self.tinfo[e, :2]
                KS.template_insert(self.th, KS.fnv(self.tnorm[off : off + size], size), e)
        KS.template_insert(self.th, KS.fnv(norm, n), self.entries)
        self.entries += 1

    def find(self, norm: np.ndarray) -> int:
        """The template of shape ``norm``: its id, ``T_REFUSED``, or -1 (unknown)."""
        e = int(
            KS.template_find(
                self.th, self.tinfo, self.tnorm, norm, len(norm), KS.fnv(norm, len(norm))
            )
        )
        return -1 if e < 0 else int(self.tinfo[e, 2])

    def full(self) -> bool:
        return self.entries >= MAX_TEMPLATES

    def refuse(self, norm: np.ndarray) -> None:
        """The per-packet path must always take transactions of this shape."""
        if not self.full():
            self._index(norm, KS.T_REFUSED)

    # -- templates ---------------------------------------------------------------------
    def _name(self, table: list[str], name: str) -> int:
        try:
            return table.index(name)
        except ValueError:
            table.append(name)
            return len(table) - 1

    def _list(self, value: ListField) -> tuple[int, int, int, int]:
        """(kind, hole index, static offset, static length) of a list field."""
        if isinstance(value, Hole):
            return KIND_HOLE, value.index, 0, 0
        if value is None:
            return KIND_NONE, 0, 0, 0
        off = len(self.static_values)
        self.static_values.extend(value)
        return KIND_CONST, 0, off, len(value)

    def build(self, ops: list[OpTemplate]) -> list[tuple[list[int], list[tuple[str, int, int]]]]:
        """Column rows and detail segments of ``ops``; raises ValueError when a detail
        cannot be templated."""
        out = []
        for op in ops:
            segs = _segments(op.detail)
            if segs is None:
                raise ValueError("ambiguous detail text")
            row = [
                self._name(self.names, op.function),
                op.function_code,
                OP_CLASS_CODE[op.operation],
                *_int_field(op.unit),
                *_int_field(op.address),
                *_int_field(op.quantity),
                STATUS_CODE[op.status],
                NULL if op.exception is None else self._name(self.exceptions, op.exception),
                NULL if op.exception_code is None else op.exception_code,
                op.role,
                *_int_field(op.tid),
                *self._list(op.values),
                *self._list(op.response_values),
                op.request_frame,
                op.response_frame,
                int(op.latency),
                op.ts_message,
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
        protocol: int = 0,
        problems: list[tuple[int, str]] | None = None,
    ) -> int:
        """Store a template for shape ``norm`` (its operations of the lane's protocol
        ``protocol``, the decode problems it reports); returns its id."""
        t = self.templates
        self.t_proto.append(protocol)
        with_hole = [op for op in ops if isinstance(op.unit, Hole)]
        self._unit_hole.append(with_hole[0].unit.index if with_hole else -1)  # type: ignore[union-attr]
        self._unit_role.append(with_hole[0].role if with_hole else 0)
        self.first.append(len(self._rows))
        self.count.append(len(built))
        self.claims.append(claims)
        self.problems.append(problems or [])
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

    def protocols(self) -> np.ndarray:
        """Per template: its operations' protocol (an index into Lane.protocols)."""
        return np.array(self.t_proto or [0], np.int64)

    def unit_holes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per template: the integer hole its operations take the unit from (-1: none),
        and the role of that operation."""
        return (
            np.array(self._unit_hole or [-1], np.int64),
            np.array(self._unit_role or [0], np.int64),
        )

    def tables(self) -> Tables:
        """The operation table and detail segments (cached until a template is added)."""
        if self._tables is None:
            rows = np.array(self._rows, np.int64).reshape(-1, len(_OP_COLUMNS))
            op = OpTable(*(np.ascontiguousarray(rows[:, k]) for k in range(len(_OP_COLUMNS))))
            seg_at = np.array(self._seg_at, np.int64).reshape(-1, 2)
            text_len = np.array([s[1] for s in self._segs], np.int64)
            bounds = np.append(seg_at[:, 0], len(text_len))
            csum = np.concatenate(([0], np.cumsum(text_len)))
            self._tables = Tables(
                op=op,
                t_first=np.array(self.first, np.int64),
                t_count=np.array(self.count, np.int64),
                seg_at=seg_at,
                sg=np.array(self._segs, np.int64).reshape(-1, 4),
                text=np.frombuffer(bytes(self._text) or b" ", np.uint8),
                text_len=csum[bounds[1:]] - csum[bounds[:-1]],
                static=np.array(self.static_values or [0], np.int64),
            )
        return self._tables

    def render(
        self,
        ops: np.ndarray,
        ints: np.ndarray,
        frames: np.ndarray,
        lfirst: np.ndarray,
        lh: np.ndarray,
        lv: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Detail JSON of template operations ``ops`` with their holes, each followed by
        a comma (none for an empty detail): all the text, and where each part starts."""
        tab = self.tables()
        per = tab.text_len[ops] if len(ops) else np.zeros(0, np.int64)
        size = int(per.sum()) + 64 * len(ops) + 256
        return render(
            ops, tab.seg_at, tab.op.has_detail, tab.sg, tab.text, ints, frames, lfirst,
            lh, lv, size,
        )  # fmt: skip
