"""Sparkplug B payloads in the protobuf wire format, written by hand (no I/O, no
generated code, no protobuf runtime).

Field numbers are those of ``sparkplug_b.proto`` in the Sparkplug 3.0.0 specification
(§6.4.1 "Google Protocol Buffer Schema"): ``Payload`` {1 timestamp, 2 metrics, 3 seq},
``Metric`` {1 name, 2 alias, 3 timestamp, 4 datatype, 5 is_historical, 7 is_null,
9 properties, 10 int_value, 11 long_value, 12 float_value, 13 double_value,
14 boolean_value, 15 string_value}, ``PropertySet`` {1 keys, 2 values},
``PropertyValue`` {1 type, 2 is_null, 3 int_value, 4 long_value, 5 float_value,
6 double_value, 7 boolean_value, 8 string_value}. Wire types follow the protobuf
encoding guide: varint (0), 64-bit (1), length-delimited (2), 32-bit (5).

Signed integers (Int8/16/32 in ``int_value``, Int64 in ``long_value``) are carried as
their two's complement in 32 and 64 bits (§6.4.16: the protobuf types are unsigned).

``decode_payload`` reads what a host sends us (NCMD/DCMD): it returns a
:class:`Payload` or a :class:`Malformed` with the reason and byte offset, never an
exception from the wire data.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache

from otconduit.gateway.model import Value


class DataType(IntEnum):
    """Sparkplug data types (§6.4.16); only the scalar ones a tag can have."""

    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14


# bits and signedness of the integer types
_INT = {
    DataType.INT8: (8, True), DataType.INT16: (16, True), DataType.INT32: (32, True),
    DataType.INT64: (64, True), DataType.UINT8: (8, False), DataType.UINT16: (16, False),
    DataType.UINT32: (32, False), DataType.UINT64: (64, False), DataType.DATETIME: (64, False),
}  # fmt: skip

# Quality property codes (§6.4.12 "Quality Codes"); the property is an Int32.
QUALITY_BAD = 0
QUALITY_GOOD = 192
QUALITY_STALE = 500

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Property:
    key: str
    type: DataType
    value: Value


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """One metric. ``value`` None means is_null. ``datatype`` decides how the value is
    encoded; ``send_datatype`` False leaves it off the wire (DATA messages, §6.4.4)."""

    name: str | None = None
    alias: int | None = None
    timestamp: int | None = None  # ms since the epoch, UTC
    datatype: DataType | None = None
    send_datatype: bool = True
    is_historical: bool = False
    value: Value = None
    properties: tuple[Property, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Payload:
    timestamp: int | None = None
    seq: int | None = None
    metrics: list[Metric] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Malformed:
    reason: str
    offset: int


class UnrepresentableValue(ValueError):
    """A value that the metric's datatype cannot carry (e.g. 1.5 as an Int16)."""


# -- encoding ---------------------------------------------------------------------------


@lru_cache(maxsize=16384)
def _vbytes(n: int) -> bytes:
    """Varint bytes of ``n``, cached: keys, aliases and the millisecond timestamps of one
    poll (shared by every tag it read) repeat all through a batch."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _varint(n: int, out: bytearray) -> None:
    out += _vbytes(n)


def _key(fieldno: int, wire: int, out: bytearray) -> None:
    out += _vbytes((fieldno << 3) | wire)


def _put_varint(fieldno: int, n: int, out: bytearray) -> None:
    out += _vbytes(fieldno << 3)  # wire type 0 (varint)
    out += _vbytes(n)


def _put_bytes(fieldno: int, data: bytes, out: bytearray) -> None:
    _key(fieldno, _LEN, out)
    _varint(len(data), out)
    out += data


def _as_int(value: Value, dt: DataType) -> int:
    bits, signed = _INT[dt]
    if isinstance(value, bool):
        n = int(value)
    elif isinstance(value, int):
        n = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        n = int(value)
    else:
        raise UnrepresentableValue(f"{value!r} is not a {dt.name} value")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= n <= hi:
        raise UnrepresentableValue(f"{n} is out of range for {dt.name}")
    return n & ((1 << (32 if bits <= 32 else 64)) - 1)  # two's complement, §6.4.16


def _put_value(dt: DataType, value: Value, base: int, out: bytearray) -> None:
    """The oneof value: ``base`` is the field number of int_value (10 in Metric, 3 in
    PropertyValue); long, float, double, boolean and string follow it in that order."""
    if dt in _INT:
        n = _as_int(value, dt)
        _put_varint(base if _INT[dt][0] <= 32 else base + 1, n, out)
    elif dt in (DataType.FLOAT, DataType.DOUBLE):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UnrepresentableValue(f"{value!r} is not a {dt.name} value")
        if dt is DataType.FLOAT:
            _key(base + 2, _I32, out)
            try:
                out += struct.pack("<f", float(value))
            except OverflowError:
                raise UnrepresentableValue(f"{value!r} overflows a Float") from None
        else:
            _key(base + 3, _I64, out)
            out += struct.pack("<d", float(value))
    elif dt is DataType.BOOLEAN:
        if not isinstance(value, bool | int):
            raise UnrepresentableValue(f"{value!r} is not a Boolean value")
        _put_varint(base + 4, 1 if value else 0, out)
    elif dt in (DataType.STRING, DataType.TEXT):
        _put_bytes(base + 5, str(value).encode(), out)
    else:  # pragma: no cover - DataType is closed
        raise UnrepresentableValue(f"datatype {dt!r} is not supported")


def check_value(dt: DataType, value: Value) -> None:
    """Raise :class:`UnrepresentableValue` unless ``dt`` can carry ``value``."""
    if value is None:
        return
    if dt is DataType.DOUBLE and isinstance(value, int | float) and not isinstance(value, bool):
        return  # every Python number fits a double (the common case, checked cheaply)
    if dt in _INT and type(value) is int:
        _as_int(value, dt)  # the range check, without encoding
        return
    _put_value(dt, value, 10, bytearray())


def _encode_property_set(props: Sequence[Property]) -> bytes:
    out = bytearray()
    for p in props:
        _put_bytes(1, p.key.encode(), out)
    for p in props:
        pv = bytearray()
        _put_varint(1, int(p.type), pv)
        if p.value is None:
            _put_varint(2, 1, pv)
        else:
            _put_value(p.type, p.value, 3, pv)
        _put_bytes(2, bytes(pv), out)
    return bytes(out)


def encode_metric(m: Metric) -> bytes:
    out = bytearray()
    if m.name is not None:
        _put_bytes(1, m.name.encode(), out)
    if m.alias is not None:
        _put_varint(2, m.alias, out)
    if m.timestamp is not None:
        _put_varint(3, m.timestamp, out)
    if m.datatype is not None and m.send_datatype:
        _put_varint(4, int(m.datatype), out)
    if m.is_historical:
        _put_varint(5, 1, out)
    if m.value is None:
        _put_varint(7, 1, out)  # is_null
    if m.properties:
        _put_bytes(9, _encode_property_set(m.properties), out)
    if m.value is not None:
        if m.datatype is None:
            raise UnrepresentableValue("a metric with a value needs its datatype to encode it")
        _put_value(m.datatype, m.value, 10, out)
    return bytes(out)


def encode_payload(*, timestamp: int, metrics: Sequence[Metric], seq: int | None) -> bytes:
    """A Payload; ``seq`` None for NDEATH (§6.4.18: NDEATH carries no sequence number)."""
    return encode_payload_framed(
        timestamp=timestamp, metrics=[framed_metric(m) for m in metrics], seq=seq
    )


def alias_head(alias: int) -> bytes:
    """Metric field 2 (alias) as bytes: the constant start of every DATA metric of a tag."""
    return _vbytes(2 << 3) + _vbytes(alias)


_PACK_F = struct.Struct("<f").pack
_PACK_D = struct.Struct("<d").pack
_HIST = _vbytes(5 << 3) + _vbytes(1)
_TS_KEY = _vbytes(3 << 3)
_PAYLOAD_METRIC_KEY = _vbytes((2 << 3) | _LEN)
_SMALL_INT = {
    dt: (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    for dt, (bits, signed) in _INT.items()
}


_FLOAT_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]  # largest finite float32
_SMALL_VARINTS = [_vbytes(n) for n in range(1 << 16)]  # every 16-bit register value


def data_metric(head: bytes, ts_ms: int, dt: DataType, value: Value, hist: bool) -> bytes | None:
    """A DATA metric of good quality (alias, timestamp, [is_historical], value) already
    framed as a ``Payload.metrics`` entry, or None when the value needs the general path
    (:func:`encode_metric`: nulls, properties, conversions, anything out of range). The
    same bytes as ``encode_metric`` would give, at a fraction of the cost: this runs once
    per sample."""
    body = head + _TS_KEY + _vbytes(ts_ms)
    if hist:
        body += _HIST
    t = type(value)
    if dt is DataType.DOUBLE:
        if t is not float:
            return None
        body += b"\x69" + _PACK_D(value)  # field 13, 64-bit
    elif t is int and dt in _SMALL_INT:
        lo, hi = _SMALL_INT[dt]
        if not lo <= value <= hi:  # type: ignore[operator]
            return None
        if _INT[dt][0] <= 32:  # int_value (field 10), else long_value (field 11)
            if 0 <= value < 0x10000:  # type: ignore[operator]
                body += b"\x50" + _SMALL_VARINTS[value]  # type: ignore[index]
            else:
                body += b"\x50" + _vbytes(value & 0xFFFFFFFF)  # type: ignore[operator]
        else:
            body += b"\x58" + _vbytes(value & 0xFFFFFFFFFFFFFFFF)  # type: ignore[operator]
    elif dt is DataType.BOOLEAN and t is bool:
        body += b"\x70\x01" if value else b"\x70\x00"
    elif dt is DataType.FLOAT and t is float and abs(value) <= _FLOAT_MAX:  # type: ignore[arg-type]
        body += b"\x65" + _PACK_F(value)
    else:
        return None
    return _PAYLOAD_METRIC_KEY + _vbytes(len(body)) + body


def framed_metric(m: Metric) -> bytes:
    """:func:`encode_metric` framed as a ``Payload.metrics`` entry."""
    body = encode_metric(m)
    return _PAYLOAD_METRIC_KEY + _vbytes(len(body)) + body


def encode_payload_framed(*, timestamp: int, metrics: Sequence[bytes], seq: int | None) -> bytes:
    """A Payload from metrics already framed (:func:`data_metric`, :func:`framed_metric`)."""
    out = bytearray()
    _put_varint(1, timestamp, out)
    out += b"".join(metrics)
    if seq is not None:
        _put_varint(3, seq, out)
    return bytes(out)


# -- decoding (commands from a host) ----------------------------------------------------


class _Bad(Exception):
    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason, self.offset = reason, offset


def _fields(buf: bytes, start: int, end: int) -> list[tuple[int, int, int | bytes, int]]:
    """(field, wire type, value, offset) for each field of one message."""
    out: list[tuple[int, int, int | bytes, int]] = []
    i = start
    while i < end:
        at = i
        key, i = _read_varint(buf, i, end)
        fieldno, wire = key >> 3, key & 7
        if fieldno == 0:
            raise _Bad("field number 0", at)
        if wire == _VARINT:
            v, i = _read_varint(buf, i, end)
            out.append((fieldno, wire, v, at))
        elif wire == _I64:
            if i + 8 > end:
                raise _Bad("truncated 64-bit field", at)
            out.append((fieldno, wire, buf[i : i + 8], at))
            i += 8
        elif wire == _I32:
            if i + 4 > end:
                raise _Bad("truncated 32-bit field", at)
            out.append((fieldno, wire, buf[i : i + 4], at))
            i += 4
        elif wire == _LEN:
            n, i = _read_varint(buf, i, end)
            if i + n > end:
                raise _Bad("length-delimited field runs past its message", at)
            out.append((fieldno, wire, buf[i : i + n], at))
            i += n
        else:
            raise _Bad(f"unsupported wire type {wire}", at)
    return out


def _read_varint(buf: bytes, i: int, end: int) -> tuple[int, int]:
    n = shift = 0
    start = i
    while True:
        if i >= end:
            raise _Bad("truncated varint", start)
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7
        if shift >= 70:
            raise _Bad("varint longer than 10 bytes", start)


def _decode_metric(data: bytes, base: int) -> Metric:
    name: str | None = None
    alias = timestamp = None
    datatype: DataType | None = None
    historical = False
    value: Value = None
    raw_dt: int | None = None
    try:
        fields = _fields(data, 0, len(data))
    except _Bad as exc:
        raise _Bad(exc.reason, base + exc.offset) from None
    for fieldno, wire, v, at in fields:
        where = base + at
        if fieldno == 1 and isinstance(v, bytes):
            try:
                name = v.decode()
            except UnicodeDecodeError:
                raise _Bad("metric name is not UTF-8", where) from None
        elif fieldno == 2 and isinstance(v, int):
            alias = v
        elif fieldno == 3 and isinstance(v, int):
            timestamp = v
        elif fieldno == 4 and isinstance(v, int):
            raw_dt = v
        elif fieldno == 5 and isinstance(v, int):
            historical = bool(v)
        elif fieldno in (10, 11) and isinstance(v, int):
            value = v
        elif fieldno == 12 and wire == _I32 and isinstance(v, bytes):
            value = struct.unpack("<f", v)[0]
        elif fieldno == 13 and wire == _I64 and isinstance(v, bytes):
            value = struct.unpack("<d", v)[0]
        elif fieldno == 14 and isinstance(v, int):
            value = bool(v)
        elif fieldno == 15 and isinstance(v, bytes):
            value = v.decode(errors="replace")
        # other fields (metadata, properties, datasets, templates...) are not needed
    if raw_dt is not None:
        try:
            datatype = DataType(raw_dt)
        except ValueError:
            datatype = None
    if datatype is not None and datatype in _INT and isinstance(value, int):
        bits, signed = _INT[datatype]
        width = 32 if bits <= 32 else 64
        value &= (1 << width) - 1
        if signed and value >= 1 << (width - 1):
            value -= 1 << width
    return Metric(
        name=name,
        alias=alias,
        timestamp=timestamp,
        datatype=datatype,
        is_historical=historical,
        value=value,
    )


def count_metrics(data: bytes) -> int | Malformed:
    """How many metrics a payload carries, reading only its top-level fields (a consumer
    that counts deliveries need not decode every metric)."""
    try:
        return sum(1 for f, wire, _v, _at in _fields(data, 0, len(data)) if f == 2 and wire == _LEN)
    except _Bad as exc:
        return Malformed(reason=exc.reason, offset=exc.offset)


def decode_payload(data: bytes) -> Payload | Malformed:
    """The scalar parts of a Sparkplug B payload (timestamp, seq, metrics)."""
    try:
        timestamp = seq = None
        metrics: list[Metric] = []
        for fieldno, _wire, v, at in _fields(data, 0, len(data)):
            if fieldno == 1 and isinstance(v, int):
                timestamp = v
            elif fieldno == 3 and isinstance(v, int):
                seq = v
            elif fieldno == 2 and isinstance(v, bytes):
                start = at + 1  # the key of field 2 is one byte
                start += len(_len_prefix(len(v)))
                metrics.append(_decode_metric(v, start))
        return Payload(timestamp=timestamp, seq=seq, metrics=metrics)
    except _Bad as exc:
        return Malformed(reason=exc.reason, offset=exc.offset)


def _len_prefix(n: int) -> bytes:
    out = bytearray()
    _varint(n, out)
    return bytes(out)
