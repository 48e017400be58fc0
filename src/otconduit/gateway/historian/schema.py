"""The historian's schema and how a :class:`TagSample` becomes one row.

Two tables carry the data, the same in SQLite and PostgreSQL:

``tags``
    ``id``, ``path`` (unique ISA-95 path), ``unit``, ``type`` (kind of the last value
    written: ``float``, ``int``, ``bool``, ``string``; empty until a value arrives).
``samples``
    ``tag_id``, ``ts_ns`` (time of record, ns since the epoch), ``value`` (REAL / double),
    ``value_text`` (TEXT), ``quality`` (small int), ``flags`` (small int); primary key
    ``(tag_id, ts_ns)``, so a tag's history is one contiguous index range and writing the
    same sample twice (a replay) replaces it instead of duplicating it. In SQLite the
    table is ``WITHOUT ROWID``: the rows live in that key's B-tree, about 26 bytes a
    sample on disk.

Value encoding (``flags`` bits 0-2 hold the kind):

========  ==========================================  =============================
kind      ``value``                                   ``value_text``
========  ==========================================  =============================
none      NULL                                        the quality reason, if any
float     the float (SQLite stores NaN as NULL:       the quality reason, if any
          NULL with kind float reads back as NaN)
int       the integer when a double holds it          its decimal digits otherwise
          exactly (``|v| <= 2**53``), else NULL       (uint64/int64 beyond 2**53);
                                                      else the quality reason
bool      0.0 / 1.0                                   the quality reason, if any
string    NULL                                        the string (no reason kept)
========  ==========================================  =============================

``flags`` bit 3: ``ts_ns`` is the device's source timestamp (else the gateway's receive
time). Bit 4: the sample was replayed from a store-and-forward buffer (``historical``).
``quality``: 0 good, 1 bad, 2 stale.

SQLite also has ``recent``: the same columns in an append-only rowid table that writes
go to first (appending is sequential, while inserting into the ``(tag_id, ts_ns)`` tree
touches one page per tag per commit). Batches of it are moved into ``samples``, sorted,
by :meth:`SQLiteHistorian.flush`; queries read both. ``meta`` keeps the downsampling
watermark.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from otconduit.gateway.model import Quality, TagSample, Value

KIND_NONE, KIND_FLOAT, KIND_INT, KIND_BOOL, KIND_STR = 0, 1, 2, 3, 4
KIND_MASK = 0x07
FLAG_SOURCE_TS = 0x08
FLAG_HISTORICAL = 0x10
KIND_NAMES = {KIND_FLOAT: "float", KIND_INT: "int", KIND_BOOL: "bool", KIND_STR: "string"}
_KIND_OF_TYPE: dict[type, int] = {
    float: KIND_FLOAT,
    int: KIND_INT,
    bool: KIND_BOOL,
    str: KIND_STR,
    type(None): KIND_NONE,
}
QUALITY_CODE = {Quality.GOOD: 0, Quality.BAD: 1, Quality.STALE: 2}
QUALITY_OF_CODE = {code: q for q, code in QUALITY_CODE.items()}
EXACT_INT = 2**53

# (tag_id, ts_ns, value, value_text, quality, flags)
Row = tuple[int, int, float | None, str | None, int, int]
COLUMNS = "tag_id, ts_ns, value, value_text, quality, flags"


def kind_of(value: Value) -> int:
    """The stored kind of a sample value; TypeError for anything a TagSample cannot hold."""
    kind = _KIND_OF_TYPE.get(type(value))
    if kind is None:
        if isinstance(value, bool):
            return KIND_BOOL
        if isinstance(value, int):
            return KIND_INT
        if isinstance(value, float):
            return KIND_FLOAT
        if isinstance(value, str):
            return KIND_STR
        raise TypeError(f"historian cannot store a {type(value).__name__} value: {value!r}")
    return kind


def encode(tag_id: int, s: TagSample) -> Row:
    """One sample as a ``samples`` row (see the module docstring for the layout)."""
    v = s.value
    kind = kind_of(v)
    flags = kind
    if s.source_ts_ns is not None:
        flags |= FLAG_SOURCE_TS
    if s.historical:
        flags |= FLAG_HISTORICAL
    num: float | None
    text: str | None = s.reason or None
    if kind in (KIND_FLOAT, KIND_BOOL):
        num = float(v)  # type: ignore[arg-type]
    elif kind == KIND_INT:
        if -EXACT_INT <= v <= EXACT_INT:  # type: ignore[operator]
            num = float(v)  # type: ignore[arg-type]
        else:
            num, text = None, str(v)
    elif kind == KIND_STR:
        num, text = None, v  # type: ignore[assignment]
    else:
        num = None
    return (tag_id, s.ts_ns, num, text, QUALITY_CODE[s.quality], flags)


def encode_many(ids: dict[str, int], samples: Sequence[TagSample]) -> list[Row]:
    """:func:`encode` for a batch, with the common case (a good live int or float with
    the gateway's timestamp) inline: this runs once per stored sample."""
    rows: list[Row] = []
    append, good = rows.append, Quality.GOOD
    for s in samples:
        v = s.value
        t = type(v)
        if (
            s.quality is good
            and s.source_ts_ns is None
            and not s.historical
            and not s.reason
            and (t is float or (t is int and -EXACT_INT <= v <= EXACT_INT))  # type: ignore[operator]
        ):
            kind = KIND_FLOAT if t is float else KIND_INT
            append((ids[s.path], s.recv_ts_ns, float(v), None, 0, kind))  # type: ignore[arg-type]
        else:
            append(encode(ids[s.path], s))
    return rows


def decode_value(value: float | None, text: str | None, flags: int) -> Value:
    """The sample value of a stored row."""
    kind = flags & KIND_MASK
    if kind == KIND_FLOAT:
        return float("nan") if value is None else float(value)
    if kind == KIND_INT:
        return int(value) if value is not None else int(text or 0)
    if kind == KIND_BOOL:
        return bool(value)
    if kind == KIND_STR:
        return text or ""
    return None


def decode_reason(value: float | None, text: str | None, flags: int) -> str:
    """The quality reason kept in ``value_text`` (none for strings and big integers)."""
    kind = flags & KIND_MASK
    if kind == KIND_STR or (kind == KIND_INT and value is None):
        return ""
    return text or ""


def iso(ts_ns: int | None) -> str | None:
    """Nanosecond epoch -> ISO 8601 UTC with microseconds, as elsewhere in Conduit."""
    if ts_ns is None:
        return None
    dt = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ts_ns % 1_000_000_000) // 1000:06d}Z"


def decode_row(ts_ns: int, value: float | None, text: str | None, quality: int, flags: int) -> Any:
    """A stored row as the dict :func:`otconduit.gateway.historian.queries.history` yields
    (without the unit, which belongs to the tag)."""
    return {
        "ts": iso(ts_ns),
        "ts_ns": ts_ns,
        "value": decode_value(value, text, flags),
        "quality": QUALITY_OF_CODE.get(quality, Quality.BAD).value,
        "source_ts": iso(ts_ns) if flags & FLAG_SOURCE_TS else None,
        "historical": bool(flags & FLAG_HISTORICAL),
        "reason": decode_reason(value, text, flags),
    }


# Named migrations, per dialect, under the same names: the tables and columns are the same;
# only the spelling of types differs, plus SQLite's append buffer ``recent``. A migration is
# never edited once released: add a new one.
SQLITE_MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_historian",
        """
        CREATE TABLE tags (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            unit TEXT NOT NULL DEFAULT '',
            type TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE samples (
            tag_id INTEGER NOT NULL REFERENCES tags(id),
            ts_ns INTEGER NOT NULL,
            value REAL,
            value_text TEXT,
            quality INTEGER NOT NULL,
            flags INTEGER NOT NULL,
            PRIMARY KEY (tag_id, ts_ns)
        ) WITHOUT ROWID;
        -- Append buffer: writes land here, flush() moves them into samples in key order.
        CREATE TABLE recent (
            tag_id INTEGER NOT NULL,
            ts_ns INTEGER NOT NULL,
            value REAL,
            value_text TEXT,
            quality INTEGER NOT NULL,
            flags INTEGER NOT NULL
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER)
        """,
    ),
]

POSTGRES_MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_historian",
        """
        CREATE TABLE tags (
            id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            unit TEXT NOT NULL DEFAULT '',
            type TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE samples (
            tag_id INTEGER NOT NULL REFERENCES tags(id),
            ts_ns BIGINT NOT NULL,
            value DOUBLE PRECISION,
            value_text TEXT,
            quality SMALLINT NOT NULL,
            flags SMALLINT NOT NULL,
            PRIMARY KEY (tag_id, ts_ns)
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT)
        """,
    ),
]
MIGRATIONS_TABLE = "historian_migrations"
