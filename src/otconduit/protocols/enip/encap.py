"""EtherNet/IP encapsulation: the 24-byte header, commands, statuses and CPF items.

References are to "The CIP Networks Library, Volume 2: EtherNet/IP Adaptation of CIP"
(ODVA), cited "Vol 2 §x". Names of commands and statuses follow the spelling of Zeek
ICSNPP's ``enip.log`` so logs can be compared field by field.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from otconduit.protocols.enip._wire import Reader, Truncated

HEADER_SIZE: Final = 24  # Vol 2 §2-3.1
MAX_LENGTH: Final = 0xFFFF  # the length field is a UINT

# Vol 2 §2-3.2, Table 2-3.2: encapsulation commands.
NOP: Final = 0x0000
LIST_SERVICES: Final = 0x0004
LIST_IDENTITY: Final = 0x0063
LIST_INTERFACES: Final = 0x0064
REGISTER_SESSION: Final = 0x0065
UNREGISTER_SESSION: Final = 0x0066
SEND_RR_DATA: Final = 0x006F
SEND_UNIT_DATA: Final = 0x0070
INDICATE_STATUS: Final = 0x0072
CANCEL: Final = 0x0073
START_DTLS: Final = 0x00C8  # Vol 8 (CIP Security) §3-5

COMMAND_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        NOP: "NOP",
        LIST_SERVICES: "List Services",
        LIST_IDENTITY: "List Identity",
        LIST_INTERFACES: "List Interfaces",
        REGISTER_SESSION: "Register Session",
        UNREGISTER_SESSION: "Unregister Session",
        SEND_RR_DATA: "Send RR Data",
        SEND_UNIT_DATA: "Send Unit Data",
        INDICATE_STATUS: "Indicate Status",
        CANCEL: "Cancel",
        START_DTLS: "StartDTLS",
    }
)

# Commands the target never answers (Vol 2 §2-4.1 NOP, §2-4.5 UnRegisterSession).
NO_REPLY_COMMANDS: Final = frozenset({NOP, UNREGISTER_SESSION, INDICATE_STATUS, CANCEL})
# Commands that carry CIP in CPF items (Vol 2 §2-4.7, §2-4.8).
CIP_CARRIERS: Final = frozenset({SEND_RR_DATA, SEND_UNIT_DATA})

# Vol 2 §2-3.3, Table 2-3.3: encapsulation status codes.
STATUS_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x0000: "Success",
        0x0001: "Invalid/Unsupported Command",
        0x0002: "Insufficient Memory Resources",
        0x0003: "Malformed or Incorrect Data",
        0x0064: "Invalid Session Handle",
        0x0065: "Invalid Length",
        0x0069: "Unsupported Protocol Version",
        0x006A: "CIP Service Not Allowed",
    }
)

# Vol 2 §2-6, Table 2-6.3: Common Packet Format item type ids.
ITEM_NULL_ADDRESS: Final = 0x0000
ITEM_LIST_IDENTITY: Final = 0x000C
ITEM_CIP_SECURITY: Final = 0x0086
ITEM_ENIP_CAPABILITY: Final = 0x0087
ITEM_ENIP_USAGE: Final = 0x0088
ITEM_CONNECTED_ADDRESS: Final = 0x00A1
ITEM_CONNECTED_DATA: Final = 0x00B1
ITEM_UNCONNECTED_DATA: Final = 0x00B2
ITEM_LIST_SERVICES: Final = 0x0100
ITEM_SOCKADDR_OT: Final = 0x8000
ITEM_SOCKADDR_TO: Final = 0x8001
ITEM_SEQUENCED_ADDRESS: Final = 0x8002
ITEM_UNCONNECTED_UDP: Final = 0x8003

ITEM_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        ITEM_NULL_ADDRESS: "Null Address",
        ITEM_LIST_IDENTITY: "CIP Identity",
        ITEM_CIP_SECURITY: "CIP Security Information",
        ITEM_ENIP_CAPABILITY: "EtherNet/IP Capability",
        ITEM_ENIP_USAGE: "EtherNet/IP Usage",
        ITEM_CONNECTED_ADDRESS: "Connected Address",
        ITEM_CONNECTED_DATA: "Connected Data",
        ITEM_UNCONNECTED_DATA: "Unconnected Data",
        ITEM_LIST_SERVICES: "List Services Response",
        ITEM_SOCKADDR_OT: "Sockaddr Info O->T",
        ITEM_SOCKADDR_TO: "Sockaddr Info T->O",
        ITEM_SEQUENCED_ADDRESS: "Sequenced Address",
        ITEM_UNCONNECTED_UDP: "Unconnected Message over UDP",
    }
)

# Fixed item lengths where the spec gives one (Vol 2 §2-6.2, §2-6.3.2).
_ITEM_FIXED_LENGTH: Final[Mapping[int, int]] = MappingProxyType(
    {
        ITEM_NULL_ADDRESS: 0,
        ITEM_CONNECTED_ADDRESS: 4,
        ITEM_SEQUENCED_ADDRESS: 8,
        ITEM_SOCKADDR_OT: 16,
        ITEM_SOCKADDR_TO: 16,
    }
)
MAX_CPF_ITEMS: Final = 64  # far above any use in the spec; bounds work on garbage


def command_name(command: int) -> str:
    return COMMAND_NAMES.get(command, "unknown")


def status_name(status: int) -> str:
    """Status name, ICSNPP-style fallback for codes not in Table 2-3.3."""
    return STATUS_NAMES.get(status, f"Unknown ENIP Status-0x{status:02x}")


@dataclass(frozen=True, slots=True, kw_only=True)
class EncapHeader:
    """Vol 2 §2-3.1, Table 2-3.1: command UINT, length UINT (bytes after the header),
    session handle UDINT, status UDINT, sender context 8 octets, options UDINT."""

    command: int
    length: int
    session: int
    status: int
    context: bytes
    options: int


def parse_header(buf: bytes | bytearray, at: int = 0) -> EncapHeader:
    """The header at ``buf[at:at + 24]``; the caller guarantees 24 bytes are there."""
    if at + HEADER_SIZE > len(buf):
        raise ValueError("fewer than 24 bytes for an encapsulation header")
    b = bytes(buf[at : at + HEADER_SIZE])
    return EncapHeader(
        command=int.from_bytes(b[0:2], "little"),
        length=int.from_bytes(b[2:4], "little"),
        session=int.from_bytes(b[4:8], "little"),
        status=int.from_bytes(b[8:12], "little"),
        context=b[12:20],
        options=int.from_bytes(b[20:24], "little"),
    )


def header_problem(h: EncapHeader) -> str | None:
    """Why a header cannot start a message, or None when it is well formed.

    Checks only what the spec fixes for every message: a known command, options 0
    (Vol 2 §2-3.1: a receiver discards messages with non-zero options), a known
    status, and the command-specific data sizes of Vol 2 §2-4 (RegisterSession carries
    4 bytes, UnRegisterSession none, SendRRData/SendUnitData at least the interface
    handle, timeout and item count) for messages that report success.
    """
    if h.command not in COMMAND_NAMES:
        return f"unknown command 0x{h.command:04x}"
    if h.options != 0:
        return f"options 0x{h.options:08x} are not 0"
    if h.status not in STATUS_NAMES:
        return f"unknown status 0x{h.status:08x}"
    if h.status == 0:
        if h.command == REGISTER_SESSION and h.length != 4:
            return f"Register Session length {h.length} is not 4"
        if h.command == UNREGISTER_SESSION and h.length != 0:
            return f"Unregister Session length {h.length} is not 0"
        if h.command in CIP_CARRIERS and h.length < 8:
            return f"{command_name(h.command)} length {h.length} is below 8"
    return None


def plausible_header(buf: bytes | bytearray, at: int) -> bool:
    """Whether a well-formed header starts at ``buf[at]`` (needs 24 bytes from ``at``)."""
    if at + HEADER_SIZE > len(buf):
        return False
    if buf[at + 1] != 0 or buf[at] not in COMMAND_NAMES:
        return False  # every command of Table 2-3.2 fits in the low byte
    if any(buf[at + 20 : at + 24]):
        return False
    return header_problem(parse_header(buf, at)) is None


def tolerable_unknown(h: EncapHeader) -> bool:
    """An unknown command whose other fields are clean: framed by its length and reported,
    rather than treated as lost sync (vendors and later editions add commands)."""
    return h.command not in COMMAND_NAMES and h.command < 0x100 and h.options == 0 and h.status == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CpfItem:
    """One Common Packet Format item (Vol 2 §2-6.1): type id UINT, length UINT, data."""

    type_id: int
    data: bytes


def parse_cpf(data: bytes) -> tuple[list[CpfItem], str | None]:
    """Items of a CPF block (item count UINT, then items; Vol 2 §2-6.1).

    Returns the items read and a problem (or None). Fixed-size items must have their
    size; trailing bytes after the last item are a problem.
    """
    r = Reader(data)
    items: list[CpfItem] = []
    try:
        count = r.u16("item count")
        if count > MAX_CPF_ITEMS or count * 4 > r.remaining:
            return items, f"item count {count} does not fit {r.remaining} bytes"
        for i in range(count):
            type_id = r.u16("item type id")
            length = r.u16("item length")
            if length > r.remaining:
                return items, (
                    f"item {i} (type 0x{type_id:04x}) length {length} exceeds"
                    f" {r.remaining} remaining bytes"
                )
            fixed = _ITEM_FIXED_LENGTH.get(type_id)
            if fixed is not None and length != fixed:
                return items, f"item {i} ({ITEM_NAMES[type_id]}) length {length} is not {fixed}"
            items.append(CpfItem(type_id=type_id, data=r.take(length)))
    except Truncated as exc:
        return items, str(exc)
    if r.remaining:
        return items, f"{r.remaining} bytes after the last CPF item"
    return items, None


@dataclass(frozen=True, slots=True, kw_only=True)
class CarrierPrefix:
    """SendRRData/SendUnitData command-specific data before the CPF (Vol 2 §2-4.7.1,
    §2-4.8.1): interface handle UDINT (0 = CIP), timeout UINT."""

    interface_handle: int
    timeout: int
    items: list[CpfItem]


def parse_carrier(body: bytes) -> tuple[CarrierPrefix | None, str | None]:
    """The interface handle, timeout and CPF items of a SendRRData/SendUnitData body."""
    if len(body) < 8:
        return None, f"{len(body)} bytes of command-specific data, need at least 8"
    r = Reader(body)
    handle, timeout = r.u32(), r.u16()
    items, problem = parse_cpf(r.rest())
    return CarrierPrefix(interface_handle=handle, timeout=timeout, items=items), problem


@dataclass(frozen=True, slots=True, kw_only=True)
class SockAddr:
    """Vol 2 §2-6.3.2: sin_family INT, sin_port UINT, sin_addr UDINT, sin_zero 8 octets,
    all in network (big-endian) byte order, unlike the rest of the encapsulation."""

    family: int
    port: int
    ip: str


def parse_sockaddr(data: bytes) -> SockAddr:
    """A 16-byte socket address structure; raises ValueError when shorter."""
    if len(data) < 16:
        raise ValueError(f"socket address needs 16 bytes, have {len(data)}")
    return SockAddr(
        family=int.from_bytes(data[0:2], "big"),
        port=int.from_bytes(data[2:4], "big"),
        ip=str(ipaddress.IPv4Address(data[4:8])),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceEntry:
    """A ListServices reply item (Vol 2 §2-4.6.3): version UINT, capability flags UINT
    (bit 5: CIP over TCP, bit 8: class 0/1 I/O over UDP), name 16 octets."""

    version: int
    flags: int
    name: str


def parse_service_entry(data: bytes) -> ServiceEntry | None:
    if len(data) < 20:
        return None
    name = data[4:20].split(b"\x00", 1)[0].decode("latin-1")
    return ServiceEntry(
        version=int.from_bytes(data[0:2], "little"),
        flags=int.from_bytes(data[2:4], "little"),
        name=name,
    )
