"""SZL (system status list) parsing for device identity.

A Read SZL response body (after the userdata data header) is a partial list, Siemens
"System Software for S7-300/400, System and Standard Functions" Vol. 2 (A5E00739858-01)
§33.2: SZL id (2), index (2), LENTHDR (2, bytes per record), N_DR (2, records), then
N_DR records. A long list arrives in several userdata fragments; the caller joins them.

Two lists identify a device:

- SZL-ID xy11, module identification (§33.5), 28-byte records: index (2), MlfB order
  number (20 ASCII), BGTyp (2), Ausbg1 (2), Ausbg2 (2). Index 0x0001 is the module
  (Ausbg1 = its version), 0x0006 the basic hardware and 0x0007 the basic firmware (for
  both, Ausbg1 = "V" and the first version number, Ausbg2 the remaining two numbers).
- SZL-ID xy1C, component identification (§33.11), 34-byte records: index (2), then a
  32-byte NUL-padded text: 1 PLC name, 2 module name, 3 plant identification,
  4 copyright, 5 serial number of the module, 7 module type name, 8 serial number of
  the memory card, 0x0B location designation.

Servers in the field bend this (Snap7-based CPUs and honeypots among them): module
records of 26 bytes (no second version word), a component list sent with a zero length
and count header and zero record indexes. Those are read as what they plainly are: the
records that are there, in the standard order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

SZL_HEADER: Final = 8
MODULE_IDENTIFICATION: Final = 0x11
COMPONENT_IDENTIFICATION: Final = 0x1C
_MODULE_RECORD: Final = 22  # index + order number: enough to name the module
_MODULE_RECORD_FULL: Final = 28
_COMPONENT_RECORD: Final = 34
# Record indexes of a component list sent with zero indexes, in the order CPUs list them.
_COMPONENT_ORDER: Final = (0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0007, 0x0008, 0x000B)
_V: Final = ord("V")

COMPONENT_ATTRIBUTES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x0001: "plc_name",
        0x0002: "module_name",
        0x0003: "plant_id",
        0x0004: "copyright",
        0x0005: "serial",
        0x0007: "product_name",
        0x0008: "memory_card_serial",
        0x000B: "location",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SzlList:
    """A (partial) system status list as the CPU returned it."""

    szl_id: int
    index: int
    record_length: int
    declared_records: int
    records: tuple[bytes, ...]

    @property
    def complete(self) -> bool:
        return len(self.records) == self.declared_records


def parse_szl(body: bytes) -> SzlList | str:
    """The list in a joined Read SZL response body, or why it cannot be read."""
    if len(body) < SZL_HEADER:
        return f"SZL header truncated: {len(body)} of {SZL_HEADER} bytes"
    szl_id = (body[0] << 8) | body[1]
    size = (body[4] << 8) | body[5]
    count = (body[6] << 8) | body[7]
    rest = body[SZL_HEADER:]
    if size == 0 and count == 0 and (szl_id & 0xFF) == COMPONENT_IDENTIFICATION:
        # A zero header over records that are there (Snap7): standard-size records.
        size, count = _COMPONENT_RECORD, len(rest) // _COMPONENT_RECORD
    whole = min(count, len(rest) // size) if size else 0
    return SzlList(
        szl_id=szl_id,
        index=(body[2] << 8) | body[3],
        record_length=size,
        declared_records=count,
        records=tuple(rest[i * size : (i + 1) * size] for i in range(whole)),
    )


def identity_attributes(szl: SzlList) -> list[tuple[str, str]]:
    """(attribute, value) pairs an identification list states, in record order."""
    kind = szl.szl_id & 0xFF
    if kind == MODULE_IDENTIFICATION and szl.record_length >= _MODULE_RECORD:
        return _module(szl.records)
    if kind == COMPONENT_IDENTIFICATION and szl.record_length >= _COMPONENT_RECORD:
        return _components(szl.records)
    return []


def _module(records: tuple[bytes, ...]) -> list[tuple[str, str]]:
    found: dict[int, tuple[str, int, int]] = {}
    for rec in records:
        index = (rec[0] << 8) | rec[1]
        v1 = (rec[24] << 8) | rec[25] if len(rec) >= 26 else 0
        v2 = (rec[26] << 8) | rec[27] if len(rec) >= _MODULE_RECORD_FULL else 0
        found[index] = (_text(rec[2:22]), v1, v2)
    out: list[tuple[str, str]] = []
    model = found.get(0x0001, found.get(0x0006, ("", 0, 0)))[0]
    if model:
        out.append(("model", model))
    hardware = _version(*found[0x0006][1:]) if 0x0006 in found else None
    if hardware is None and 0x0001 in found and found[0x0001][1]:
        hardware = str(found[0x0001][1])  # version of the module (Erzeugnisstand)
    if hardware:
        out.append(("hardware_version", hardware))
    firmware = _version(*found[0x0007][1:]) if 0x0007 in found else None
    if firmware:
        out.append(("firmware", firmware))
    return out


def _version(ausbg1: int, ausbg2: int) -> str | None:
    """ "V" x.y.z from Ausbg1 = 'V' << 8 | x and Ausbg2 = y << 8 | z."""
    if ausbg1 >> 8 != _V:
        return None
    return f"V{ausbg1 & 0xFF}.{ausbg2 >> 8}.{ausbg2 & 0xFF}"


def _components(records: tuple[bytes, ...]) -> list[tuple[str, str]]:
    out = []
    positional = all(rec[0] == 0 and rec[1] == 0 for rec in records)
    for k, rec in enumerate(records):
        index = (rec[0] << 8) | rec[1]
        if positional:
            index = _COMPONENT_ORDER[k] if k < len(_COMPONENT_ORDER) else -1
        attribute = COMPONENT_ATTRIBUTES.get(index)
        value = _text(rec[2:34]) if attribute else ""
        if attribute and value:
            out.append((attribute, value))
    return out


def _text(b: bytes) -> str:
    """NUL-padded text; non-printable bytes are dropped, outer blanks stripped."""
    raw = b.split(b"\x00", 1)[0].decode("latin-1")
    return "".join(ch for ch in raw if ch.isprintable()).strip()
