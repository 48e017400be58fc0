"""Request data of the Logix tag services and of attribute writes, for quantities and
written values.

Layouts from Rockwell Automation publication 1756-PM020 "Logix 5000 Controllers Data
Access" (cited "PM020"); data type codes from CIP Vol 1 §C-6.1 (elementary types).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from otconduit.protocols.enip._wire import Reader, Truncated
from otconduit.protocols.enip.cip import (
    READ_MODIFY_WRITE_TAG,
    READ_TAG,
    READ_TAG_FRAGMENTED,
    WRITE_TAG,
    WRITE_TAG_FRAGMENTED,
)

MAX_VALUES: Final = 16  # writes with more values keep only their size in the detail
STRUCTURE_TYPE: Final = 0x02A0  # PM020: "abbreviated structure" type, followed by a handle

# Vol 1 §C-6.1, Table C-6.1: elementary data type codes -> (name, size, signed).
DATA_TYPES: Final[Mapping[int, tuple[str, int, bool]]] = MappingProxyType(
    {
        0xC1: ("BOOL", 1, False),
        0xC2: ("SINT", 1, True),
        0xC3: ("INT", 2, True),
        0xC4: ("DINT", 4, True),
        0xC5: ("LINT", 8, True),
        0xC6: ("USINT", 1, False),
        0xC7: ("UINT", 2, False),
        0xC8: ("UDINT", 4, False),
        0xC9: ("ULINT", 8, False),
        0xCA: ("REAL", 4, False),
        0xCB: ("LREAL", 8, False),
        0xD1: ("BYTE", 1, False),
        0xD2: ("WORD", 2, False),
        0xD3: ("DWORD", 4, False),
        0xD4: ("LWORD", 8, False),
    }
)
_FLOATS: Final = frozenset({0xCA, 0xCB})


@dataclass(frozen=True, slots=True, kw_only=True)
class TagRequest:
    """What a tag service request asks for: ``elements`` (Operation quantity), the
    ``values`` written when short and integral, and extra detail."""

    elements: int | None = None
    values: tuple[int, ...] | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _typed_values(type_code: int, elements: int, data: bytes) -> tuple[int, ...] | None:
    spec = DATA_TYPES.get(type_code)
    if spec is None or type_code in _FLOATS or elements > MAX_VALUES:
        return None
    _, size, signed = spec
    if len(data) < size * elements:
        return None
    return tuple(
        int.from_bytes(data[i * size : (i + 1) * size], "little", signed=signed)
        for i in range(elements)
    )


def parse_tag_request(service: int, data: bytes) -> tuple[TagRequest, str | None]:
    """Read Tag: elements UINT. Read Tag Fragmented: elements UINT, offset UDINT. Write
    Tag: type UINT (+ handle UINT for structures), elements UINT, data. Write Tag
    Fragmented: same plus offset UDINT before the data. Read Modify Write Tag: mask size
    UINT, OR mask, AND mask (PM020 ch. 3)."""
    r = Reader(data)
    detail: dict[str, Any] = {}
    try:
        if service in (READ_TAG, READ_TAG_FRAGMENTED):
            elements = r.u16("element count")
            if service == READ_TAG_FRAGMENTED:
                detail["byte_offset"] = r.u32("byte offset")
            return TagRequest(elements=elements, detail=detail), None
        if service in (WRITE_TAG, WRITE_TAG_FRAGMENTED):
            type_code = r.u16("data type")
            if type_code == STRUCTURE_TYPE:
                detail["structure_handle"] = r.u16("structure handle")
            detail["data_type"] = DATA_TYPES.get(type_code, (f"0x{type_code:04x}", 0, False))[0]
            elements = r.u16("element count")
            if service == WRITE_TAG_FRAGMENTED:
                detail["byte_offset"] = r.u32("byte offset")
            payload = r.rest()
            detail["data_size"] = len(payload)
            if len(payload) <= 32:
                detail["data"] = payload.hex()
            values = None
            if service == WRITE_TAG:
                values = _typed_values(type_code, elements, payload)
            return TagRequest(elements=elements, values=values, detail=detail), None
        if service == READ_MODIFY_WRITE_TAG:
            size = r.u16("mask size")
            or_mask = int.from_bytes(r.take(size, "OR mask"), "little")
            and_mask = int.from_bytes(r.take(size, "AND mask"), "little")
            detail.update(or_mask=or_mask, and_mask=and_mask, mask_size=size)
            return TagRequest(elements=1, values=(or_mask, and_mask), detail=detail), None
    except Truncated as exc:
        return TagRequest(detail=detail), str(exc)
    return TagRequest(), None


def attribute_list_count(data: bytes) -> int | None:
    """Get/Set Attribute List requests start with the attribute count UINT (Vol 1
    §A-4.3, §A-4.4)."""
    return int.from_bytes(data[:2], "little") if len(data) >= 2 else None


def short_bytes(data: bytes) -> tuple[int, ...] | None:
    """Raw bytes of a short attribute write as values (None when empty or long)."""
    return tuple(data) if 0 < len(data) <= MAX_VALUES else None
