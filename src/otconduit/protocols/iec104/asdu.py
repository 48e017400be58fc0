"""IEC 60870-5-104 ASDUs: the data unit identifier and the information objects.

Data unit identifier (104 §8, 101 §7.2): type identification (1 octet), variable
structure qualifier (SQ bit 7, number of objects bits 0-6), cause of transmission (T
bit 7 test, P/N bit 6 negative confirmation, cause bits 0-5), originator address (1
octet), common address of the ASDU (2 octets, little-endian). Then the objects: with SQ
clear each has its own 3-octet address; with SQ set one address comes first and the
elements that follow have consecutive addresses.

Element decoding (101 §7.2.6) for the common types: single/double point with quality
(SIQ/DIQ), step position (VTI), bitstrings (BSI), measured values normalised (NVA, as a
fraction of 1), scaled (SVA) and short float, integrated totals (BCR), packed start
events, commands (SCO/DCO/RCO with select/execute and qualifier, QOS with setpoints),
qualifiers of interrogation (QOI), counter interrogation (QCC), reset process (QRP),
parameters (QPM), cause of initialisation (COI), and the CP24/CP56 time tags. Other
types keep their raw element octets (hex).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.protocols.iec104 import types as T

HEADER: Final = 6
IOA_SIZE: Final = 3
MAX_OBJECTS_KEPT: Final = 64  # objects decoded per ASDU into detail (all are counted)

_QUALITY_BITS: Final = ((0x01, "OV"), (0x10, "BL"), (0x20, "SB"), (0x40, "NT"), (0x80, "IV"))
_POINT_BITS: Final = _QUALITY_BITS[1:]
DOUBLE_STATES: Final = ("intermediate", "off", "on", "indeterminate")
STEP_STATES: Final = ("invalid", "lower", "higher", "invalid")
QUALIFIERS: Final = ("none", "short_pulse", "long_pulse", "persistent")
INIT_CAUSES: Final = ("local_power_on", "local_manual_reset", "remote_reset")
RESET_KINDS: Final = ("unused", "general_reset", "reset_pending_time_tagged")
PARAMETER_KINDS: Final = ("unused", "threshold", "smoothing", "low_limit", "high_limit")


@dataclass(slots=True)
class InfoObject:
    """One information object: its address and what its element says."""

    ioa: int
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Asdu:
    type_id: int
    sq: bool
    count: int  # number of objects the VSQ states
    cot: int
    negative: bool
    test: bool
    originator: int
    common_address: int
    objects: list[InfoObject]
    problem: str | None = None

    @property
    def name(self) -> str:
        return T.type_name(self.type_id)


def _flags(octet: int, bits: tuple[tuple[int, str], ...]) -> list[str]:
    return [name for bit, name in bits if octet & bit]


def cp56(raw: bytes) -> str:
    """CP56Time2a (101 §7.2.6.18) as ``YYYY-MM-DD HH:MM:SS.mmm``, ``invalid``/``summer``
    appended when flagged. The 7-bit year counts from 2000; values 70 and above (out of
    the standard's 0..99, or meant as 1970..1999) count from 1900, as Wireshark reads
    them."""
    ms = raw[0] | raw[1] << 8
    year = raw[6] & 0x7F
    text = (
        f"{(1900 if year >= 70 else 2000) + year:04d}-{raw[5] & 0x0F:02d}-{raw[4] & 0x1F:02d} "
        f"{raw[3] & 0x1F:02d}:{raw[2] & 0x3F:02d}:{ms // 1000:02d}.{ms % 1000:03d}"
    )
    if raw[2] & 0x80:
        text += " invalid"
    if raw[3] & 0x80:
        text += " summer"
    return text


def cp24(raw: bytes) -> str:
    """CP24Time2a (minutes, milliseconds) as ``MM:SS.mmm``."""
    ms = raw[0] | raw[1] << 8
    text = f"{raw[2] & 0x3F:02d}:{ms // 1000:02d}.{ms % 1000:03d}"
    return text + " invalid" if raw[2] & 0x80 else text


def _float(raw: bytes) -> float | str:
    value: float = struct.unpack("<f", raw)[0]
    return value if math.isfinite(value) else str(value)


def _i16(raw: bytes) -> int:
    return int.from_bytes(raw[:2], "little", signed=True)


def _quality(f: dict[str, Any], octet: int, bits: tuple[tuple[int, str], ...]) -> None:
    flags = _flags(octet, bits)
    if flags:
        f["quality"] = flags


def _command(f: dict[str, Any], octet: int) -> None:
    """S/E and qualifier shared by SCO, DCO and RCO."""
    f["select"] = bool(octet & 0x80)
    f["qualifier"] = qualifier_name(octet >> 2 & 0x1F)


def qualifier_name(qu: int) -> str:
    """Qualifier of command QU (101 §7.2.6.26)."""
    return QUALIFIERS[qu] if qu < len(QUALIFIERS) else f"qualifier_{qu}"


def _element(type_id: int, raw: bytes) -> dict[str, Any]:
    """Decode one information element of ``type_id`` (``raw`` has exactly its size)."""
    f: dict[str, Any] = {}
    t = type_id
    if t in (1, 2, 30):
        f["value"] = raw[0] & 1
        _quality(f, raw[0], _POINT_BITS)
    elif t in (3, 4, 31):
        f["value"] = raw[0] & 3
        f["state"] = DOUBLE_STATES[raw[0] & 3]
        _quality(f, raw[0], _POINT_BITS)
    elif t in (5, 6, 32):
        f["value"] = (raw[0] & 0x7F) - 128 if raw[0] & 0x40 else raw[0] & 0x7F
        if raw[0] & 0x80:
            f["transient"] = True
        _quality(f, raw[1], _QUALITY_BITS)
    elif t in (7, 8, 33):
        f["value"] = int.from_bytes(raw[0:4], "little")
        _quality(f, raw[4], _QUALITY_BITS)
    elif t in (9, 10, 34):
        f["value"] = _i16(raw) / 32768
        f["raw"] = _i16(raw)
        _quality(f, raw[2], _QUALITY_BITS)
    elif t in (11, 12, 35):
        f["value"] = _i16(raw)
        _quality(f, raw[2], _QUALITY_BITS)
    elif t in (13, 14, 36):
        f["value"] = _float(raw[0:4])
        _quality(f, raw[4], _QUALITY_BITS)
    elif t in (15, 16, 37):
        f["value"] = int.from_bytes(raw[0:4], "little", signed=True)
        f["sequence"] = raw[4] & 0x1F
        _quality(f, raw[4], ((0x20, "CY"), (0x40, "CA"), (0x80, "IV")))
    elif t in (17, 38):
        f["value"] = raw[0] & 3
        f["state"] = DOUBLE_STATES[raw[0] & 3]
        f["elapsed_ms"] = raw[1] | raw[2] << 8
        _quality(f, raw[0], ((0x08, "EI"), *_POINT_BITS))
    elif t in (18, 19, 39, 40):
        f["value"] = raw[0]
        f["elapsed_ms"] = raw[2] | raw[3] << 8
        _quality(f, raw[1], ((0x08, "EI"), *_POINT_BITS))
    elif t == 20:
        f["value"] = int.from_bytes(raw[0:4], "little")
        _quality(f, raw[4], _QUALITY_BITS)
    elif t == 21:
        f["value"] = _i16(raw) / 32768
        f["raw"] = _i16(raw)
    elif t in T.SINGLE_COMMANDS:
        f["value"] = raw[0] & 1
        f["state"] = "on" if raw[0] & 1 else "off"
        _command(f, raw[0])
    elif t in T.DOUBLE_COMMANDS:
        f["value"] = raw[0] & 3
        f["state"] = ("not_permitted", "off", "on", "not_permitted")[raw[0] & 3]
        _command(f, raw[0])
    elif t in T.STEP_COMMANDS:
        f["value"] = raw[0] & 3
        f["state"] = STEP_STATES[raw[0] & 3]
        _command(f, raw[0])
    elif t in (48, 61):
        f["value"] = _i16(raw) / 32768
        f["raw"] = _i16(raw)
        _setpoint(f, raw[2])
    elif t in (49, 62):
        f["value"] = _i16(raw)
        _setpoint(f, raw[2])
    elif t in (50, 63):
        f["value"] = _float(raw[0:4])
        _setpoint(f, raw[4])
    elif t in T.BITSTRING_COMMANDS:
        f["value"] = int.from_bytes(raw[0:4], "little")
    elif t == T.END_OF_INIT:
        cause = raw[0] & 0x7F
        f["cause"] = INIT_CAUSES[cause] if cause < len(INIT_CAUSES) else f"cause_{cause}"
        f["after_parameter_change"] = bool(raw[0] & 0x80)
    elif t == T.INTERROGATION:
        qoi = raw[0]
        f["qoi"] = qoi
        f["scope"] = (
            "station" if qoi == 20 else f"group_{qoi - 20}" if 20 < qoi <= 36 else "unspecified"
        )
    elif t == T.COUNTER_INTERROGATION:
        f["rqt"] = raw[0] & 0x3F
        f["scope"] = "general" if raw[0] & 0x3F == 5 else f"group_{raw[0] & 0x3F}"
        f["freeze"] = ("read", "freeze", "freeze_and_reset", "reset")[raw[0] >> 6]
    elif t == T.RESET_PROCESS:
        f["qrp"] = raw[0]
        f["reset"] = RESET_KINDS[raw[0]] if raw[0] < len(RESET_KINDS) else f"reset_{raw[0]}"
    elif t in (110, 111, 112):
        f["value"] = _i16(raw) / 32768 if t == 110 else _i16(raw) if t == 111 else _float(raw[0:4])
        qpm = raw[-1]
        kpa = qpm & 0x3F
        f["parameter"] = PARAMETER_KINDS[kpa] if kpa < len(PARAMETER_KINDS) else f"kind_{kpa}"
        if qpm & 0x40:
            f["local_change"] = True
        if qpm & 0x80:
            f["not_in_operation"] = True
    elif t == 113:
        f["qpa"] = raw[0]
    elif t == 104:
        f["pattern"] = raw[0] | raw[1] << 8
    elif t == 106:
        f["delay_ms"] = raw[0] | raw[1] << 8
    elif t == 107:
        f["counter"] = raw[0] | raw[1] << 8
    elif raw:
        f["raw"] = raw.hex()
    # time tags close the element
    if t in (2, 4, 6, 8, 10, 12, 14, 16, 17, 18, 19):
        f["time"] = cp24(raw[-3:])
    elif t in range(30, 41) or t in (58, 59, 60, 61, 62, 63, 64, 103, 107, 126):
        f["time"] = cp56(raw[-7:])
    return f


def _setpoint(f: dict[str, Any], qos: int) -> None:
    f["select"] = bool(qos & 0x80)
    f["ql"] = qos & 0x7F


def parse_asdu(data: bytes) -> Asdu | str:
    """The ASDU in ``data`` (an I-format APDU's body), or why it has no header."""
    if len(data) < HEADER:
        return f"ASDU of {len(data)} octets is shorter than its 6-octet header"
    type_id, vsq, cot_octet = data[0], data[1], data[2]
    asdu = Asdu(
        type_id=type_id,
        sq=bool(vsq & 0x80),
        count=vsq & 0x7F,
        cot=cot_octet & 0x3F,
        negative=bool(cot_octet & 0x40),
        test=bool(cot_octet & 0x80),
        originator=data[3],
        common_address=data[4] | data[5] << 8,
        objects=[],
    )
    problems = []
    if asdu.cot == 0:
        problems.append("cause of transmission 0 is not used")
    if type_id not in T.TYPE_NAMES:
        if type_id < 128:
            problems.append(f"type id {type_id} is reserved")
        asdu.problem = "; ".join(problems) or None
        return asdu  # private (128..255) or reserved: layout unknown, not decoded
    size = T.ELEMENT_SIZE[type_id]
    body = data[HEADER:]
    if asdu.count == 0:
        problems.append("number of objects is 0")
    if size is None:  # variable-size element: one object holding the rest
        if len(body) < IOA_SIZE:
            problems.append("information object address cut short")
        else:
            ioa = int.from_bytes(body[:IOA_SIZE], "little")
            asdu.objects.append(InfoObject(ioa, {"octets": len(body) - IOA_SIZE}))
        asdu.problem = "; ".join(problems) or None
        return asdu
    if asdu.sq:
        expected = IOA_SIZE + asdu.count * size if asdu.count else 0
    else:
        expected = asdu.count * (IOA_SIZE + size)
    if len(body) != expected:
        problems.append(
            f"{len(body)} octets of information objects where {asdu.count} "
            f"{asdu.name} objects{' (SQ)' if asdu.sq else ''} need {expected}"
        )
    pos = 0
    if asdu.sq and len(body) >= IOA_SIZE:
        first = int.from_bytes(body[:IOA_SIZE], "little")
        pos = IOA_SIZE
        for i in range(asdu.count):
            if pos + size > len(body):
                break
            fields = _element(type_id, body[pos : pos + size]) if i < MAX_OBJECTS_KEPT else {}
            asdu.objects.append(InfoObject((first + i) & 0xFFFFFF, fields))
            pos += size
    elif not asdu.sq:
        for i in range(asdu.count):
            if pos + IOA_SIZE + size > len(body):
                break
            ioa = int.from_bytes(body[pos : pos + IOA_SIZE], "little")
            raw = body[pos + IOA_SIZE : pos + IOA_SIZE + size]
            asdu.objects.append(
                InfoObject(ioa, _element(type_id, raw) if i < MAX_OBJECTS_KEPT else {})
            )
            pos += IOA_SIZE + size
    asdu.problem = "; ".join(problems) or None
    return asdu
