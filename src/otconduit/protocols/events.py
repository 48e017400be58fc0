"""Decoder outcomes shared by every protocol framer (Modbus, DNP3, S7, ENIP, ...).

A framer's ``next_event()`` has exactly three kinds of answer, never one value meaning
two things: a protocol message, :data:`NEED_DATA` (nothing complete yet, feed more
bytes), or a :class:`Malformed` event (bytes that were discarded, and why). A decoder that
hands out again what it decoded once (a GOOSE template's values, a remembered BACnet
detail) gives each caller :func:`own_copy` of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Final


class NeedData(Enum):
    """Type of the :data:`NEED_DATA` sentinel (an enum so ``is`` checks narrow types)."""

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA
"""Returned by ``next_event()`` when the buffered bytes do not yet complete an event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Malformed:
    """Bytes a framer could not use, reported instead of silently dropped or raised.

    ``offset`` is the position of ``data[0]`` in the direction's byte stream (counting
    bytes lost in gaps), ``frame``/``ts_ns`` locate the capture frame that made the
    problem visible, and ``data`` holds the discarded bytes (bounded by the framer's
    buffer limit, possibly empty when the bytes were never seen).
    """

    reason: str
    offset: int
    frame: int
    ts_ns: int
    data: bytes = b""


def own_copy(value: Any) -> Any:
    """A copy of decoded values (JSON-like lists and dicts) that shares no list or dict
    with ``value``: what a decoder remembers and hands out again (a template's values, a
    remembered detail), each operation owning what it holds."""
    if isinstance(value, list):
        return [own_copy(v) if isinstance(v, list | dict) else v for v in value]
    if isinstance(value, dict):
        return {k: own_copy(v) if isinstance(v, list | dict) else v for k, v in value.items()}
    return value
