"""OPC UA Binary encoding of the built-in types (OPC 10000-6 §5.2), read-only.

Why a reader of its own: every service body is a sequence of these types, and a hostile
peer controls every length and count in them. :class:`Reader` checks each read against
the bytes left and raises :class:`DecodeError` (never ``struct.error``/``IndexError``);
array counts are checked against the bytes left before anything is allocated, and the
recursive types (Variant, DataValue, DiagnosticInfo, ExtensionObject bodies) carry a
depth budget, so no input makes a parse allocate more than its own size or recurse
without bound.

Encodings, little-endian throughout (§5.2.2):

- Boolean/SByte/Byte 1, (U)Int16 2, (U)Int32 4, (U)Int64 8, Float 4, Double 8 bytes.
- String / ByteString / XmlElement: Int32 length, -1 = null, then the bytes (UTF-8).
- DateTime: Int64, 100 ns ticks since 1601-01-01 UTC. Guid: UInt32, UInt16, UInt16,
  8 bytes. StatusCode: UInt32.
- NodeId (§5.2.2.9): an encoding byte, 0 two-byte (Byte id, namespace 0), 1 four-byte
  (Byte namespace, UInt16 id), 2 numeric (UInt16 namespace, UInt32 id), 3 string,
  4 guid, 5 opaque (UInt16 namespace, then the identifier). ExpandedNodeId adds flag
  0x80 (a namespace URI String follows) and 0x40 (a UInt32 server index follows).
- QualifiedName: UInt16 namespace, String. LocalizedText: mask (1 locale, 2 text), the
  Strings present.
- ExtensionObject (§5.2.2.15): type NodeId, encoding byte (0 no body, 1 ByteString
  body, 2 XmlElement body), the body as a ByteString.
- Variant (§5.2.2.16): mask (bits 0-5 built-in type, 0x80 array, 0x40 dimensions),
  the value or Int32 count + values, then Int32 dimension count + Int32 dimensions.
- DataValue (§5.2.2.17): mask 0x01 Variant, 0x02 StatusCode, 0x04 source DateTime,
  0x08 server DateTime, 0x10 source picoseconds, 0x20 server picoseconds (UInt16).
- DiagnosticInfo (§5.2.2.12): mask 0x01 symbolic id, 0x02 namespace, 0x04 localized
  text, 0x08 locale (Int32 each), 0x10 additional info String, 0x20 inner StatusCode,
  0x40 inner DiagnosticInfo.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

MAX_DEPTH: Final = 8  # nesting of Variants/DataValues/DiagnosticInfos we follow
MAX_TEXT: Final = 4096  # characters of a String we keep (longer ones are cut)

_U16 = struct.Struct("<H")
_I16 = struct.Struct("<h")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_GUID = struct.Struct("<IHH8s")


class DecodeError(ValueError):
    """Bytes that do not decode as the type asked for (package-internal)."""


class NodeId(NamedTuple):
    """A NodeId: namespace index, kind ('i' numeric, 's' string, 'g' guid, 'b' opaque)
    and identifier, printed in the text form of OPC 10000-6 §5.3.1.10 ("ns=1;s=x")."""

    ns: int
    kind: str
    ident: int | str | bytes

    def __str__(self) -> str:
        ident = self.ident
        if isinstance(ident, bytes):
            ident = base64.b64encode(ident).decode("ascii")
        return f"{self.kind}={ident}" if self.ns == 0 else f"ns={self.ns};{self.kind}={ident}"

    @property
    def numeric(self) -> int | None:
        """The identifier of a namespace-0 numeric NodeId (the standard nodes and types)."""
        return self.ident if self.ns == 0 and self.kind == "i" else None  # type: ignore[return-value]


NULL_NODE: Final = NodeId(0, "i", 0)


@dataclass(frozen=True, slots=True)
class ExpandedNodeId:
    node: NodeId
    namespace_uri: str | None = None
    server_index: int = 0

    def __str__(self) -> str:
        prefix = f"svr={self.server_index};" if self.server_index else ""
        if self.namespace_uri is not None:
            prefix += f"nsu={self.namespace_uri};"
        return prefix + str(self.node)


@dataclass(frozen=True, slots=True)
class ExtensionObject:
    """An encoded structure: its type (the binary encoding NodeId) and body bytes."""

    type_id: NodeId
    encoding: int  # 0 no body, 1 binary, 2 XML
    body: bytes | None


@dataclass(frozen=True, slots=True)
class Variant:
    """A decoded Variant: the built-in type and the value.

    ``value`` is a Python scalar (int, float, bool, str, bytes, NodeId, ...), a list of
    them for arrays (at most ``max_items`` elements decoded; ``length`` is the full
    count), or None for a null Variant.
    """

    type_id: int
    value: Any
    is_array: bool = False
    length: int = 0


@dataclass(frozen=True, slots=True)
class DataValue:
    value: Variant | None
    status: int  # 0 (Good) when absent
    source_ts: int | None = None
    server_ts: int | None = None


BUILTIN_NAMES: Final = {
    0: "Null",
    1: "Boolean",
    2: "SByte",
    3: "Byte",
    4: "Int16",
    5: "UInt16",
    6: "Int32",
    7: "UInt32",
    8: "Int64",
    9: "UInt64",
    10: "Float",
    11: "Double",
    12: "String",
    13: "DateTime",
    14: "Guid",
    15: "ByteString",
    16: "XmlElement",
    17: "NodeId",
    18: "ExpandedNodeId",
    19: "StatusCode",
    20: "QualifiedName",
    21: "LocalizedText",
    22: "ExtensionObject",
    23: "DataValue",
    24: "Variant",
    25: "DiagnosticInfo",
}
# Built-in types of fixed size: arrays of them are skipped by arithmetic.
_FIXED: Final = {
    1: 1,
    2: 1,
    3: 1,
    4: 2,
    5: 2,
    6: 4,
    7: 4,
    8: 8,
    9: 8,
    10: 4,
    11: 8,
    13: 8,
    14: 16,
    19: 4,
}
# Smallest encoded size of each built-in type (for checking array counts).
_MIN_SIZE: Final = {
    **_FIXED,
    12: 4,
    15: 4,
    16: 4,
    17: 2,
    18: 2,
    20: 6,
    21: 1,
    22: 3,
    23: 1,
    24: 1,
    25: 1,
}


class Reader:
    """A cursor over one message body; every read advances it or raises DecodeError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _at(self, n: int) -> int:
        start = self.pos
        end = start + n
        if end > len(self.data):
            raise DecodeError(f"{n} bytes needed at offset {start}, {len(self.data) - start} left")
        self.pos = end
        return start

    # --- fixed-size -------------------------------------------------------------------

    def u8(self) -> int:
        return self.data[self._at(1)]

    def boolean(self) -> bool:
        return self.data[self._at(1)] != 0

    def u16(self) -> int:
        return int(_U16.unpack_from(self.data, self._at(2))[0])

    def i16(self) -> int:
        return int(_I16.unpack_from(self.data, self._at(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack_from(self.data, self._at(4))[0])

    def i32(self) -> int:
        return int(_I32.unpack_from(self.data, self._at(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack_from(self.data, self._at(8))[0])

    def i64(self) -> int:
        return int(_I64.unpack_from(self.data, self._at(8))[0])

    def f32(self) -> float:
        return float(_F32.unpack_from(self.data, self._at(4))[0])

    def f64(self) -> float:
        return float(_F64.unpack_from(self.data, self._at(8))[0])

    def take(self, n: int) -> bytes:
        start = self._at(n)
        return self.data[start : start + n]

    def skip(self, n: int) -> None:
        self._at(n)

    # --- variable-size ----------------------------------------------------------------

    def bytestring(self) -> bytes | None:
        n = self.i32()
        if n == -1:
            return None
        if n < -1:
            raise DecodeError(f"negative length {n}")
        return self.take(n)

    def string(self) -> str | None:
        raw = self.bytestring()
        if raw is None:
            return None
        return raw[: MAX_TEXT * 4].decode("utf-8", "replace")[:MAX_TEXT]

    def skip_bytestring(self) -> None:
        n = self.i32()
        if n < -1:
            raise DecodeError(f"negative length {n}")
        if n > 0:
            self._at(n)

    def guid(self) -> str:
        d1, d2, d3, d4 = _GUID.unpack_from(self.data, self._at(16))
        return f"{d1:08x}-{d2:04x}-{d3:04x}-{d4[:2].hex()}-{d4[2:].hex()}"

    def array_length(self, min_size: int = 1) -> int:
        """An Int32 element count (-1, a null array, reads as 0) that the bytes left can
        hold at ``min_size`` bytes per element."""
        n = self.i32()
        if n == -1:
            return 0
        if n < -1:
            raise DecodeError(f"negative array length {n}")
        if n * min_size > len(self.data) - self.pos:
            raise DecodeError(f"array of {n} cannot fit in {len(self.data) - self.pos} bytes")
        return n

    def node_id(self) -> NodeId:
        return self._node_id(self.u8(), expanded=False)

    def expanded_node_id(self) -> ExpandedNodeId:
        mask = self.u8()
        node = self._node_id(mask & 0x3F, expanded=True)
        uri = self.string() if mask & 0x80 else None
        server = self.u32() if mask & 0x40 else 0
        return ExpandedNodeId(node, uri, server)

    def _node_id(self, mask: int, *, expanded: bool) -> NodeId:
        if mask == 0:
            return NodeId(0, "i", self.u8())
        if mask == 1:
            ns = self.u8()
            return NodeId(ns, "i", self.u16())
        if mask == 2:
            ns = self.u16()
            return NodeId(ns, "i", self.u32())
        if mask == 3:
            ns = self.u16()
            return NodeId(ns, "s", self.string() or "")
        if mask == 4:
            ns = self.u16()
            return NodeId(ns, "g", self.guid())
        if mask == 5:
            ns = self.u16()
            return NodeId(ns, "b", self.bytestring() or b"")
        kind = "ExpandedNodeId" if expanded else "NodeId"
        raise DecodeError(f"{kind} encoding 0x{mask:02x} is not defined")

    def qualified_name(self) -> tuple[int, str | None]:
        ns = self.u16()
        return ns, self.string()

    def localized_text(self) -> tuple[str | None, str | None]:
        mask = self.u8()
        locale = self.string() if mask & 0x01 else None
        text = self.string() if mask & 0x02 else None
        return locale, text

    def extension_object(self) -> ExtensionObject:
        type_id = self.node_id()
        encoding = self.u8()
        if encoding == 0:
            return ExtensionObject(type_id, 0, None)
        if encoding not in (1, 2):
            raise DecodeError(f"ExtensionObject encoding 0x{encoding:02x} is not defined")
        return ExtensionObject(type_id, encoding, self.bytestring())

    def diagnostic_info(self, depth: int = 0) -> None:
        """Skip a DiagnosticInfo (we report status codes, not diagnostics)."""
        while True:
            if depth > MAX_DEPTH:
                raise DecodeError("DiagnosticInfo nested too deeply")
            mask = self.u8()
            fixed = sum(4 for bit in (0x01, 0x02, 0x04, 0x08) if mask & bit)
            if fixed:
                self._at(fixed)
            if mask & 0x10:
                self.skip_bytestring()
            if mask & 0x20:
                self._at(4)
            if not mask & 0x40:
                return
            depth += 1

    def skip_diagnostic_infos(self) -> None:
        for _ in range(self.array_length()):
            self.diagnostic_info()

    def status_codes(self) -> tuple[int, ...]:
        n = self.array_length(4)
        start = self._at(4 * n)
        return struct.unpack_from(f"<{n}I", self.data, start)

    def u32_array(self) -> tuple[int, ...]:
        return self.status_codes()

    def strings(self) -> list[str | None]:
        return [self.string() for _ in range(self.array_length(4))]

    def data_value(self, depth: int = 0, max_items: int = 16) -> DataValue:
        mask = self.u8()
        value = self.variant(depth + 1, max_items) if mask & 0x01 else None
        status = self.u32() if mask & 0x02 else 0
        source = self.i64() if mask & 0x04 else None
        if mask & 0x10:
            self._at(2)
        server = self.i64() if mask & 0x08 else None
        if mask & 0x20:
            self._at(2)
        return DataValue(value, status, source, server)

    def variant(self, depth: int = 0, max_items: int = 16) -> Variant:
        """A Variant; arrays keep their first ``max_items`` elements (the rest are
        skipped, still checked)."""
        if depth > MAX_DEPTH:
            raise DecodeError("Variant nested too deeply")
        mask = self.u8()
        type_id = mask & 0x3F
        if type_id > 25:
            raise DecodeError(f"Variant built-in type {type_id} is not defined")
        if not mask & 0x80:
            if type_id == 0:
                return Variant(0, None)
            return Variant(type_id, self._scalar(type_id, depth), False, 1)
        n = self.array_length(_MIN_SIZE.get(type_id, 1))
        values: list[Any] = []
        size = _FIXED.get(type_id)
        if size is not None and n > max_items:
            values = [self._scalar(type_id, depth) for _ in range(max_items)]
            self._at(size * (n - max_items))
        else:
            for i in range(n):
                v = self._scalar(type_id, depth)
                if i < max_items:
                    values.append(v)
        if mask & 0x40:
            self._at(4 * self.array_length(4))
        return Variant(type_id, values, True, n)

    def _scalar(self, type_id: int, depth: int) -> Any:
        if type_id == 1:
            return self.boolean()
        if type_id == 2:
            b = self.u8()
            return b - 256 if b > 127 else b
        if type_id == 3:
            return self.u8()
        if type_id == 4:
            return self.i16()
        if type_id == 5:
            return self.u16()
        if type_id == 6:
            return self.i32()
        if type_id in (7, 19):
            return self.u32()
        if type_id in (8, 13):
            return self.i64()
        if type_id == 9:
            return self.u64()
        if type_id == 10:
            return self.f32()
        if type_id == 11:
            return self.f64()
        if type_id == 12:
            return self.string()
        if type_id == 14:
            return self.guid()
        if type_id in (15, 16):
            return self.bytestring()
        if type_id == 17:
            return self.node_id()
        if type_id == 18:
            return self.expanded_node_id()
        if type_id == 20:
            return self.qualified_name()
        if type_id == 21:
            return self.localized_text()
        if type_id == 22:
            return self.extension_object()
        if type_id == 23:
            return self.data_value(depth + 1)
        if type_id == 24:
            return self.variant(depth + 1)
        if type_id == 25:
            self.diagnostic_info(depth + 1)
            return None
        return None  # type 0 in an array: a null element


def plain(value: Any, limit: int = 64) -> Any:
    """A decoded value as JSON-friendly data for an Operation's detail: NodeIds and the
    like as text, bytes as hex, long text cut to ``limit`` characters."""
    if isinstance(value, Variant):
        return plain(value.value, limit)
    if isinstance(value, NodeId | ExpandedNodeId):  # before tuple: NodeId is a NamedTuple
        return str(value)[:limit]
    if isinstance(value, list):
        return [plain(v, limit) for v in value]
    if isinstance(value, tuple):
        return [plain(v, limit) for v in value]
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, bytes):
        return value[: limit // 2].hex()
    if isinstance(value, ExtensionObject):
        return {"type_id": str(value.type_id), "length": len(value.body or b"")}
    if isinstance(value, DataValue):
        return {"value": plain(value.value, limit), "status": value.status}
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value
