"""One pass over a capture's stored operations: op-level findings (dangerous commands,
writes, malformed PDUs) and the per-conversation statistics the other detectors need.

Operations are column-packed per conversation (store/opchunks). Rows are grouped per
chunk by (direction, class, function, status, detail signature) with numpy, so a rule
is evaluated once per group, not once per operation; dicts are built only for the
evidence kept. The detail signature holds just the detail keys rules look at.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from otconduit.arrays import distinct_ints
from otconduit.detect.classify import QUIET_CLASSES, Hit, classify
from otconduit.detect.findings import MAX_EVIDENCE, Evidence, Finding
from otconduit.model import OpClass, OpStatus
from otconduit.protocols import registry
from otconduit.store.opchunks import NULL, OP_CLASS_CODE, OP_CLASSES, STATUS_CODE, STATUSES
from otconduit.store.sqlite import Store
from otconduit.store.tdetails import HOLE
from otconduit.store.views import CaptureChunk, capture_chunks, chunk_rows

# The detail keys the protocols' classifiers read (their specs say which). Two handled
# apart: "objects" (only the groups matter) and "class_id" (only beside "dangerous").
_SIG_KEYS = tuple(sorted(registry.detail_keys() - {"objects", "class_id"}))
# A chunk whose detail text names none of these keys has no signature to compute.
_SIG_NEEDLE = re.compile(b"|".join(re.escape(f'"{k}"'.encode()) for k in (*_SIG_KEYS, "objects")))
_UNSUPPORTED = re.compile(r"illegal.?function|not.?supported|no.?func|unknown service", re.I)
_ST_EXC = STATUS_CODE[OpStatus.EXCEPTION]
_ST_MALFORMED = STATUS_CODE[OpStatus.MALFORMED]


@cache
def _quiet(protocol: str) -> tuple[frozenset[str], np.ndarray]:
    """The routine classes detection skips for ``protocol``: those its classifier never
    flags (an IEC 104 interrogation is a read, and a rule of its own)."""
    classes = QUIET_CLASSES - registry.flagged_classes().get(protocol, frozenset())
    return classes, np.array([OP_CLASS_CODE[OpClass(c)] for c in classes], np.int64)


EVIDENCE_SAMPLES = 3  # decoded operations kept per finding


DENSE_SPAN = 1 << 16  # address ranges up to this wide are counted in an array of the range


class AddressTally:
    """The addresses one function named on one unit, each once with its count: what
    sweeps and baselines ask (how many distinct, how many requests, which range) in
    memory that grows with the address space, not with the operations (a capture of
    millions of polls names a few hundred addresses)."""

    __slots__ = ("_counts", "_parts", "_raw")

    FOLD_AT = 1 << 16  # addresses kept as given before they are counted up

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, np.ndarray | None]] = []  # counts None: one each
        self._raw = 0
        self._counts: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, addresses: np.ndarray) -> None:
        self._parts.append((addresses, None))
        self._raw += len(addresses)
        self._counts = None
        if self._raw >= self.FOLD_AT:
            self._parts, self._raw = [self.counts()], 0

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct addresses (ascending) and how many operations named each."""
        if self._counts is None:
            values = np.concatenate([v for v, _ in self._parts])
            weights = np.concatenate(
                [np.ones(len(v), np.int64) if n is None else n for v, n in self._parts]
            )
            lo = int(values.min()) if len(values) else 0
            span = int(values.max()) - lo + 1 if len(values) else 0
            if span <= max(4 * len(values), DENSE_SPAN):
                # Polled registers sit close together: counted by offset, without a sort.
                by_offset = np.bincount(values - lo, weights, span)
                named = np.flatnonzero(by_offset)
                uniq, counts = named + lo, by_offset[named].astype(np.int64)
            else:
                uniq, inv = np.unique(values, return_inverse=True)
                counts = np.bincount(inv.reshape(-1), weights, len(uniq)).astype(np.int64)
            self._counts = (uniq, counts)
        return self._counts

    @property
    def total(self) -> int:
        return int(self.counts()[1].sum())


@dataclass(slots=True)
class ConvStats:
    """What one client did to one server over one protocol (direction-aware)."""

    ops: int = 0
    exceptions: int = 0
    unsupported: int = 0  # refused as unknown function / service
    first_ts: int = 0
    last_ts: int = 0
    functions: Counter[str] = field(default_factory=Counter)
    classes: Counter[str] = field(default_factory=Counter)
    codes: set[int] = field(default_factory=set)
    exception_frames: list[int] = field(default_factory=list)
    identity_frames: list[int] = field(default_factory=list)
    identity_first_ts: int | None = None  # first identity request of this client here
    # First identity request that is part of opening a session (OPC UA GetEndpoints)
    setup_identity_ts: int | None = None
    setup_identity_frames: list[int] = field(default_factory=list)
    exception_ts: list[np.ndarray] = field(default_factory=list)
    # (function, unit) -> the addresses it named, with how often
    addresses: dict[tuple[str, int | None], AddressTally] = field(default_factory=dict)
    # (function, unit, address, quantity) -> request timestamps of cyclic reads: only
    # when the scan was asked for them (a baseline's learning and deviations)
    polls: dict[tuple[str, int | None, int | None, int | None], list[np.ndarray]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # Address-space walks (OPC UA Browse ...): (ts, request frame, item, 1) per item a
    # request names, (ts, request frame, None, n) for the n it walks without naming them
    walked: list[tuple[int, int | None, str | None, int]] = field(default_factory=list)


ConvKey = tuple[str, str, str, int]  # src, dst, protocol, server port


@dataclass(slots=True)
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    stats: dict[ConvKey, ConvStats] = field(default_factory=dict)
    capture: str = ""
    operations: int = 0
    # classify's answers by what decides them (see _chunk): one decoded operation per
    # kind of group, not one per kind per chunk
    verdicts: dict[tuple[Any, ...], list[Hit]] = field(default_factory=dict)


MAX_VERDICTS = 4096


def _brief(chunk: CaptureChunk, row: int, reversed_: bool, fn: str, cls: str) -> dict[str, Any]:
    """What a finding takes from its first operation (ends, protocol, function, class)
    without decoding the operation."""
    conv = chunk.conv
    client_port = int(chunk.batch.ints["src_port"][row])
    client, server = (conv["client_ip"], client_port), (conv["server_ip"], conv["server_port"])
    src, dst = (server, client) if reversed_ else (client, server)
    return {
        "protocol": conv["protocol"],
        "src_ip": src[0],
        "dst_ip": dst[0],
        "dst_port": dst[1],
        "function": fn,
        "operation": cls,
    }


_PROBED: dict[bytes, bool] = {}  # probe text -> whether it names a key rules look at


def _names_sig_keys(probe: bytes) -> bool:
    """Whether ``probe`` names a key rules look at. The chunks of one conversation share
    their template text: remembered, it is hashed and compared, not searched again."""
    found = _PROBED.get(probe)
    if found is None:
        found = _SIG_NEEDLE.search(probe) is not None
        if len(_PROBED) >= 256:
            _PROBED.clear()
        _PROBED[probe] = found
    return found


def _signatures(chunk: CaptureChunk, relevant: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
    """Per row, a small integer naming the detail keys rules look at (0: none), and the
    text each integer stands for; only for ``relevant`` rows (the others are never
    classified), so chunks of routine reads never parse their details at all."""
    b = chunk.batch
    sig = np.zeros(len(b), np.int64)
    codes: dict[str, int] = {}
    texts: list[str | None] = [None]
    if not len(b.detail_index):
        return sig, texts
    wanted = np.flatnonzero(relevant[b.detail_index])
    if not len(wanted):
        return sig, texts
    details = b.details
    probe = getattr(details, "probe_text", None)
    if probe is not None and not _names_sig_keys(probe):
        return sig, texts  # nothing rules look at: leave the details unparsed (and unrendered)
    index = b.detail_index
    by_template = getattr(details, "by_template", lambda: None)()
    if by_template is not None:
        # Templated details: one signature per template when no hole reaches the keys
        # rules look at (they are then the same for all its operations).
        ops, skeleton = by_template
        rest = []
        of_op = ops[wanted]
        for o in np.unique(of_op).tolist():
            rows = wanted[of_op == o]
            key = _signature(skeleton(o) or {})
            if key is not None and str(HOLE) in key:
                rest.append(rows)
            elif key is not None:
                sig[index[rows]] = codes.setdefault(key, len(codes) + 1)
        wanted = np.concatenate(rest) if rest else wanted[:0]
    for k in wanted.tolist():
        key = _signature(details[k])
        if key is not None:
            sig[int(index[k])] = codes.setdefault(key, len(codes) + 1)
    texts += list(codes)
    return sig, texts


# Fields of listed items (OPC UA nodes written, methods called) that carry values, not
# what the item is: no rule reads them, and keeping them would make every written value a
# group of its own.
_VALUE_FIELDS = frozenset({"value", "arguments", "type", "array_length", "status"})


def _identity(value: Any) -> Any:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [
            {k: v for k, v in item.items() if k not in _VALUE_FIELDS}
            if isinstance(item, dict)
            else item
            for item in value
        ]
    return value


def _signature(d: dict[str, Any]) -> str | None:
    """The detail keys rules look at, as text; None when it has none."""
    sub = {key: _identity(d[key]) for key in _SIG_KEYS if key in d}
    if "dangerous" in d and "class_id" in d:  # CIP program objects: upload vs download
        sub["class_id"] = d["class_id"]
    objs = d.get("objects")
    if objs:
        sub["g"] = sorted({o.get("group") for o in objs if isinstance(o, dict)} - {None})
    return json.dumps(sub, sort_keys=True) if sub else None


def _row_keys(*cols: np.ndarray) -> np.ndarray:
    """The columns as one int64 per row that sorts as the rows do, when their values
    (small codes and indexes, never NULL here) fit 12 bits each; else the rows."""
    if len(cols[0]) and all(int(c.min()) >= 0 and int(c.max()) < 1 << 12 for c in cols):
        key = np.zeros(len(cols[0]), np.int64)
        for c in cols:
            key <<= 12
            key |= c
        return key
    return np.stack(cols, 1)


def _groups(key: np.ndarray) -> list[np.ndarray]:
    """Row numbers grouped by equal key rows (in row order within a group), groups in
    key order. A stable sort on the columns: ``np.unique(axis=0)`` sorts row bytes,
    several times slower. A one-dimensional key is one packed by :func:`_row_keys`."""
    if len(key) == 0:
        return []
    if key.ndim == 1:
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        return np.split(order, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1)
    order = np.lexsort(key.T[::-1])
    ordered = key[order]
    cuts = np.flatnonzero((ordered[1:] != ordered[:-1]).any(axis=1)) + 1
    return np.split(order, cuts)


def _frames(ints: dict[str, np.ndarray], rows: np.ndarray) -> list[list[int]]:
    req, resp = ints["request_frame"][rows], ints["response_frame"][rows]
    return [[int(f) for f in pair if f != NULL] for pair in zip(req, resp, strict=True)]


def _opt(v: int) -> int | None:
    return None if v == NULL else int(v)


def _finding(
    chunk: CaptureChunk, rows: np.ndarray, ends: tuple[bool, str, str], rule: str, **kw: Any
) -> Finding:
    """A finding over a group's ``rows``; ``ends``: its direction, function and class."""
    op = _brief(chunk, int(rows[0]), *ends)
    ints = chunk.batch.ints
    ts = ints["ts"][rows]
    order = np.argsort(ts, kind="stable")
    rows, ts = rows[order], ts[order]
    keep = rows[:MAX_EVIDENCE]
    frames = _frames(ints, keep)
    evidence = []
    for k, (row, fr) in enumerate(zip(keep.tolist(), frames, strict=True)):
        if k >= EVIDENCE_SAMPLES:
            evidence.append(Evidence(fr, int(ts[k]), {}))
        elif chunk.chunk_id:  # decoded once the scan knows which samples it keeps
            evidence.append(Evidence(fr, int(ts[k]), {}, (chunk.chunk_id, row)))
        else:
            evidence.append(Evidence(fr, int(ts[k]), chunk.row(row)))
    return Finding(
        rule=rule,
        first_ts=int(ts[0]),
        last_ts=int(ts[-1]),
        count=len(rows),
        src_ip=op["src_ip"],
        dst_ip=op["dst_ip"],
        protocol=op["protocol"],
        operation=op["function"],
        op_class=op["operation"],
        dst_port=op["dst_port"],
        evidence=evidence,
        ts=ts,
        **kw,
    )


def _chunk(
    chunk: CaptureChunk, out: ScanResult, until_ns: int | None = None, polls: bool = False
) -> None:
    b = chunk.batch
    ints = b.ints
    n = len(b)
    if not n:
        return
    out.operations += n
    conv = chunk.conv
    rev = (ints["reversed"] == 1).astype(np.int64)
    quiet_classes, quiet_codes = _quiet(conv["protocol"])
    quiet = np.isin(ints["op_class"], quiet_codes)
    relevant = ~quiet | (ints["status"] == _ST_MALFORMED)
    sig, sig_texts = _signatures(chunk, relevant)
    key = _row_keys(rev, ints["op_class"], ints["function"], ints["status"], sig)
    if until_ns is None:
        groups = _groups(key)
    else:  # baseline learning period: only what happened before its end
        sel = np.flatnonzero(ints["ts"] <= until_ns)
        groups = [sel[g] for g in _groups(key[sel])] if len(sel) else []
    for rows in groups:
        first = int(rows[0])
        reversed_ = bool(rev[first])
        cls = str(OP_CLASSES[ints["op_class"][first]])
        fn = b.names[ints["function"][first]]
        status = int(ints["status"][first])
        src, dst = conv["client_ip"], conv["server_ip"]
        if reversed_:
            src, dst = dst, src
        ckey = (src, dst, conv["protocol"], conv["server_port"])
        _stats(chunk, rows, out, ckey, fn, cls, status, polls)
        ends = (reversed_, fn, cls)
        if status == _ST_MALFORMED:
            out.findings.append(
                _finding(chunk, rows, ends, "malformed-pdu", note="decoded as malformed",
                         status=str(STATUSES[status]))
            )  # fmt: skip
        if not reversed_:
            _walks(chunk, rows, out.stats[ckey], fn)
        if cls in quiet_classes:
            continue
        # What the group's first operation triggers, as the same kind of group of an
        # earlier chunk did: rows that agree on these agree for every classifier (the
        # signature holds the detail keys they read).
        code = int(ints["function_code"][first])
        verdict = (conv["protocol"], reversed_, cls, fn, status, code, sig_texts[sig[first]])
        hits = out.verdicts.get(verdict)
        if hits is None:
            hits = classify(chunk.row(first))
            if len(out.verdicts) >= MAX_VERDICTS:
                out.verdicts.clear()
            out.verdicts[verdict] = hits
        for hit in hits:
            note = hit.note
            if status == _ST_EXC:
                note = (note + "; " if note else "") + "refused by the device"
            elif status == _ST_MALFORMED:
                note = (note + "; " if note else "") + "malformed request"
            out.findings.append(
                _finding(chunk, rows, ends, hit.rule, severity=hit.severity, note=note,
                         status=str(STATUSES[status]))
            )  # fmt: skip


def _stats(
    chunk: CaptureChunk,
    rows: np.ndarray,
    out: ScanResult,
    key: ConvKey,
    fn: str,
    cls: str,
    status: int,
    polls: bool,
) -> None:
    """Add a group of rows (one function, class and status) to its conversation's stats."""
    ints = chunk.batch.ints
    st = out.stats.get(key)
    ts = ints["ts"][rows]
    t_lo, t_hi = int(ts.min()), int(ts.max())
    if st is None:
        st = out.stats[key] = ConvStats(first_ts=t_lo, last_ts=t_hi)
    st.ops += len(rows)
    st.first_ts = min(st.first_ts, t_lo)
    st.last_ts = max(st.last_ts, t_hi)
    st.functions[fn] += len(rows)
    st.classes[cls] += len(rows)
    st.codes.update(distinct_ints(ints["function_code"][rows]))
    proto = chunk.conv["protocol"]
    asking = cls == "identity" and fn not in registry.announcements(proto)
    if asking and fn in registry.setup_identity(proto):
        asking = False
        t = t_lo
        st.setup_identity_ts = t if st.setup_identity_ts is None else min(st.setup_identity_ts, t)
        if len(st.setup_identity_frames) < MAX_EVIDENCE:
            pairs = _frames(ints, rows[:MAX_EVIDENCE])
            st.setup_identity_frames += [f for pair in pairs for f in pair]
    if asking:
        t = t_lo
        st.identity_first_ts = t if st.identity_first_ts is None else min(st.identity_first_ts, t)
    if asking and len(st.identity_frames) < MAX_EVIDENCE:
        st.identity_frames += [f for pair in _frames(ints, rows[:MAX_EVIDENCE]) for f in pair]
    exc = rows if status == _ST_EXC else rows[:0]
    if len(exc):
        st.exceptions += len(exc)
        st.exception_ts.append(ints["ts"][exc])
        if len(st.exception_frames) < MAX_EVIDENCE:
            st.exception_frames += [f for pair in _frames(ints, exc[:MAX_EVIDENCE]) for f in pair]
        names = chunk.batch.exceptions
        unsupported = registry.unsupported_codes(chunk.conv["protocol"])
        kinds, counts = np.unique(
            np.stack((ints["exception_code"][exc], ints["exception"][exc]), axis=1),
            axis=0,
            return_counts=True,
        )  # a scan answered with the same exception thousands of times: judged once
        for (code, x), n in zip(kinds.tolist(), counts.tolist(), strict=True):
            text = names[x] if x != NULL else ""
            if code in unsupported or _UNSUPPORTED.search(text):
                st.unsupported += n
    if fn.startswith(("UNKNOWN_", "USER_DEFINED_")):
        st.unsupported += len(rows) - len(exc)  # exceptions were counted above
    unit = ints["unit"][rows]
    addr = ints["address"][rows]
    have = addr != NULL
    if have.any():
        units = distinct_ints(unit[have])
        for u in units:
            sel = addr[have & (unit == u)] if len(units) > 1 else addr[have]
            st.addresses.setdefault((fn, _opt(u)), AddressTally()).add(sel)
    if polls and cls == "read" and not (ints["reversed"][rows] == 1).any():
        poll_key = np.stack([unit, addr, ints["quantity"][rows]], 1)
        for sub in _groups(poll_key):
            r0 = sub[0]
            k = (fn, _opt(unit[r0]), _opt(addr[r0]), _opt(poll_key[r0, 2]))
            st.polls[k].append(ts[sub])


def _walks(chunk: CaptureChunk, rows: np.ndarray, st: ConvStats, fn: str) -> None:
    """What requests that walk the server's address space walked (see
    :class:`~otconduit.protocols.base.Browse`)."""
    spec = registry.spec_for(chunk.conv["protocol"])
    if spec is None or spec.browse is None or fn not in spec.browse.functions:
        return
    for r in rows.tolist():
        op = chunk.row(r)
        named, unnamed = spec.browse.items(op)
        ts = int(chunk.batch.ints["ts"][r])
        frame = op["request_frame"]
        st.walked += [(ts, frame, item, 1) for item in named]
        if unnamed:
            st.walked.append((ts, frame, None, unnamed))


def scan_capture(
    store: Store,
    capture_id: int,
    until_ns: int | None = None,
    after_chunk: int = 0,
    *,
    polls: bool = False,
) -> ScanResult:
    """Op-level findings and conversation statistics for one stored capture (only
    operations up to ``until_ns`` when given, only chunks after ``after_chunk``); the
    timestamps of cyclic reads (``ConvStats.polls``: eight bytes an operation) only
    with ``polls``."""
    out = ScanResult()
    for chunk in capture_chunks(store, capture_id, after_chunk):
        out.capture = chunk.capture
        _chunk(chunk, out, until_ns, polls)
    out.findings = _merged(out.findings)
    _read_samples(store, out.findings)
    return out


def _read_samples(store: Store, findings: list[Finding]) -> None:
    """The decoded records of the evidence samples the findings kept: a scan that
    decoded each chunk's few samples as it went decoded thousands (a capture of millions
    of operations writes hundreds of chunks) to keep a handful."""
    wanted: dict[int, list[int]] = {}
    for f in findings:
        for e in f.evidence:
            if e.source is not None:
                wanted.setdefault(e.source[0], []).append(e.source[1])
    if not wanted:
        return
    rows = chunk_rows(store, wanted)
    for f in findings:
        for e in f.evidence:
            if e.source is not None:
                e.record = dict(rows.get(e.source, {}))
                e.source = None


def _merged(findings: list[Finding]) -> list[Finding]:
    """One finding per rule, operation and ends, however the operations were split into
    chunks (by size, or by which path decoded them): evidence is the earliest events
    of them all, decoded records for the first few, as one chunk's would be."""
    groups: dict[tuple[Any, ...], list[Finding]] = {}
    for f in findings:
        key = (
            f.rule, f.src_ip, f.dst_ip, f.protocol, f.operation, f.op_class, f.dst_port,
            f.severity, f.note, f.status, json.dumps(f.context, sort_keys=True, default=str),
        )  # fmt: skip
        groups.setdefault(key, []).append(f)
    out = []
    for fs in groups.values():
        if len(fs) == 1 or any(f.ts is None for f in fs):
            out.extend(fs)
            continue
        ts = np.concatenate([f.ts for f in fs if f.ts is not None])
        ts = ts[np.argsort(ts, kind="stable")]
        # Each chunk's evidence is its earliest events: the earliest of all are among them.
        evidence = sorted((e for f in fs for e in f.evidence), key=lambda e: e.ts or 0)
        evidence = evidence[:MAX_EVIDENCE]
        for k, e in enumerate(evidence):
            if k >= EVIDENCE_SAMPLES:
                e.record, e.source = {}, None
        first = fs[0]
        first.first_ts, first.last_ts = int(ts[0]), int(ts[-1])
        first.count = sum(f.count for f in fs)
        first.ts, first.evidence = ts, evidence
        out.append(first)
    return out
