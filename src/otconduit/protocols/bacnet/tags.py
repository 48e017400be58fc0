"""BACnet tagged encoding (135 §20.2): tags, primitive values and how they are shown.

A tag's first octet holds the tag number (bits 7-4; 15 means "the next octet"), the
class (bit 3: 0 application, 1 context) and LVT (bits 2-0): a length 0..4, 5 for an
extended length (one octet, or 254 + two octets, or 255 + four octets), and for context
tags 6/7 an opening/closing tag. An application boolean keeps its value in LVT.

Every read is bounds-checked and raises :class:`TagError`, which the service decoders
of this package catch and turn into a problem string: no ``IndexError`` or
``struct.error`` ever leaves them.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, Final

from otconduit.protocols.bacnet.enums import (
    BINARY_OBJECTS,
    BINARY_PV,
    ENUMERATED_PROPERTIES,
    PRESENT_VALUE,
    object_type_name,
    pick,
)

PRIMITIVE: Final = 0
OPENING: Final = 1
CLOSING: Final = 2

# Application tag numbers (135 §20.2.1.4).
NULL, BOOLEAN, UNSIGNED, SIGNED, REAL, DOUBLE, OCTETS, CHARACTERS = range(8)
BITS, ENUMERATED, DATE, TIME, OBJECT_ID = range(8, 13)

MAX_INT_OCTETS: Final = 8  # unsigned/signed/enumerated longer than this are refused
MAX_DEPTH: Final = 16  # nesting of opening/closing tags a value may use
MAX_VALUES: Final = 32  # primitive values kept from one constructed value
MAX_TEXT: Final = 256  # characters kept from a character string

_CHARSETS: Final = {0: "utf-8", 3: "utf-32-be", 4: "utf-16-be", 5: "latin-1"}


class TagError(ValueError):
    """Bytes that do not hold the tag or value expected (package-internal)."""


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag: number, class, kind and where its content lies in the buffer."""

    number: int
    context: bool
    kind: int  # PRIMITIVE, OPENING, CLOSING
    start: int  # content start (== end for opening/closing tags and booleans)
    end: int
    lvt: int  # the LVT field: an application boolean's value


@dataclass(frozen=True, slots=True)
class ObjectId:
    """A BACnetObjectIdentifier: 10-bit object type, 22-bit instance."""

    type: int
    instance: int

    @property
    def raw(self) -> int:
        return (self.type << 22) | self.instance

    @property
    def type_name(self) -> str:
        return object_type_name(self.type)

    def __str__(self) -> str:
        return f"{self.type_name},{self.instance}"


def object_id(value: int) -> ObjectId:
    return ObjectId(value >> 22, value & 0x3FFFFF)


class TagReader:
    """A cursor over ``data[pos:end]`` reading tags and values."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else min(end, len(data))

    @property
    def at_end(self) -> bool:
        return self.pos >= self.end

    def _tag_at(self, pos: int) -> tuple[Tag, int]:
        data, end = self.data, self.end
        if pos >= end:
            raise TagError(f"tag expected at offset {pos}, data ends")
        first = data[pos]
        pos += 1
        number = first >> 4
        context = bool(first & 0x08)
        lvt = first & 0x07
        if number == 15:
            if pos >= end:
                raise TagError("extended tag number cut short")
            number = data[pos]
            pos += 1
        if context and lvt == 6:
            return Tag(number, True, OPENING, pos, pos, lvt), pos
        if context and lvt == 7:
            return Tag(number, True, CLOSING, pos, pos, lvt), pos
        if not context and number == BOOLEAN:
            return Tag(number, False, PRIMITIVE, pos, pos, lvt), pos
        length = lvt
        if lvt == 5:
            if pos >= end:
                raise TagError("extended length cut short")
            length = data[pos]
            pos += 1
            if length == 254:
                if pos + 2 > end:
                    raise TagError("16-bit length cut short")
                length = int.from_bytes(data[pos : pos + 2], "big")
                pos += 2
            elif length == 255:
                if pos + 4 > end:
                    raise TagError("32-bit length cut short")
                length = int.from_bytes(data[pos : pos + 4], "big")
                pos += 4
        elif lvt > 5:
            raise TagError(f"application tag {number} with LVT {lvt}")
        if pos + length > end:
            raise TagError(f"tag {number} content of {length} octets runs past the data")
        return Tag(number, context, PRIMITIVE, pos, pos + length, lvt), pos + length

    def peek(self) -> Tag | None:
        """The next tag without consuming it (None at the end)."""
        if self.pos >= self.end:
            return None
        return self._tag_at(self.pos)[0]

    def next(self) -> Tag:
        tag, self.pos = self._tag_at(self.pos)
        return tag

    # -- context-tagged fields ---------------------------------------------------------
    def is_context(self, number: int, kind: int = PRIMITIVE) -> bool:
        tag = self.peek()
        return tag is not None and tag.context and tag.number == number and tag.kind == kind

    def context(self, number: int, what: str) -> Tag:
        tag = self.next()
        if not (tag.context and tag.number == number and tag.kind == PRIMITIVE):
            raise TagError(f"{what}: context tag [{number}] expected, found {describe(tag)}")
        return tag

    def opening(self, number: int, what: str) -> None:
        tag = self.next()
        if not (tag.context and tag.number == number and tag.kind == OPENING):
            raise TagError(f"{what}: opening tag [{number}] expected, found {describe(tag)}")

    def closing(self, number: int, what: str) -> None:
        tag = self.next()
        if not (tag.context and tag.number == number and tag.kind == CLOSING):
            raise TagError(f"{what}: closing tag [{number}] expected, found {describe(tag)}")

    def ctx_unsigned(self, number: int, what: str) -> int:
        return unsigned(self.data, self.context(number, what))

    def opt_unsigned(self, number: int, what: str) -> int | None:
        return self.ctx_unsigned(number, what) if self.is_context(number) else None

    def ctx_object(self, number: int, what: str) -> ObjectId:
        return object_id(fixed_unsigned(self.data, self.context(number, what), 4, what))

    # -- application-tagged fields -------------------------------------------------------
    def application(self, number: int, what: str) -> Tag:
        tag = self.next()
        if tag.context or tag.kind != PRIMITIVE or tag.number != number:
            raise TagError(f"{what}: application tag {number} expected, found {describe(tag)}")
        return tag

    def app_unsigned(self, what: str) -> int:
        return unsigned(self.data, self.application(UNSIGNED, what))

    def app_enumerated(self, what: str) -> int:
        return unsigned(self.data, self.application(ENUMERATED, what))

    def app_object(self, what: str) -> ObjectId:
        tag = self.application(OBJECT_ID, what)
        return object_id(fixed_unsigned(self.data, tag, 4, what))

    def app_text(self, what: str) -> str:
        return text(self.data, self.application(CHARACTERS, what))

    # -- constructed values ----------------------------------------------------------
    def values_until_closing(
        self, number: int, prop: int | None = None, obj_type: int | None = None
    ) -> tuple[list[Any], int]:
        """Primitive values up to the closing tag ``[number]`` (consumed): application
        values decoded (enumerations of property ``prop`` of an object of type
        ``obj_type`` by name), context-tagged primitives as ``"[n]hex"``; at most
        :data:`MAX_VALUES` kept. Returns (values, how many there were)."""
        out: list[Any] = []
        count = 0
        depth = 0
        while True:
            tag = self.next()
            if tag.kind == OPENING:
                depth += 1
                if depth > MAX_DEPTH:
                    raise TagError(f"constructed value nested deeper than {MAX_DEPTH}")
                continue
            if tag.kind == CLOSING:
                if depth == 0:
                    if tag.number != number:
                        raise TagError(f"closing tag [{tag.number}] where [{number}] was due")
                    return out, count
                depth -= 1
                continue
            count += 1
            if len(out) < MAX_VALUES:
                if tag.context:
                    out.append(f"[{tag.number}]{self.data[tag.start : tag.end].hex()}")
                elif tag.number == ENUMERATED:
                    out.append(named_value(unsigned(self.data, tag), prop, obj_type))
                else:
                    out.append(app_value(self.data, tag))


def describe(tag: Tag) -> str:
    if tag.kind == OPENING:
        return f"opening tag [{tag.number}]"
    if tag.kind == CLOSING:
        return f"closing tag [{tag.number}]"
    return f"context tag [{tag.number}]" if tag.context else f"application tag {tag.number}"


def unsigned(data: bytes, tag: Tag) -> int:
    size = tag.end - tag.start
    if not 1 <= size <= MAX_INT_OCTETS:
        raise TagError(f"integer of {size} octets")
    return int.from_bytes(data[tag.start : tag.end], "big")


def fixed_unsigned(data: bytes, tag: Tag, size: int, what: str) -> int:
    if tag.end - tag.start != size:
        raise TagError(f"{what}: {tag.end - tag.start} octets where {size} are due")
    return int.from_bytes(data[tag.start : tag.end], "big")


def signed(data: bytes, tag: Tag) -> int:
    size = tag.end - tag.start
    if not 1 <= size <= MAX_INT_OCTETS:
        raise TagError(f"integer of {size} octets")
    return int.from_bytes(data[tag.start : tag.end], "big", signed=True)


def text(data: bytes, tag: Tag) -> str:
    """A CharacterString (135 §20.2.9): character set octet, then the characters."""
    if tag.end <= tag.start:
        raise TagError("character string without a character set")
    charset = data[tag.start]
    body = data[tag.start + 1 : tag.end]
    if charset == 1:  # IBM/Microsoft DBCS: a code page, then the characters
        body = body[2:]
    codec = _CHARSETS.get(charset, "latin-1")
    return body.decode(codec, errors="replace").rstrip("\x00")[:MAX_TEXT]


def _float(value: float) -> float | str:
    """JSON-safe: NaN and infinities as text."""
    return value if math.isfinite(value) else str(value)


def _date(raw: bytes) -> str:
    year = "*" if raw[0] == 255 else str(1900 + raw[0])
    month = "*" if raw[1] == 255 else f"{raw[1]:02d}"
    day = "*" if raw[2] == 255 else f"{raw[2]:02d}"
    return f"{year}-{month}-{day}"


def _time(raw: bytes) -> str:
    parts = ["*" if b == 255 else f"{b:02d}" for b in raw]
    return f"{parts[0]}:{parts[1]}:{parts[2]}.{parts[3]}"


def app_value(data: bytes, tag: Tag) -> Any:
    """One application-tagged primitive as a JSON-able value (135 §20.2.2-20.2.14)."""
    n, raw = tag.number, data[tag.start : tag.end]
    size = len(raw)
    if n == NULL:
        return None
    if n == BOOLEAN:
        return bool(tag.lvt)
    if n in (UNSIGNED, ENUMERATED):
        return unsigned(data, tag)
    if n == SIGNED:
        return signed(data, tag)
    if n == REAL:
        if size != 4:
            raise TagError(f"REAL of {size} octets")
        return _float(struct.unpack(">f", raw)[0])
    if n == DOUBLE:
        if size != 8:
            raise TagError(f"Double of {size} octets")
        return _float(struct.unpack(">d", raw)[0])
    if n == OCTETS:
        return raw[:MAX_TEXT].hex()
    if n == CHARACTERS:
        return text(data, tag)
    if n == BITS:
        if size == 0:
            raise TagError("bit string without its unused-bits octet")
        bits = "".join(f"{b:08b}" for b in raw[1:MAX_TEXT])
        return bits[: max(0, len(bits) - (raw[0] & 7))]
    if n == DATE:
        if size != 4:
            raise TagError(f"Date of {size} octets")
        return _date(raw)
    if n == TIME:
        if size != 4:
            raise TagError(f"Time of {size} octets")
        return _time(raw)
    if n == OBJECT_ID:
        return str(object_id(fixed_unsigned(data, tag, 4, "object identifier")))
    return raw[:MAX_TEXT].hex()  # reserved application tags 13-15


def named_value(value: int, prop: int | None, obj_type: int | None) -> int | str:
    """An enumerated value of property ``prop`` by the name the standard gives it (units,
    event-state, reliability, binary present-value, ...); otherwise the number."""
    if prop is None:
        return value
    names = ENUMERATED_PROPERTIES.get(prop)
    if names is not None:
        return pick(names, value, str(value))
    if prop == PRESENT_VALUE and obj_type in BINARY_OBJECTS:
        return pick(BINARY_PV, value, str(value))
    return value
