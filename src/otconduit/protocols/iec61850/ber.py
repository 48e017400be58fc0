"""A bounded BER reader (ITU-T X.690) for the ASN.1 the IEC 61850 stack speaks: GOOSE
(IEC 61850-8-1 Annex A), MMS (ISO 9506-2), ACSE (ISO 8650) and presentation (ISO 8823).

Only what those encodings use: definite lengths (X.690 §8.1.3; the indefinite form is
reported), tags up to four continuation bytes (§8.1.2.4), and the MMS ``Data`` values
(ISO 9506-2 §14.4; IEC 61850-8-1 §8.1.3 maps GOOSE ``allData`` onto the same type).

:class:`BerError` is raised by the readers and caught once at each PDU parser's boundary
(it never leaves this package): a malformed PDU becomes a reason string there.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

UNIVERSAL: Final = 0
APPLICATION: Final = 1
CONTEXT: Final = 2
PRIVATE: Final = 3

MAX_DEPTH: Final = 16  # nesting of structures/arrays decoded before "raw"
MAX_ITEMS: Final = 256  # values decoded per list (the rest are counted, not decoded)
MAX_TEXT: Final = 256  # characters kept of a string value


class BerError(ValueError):
    """A BER encoding error, with the offset it was found at."""


class Tlv(NamedTuple):
    """One element: identifier octet fields, and where its contents lie in the buffer."""

    cls: int  # UNIVERSAL, APPLICATION, CONTEXT, PRIVATE
    constructed: bool
    tag: int
    start: int  # first contents byte
    end: int  # one past the last contents byte
    offset: int  # first identifier byte (the whole element is buf[offset:end])


_tuple_new = tuple.__new__  # builds a Tlv without NamedTuple's Python-level __new__


def read_tlv(buf: bytes, pos: int, end: int) -> Tlv:
    """The element starting at ``buf[pos]``, which must end by ``end`` (X.690 §8.1)."""
    if pos + 1 < end:  # the common case: low tag number, short length
        first, length = buf[pos], buf[pos + 1]
        if first & 0x1F != 0x1F and length < 0x80:
            if pos + 2 + length > end:
                raise BerError(f"length {length} at offset {pos + 2} exceeds the enclosing")
            return _tuple_new(
                Tlv, (first >> 6, bool(first & 0x20), first & 0x1F, pos + 2, pos + 2 + length, pos)
            )
    if pos >= end:
        raise BerError(f"element expected at offset {pos}")
    offset = pos
    first = buf[pos]
    pos += 1
    tag = first & 0x1F
    if tag == 0x1F:  # high tag number form, base-128 (§8.1.2.4)
        tag = 0
        for count in range(5):
            if pos >= end:
                raise BerError("truncated tag")
            b = buf[pos]
            pos += 1
            tag = (tag << 7) | (b & 0x7F)
            if not b & 0x80:
                break
            if count == 3:
                raise BerError("tag number longer than 4 bytes")
    if pos >= end:
        raise BerError("truncated length")
    length = buf[pos]
    pos += 1
    if length & 0x80:
        count = length & 0x7F
        if count == 0:
            raise BerError("indefinite length")
        if count > 4:
            raise BerError(f"length of {count} bytes")
        if pos + count > end:
            raise BerError("truncated length")
        length = int.from_bytes(buf[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise BerError(f"length {length} at offset {pos} exceeds the enclosing {end - pos}")
    return Tlv(first >> 6, bool(first & 0x20), tag, pos, pos + length, offset)


def children(buf: bytes, parent: Tlv | tuple[int, int]) -> Iterator[Tlv]:
    """The elements inside ``parent`` (a constructed element or a ``(start, end)`` span)."""
    start, end = (parent.start, parent.end) if isinstance(parent, Tlv) else parent
    pos = start
    while pos < end:
        tlv = read_tlv(buf, pos, end)
        yield tlv
        pos = tlv.end


def first(buf: bytes, parent: Tlv | tuple[int, int]) -> Tlv:
    """The first element inside ``parent``."""
    for tlv in children(buf, parent):
        return tlv
    raise BerError("empty constructed element")


def by_tag(buf: bytes, parent: Tlv) -> dict[int, Tlv]:
    """Context-tagged children of a SEQUENCE/SET by tag number (the first of each)."""
    out: dict[int, Tlv] = {}
    for tlv in children(buf, parent):
        out.setdefault(tlv.tag, tlv)
    return out


def integer(buf: bytes, tlv: Tlv, *, signed: bool = True) -> int:
    """INTEGER contents (§8.3): two's complement, big-endian."""
    if tlv.end == tlv.start:
        raise BerError("empty integer")
    if tlv.end - tlv.start > 16:
        raise BerError("integer longer than 16 bytes")
    return int.from_bytes(buf[tlv.start : tlv.end], "big", signed=signed)


def unsigned(buf: bytes, tlv: Tlv) -> int:
    """An unsigned INTEGER (MMS Unsigned32, GOOSE stNum/sqNum): encoders write a leading
    zero byte so the value stays positive; some write none, so no sign is read."""
    return integer(buf, tlv, signed=False)


def boolean(buf: bytes, tlv: Tlv) -> bool:
    if tlv.end - tlv.start != 1:
        raise BerError("boolean of other than one byte")
    return buf[tlv.start] != 0


def text(buf: bytes, tlv: Tlv, limit: int = MAX_TEXT) -> str:
    """A VisibleString/GraphicString/UTF8String, decoded leniently and bounded."""
    raw = buf[tlv.start : min(tlv.end, tlv.start + limit * 4)]
    return raw.decode("utf-8", "replace")[:limit]


def oid(buf: bytes, tlv: Tlv) -> str:
    """OBJECT IDENTIFIER contents (§8.19) in dotted form."""
    arcs: list[int] = []
    value = 0
    for b in buf[tlv.start : tlv.end]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise BerError("empty object identifier")
    head = arcs[0]
    top = min(head // 40, 2)
    return ".".join(str(a) for a in (top, head - 40 * top, *arcs[1:]))


# -- MMS Data (ISO 9506-2 §14.4.1) --------------------------------------------------------
DATA_TYPES: Final = {
    1: "array",
    2: "structure",
    3: "boolean",
    4: "bit-string",
    5: "integer",
    6: "unsigned",
    7: "floating-point",
    9: "octet-string",
    10: "visible-string",
    11: "generalized-time",
    12: "binary-time",
    13: "bcd",
    14: "boolean-array",
    15: "object-id",
    16: "mms-string",
    17: "utc-time",
}
_EPOCH_1984: Final = datetime(1984, 1, 1, tzinfo=UTC)


def utc_time(raw: bytes) -> str:
    """UtcTime (IEC 61850-8-1 §8.1.3.7): seconds since 1970 (4), fraction of a second
    (3, binary), time quality (1); as ISO 8601 text with microseconds."""
    if len(raw) != 8:
        raise BerError(f"utc-time of {len(raw)} bytes")
    seconds = int.from_bytes(raw[:4], "big")
    fraction = int.from_bytes(raw[4:7], "big") / (1 << 24)
    stamp = datetime.fromtimestamp(seconds, UTC) + timedelta(seconds=fraction)
    return stamp.isoformat().replace("+00:00", "Z")


def utc_time_ns(raw: bytes) -> int:
    """UtcTime as nanoseconds since 1970 (for ordering)."""
    seconds = int.from_bytes(raw[:4], "big")
    return seconds * 1_000_000_000 + (int.from_bytes(raw[4:7], "big") * 1_000_000_000 >> 24)


def _binary_time(raw: bytes) -> str:
    """TimeOfDay (ISO 9506-2 §14.4.1, binary-time): milliseconds since midnight (4) and,
    in the 6-byte form, days since 1984-01-01 (2)."""
    if len(raw) not in (4, 6):
        raise BerError(f"binary-time of {len(raw)} bytes")
    ms = int.from_bytes(raw[:4], "big")
    if len(raw) == 4:
        return str(timedelta(milliseconds=ms))
    stamp = _EPOCH_1984 + timedelta(days=int.from_bytes(raw[4:6], "big"), milliseconds=ms)
    return stamp.isoformat().replace("+00:00", "Z")


def _float(raw: bytes) -> float:
    """FloatingPoint (ISO 9506-2 §14.4.1): exponent width (1), then IEEE 754 bytes."""
    if len(raw) == 5:
        return float(struct.unpack(">f", raw[1:])[0])
    if len(raw) == 9:
        return float(struct.unpack(">d", raw[1:])[0])
    raise BerError(f"floating-point of {len(raw)} bytes")


def bit_string(raw: bytes) -> str:
    """BIT STRING contents (§8.6) as '0'/'1' text: unused-bit count, then the bits."""
    if not raw or raw[0] > 7 or (len(raw) == 1 and raw[0]):
        raise BerError("bad bit-string padding")
    width = 8 * (len(raw) - 1)
    bits = format(int.from_bytes(raw[1:], "big"), f"0{width}b") if width else ""
    return bits[: width - raw[0]]


# Status and quality bit strings of a dataset are a few bytes and take few values: their
# text is remembered (a state change of a protection IED carries a dozen of them).
_short_bits: Final = functools.lru_cache(maxsize=4096)(bit_string)
_SHORT_BITS: Final = 8


def data_value(buf: bytes, tlv: Tlv, depth: int = 0) -> Any:
    """One MMS ``Data`` element as a JSON-friendly value: bool, int, float, str, a list
    for arrays and structures, or ``{"type": ..., "raw": hex}`` for the rest."""
    if tlv.cls != CONTEXT:
        raise BerError(f"Data element with a non-context tag (class {tlv.cls})")
    raw = buf[tlv.start : tlv.end]
    kind = tlv.tag
    if kind in (1, 2):
        if not tlv.constructed:
            raise BerError("primitive array/structure")
        if depth >= MAX_DEPTH:
            return {"type": DATA_TYPES[kind], "raw": raw[:64].hex()}
        return data_list(buf, tlv, depth + 1)
    if tlv.constructed:
        raise BerError(f"constructed Data [{kind}]")
    if kind == 3:
        return boolean(buf, tlv)
    if kind == 4:
        return _short_bits(raw) if len(raw) <= _SHORT_BITS else bit_string(raw)
    if kind == 5:
        return integer(buf, tlv)
    if kind == 6:
        return unsigned(buf, tlv)
    if kind == 7:
        return _float(raw)
    if kind == 9:
        return raw[:MAX_TEXT].hex()
    if kind in (10, 16):
        return text(buf, tlv)
    if kind == 12:
        return _binary_time(raw)
    if kind == 17:
        return utc_time(raw)
    return {"type": DATA_TYPES.get(kind, f"[{kind}]"), "raw": raw[:64].hex()}


def data_list(buf: bytes, parent: Tlv, depth: int = 0) -> list[Any]:
    """The ``Data`` elements of a SEQUENCE OF Data (at most :data:`MAX_ITEMS` decoded)."""
    out: list[Any] = []
    for i, tlv in enumerate(children(buf, parent)):
        if i >= MAX_ITEMS:
            break
        out.append(data_value(buf, tlv, depth))
    return out


def count(buf: bytes, parent: Tlv) -> int:
    """How many elements ``parent`` holds (``children`` without the generator)."""
    pos, end, n = parent.start, parent.end, 0
    while pos < end:
        pos = read_tlv(buf, pos, end).end
        n += 1
    return n
