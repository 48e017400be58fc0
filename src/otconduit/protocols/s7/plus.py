"""S7comm-plus (protocol id 0x72) recognition: header, opcode, function, sequence.

S7-1200/1500 CPUs and TIA Portal speak S7comm-plus inside the same TPKT/COTP framing as
S7comm. Its payloads (object trees, variable-length integers, integrity digests, and
for newer firmware TLS) are not decoded here: operations say ``payload_decoded`` False.

Layout, after the Wireshark S7comm-plus plugin documentation (``packet-s7comm_plus.c``
by Thomas Wiens, "WSP") and Zeek ICSNPP's ``S7comm_Plus`` record:

- Header: protocol id 0x72 (1), version (1: 1, 2, 3; 0xFE extended keep-alive, 0xFF
  keep-alive), data length (2). Version 3 puts an integrity part first in the data:
  digest length (1) and digest.
- Data: opcode (1: 0x31 request, 0x32 response, 0x33 notification, 0x02 response2);
  except for notifications: reserved (2), function code (2), reserved (2), sequence
  number (2); requests then carry a session id (4) and transport flags (1).
- Trailer: 0x72, version, 0x0000. A PDU split over several TSDUs has a trailer only in
  its last fragment (WSP's reassembly rule); the others are continuations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from otconduit.model import OpClass

PROTOCOL_ID: Final = 0x72
HEADER: Final = 4
DATA_VERSIONS: Final = frozenset({0x01, 0x02, 0x03})
VERSION_INTEGRITY: Final = 0x03
VERSION_EXT_KEEPALIVE: Final = 0xFE
VERSION_KEEPALIVE: Final = 0xFF

OPCODE_REQUEST: Final = 0x31
OPCODE_RESPONSE: Final = 0x32
OPCODE_NOTIFICATION: Final = 0x33
OPCODE_RESPONSE2: Final = 0x02
OPCODES: Final[Mapping[int, str]] = MappingProxyType(
    {
        OPCODE_REQUEST: "Request",
        OPCODE_RESPONSE: "Response",
        OPCODE_NOTIFICATION: "Notification",
        OPCODE_RESPONSE2: "Response2",
    }
)
RESPONSE_OPCODES: Final = frozenset({OPCODE_RESPONSE, OPCODE_RESPONSE2})

FUNC_CREATE_OBJECT: Final = 0x04CA
FUNC_DELETE_OBJECT: Final = 0x04D4
# WSP data_functioncode_names; spelled as ICSNPP's s7comm_plus_functions where listed.
FUNCTIONS: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x04B1: "Error",
        0x04BB: "Explore",
        FUNC_CREATE_OBJECT: "Create Object",
        FUNC_DELETE_OBJECT: "Delete Object",
        0x04F2: "Set Variable",
        0x04FC: "Get Variable",
        0x0506: "Add Link",
        0x051A: "Remove Link",
        0x0524: "Get Link",
        0x0542: "Set Multi Variables",
        0x054C: "Get Multi Variables",
        0x0556: "Begin Sequence",
        0x0560: "End Sequence",
        0x056B: "Invoke",
        0x057C: "Set Variable Sub Streamed",
        0x0586: "Get Variable Sub Streamed",
        0x0590: "Get Variables Address",
        0x059A: "Abort",
    }
)
NOTIFICATION: Final = "Notification"


def function_name(code: int) -> str:
    return FUNCTIONS.get(code, f"Unknown Function 0x{code:04x}")


def op_class(code: int) -> OpClass:
    """set* -> write, get* -> read, create/delete object -> session, else other."""
    name = FUNCTIONS.get(code, "")
    if code in (FUNC_CREATE_OBJECT, FUNC_DELETE_OBJECT):
        return OpClass.SESSION
    if name.startswith("Set "):
        return OpClass.WRITE
    if name.startswith("Get "):
        return OpClass.READ
    return OpClass.OTHER


@dataclass(frozen=True, slots=True, kw_only=True)
class PlusPdu:
    """What we read of one S7comm-plus TSDU."""

    version: int
    data_length: int
    has_trailer: bool
    continuation: bool = False  # a later fragment: no opcode of its own
    integrity: bool = False
    opcode: int | None = None
    function: int | None = None
    sequence: int | None = None
    session_id: int | None = None
    transport_flags: int | None = None

    @property
    def keepalive(self) -> bool:
        return self.version in (VERSION_KEEPALIVE, VERSION_EXT_KEEPALIVE)


def parse_plus(payload: bytes, *, continuation: bool = False) -> PlusPdu | str:
    """Read one TSDU starting with 0x72; ``continuation`` when an earlier fragment of
    this direction had no trailer. Returns the PDU or why it is malformed."""
    if len(payload) < HEADER:
        return f"S7comm-plus header truncated: {len(payload)} of {HEADER} bytes"
    if payload[0] != PROTOCOL_ID:
        return f"S7comm-plus protocol id 0x{payload[0]:02x} is not 0x72"
    version = payload[1]
    dlen = (payload[2] << 8) | payload[3]
    if version == VERSION_KEEPALIVE:
        return PlusPdu(version=version, data_length=0, has_trailer=False)
    if version not in DATA_VERSIONS and version != VERSION_EXT_KEEPALIVE:
        return f"unknown S7comm-plus version 0x{version:02x}"
    if HEADER + dlen > len(payload):
        return f"S7comm-plus data length {dlen} exceeds {len(payload) - HEADER} bytes"
    has_trailer = len(payload) >= HEADER + dlen + 4 and payload[HEADER + dlen] == PROTOCOL_ID
    if version == VERSION_EXT_KEEPALIVE or continuation:
        return PlusPdu(
            version=version, data_length=dlen, has_trailer=has_trailer, continuation=continuation
        )
    pos = HEADER
    integrity = version == VERSION_INTEGRITY
    if integrity:
        if dlen < 1 or 1 + payload[pos] > dlen:
            return "S7comm-plus integrity part exceeds the data length"
        pos += 1 + payload[pos]
    end = HEADER + dlen
    if pos >= end:
        return "S7comm-plus data part has no opcode"
    opcode = payload[pos]
    if opcode not in OPCODES:
        return f"unknown S7comm-plus opcode 0x{opcode:02x}"
    base = PlusPdu(
        version=version,
        data_length=dlen,
        has_trailer=has_trailer,
        integrity=integrity,
        opcode=opcode,
    )
    if opcode == OPCODE_NOTIFICATION:
        return base
    if pos + 9 > end:
        return "S7comm-plus data part too short for function and sequence number"
    function = (payload[pos + 3] << 8) | payload[pos + 4]
    sequence = (payload[pos + 7] << 8) | payload[pos + 8]
    session_id = flags = None
    if opcode == OPCODE_REQUEST and pos + 14 <= end:
        session_id = int.from_bytes(payload[pos + 9 : pos + 13], "big")
        flags = payload[pos + 13]
    elif opcode in RESPONSE_OPCODES and pos + 10 <= end:
        flags = payload[pos + 9]
    return PlusPdu(
        version=version,
        data_length=dlen,
        has_trailer=has_trailer,
        integrity=integrity,
        opcode=opcode,
        function=function,
        sequence=sequence,
        session_id=session_id,
        transport_flags=flags,
    )
