"""Column-packed operation batches.

Analysis produces up to millions of operations per capture. One SQLite row per
operation costs ~1.5 µs each to insert (measured), which alone would cap analysis
well below a million packets per second. Operations are therefore stored the way
time-series stores compress hot data: a batch of operations of one conversation becomes
one row of ``op_chunks`` holding each field as a packed numpy column. The chunk row
carries capture, conversation, time range and count, so SQL prunes chunks and numpy
filters inside them.

Packing, per integer column: non-null values are stored as ``v - min + 1`` in the
smallest unsigned dtype that fits, 0 meaning NULL. Lists (written values, values read
back) are ragged columns: offsets plus one flat array. Free-form detail is sparse JSON.

The packed chunk is then deflated (zlib, fastest level) when that makes it smaller:
polling repeats itself, so its columns (detail values, the few distinct handles and
offsets) shrink about fourteen-fold, and a 2,000,000-packet EtherNet/IP capture's
operations take 29 MB instead of 400 MB, written in less time than the raw bytes took.
Chunks written before (``OPC1``, not deflated) read as they always did.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import lz4.block
import numpy as np

from otconduit.model import OpClass, Operation, OpStatus
from otconduit.store.detail_holes import H_FRAME, H_INT
from otconduit.store.tdetails import (
    N_FRAMES,
    N_INTS,
    TemplatedDetails,
    Templates,
    prefix_sums,
)

NULL = np.iinfo(np.int64).min  # NULL sentinel inside unpacked int64 columns

INT_COLUMNS = (
    "ts",
    "src_port",  # the conversation's client port (the operation's source unless reversed)
    "function_code",
    "unit",
    "address",
    "quantity",
    "status",
    "exception_code",
    "latency_ns",
    "request_frame",
    "response_frame",
    "tid",
    "op_class",
    "function",
    "exception",
    "reversed",  # 1: the operation runs server -> client (e.g. a PLC-driven S7 download)
)
RAGGED_COLUMNS = ("values", "response_values")

OP_CLASSES: tuple[OpClass, ...] = tuple(OpClass)
OP_CLASS_CODE = {c: i for i, c in enumerate(OP_CLASSES)}
STATUSES: tuple[OpStatus, ...] = tuple(OpStatus)
STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}
_MAGIC = b"OPC1"
_DEFLATED = b"OPZ1"  # followed by zlib's deflate of a whole OPC1 chunk (before OPZ2)
# OPZ2: the OPC1 layout with the header and each column compressed on its own (LZ4,
# when that is smaller), so that a reader expands only the columns it reads (the
# detection scan reads a fifth of an EtherNet/IP chunk's bytes); a CRC-32 of it all, as
# deflating the whole chunk gave. LZ4 rather than deflate: seven times faster to write
# (deflating 360 MB of EtherNet/IP columns kept the writer thread busy 0.8 s and the
# analysis waiting for it) for a database 1.4 times the size (still a tenth of plain).
_COLUMNS_COMPRESSED = b"OPZ2"
_COMPRESS_MIN = 64  # column bytes below this stay as they are


class RawDetails(list[dict[str, Any]]):
    """Details already rendered as JSON (the bulk path renders them in compiled code):
    ``data`` holds ``objects`` JSON objects joined by commas, without brackets, exactly as
    ``json.dumps(..., separators=(",", ":"))`` writes them (ASCII). :func:`pack` and
    :func:`concat` take the bytes as they are; the objects themselves are only there
    once a chunk is unpacked, so iterating this raises."""

    def __init__(self, data: bytes | memoryview, objects: int) -> None:
        super().__init__()
        self.data = data
        self.objects = objects

    def __len__(self) -> int:
        return self.objects

    def __iter__(self) -> Iterator[dict[str, Any]]:
        raise TypeError("pre-rendered details: unpack() the chunk to read them")


@dataclass(slots=True)
class OpBatch:
    """Unpacked operations of one conversation: int64 columns plus ragged lists.

    ``function``/``exception`` columns index into ``names``/``exceptions``.
    """

    ints: dict[str, np.ndarray]
    names: list[str]
    exceptions: list[str]
    ragged: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (offsets[n+1], flat)
    detail_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    details: list[dict[str, Any]] = field(default_factory=list)  # or RawDetails

    def __len__(self) -> int:
        return len(self.ints["ts"])


_WIDTHS = tuple((dt, int(np.iinfo(dt).max)) for dt in (np.uint8, np.uint16, np.uint32, np.uint64))


def _pack_int(col: np.ndarray) -> tuple[dict[str, Any], bytes]:
    """A column in the fewest bytes: nothing when it is all NULL or one value, else each
    value minus the smallest in the narrowest unsigned type (0 stands for NULL), or —
    when that is narrower — the differences from one row to the next (timestamps, frame
    numbers and offsets mostly grow by a little)."""
    # NULL is the smallest int64: the column's maximum says whether any value is there
    # and its minimum whether any is missing, without a mask (most columns have none).
    if not len(col):
        return {"kind": "null"}, b""
    lo, hi = int(col.min()), int(col.max())
    if hi == NULL:
        return {"kind": "null"}, b""
    full = lo != NULL
    present = None if full else col != NULL
    if present is not None:
        lo = int(col[present].min())
    if full and lo == hi:
        return {"kind": "const", "value": lo}, b""
    span = hi - lo + 1
    dt = next(dt for dt, top in _WIDTHS if span <= top)
    if full and len(col) > 1 and dt is not np.uint8 and -(2**62) < lo <= hi < 2**62:
        steps = np.diff(col)
        d_lo, d_hi = int(steps.min()), int(steps.max())
        d_dt = next(dt for dt, top in _WIDTHS if d_hi - d_lo <= top)
        if np.dtype(d_dt).itemsize < np.dtype(dt).itemsize:
            packed = (steps - d_lo).astype(d_dt)
            meta = {
                "kind": "delta",
                "first": int(col[0]),
                "base": d_lo,
                "dtype": np.dtype(d_dt).str,
            }
            return meta, packed.tobytes()
    meta = {"kind": "int", "base": lo, "dtype": np.dtype(dt).str}
    if present is None and -(2**62) < lo <= hi < 2**62:  # no NULLs, no overflow: one pass
        return meta, (col - (lo - 1)).astype(dt).tobytes()
    # Shift in uint64 arithmetic: span can exceed int64 for extreme values.
    shifted = col.astype(np.uint64) - np.uint64(lo & 0xFFFFFFFFFFFFFFFF) + np.uint64(1)
    if present is not None:
        shifted[~present] = 0
    return meta, shifted.astype(dt).tobytes()


def _unpack_int(meta: dict[str, Any], raw: bytes, n: int) -> np.ndarray:
    kind = meta["kind"]
    if kind == "null":
        return np.full(n, NULL, np.int64)
    if kind == "const":
        return np.full(n, meta["value"], np.int64)
    if kind == "delta":
        out = np.empty(n, np.int64)
        out[0] = meta["first"]
        steps = np.frombuffer(raw, dtype=np.dtype(meta["dtype"])).astype(np.int64)
        np.cumsum(steps + meta["base"], out=out[1:])
        out[1:] += meta["first"]
        return out
    stored = np.frombuffer(raw, dtype=np.dtype(meta["dtype"]))
    base_ = int(meta["base"])
    if -(2**62) < base_ < 2**62 and stored.dtype.itemsize < 8 and (n == 0 or stored.min() > 0):
        # no NULL, and no value near the int64 ends (the packer's own one-pass case)
        out = stored.astype(np.int64)
        out += base_ - 1
        return out
    arr = stored.astype(np.uint64)
    base = np.uint64(meta["base"] & 0xFFFFFFFFFFFFFFFF)
    vals = (arr + base - np.uint64(1)).view(np.int64)
    return np.where(arr == 0, NULL, vals)


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error as exc:
        raise ValueError(f"damaged operation chunk: {exc}") from None


def _expand(data: bytes, size: int) -> bytes:
    try:
        plain = lz4.block.decompress(data, uncompressed_size=size)
    except lz4.block.LZ4BlockError as exc:
        raise ValueError(f"damaged operation chunk: {exc}") from None
    if len(plain) != size:
        raise ValueError("damaged operation chunk: a part of the wrong size")
    return plain


def _unpack_compressed(meta: dict[str, Any], raw: bytes, n: int) -> np.ndarray:
    """A column compressed on its own (``meta["l"]``: its size before)."""
    return _unpack_int(meta, _expand(raw, int(meta["l"])), n)


DETAIL_INDEX_INLINE = 64  # more rows with a detail than this: a packed column, not JSON


def _unpack_one(meta: dict[str, Any], raw: bytes, n: int, i: int) -> int | None:
    """Value ``i`` of a packed column without decoding the rest (None: a delta-coded
    column, which must be summed up to there)."""
    kind = meta["kind"]
    if kind == "null":
        return NULL
    if kind == "const":
        return int(meta["value"])
    if kind != "int":
        return None
    dt = np.dtype(meta["dtype"])
    v = int(np.frombuffer(raw, dt, count=1, offset=i * dt.itemsize)[0])
    if v == 0:
        return NULL
    x = (v + (meta["base"] & 0xFFFFFFFFFFFFFFFF) - 1) & 0xFFFFFFFFFFFFFFFF
    return x - (1 << 64) if x >= 1 << 63 else x


def pack(batch: OpBatch) -> bytes:
    """Serialise a batch into one ``OPZ2`` blob: the header and every column compressed
    apart, each only when that makes it smaller."""
    header, metas, parts = _pieces(batch)
    for i, (name, meta, size) in enumerate(metas):
        if size < _COMPRESS_MIN:
            continue
        z = lz4.block.compress(parts[i], store_size=False)
        if len(z) < size:
            meta["l"] = size
            metas[i] = (name, meta, len(z))
            parts[i] = z
    text = header()
    zh = lz4.block.compress(text, store_size=False)
    if len(zh) >= len(text):
        zh = text
    body = b"".join((zh, *parts))
    head = struct.pack("<III", zlib.crc32(body), len(zh), len(text))
    return b"".join((_COLUMNS_COMPRESSED, head, body))


def _pack_plain(batch: OpBatch) -> bytes:
    """A batch as one ``OPC1`` blob (header JSON + column bytes): the layout before
    columns were deflated, still read."""
    header, _, parts = _pieces(batch)
    text = header()
    return b"".join((_MAGIC, struct.pack("<I", len(text)), text, *parts))


def _pieces(
    batch: OpBatch,
) -> tuple[Callable[[], bytes], list[tuple[str, dict[str, Any], int]], list[bytes]]:
    """A batch's header (written when called: the column entries, ``metas``, may change
    first) and its column bytes."""
    n = len(batch)
    metas: list[tuple[str, dict[str, Any], int]] = []
    parts: list[bytes] = []
    for name in INT_COLUMNS:
        meta, raw = _pack_int(np.asarray(batch.ints[name], dtype=np.int64))
        metas.append((name, meta, len(raw)))
        parts.append(raw)
    for name in RAGGED_COLUMNS:
        offsets, flat = batch.ragged[name]
        for suffix, arr in (("_off", offsets), ("_flat", flat)):
            meta, raw = _pack_int(np.asarray(arr, dtype=np.int64))
            meta["len"] = len(arr)
            metas.append((name + suffix, meta, len(raw)))
            parts.append(raw)
    index = np.asarray(batch.detail_index, np.int64)
    if len(index) == n and np.array_equal(index, np.arange(n)):
        listed: Any = "all"  # every operation has a detail
    elif len(index) > DETAIL_INDEX_INLINE:
        meta, raw = _pack_int(index)
        meta["len"] = len(index)
        metas.append(("detail_index", meta, len(raw)))
        parts.append(raw)
        listed = "column"
    else:
        listed = index.tolist()
    head: dict[str, Any] = {
        "n": n,
        "cols": metas,
        "names": batch.names,
        "exceptions": batch.exceptions,
        "detail_index": listed,
    }
    rendered = None
    if isinstance(batch.details, TemplatedDetails):
        head["templates"] = _pack_templated(batch.details, metas, parts)
    elif isinstance(batch.details, RawDetails):
        rendered = batch.details
    else:
        head["details"] = batch.details

    def header() -> bytes:
        text = json.dumps(head, separators=(",", ":"), default=_jsonable).encode()
        if rendered is None:
            return text
        # The text json.dumps would write, with the details spliced in as the last key.
        return b"".join((text[:-1], b',"details":[', rendered.data, b"]}"))

    return header, metas, parts


def _templated_columns(
    d: TemplatedDetails, op: np.ndarray, templates: Templates
) -> Iterator[tuple[str, np.ndarray]]:
    """The hole columns: only the integer and frame holes some template's text uses
    (the others fill operation columns, stored there, or nothing)."""
    yield "d_op", op
    sg = templates.sg
    for kind, name, cols in ((H_INT, "d_i", d.ints), (H_FRAME, "d_f", d.frames)):
        for k in sorted(set(sg[sg[:, 2] == kind, 3].tolist())):
            yield f"{name}{k}", cols[:, k]
    yield "d_ln", d.ln
    yield "d_hlen", d.h_len
    yield "d_vals", d.vals


def _pack_templated(d: TemplatedDetails, metas: list[Any], parts: list[bytes]) -> dict[str, Any]:
    """Columns of templated details (appended to ``metas``/``parts``) and the header
    entry with the templates they use."""
    used = np.unique(d.op)
    templates, remap = d.templates.subset(used)
    for name, arr in _templated_columns(d, remap[d.op], templates):
        meta, raw = _pack_int(np.asarray(arr, dtype=np.int64))
        meta["len"] = len(arr)
        metas.append((name, meta, len(raw)))
        parts.append(raw)
    return {
        "seg_at": templates.seg_at.ravel().tolist(),
        "sg": templates.sg.ravel().tolist(),
        "text": templates.text[: int(templates.sg[:, 1].sum())].tobytes().decode("ascii"),
    }


class StoredTemplated:
    """A chunk's templated details as stored: the templates (from the header) at once,
    the hole columns decoded only when a detail is rendered (``details()``); which
    template each detail uses (``op``) alone is cheap."""

    def __init__(self, templates: Callable[[], Templates], cols: LazyColumns) -> None:
        self._parse = templates  # called on first use: a scan that reads no detail never does
        self._templates: Templates | None = None
        self._cols = cols
        self._built: TemplatedDetails | None = None
        self._sums: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def templates(self) -> Templates:
        if self._templates is None:
            self._templates = self._parse()
        return self._templates

    @property
    def op(self) -> np.ndarray:
        if self._built is not None:
            return self._built.op
        return np.asarray(self._cols["d_op"])

    def __len__(self) -> int:
        return len(self.op)

    def one(self, k: int) -> TemplatedDetails:
        """Detail ``k`` alone, reading only its holes (the list-hole counts and lengths
        are summed to find where its lists are)."""
        if self._built is not None:
            return self._built.split([k, k + 1])[0]
        cols = self._cols
        at = cols.at
        ints = np.array([[at(f"d_i{j}", k) if f"d_i{j}" in cols else 0 for j in range(N_INTS)]])
        frames = [at(f"d_f{j}", k) if f"d_f{j}" in cols else 0 for j in range(N_FRAMES)]
        if self._sums is None:
            ln, h_len = np.asarray(cols["d_ln"]), np.asarray(cols["d_hlen"])
            self._sums = (prefix_sums(ln), prefix_sums(h_len))
        hs, vs = self._sums
        h_lo, h_hi = int(hs[k]), int(hs[k + 1])
        h_len = np.diff(vs[h_lo : h_hi + 1])
        vals = cols.slice("d_vals", int(vs[h_lo]), int(vs[h_hi]))
        return TemplatedDetails(
            self.templates,
            np.array([at("d_op", k)], np.int64),
            ints.astype(np.int64),
            np.array([frames], np.int64),
            np.array([h_hi - h_lo], np.int64),
            h_len.astype(np.int64),
            vals,
        )

    def details(self) -> TemplatedDetails:
        if self._built is None:
            cols = self._cols
            zeros = np.zeros(len(self.op), np.int64)
            self._built = TemplatedDetails(
                self.templates,
                cols.pop("d_op"),
                np.stack([cols.pop(f"d_i{k}", zeros) for k in range(N_INTS)], axis=1),
                np.stack([cols.pop(f"d_f{k}", zeros) for k in range(N_FRAMES)], axis=1),
                cols.pop("d_ln"),
                cols.pop("d_hlen"),
                cols.pop("d_vals"),
            )
        return self._built


ONE_BY_ONE = 256  # details of a chunk rendered singly before rendering them all at once


class LazyDetails(list[dict[str, Any]]):
    """Details parsed from their JSON only when first read: detectors and filters that
    look at the integer columns alone never pay for parsing them (for S7comm, CIP or DNP3
    that is most of a chunk's size)."""

    def __init__(
        self,
        raw: bytes | Callable[[], bytes],
        count: int,
        templated: StoredTemplated | None = None,
    ) -> None:
        super().__init__()
        self._src: bytes | Callable[[], bytes] | None = raw  # None once parsed
        self._count = count
        self._templated = templated  # renders one detail alone (see one())
        self._one: dict[int, dict[str, Any]] = {}

    @property
    def raw(self) -> bytes | None:
        """The JSON text (a list) while not yet parsed (cheap substring checks), else
        None. Templated details are rendered here, on first use."""
        if callable(self._src):
            self._src = self._src()
        return self._src

    @property
    def probe_text(self) -> bytes | None:
        """Text that holds every key any of these details has, for cheap "is this key
        anywhere" checks: the templates' static text while templated details are not
        rendered (hole values are numbers and hex digits, never keys), else :attr:`raw`."""
        if callable(self._src) and self._templated is not None:
            return self._templated.templates.text.tobytes()
        return self.raw

    def by_template(self) -> tuple[np.ndarray, Callable[[int], dict[str, Any] | None]] | None:
        """While templated details are not rendered: each detail's template operation
        and a function giving a template operation's skeleton
        (:meth:`~otconduit.store.tdetails.Templates.skeleton`); else None."""
        t = self._templated
        if not callable(self._src) or t is None:
            return None
        return t.op, t.templates.skeleton

    def _load(self) -> None:
        raw = self.raw
        if raw is not None:
            self._src = None
            super().extend(json.loads(raw))

    def one(self, k: int) -> dict[str, Any]:
        """Detail ``k`` alone: a detector that needs one operation of a chunk does not
        render and parse all of them when they are templated."""
        if (
            self._src is None
            or self._templated is None
            or isinstance(self._src, bytes)
            or len(self._one) >= ONE_BY_ONE
        ):
            return self[k]  # past a few, all at once
        got = self._one.get(k)
        if got is None:
            part = self._templated.one(k)
            got = self._one[k] = json.loads(part.render())
        return got

    def __len__(self) -> int:
        return self._count if self._src is not None else super().__len__()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._load()
        return super().__iter__()

    def __getitem__(self, i: Any) -> Any:
        self._load()
        return super().__getitem__(i)


_DETAILS_KEY = b',"details":'
_TEMPLATES_KEY = b',"templates":'  # the header's last key too, when there are templates


class LazyColumns(dict[str, Any]):
    """Columns of a chunk decoded from its bytes when first read: a detector that looks
    at five columns does not pay for the other twenty."""

    def __init__(self, pending: dict[str, Callable[[], Any]]) -> None:
        super().__init__()
        self._pending = pending

    def __missing__(self, key: str) -> Any:
        if key not in self._pending:
            raise KeyError(key)
        return self._decode(key)

    def _decode(self, key: str) -> Any:
        value = self._pending.pop(key)()
        super().__setitem__(key, value)
        return value

    def at(self, key: str, i: int) -> int:
        """Value ``i`` of column ``key``, decoding that value alone when it can."""
        if not super().__contains__(key):
            make = self._pending.get(key)
            if isinstance(make, partial) and make.func is _unpack_int:
                meta, raw, n = make.args
                value = _unpack_one(meta, raw, n, i)
                if value is not None:
                    return value
        return int(self[key][i])

    def slice(self, key: str, lo: int, hi: int) -> np.ndarray:
        """Values ``lo..hi-1`` of column ``key``, decoding those alone when it can."""
        if not super().__contains__(key):
            make = self._pending.get(key)
            if isinstance(make, partial) and make.func is _unpack_int:
                meta, raw, _n = make.args
                if meta["kind"] == "int":
                    dt = np.dtype(meta["dtype"])
                    part = np.frombuffer(raw, dt, count=hi - lo, offset=lo * dt.itemsize)
                    return _unpack_int(meta, part.tobytes(), hi - lo)
        return np.asarray(self[key][lo:hi])

    def _all(self) -> None:
        for key in list(self._pending):
            self._decode(key)

    def __contains__(self, key: object) -> bool:
        return key in self._pending or super().__contains__(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 (this is get)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self._pending:
            self._decode(key)
        return super().pop(key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else super().setdefault(key, default)

    def __len__(self) -> int:
        return super().__len__() + len(self._pending)

    def __iter__(self) -> Iterator[str]:
        self._all()
        return super().__iter__()

    def keys(self) -> Any:
        self._all()
        return super().keys()

    def items(self) -> Any:
        self._all()
        return super().items()

    def values(self) -> Any:
        self._all()
        return super().values()


def _templates_of(head: dict[str, Any]) -> Templates:
    text = head["text"].encode("ascii")
    return Templates(
        np.asarray(head["seg_at"], np.int64).reshape(-1, 2),
        np.asarray(head["sg"], np.int64).reshape(-1, 4),
        np.frombuffer(text or b" ", np.uint8),
        -1,
    )


TEMPLATES_SEEN = 32  # distinct stored template texts kept parsed
TEMPLATES_SEEN_BYTES = 1 << 20  # longer texts are parsed each time
_templates_seen: dict[bytes, Templates] = {}


def stored_templates(text: bytes) -> Templates:
    """The templates a chunk stores (JSON). The chunks of one lane carry the same few
    texts, tens of kilobytes each: a scan over hundreds of chunks parses each once. The
    arrays are read-only, as they are shared."""
    got = _templates_seen.get(text)
    if got is None:
        got = _templates_of(json.loads(text))
        for arr in (got.seg_at, got.sg):
            arr.flags.writeable = False
        if len(text) <= TEMPLATES_SEEN_BYTES:
            if len(_templates_seen) >= TEMPLATES_SEEN:
                _templates_seen.clear()
            _templates_seen[text] = got
    return got


def unpack(blob: bytes, *, lazy_details: bool = False) -> OpBatch:
    """The batch in a chunk. With ``lazy_details`` the detail JSON (always the header's
    last key, see :func:`pack`) is parsed only when the details are first read."""
    if blob[:4] == _DEFLATED:
        blob = _inflate(blob[4:])
    if blob[:4] == _COLUMNS_COMPRESSED:
        if len(blob) < 16:
            raise ValueError("damaged operation chunk: cut short")
        crc, stored_len, hlen = struct.unpack_from("<III", blob, 4)
        if zlib.crc32(memoryview(blob)[16:]) != crc:  # what whole-chunk deflate checked
            raise ValueError("damaged operation chunk: checksum mismatch")
        head_bytes = bytes(blob[16 : 16 + stored_len])
        if stored_len != hlen:
            head_bytes = _expand(head_bytes, hlen)
        pos = 16 + stored_len
    elif blob[:4] == _MAGIC:
        (hlen,) = struct.unpack_from("<I", blob, 4)
        head_bytes = bytes(blob[8 : 8 + hlen])
        pos = 8 + hlen
    else:
        raise ValueError("not an operation chunk")
    cut = head_bytes.find(_DETAILS_KEY) if lazy_details else -1
    header: dict[str, Any] | None = None
    if cut >= 0:
        try:
            header = json.loads(head_bytes[:cut] + b"}")
        except json.JSONDecodeError:  # the key text inside a name: parse it all
            header = None
    lazy_text = head_bytes[cut + len(_DETAILS_KEY) : -1] if header is not None else None
    lazy_templates: Callable[[], Templates] | None = None
    t_cut = head_bytes.find(_TEMPLATES_KEY) if lazy_details and header is None else -1
    if t_cut >= 0:
        try:
            header = json.loads(head_bytes[:t_cut] + b"}")
        except json.JSONDecodeError:
            header = None
        else:
            lazy_templates = partial(stored_templates, head_bytes[t_cut + len(_TEMPLATES_KEY) : -1])
            header["templates"] = None
    if header is None:
        header = json.loads(head_bytes)
    n = header["n"]
    stored: dict[str, Callable[[], Any]] = {}
    for name, meta, size in header["cols"]:
        raw = blob[pos : pos + size]
        pos += size
        unpack_col = _unpack_compressed if "l" in meta else _unpack_int
        stored[name] = partial(unpack_col, meta, raw, meta.get("len", n))
    if pos > len(blob):
        raise ValueError("damaged operation chunk: cut short")
    # A column added after the chunk was written reads as NULL.
    cols = LazyColumns(
        {name: stored.get(name) or partial(np.full, n, NULL, np.int64) for name in INT_COLUMNS}
    )
    aside = LazyColumns({k: v for k, v in stored.items() if k not in INT_COLUMNS})
    listed = header["detail_index"]
    if listed == "all":
        detail_index = np.arange(n, dtype=np.int64)
    elif listed == "column":
        detail_index = aside.pop("detail_index")
    else:
        detail_index = np.asarray(listed, np.int64)
    if lazy_text is not None:
        header["details"] = LazyDetails(lazy_text, len(detail_index))
    ragged = LazyColumns(
        {
            name: partial(lambda c, k: (c.pop(k + "_off"), c.pop(k + "_flat")), aside, name)
            for name in RAGGED_COLUMNS
        }
    )
    if "templates" in header:
        templated = StoredTemplated(
            lazy_templates or partial(_templates_of, header["templates"]), aside
        )
        render: Callable[[], bytes] = lambda: b"[" + templated.details().render() + b"]"  # noqa: E731
        lazy = LazyDetails(render, len(templated), templated)
        if not lazy_details:
            lazy._load()
        header["details"] = lazy
    return OpBatch(
        ints=cols,
        names=header["names"],
        exceptions=header["exceptions"],
        ragged=ragged,
        detail_index=detail_index,
        details=header["details"],
    )


def detail_json(detail: dict[str, Any]) -> str:
    """A detail as the store writes it (compact JSON; bytes as hex, sets as lists)."""
    return json.dumps(detail, separators=(",", ":"), default=_jsonable)


def _jsonable(obj: object) -> object:
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return str(obj)


def _ragged(lists: Sequence[Sequence[int] | None]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets use -1 length marker for None: offsets[i+1] < offsets[i] is impossible, so
    None is encoded with a parallel NULL in the offsets column instead."""
    offsets = np.zeros(len(lists) + 1, np.int64)
    flat: list[int] = []
    for i, v in enumerate(lists):
        if v is None:
            offsets[i + 1] = offsets[i]
            continue
        flat.extend(int(x) for x in v)
        offsets[i + 1] = len(flat)
    nulls = np.array([v is None for v in lists], bool)
    # Mark None rows by setting their end offset's sign bit via a separate NULL flag:
    # stored as offsets with NULL in position i+1 would break cumulative decoding, so
    # keep offsets plain and append the null mask after them.
    return np.concatenate([offsets, nulls.astype(np.int64)]), np.asarray(flat, np.int64)


RESPONSE_VALUES_KEY = "response_values"


def from_operations(ops: Sequence[Operation], reversed_: Sequence[int] | None = None) -> OpBatch:
    """Column-pack Python :class:`Operation` objects (the per-packet path).

    ``reversed_[i]`` is 1 when operation i goes from the conversation's server to its
    client; its client port is then the operation's destination port.
    """
    n = len(ops)
    names: dict[str, int] = {}
    excs: dict[str, int] = {}
    ints = {c: np.full(n, NULL, np.int64) for c in INT_COLUMNS}
    values: list[Sequence[int] | None] = []
    rvalues: list[Sequence[int] | None] = []
    detail_index: list[int] = []
    details: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        rev = reversed_[i] if reversed_ is not None else 0
        row = (
            op.ts_ns,
            op.dst_port if rev else op.src_port,
            op.function_code,
            op.unit,
            op.address,
            op.quantity,
            STATUS_CODE[op.status],
            op.exception_code,
            op.latency_ns,
            op.request_frame,
            op.response_frame,
            op.transaction_id,
            OP_CLASS_CODE[op.operation],
            names.setdefault(op.function, len(names)),
            None if op.exception is None else excs.setdefault(op.exception, len(excs)),
            rev,
        )
        for c, v in zip(INT_COLUMNS, row, strict=True):
            if v is not None:
                ints[c][i] = v
        values.append(op.values)
        detail = dict(op.detail)
        rv = detail.pop(RESPONSE_VALUES_KEY, None)
        rvalues.append(rv)
        if detail:
            detail_index.append(i)
            details.append(detail)
    return OpBatch(
        ints=ints,
        names=list(names),
        exceptions=list(excs),
        ragged={"values": _ragged(values), "response_values": _ragged(rvalues)},
        detail_index=np.asarray(detail_index, np.int64),
        details=details,
    )


def ragged_lists(col: tuple[np.ndarray, np.ndarray], n: int) -> list[list[int] | None]:
    """Ragged column back to Python lists (None where the row had no list)."""
    packed, flat = col
    offsets, nulls = packed[: n + 1], packed[n + 1 :]
    out: list[list[int] | None] = []
    fl = flat.tolist()
    for i in range(n):
        out.append(None if nulls[i] else fl[offsets[i] : offsets[i + 1]])
    return out


def ragged_from_arrays(
    offsets: np.ndarray, flat: np.ndarray, nulls: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ragged column from arrays built by the bulk path."""
    return np.concatenate([offsets.astype(np.int64), nulls.astype(np.int64)]), flat


def concat(batches: Sequence[OpBatch]) -> OpBatch:
    """Join batches of one conversation (name tables re-indexed)."""
    if len(batches) == 1:
        return batches[0]
    names: dict[str, int] = {}
    excs: dict[str, int] = {}
    ints: dict[str, list[np.ndarray]] = {c: [] for c in INT_COLUMNS}
    ragged_parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
        r: [] for r in RAGGED_COLUMNS
    }
    detail_index: list[np.ndarray] = []
    details: list[dict[str, Any]] = []
    rendered: list[bytes | memoryview] = []  # instead of ``details`` once one is pre-rendered
    rendered_count = 0
    # Templated details of one store stay templated; mixed with anything else they are
    # rendered (a conversation's first operations, from the per-packet path, for one).
    templated = [b.details for b in batches if isinstance(b.details, TemplatedDetails)]
    merged = None
    if templated and all(
        isinstance(b.details, TemplatedDetails) or not len(b.details) for b in batches
    ):
        merged = TemplatedDetails.merge(templated)
    raw = any(isinstance(b.details, RawDetails | TemplatedDetails) for b in batches)
    base = 0
    for b in batches:
        n = len(b)
        fmap = np.array([names.setdefault(x, len(names)) for x in b.names] or [0], np.int64)
        emap = np.array([excs.setdefault(x, len(excs)) for x in b.exceptions] or [0], np.int64)
        for c in INT_COLUMNS:
            col = b.ints[c]
            if c in ("function", "exception"):
                m = fmap if c == "function" else emap
                col = np.where(col == NULL, NULL, m[np.where(col == NULL, 0, col)])
            ints[c].append(col)
        for r in RAGGED_COLUMNS:
            packed, flat = b.ragged[r]
            ragged_parts[r].append((packed[: n + 1], packed[n + 1 :], flat))
        detail_index.append(b.detail_index + base)
        base += n
        rendered_count += len(b.details)
        if merged is not None or not len(b.details):
            continue  # (merged holds them all)
        if isinstance(b.details, RawDetails):
            rendered.append(b.details.data)
        elif isinstance(b.details, TemplatedDetails):
            rendered.append(b.details.render())
        elif raw:
            rendered += [detail_json(d).encode() for d in b.details]
        else:
            details.extend(b.details)
    ragged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for r, parts in ragged_parts.items():
        offs = [np.zeros(1, np.int64)]
        shift = 0
        for o, _, flat in parts:
            offs.append(o[1:] - o[0] + shift)
            shift += len(flat)
        ragged[r] = ragged_from_arrays(
            np.concatenate(offs),
            np.concatenate([p[2] for p in parts]),
            np.concatenate([p[1] for p in parts]),
        )
    return OpBatch(
        ints={c: np.concatenate(v) for c, v in ints.items()},
        names=list(names),
        exceptions=list(excs),
        ragged=ragged,
        detail_index=np.concatenate(detail_index),
        details=(
            merged
            if merged is not None
            else RawDetails(b",".join(rendered), rendered_count)
            if raw
            else details
        ),
    )
