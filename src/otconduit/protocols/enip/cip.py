"""CIP explicit messages: service codes, statuses, Message Router request/reply formats
and the Multiple Service Packet.

References: "The CIP Networks Library, Volume 1" (ODVA), cited "Vol 1 §x"; Rockwell
Automation publication 1756-PM020 "Logix 5000 Data Access", cited "PM020", for the
Logix tag services. Names follow Zeek ICSNPP's ``cip.log`` spelling where ICSNPP names
the code; see :data:`COMMON_SERVICE_NAMES` for the one exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from otconduit.protocols.enip._wire import Reader, Truncated
from otconduit.protocols.enip.epath import EPath, parse_epath
from otconduit.protocols.enip.ext_status import CM_EXTENDED_STATUS_NAMES

REPLY_BIT: Final = 0x80  # Vol 1 §2-4.2: reply service = request service | 0x80

# Vol 1 Appendix A, Table: common services.
GET_ATTRIBUTES_ALL: Final = 0x01
SET_ATTRIBUTES_ALL: Final = 0x02
GET_ATTRIBUTE_LIST: Final = 0x03
SET_ATTRIBUTE_LIST: Final = 0x04
RESET: Final = 0x05
START: Final = 0x06
STOP: Final = 0x07
CREATE: Final = 0x08
DELETE: Final = 0x09
MULTIPLE_SERVICE_PACKET: Final = 0x0A
APPLY_ATTRIBUTES: Final = 0x0D
GET_ATTRIBUTE_SINGLE: Final = 0x0E
SET_ATTRIBUTE_SINGLE: Final = 0x10
FIND_NEXT_OBJECT_INSTANCE: Final = 0x11
RESTORE: Final = 0x15
SAVE: Final = 0x16
NOP: Final = 0x17
GET_MEMBER: Final = 0x18
SET_MEMBER: Final = 0x19
INSERT_MEMBER: Final = 0x1A
REMOVE_MEMBER: Final = 0x1B
GROUP_SYNC: Final = 0x1C
GET_CONNECTION_POINT_MEMBER_LIST: Final = 0x1D

# Vol 1 §3-5.5, Table 3-5.8: Connection Manager object-specific services.
FORWARD_CLOSE: Final = 0x4E
UNCONNECTED_SEND: Final = 0x52
FORWARD_OPEN: Final = 0x54
GET_CONNECTION_DATA: Final = 0x56
SEARCH_CONNECTION_DATA: Final = 0x57
GET_CONNECTION_OWNER: Final = 0x5A
LARGE_FORWARD_OPEN: Final = 0x5B

# PM020 ch. 3-4: Logix tag services (object-specific codes outside the CM class).
READ_TAG: Final = 0x4C
WRITE_TAG: Final = 0x4D
READ_MODIFY_WRITE_TAG: Final = 0x4E
READ_TAG_FRAGMENTED: Final = 0x52
WRITE_TAG_FRAGMENTED: Final = 0x53
GET_INSTANCE_ATTRIBUTE_LIST: Final = 0x55

EXECUTE_PCCC: Final = 0x4B  # on the PCCC object, class 0x67

# Classes whose object-specific services (0x4B..0x63) change meaning.
CLASS_IDENTITY: Final = 0x01
CLASS_MESSAGE_ROUTER: Final = 0x02
CLASS_CONNECTION_MANAGER: Final = 0x06
CLASS_CONTROL_SUPERVISOR: Final = 0x29
CLASS_FILE: Final = 0x37
CLASS_PCCC: Final = 0x67
CLASS_SYMBOL: Final = 0x6B  # Logix symbol (tag) object, PM020
# Logix program structure (Program 0x68, Routine 0x6D, Task 0x70): proprietary objects,
# named in public forensic research on Logix project uploads; no public service layout.
LOGIX_PROGRAM_CLASSES: Final = frozenset({0x68, 0x6D, 0x70})
CLASS_LOGIX_CONTROLLER: Final = 0x8E  # its Start/Stop and Set switch run/program mode
CLASS_FIRMWARE_UPDATE: Final = 0xA1

# ICSNPP spells 0x0E/0x10 "Get/Set Attributes Single"; kept for log comparison. ICSNPP
# calls 0x17 "No Forward Open", which contradicts Table A-3.1 (Nop): NOP is used here.
COMMON_SERVICE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        GET_ATTRIBUTES_ALL: "Get Attributes All",
        SET_ATTRIBUTES_ALL: "Set Attributes All",
        GET_ATTRIBUTE_LIST: "Get Attribute List",
        SET_ATTRIBUTE_LIST: "Set Attribute List",
        RESET: "Reset",
        START: "Start",
        STOP: "Stop",
        CREATE: "Create",
        DELETE: "Delete",
        MULTIPLE_SERVICE_PACKET: "Multiple Service Packet",
        APPLY_ATTRIBUTES: "Apply Attributes",
        GET_ATTRIBUTE_SINGLE: "Get Attributes Single",
        SET_ATTRIBUTE_SINGLE: "Set Attributes Single",
        FIND_NEXT_OBJECT_INSTANCE: "Find Next Object Instance",
        RESTORE: "Restore",
        SAVE: "Save",
        NOP: "NOP",
        GET_MEMBER: "Get Member",
        SET_MEMBER: "Set Member",
        INSERT_MEMBER: "Insert Member",
        REMOVE_MEMBER: "Remove Member",
        GROUP_SYNC: "Group Sync",
        GET_CONNECTION_POINT_MEMBER_LIST: "Get Connection Point Member List",
    }
)
CONNECTION_MANAGER_SERVICE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        FORWARD_CLOSE: "Forward Close",
        UNCONNECTED_SEND: "Unconnected Send",
        FORWARD_OPEN: "Forward Open",
        GET_CONNECTION_DATA: "Get Connection Data",
        SEARCH_CONNECTION_DATA: "Search Connection Data",
        GET_CONNECTION_OWNER: "Get Connection Owner",
        LARGE_FORWARD_OPEN: "Large Forward Open",
    }
)
LOGIX_TAG_SERVICE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        READ_TAG: "Read Tag",
        WRITE_TAG: "Write Tag",
        READ_MODIFY_WRITE_TAG: "Read Modify Write Tag",
        READ_TAG_FRAGMENTED: "Read Tag Fragmented",
        WRITE_TAG_FRAGMENTED: "Write Tag Fragmented",
        GET_INSTANCE_ATTRIBUTE_LIST: "Get Instance Attribute List",
    }
)
# Vol 1 §5-42 (File object), Table 5-42.8: object-specific services.
FILE_SERVICE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x4B: "Initiate Upload",
        0x4C: "Initiate Download",
        0x4D: "Initiate Partial Read",
        0x4E: "Initiate Partial Write",
        0x4F: "Upload Transfer",
        0x50: "Download Transfer",
        0x51: "Clear File",
    }
)

# Vol 1 Appendix B, Table B-1.1: general status codes (ICSNPP spelling).
GENERAL_STATUS_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x00: "Success",
        0x01: "Connection Failure",
        0x02: "Resource Unavailable",
        0x03: "Invalid Parameter Value",
        0x04: "Path Segment Error",
        0x05: "Path Destination Unknown",
        0x06: "Partial Transfer",
        0x07: "Connection Lost",
        0x08: "Service Not Supported",
        0x09: "Invalid Attribute Value",
        0x0A: "Attribute List Error",
        0x0B: "Already In Requested Mode/State",
        0x0C: "Object State Conflict",
        0x0D: "Object Already Exists",
        0x0E: "Attribute Not Settable",
        0x0F: "Privilege Violation",
        0x10: "Device State Conflict",
        0x11: "Reply Data Too Large",
        0x12: "Fragmentation Of A Primitive Value",
        0x13: "Not Enough Data",
        0x14: "Attribute Not Supported",
        0x15: "Too Much Data",
        0x16: "Object Does Not Exist",
        0x17: "Service Fragmentation Sequence Not In Progress",
        0x18: "No Stored Attribute Data",
        0x19: "Store Operation Failure",
        0x1A: "Routing Failure, Request Packet Too Large",
        0x1B: "Routing Failure, Response Packet Too Large",
        0x1C: "Missing Attribute List Entry Data",
        0x1D: "Invalid Attribute Value List",
        0x1E: "Embedded Service Error",
        0x1F: "Vendor Specific Error",
        0x20: "Invalid Parameter",
        0x21: "Write-Once Value Or Medium Already Written",
        0x22: "Invalid Reply Received",
        0x23: "Buffer Overflow",
        0x24: "Invalid Message Format",
        0x25: "Key Failure In Path",
        0x26: "Path Size Invalid",
        0x27: "Unexpected Attribute In List",
        0x28: "Invalid Member ID",
        0x29: "Member Not Settable",
        0x2A: "Group 2 Only Server General Failure",
        0x2B: "Unknown Modbus Error",
        0x2C: "Attribute Not Gettable",
        0xFF: "Still Processing",
    }
)

MAX_EMBEDDED: Final = 512  # Multiple Service Packet entries decoded per message


def service_name(service: int, class_id: int | None) -> str:
    """Name of a request service code (reply bit cleared) addressed to ``class_id``.

    Codes 0x4B..0x63 are object-specific (Vol 1 §4-9.5), so the class decides: the
    Connection Manager's 0x4E/0x52 are Forward Close/Unconnected Send, while on symbolic
    tag paths (no class) and the Logix Symbol object (0x6B) they are Read Modify Write
    Tag/Read Tag Fragmented (PM020). Elsewhere they are named by code.
    """
    service &= 0x7F
    if service in COMMON_SERVICE_NAMES:
        return COMMON_SERVICE_NAMES[service]
    if class_id == CLASS_CONNECTION_MANAGER:
        return CONNECTION_MANAGER_SERVICE_NAMES.get(service, f"Service 0x{service:02X}")
    if class_id == CLASS_FILE:
        return FILE_SERVICE_NAMES.get(service, f"Service 0x{service:02X}")
    if class_id == CLASS_PCCC and service == EXECUTE_PCCC:
        return "Execute PCCC Service"
    if class_id is None or class_id == CLASS_SYMBOL:
        return LOGIX_TAG_SERVICE_NAMES.get(service, f"Service 0x{service:02X}")
    return f"Service 0x{service:02X}"


def general_status_name(status: int) -> str:
    return GENERAL_STATUS_NAMES.get(status, f"Unknown CIP Status-0x{status:02x}")


def extended_status_name(code: int) -> str:
    return CM_EXTENDED_STATUS_NAMES.get(code, f"Unknown Extended Status-0x{code:04x}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CipRequest:
    """Vol 1 §2-4.1, Table 2-4.1: Message Router request: service USINT, request path
    size USINT (words), request path (padded EPATH), request data."""

    service: int
    path: EPath
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CipResponse:
    """Vol 1 §2-4.2, Table 2-4.2: Message Router reply: reply service USINT, reserved
    USINT, general status USINT, size of additional status USINT (words), additional
    status WORD[], response data. ``service`` has the reply bit cleared."""

    service: int
    general_status: int
    extended_status: tuple[int, ...]
    data: bytes


def is_reply(message: bytes) -> bool:
    return bool(message) and bool(message[0] & REPLY_BIT)


def parse_request(message: bytes) -> tuple[CipRequest | None, str | None]:
    """A request and any problem with it; None only when there is no service byte."""
    if not message:
        return None, "empty CIP message"
    service = message[0] & 0x7F
    if len(message) < 2:
        return CipRequest(service=service, path=EPath(), data=b""), "no request path size"
    size = 2 * message[1]
    if 2 + size > len(message):
        return (
            CipRequest(service=service, path=EPath(problem="truncated"), data=b""),
            f"request path of {size} bytes exceeds the {len(message) - 2} bytes left",
        )
    path = parse_epath(message[2 : 2 + size])
    problem = f"request path: {path.problem}" if path.problem else None
    return CipRequest(service=service, path=path, data=message[2 + size :]), problem


def parse_response(message: bytes) -> tuple[CipResponse | None, str | None]:
    """A reply and any problem with it; None only when there is no service byte."""
    if not message:
        return None, "empty CIP message"
    service = message[0] & 0x7F
    r = Reader(message, 1)
    try:
        r.u8("reserved")
        status = r.u8("general status")
        words = r.u8("additional status size")
        extended = tuple(r.u16("additional status") for _ in range(words))
    except Truncated as exc:
        status = message[2] if len(message) > 2 else 0
        return (
            CipResponse(service=service, general_status=status, extended_status=(), data=b""),
            f"reply header: {exc}",
        )
    return (
        CipResponse(
            service=service, general_status=status, extended_status=extended, data=r.rest()
        ),
        None,
    )


def split_multiple(data: bytes) -> tuple[list[bytes], str | None]:
    """The embedded messages of a Multiple Service Packet request or reply body.

    Vol 1 §A-4.10: number of services UINT, then one UINT offset per service, counted
    from the number-of-services field; each message runs to the next offset (the last to
    the end). Offsets must increase and stay inside the body.
    """
    r = Reader(data)
    try:
        count = r.u16("number of services")
        if count > MAX_EMBEDDED or 2 + 2 * count > len(data):
            return [], f"{count} services do not fit {len(data)} bytes"
        offsets = [r.u16("offset") for _ in range(count)]
    except Truncated as exc:
        return [], str(exc)
    parts: list[bytes] = []
    bounds = [*offsets, len(data)]
    for i in range(count):
        start, end = bounds[i], bounds[i + 1]
        if not 2 + 2 * count <= start <= end <= len(data):
            return parts, f"service {i} offset {start} is out of order or out of range"
        parts.append(data[start:end])
    return parts, None


def is_tag_service(service: int, path: EPath) -> bool:
    """Whether ``service`` on ``path`` is one of the Logix tag services: PM020 defines
    them on symbolic tag paths and on Symbol object (class 0x6B) instances only."""
    if service & 0x7F not in LOGIX_TAG_SERVICE_NAMES:
        return False
    return path.symbolic or path.class_id in (None, CLASS_SYMBOL)
