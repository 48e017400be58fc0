"""Connectionless DCE/RPC (C706 chapter 12, "RPC PDU encodings"), the carrier of PROFINET
IO context management (IEC 61158-6-10 §4.10.3, UDP port 34964).

Header (80 bytes, C706 §12.5.2.1): rpc_vers (1) = 4, ptype (1), flags1 (1), flags2 (1),
drep (3: integer and character representation, floating point), serial_hi (1), object
UUID (16), interface UUID (16), activity UUID (16), server_boot (4), if_vers (4), seqnum
(4), opnum (2), interface hint (2), activity hint (2), fragment body length (2),
fragment number (2), auth_proto (1), serial_lo (1). Integers follow the sender's drep
(big- or little-endian); so do the first three fields of each UUID (NDR, C706 §14).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import Final

HEADER: Final = 80
VERSION: Final = 4
REQUEST: Final = 0
PING: Final = 1
RESPONSE: Final = 2
FAULT: Final = 3
WORKING: Final = 4
NOCALL: Final = 5
REJECT: Final = 6
ACK: Final = 7
CL_CANCEL: Final = 8
FACK: Final = 9
CANCEL_ACK: Final = 10
# Names as Zeek ICSNPP's profinet_io_cm.log spells them.
PTYPE_NAMES: Final = {
    0: "Request",
    1: "Ping",
    2: "Response",
    3: "Fault",
    4: "Working",
    5: "No call Response to Ping",
    6: "Reject",
    7: "Acknowledge",
    8: "Connectionless Cancel",
    9: "Fragment Acknowledge",
    10: "Cancel Acknowledge",
}
FLAG_LAST_FRAGMENT: Final = 0x02
FLAG_FRAGMENT: Final = 0x04
FLAG_NO_FACK: Final = 0x08
FLAG_MAYBE: Final = 0x10
FLAG_IDEMPOTENT: Final = 0x20
FLAG_BROADCAST: Final = 0x40
FLAG2_CANCEL_PENDING: Final = 0x02

# PNIO interfaces (IEC 61158-6-10 §4.10.3.2.x) and the endpoint mapper (C706 Appendix O).
PNIO_DEVICE: Final = uuid.UUID("dea00001-6c97-11d1-8271-00a02442df7d")
PNIO_CONTROLLER: Final = uuid.UUID("dea00002-6c97-11d1-8271-00a02442df7d")
PNIO_SUPERVISOR: Final = uuid.UUID("dea00003-6c97-11d1-8271-00a02442df7d")
PNIO_PARAMETER_SERVER: Final = uuid.UUID("dea00004-6c97-11d1-8271-00a02442df7d")
EPM: Final = uuid.UUID("e1af8308-5d1f-11c9-91a4-08002b14a0fa")
INTERFACES: Final = {
    PNIO_DEVICE: "device",
    PNIO_CONTROLLER: "controller",
    PNIO_SUPERVISOR: "supervisor",
    PNIO_PARAMETER_SERVER: "parameter-server",
    EPM: "endpoint-mapper",
}
PNIO_INTERFACES: Final = frozenset(INTERFACES) - {EPM}
# PNIO object UUIDs: DEA00000-6C97-11D1-8271-{instance:4}{device id:4}{vendor id:4} (hex).
PNIO_OBJECT_PREFIX: Final = bytes.fromhex("dea000006c9711d18271")


@dataclass(frozen=True, slots=True, kw_only=True)
class RpcHeader:
    """One connectionless DCE/RPC PDU: its header and body."""

    ptype: int
    flags1: int
    flags2: int
    drep: bytes
    serial: int  # serial_hi << 8 | serial_lo
    object_uuid: uuid.UUID
    interface_uuid: uuid.UUID
    activity_uuid: uuid.UUID
    server_boot: int
    interface_version: int
    sequence: int
    opnum: int
    interface_hint: int
    activity_hint: int
    body_length: int
    fragment_num: int
    auth_proto: int
    body: bytes
    problem: str | None = None

    @property
    def little_endian(self) -> bool:
        return bool(self.drep[0] & 0x10)

    @property
    def ptype_name(self) -> str:
        return PTYPE_NAMES.get(self.ptype, f"ptype-{self.ptype}")

    @property
    def fragmented(self) -> bool:
        return bool(self.flags1 & FLAG_FRAGMENT)

    @property
    def last_fragment(self) -> bool:
        return bool(self.flags1 & FLAG_LAST_FRAGMENT)

    @property
    def interface(self) -> str:
        return INTERFACES.get(self.interface_uuid, str(self.interface_uuid))


def looks_like_rpc(data: bytes) -> bool:
    """A connectionless DCE/RPC v4 header (80 bytes, known ptype, sane drep)."""
    return (
        len(data) >= HEADER
        and data[0] == VERSION
        and data[1] <= CANCEL_ACK
        and data[4] & 0xEE == 0
        and data[5] <= 3
    )


def is_pnio(data: bytes) -> bool:
    """A DCE/RPC PDU for one of the PNIO interfaces (device, controller, supervisor,
    parameter server)."""
    if not looks_like_rpc(data):
        return False
    little = bool(data[4] & 0x10)
    raw = data[24:40]
    value = uuid.UUID(bytes_le=raw) if little else uuid.UUID(bytes=raw)
    return value in PNIO_INTERFACES


def _uuid(raw: bytes, little: bool) -> uuid.UUID:
    return uuid.UUID(bytes_le=raw) if little else uuid.UUID(bytes=raw)


def wire_uuid(value: uuid.UUID, little: bool) -> str:
    """A UUID as its 16 wire bytes in order (how Zeek ICSNPP prints them)."""
    raw = value.bytes_le if little else value.bytes
    h = raw.hex().upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_rpc(data: bytes) -> RpcHeader | str:
    """Decode a connectionless DCE/RPC PDU (a whole UDP datagram)."""
    if len(data) < HEADER:
        return f"DCE/RPC datagram of {len(data)} bytes"
    if data[0] != VERSION:
        return f"DCE/RPC version {data[0]}"
    if data[1] > CANCEL_ACK:
        return f"unknown DCE/RPC packet type {data[1]}"
    little = bool(data[4] & 0x10)
    order = "<" if little else ">"
    boot, if_vers, seq, opnum, ihint, ahint, length, frag = struct.unpack_from(
        order + "IIIHHHHH", data, 56
    )
    body = data[HEADER : HEADER + length]
    problem = None
    if HEADER + length > len(data):
        problem = f"body length {length} with {len(data) - HEADER} bytes after the header"
    elif HEADER + length < len(data):
        problem = f"{len(data) - HEADER - length} bytes after the body"
    return RpcHeader(
        ptype=data[1],
        flags1=data[2],
        flags2=data[3],
        drep=data[4:7],
        serial=(data[7] << 8) | data[79],
        object_uuid=_uuid(data[8:24], little),
        interface_uuid=_uuid(data[24:40], little),
        activity_uuid=_uuid(data[40:56], little),
        server_boot=boot,
        interface_version=if_vers,
        sequence=seq,
        opnum=opnum,
        interface_hint=ihint,
        activity_hint=ahint,
        body_length=length,
        fragment_num=frag,
        auth_proto=data[78],
        body=body,
        problem=problem,
    )


def object_ids(value: uuid.UUID) -> tuple[int, int, int] | None:
    """(instance, device id, vendor id) of a PNIO object UUID, else None."""
    raw = value.bytes
    if raw[:10] != PNIO_OBJECT_PREFIX:
        return None
    return (
        int.from_bytes(raw[10:12], "big"),
        int.from_bytes(raw[12:14], "big"),
        int.from_bytes(raw[14:16], "big"),
    )
