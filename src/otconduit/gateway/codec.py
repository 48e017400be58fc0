"""Register words and bytes -> engineering values, per tag: data type, byte and word
order, bit selection, scaling/ranges with clamp, and the deadband that decides whether a
new value is worth reporting.

Modbus registers are 16-bit big-endian on the wire (Modbus Application Protocol §4.2);
multi-register values have no standard word order, hence ``word_order``. ``byte_order``
swaps the two bytes inside each register (some devices store "little-endian" words).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from otconduit.gateway.config import WORDS, Tag
from otconduit.gateway.model import Value

_FMT = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q",
    "float32": "f", "float64": "d",
}  # fmt: skip


def register_count(tag: Tag) -> int:
    """Registers (16-bit) a tag occupies."""
    if tag.type == "string":
        return (tag.length + 1) // 2
    return WORDS[tag.type]


def words_to_bytes(words: Sequence[int], tag: Tag) -> bytes:
    ws = list(words)
    if tag.word_order == "little":
        ws.reverse()
    raw = b"".join(int(w & 0xFFFF).to_bytes(2, "big") for w in ws)
    if tag.byte_order == "little":
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return raw


def decode_registers(words: Sequence[int], tag: Tag) -> Value:
    """The raw (unscaled) value of a register-backed tag."""
    if tag.type == "bool":
        return bool((int(words[0]) >> (tag.bit or 0)) & 1)
    if tag.byte_order == "big" and tag.type in ("uint16", "int16"):  # the common case, fast
        w = int(words[0]) & 0xFFFF
        return w - 0x10000 if tag.type == "int16" and w & 0x8000 else w
    raw = words_to_bytes(words, tag)
    if tag.type == "string":
        return raw[: tag.length].split(b"\0", 1)[0].decode("latin-1").rstrip()
    (value,) = struct.unpack(">" + _FMT[tag.type], raw)
    return value


def decode_bytes(data: bytes, tag: Tag) -> Value:
    """The raw value of a byte-addressed tag (S7: big-endian, Siemens byte order)."""
    if tag.type == "bool":
        return bool((data[0] >> (tag.bit or 0)) & 1)
    if tag.type == "string":
        return data[: tag.length].split(b"\0", 1)[0].decode("latin-1").rstrip()
    (value,) = struct.unpack(">" + _FMT[tag.type], data[: struct.calcsize(_FMT[tag.type])])
    return value


def engineering(raw: Value, tag: Tag) -> Value:
    """Apply the tag's scaling (and clamp); booleans and strings pass through."""
    s = tag.scale
    if s is None or isinstance(raw, bool | str) or raw is None:
        return raw
    x = float(raw)
    if s.raw is not None and s.eng is not None:
        (r0, r1), (e0, e1) = s.raw, s.eng
        y = e0 + (x - r0) * (e1 - e0) / (r1 - r0)
        if s.clamp:
            y = min(max(y, min(e0, e1)), max(e0, e1))
        return round(y, 9)
    # Decimal factors (0.1, 0.01) are inexact in binary: 302 * 0.1 is 30.200000000000003.
    # Nine decimals is far below any instrument's resolution and prints as the device meant.
    return round(x * s.factor + s.offset, 9)


def changed(old: Value, new: Value, deadband: float) -> bool:
    """Is ``new`` worth reporting after ``old``? (numbers: beyond the deadband)."""
    if old is None or type(old) is not type(new):
        return True
    if isinstance(new, bool | str):
        return old != new
    if isinstance(new, float) and math.isnan(new):
        return not (isinstance(old, float) and math.isnan(old))
    assert isinstance(old, int | float)
    return abs(float(new) - float(old)) > deadband if deadband > 0 else new != old
