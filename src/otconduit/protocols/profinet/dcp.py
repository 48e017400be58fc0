"""PROFINET DCP, the Discovery and basic Configuration Protocol (IEC 61158-6-10 §4.3,
DCP PDUs on FrameIDs 0xFEFC-0xFEFF).

PDU (after the FrameID): ServiceID (1: 3 Get, 4 Set, 5 Identify, 6 Hello), ServiceType
(1: 0 request, 1 response success, 5 response "request not supported"), Xid (4),
ResponseDelayFactor (Identify request) or reserved (2), DCPDataLength (2), then blocks.
A block is Option (1), Suboption (1), DCPBlockLength (2) and its data, padded to an
even length. Response and Hello blocks start their data with BlockInfo (2); Set
request blocks with BlockQualifier (2); Identify filter blocks with nothing; a Get
request lists bare Option/Suboption pairs; Set and Get answer a block with a Control /
Response block (5/4): the option, suboption and BlockError it answers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Final

GET: Final = 3
SET: Final = 4
IDENTIFY: Final = 5
HELLO: Final = 6
SERVICES: Final = {GET: "Get", SET: "Set", IDENTIFY: "Identify", HELLO: "Hello"}
REQUEST: Final = 0
RESPONSE: Final = 1
NOT_SUPPORTED: Final = 5
HEADER: Final = 10

OPT_IP: Final = 1
OPT_DEVICE: Final = 2
OPT_DHCP: Final = 3
OPT_CONTROL: Final = 5
OPT_INITIATIVE: Final = 6
OPT_ALL: Final = 0xFF
# (option, suboption) -> name (IEC 61158-6-10 Table "DCP options and suboptions").
BLOCK_NAMES: Final = {
    (1, 1): "mac_address",
    (1, 2): "ip",
    (1, 3): "full_ip_suite",
    (2, 1): "type_of_station",
    (2, 2): "name_of_station",
    (2, 3): "device_id",
    (2, 4): "device_role",
    (2, 5): "device_options",
    (2, 6): "alias_name",
    (2, 7): "device_instance",
    (2, 8): "oem_device_id",
    (2, 9): "standard_gateway",
    (2, 10): "rsi_properties",
    (5, 1): "start_transaction",
    (5, 2): "end_transaction",
    (5, 3): "signal",
    (5, 4): "response",
    (5, 5): "factory_reset",
    (5, 6): "reset_to_factory",
    (6, 1): "device_initiative",
    (0xFF, 0xFF): "all",
}
# Set blocks that change what the device is on the network, or wipe it.
NETWORK_SETS: Final = frozenset({"ip", "full_ip_suite", "name_of_station", "alias_name"})
RESET_SETS: Final = frozenset({"factory_reset", "reset_to_factory"})
DEVICE_ROLES: Final = {
    0x01: "io-device",
    0x02: "io-controller",
    0x04: "io-multidevice",
    0x08: "io-supervisor",
}
BLOCK_ERRORS: Final = {
    0: "no error",
    1: "option not supported",
    2: "suboption not supported or no data set",
    3: "suboption not set",
    4: "resource error",
    5: "SET not possible by local reasons",
    6: "in operation, SET not possible",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DcpBlock:
    option: int
    suboption: int
    info: int | None  # BlockInfo (responses, Hello) or BlockQualifier (Set requests)
    data: bytes

    @property
    def name(self) -> str:
        return BLOCK_NAMES.get((self.option, self.suboption), f"{self.option}/{self.suboption}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DcpPdu:
    frame_id: int
    service_id: int
    service_type: int
    xid: int
    response_delay: int  # Identify request ResponseDelayFactor (10 ms units), else reserved
    blocks: tuple[DcpBlock, ...] = ()
    options: tuple[tuple[int, int], ...] = ()  # a Get request's requested options
    problem: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def service(self) -> str:
        return SERVICES.get(self.service_id, f"service-{self.service_id}")

    @property
    def is_request(self) -> bool:
        return self.service_type == REQUEST


def parse_dcp(frame_id: int, payload: bytes) -> DcpPdu | str:
    """Decode a DCP PDU: ``payload`` is what follows the FrameID (Ethernet padding after
    DCPDataLength is ignored)."""
    if len(payload) < HEADER:
        return f"DCP PDU of {len(payload)} bytes"
    service_id, service_type = payload[0], payload[1]
    xid = int.from_bytes(payload[2:6], "big")
    delay = int.from_bytes(payload[6:8], "big")
    length = int.from_bytes(payload[8:10], "big")
    problem = None
    end = HEADER + length
    if end > len(payload):
        problem = f"DCPDataLength {length} with {len(payload) - HEADER} bytes"
        end = len(payload)
    body = payload[HEADER:end]
    request = service_type == REQUEST
    if service_id == GET and request:
        pairs = tuple((body[i], body[i + 1]) for i in range(0, len(body) - 1, 2))
        if len(body) % 2:
            problem = problem or "odd length of a Get request's option list"
        return DcpPdu(
            frame_id=frame_id,
            service_id=service_id,
            service_type=service_type,
            xid=xid,
            response_delay=delay,
            options=pairs,
            problem=problem,
        )
    # Identify filters have no BlockInfo; Set requests a BlockQualifier; the rest BlockInfo.
    has_info = not (service_id == IDENTIFY and request)
    blocks, block_problem = _blocks(body, has_info)
    pdu = DcpPdu(
        frame_id=frame_id,
        service_id=service_id,
        service_type=service_type,
        xid=xid,
        response_delay=delay,
        blocks=blocks,
        problem=problem or block_problem,
        fields=fields_of(blocks),
    )
    return pdu


def _blocks(body: bytes, has_info: bool) -> tuple[tuple[DcpBlock, ...], str | None]:
    out: list[DcpBlock] = []
    pos = 0
    while pos + 4 <= len(body):
        option, suboption = body[pos], body[pos + 1]
        length = int.from_bytes(body[pos + 2 : pos + 4], "big")
        start = pos + 4
        if start + length > len(body):
            return tuple(out), f"DCP block {option}/{suboption} length {length} exceeds the PDU"
        data = body[start : start + length]
        info = None
        # The Control/Response block (5/4) and the all-selector carry no BlockInfo.
        if has_info and (option, suboption) not in ((5, 4), (0xFF, 0xFF)) and length >= 2:
            info = int.from_bytes(data[:2], "big")
            data = data[2:]
        out.append(DcpBlock(option=option, suboption=suboption, info=info, data=data))
        pos = start + length + (length & 1)
    if pos < len(body) and any(body[pos:]):
        return tuple(out), f"{len(body) - pos} bytes after the last DCP block"
    return tuple(out), None


def _text(data: bytes) -> str:
    return data.decode("latin-1").rstrip("\x00")


def _ip(data: bytes) -> str:
    return str(ipaddress.IPv4Address(data))


def fields_of(blocks: tuple[DcpBlock, ...]) -> dict[str, Any]:
    """What the blocks say, by name (JSON-friendly): station name, type, vendor and
    device id, role, IP suite, device options, what a Set sets and answers."""
    out: dict[str, Any] = {}
    for b in blocks:
        name, d = b.name, b.data
        if name in ("name_of_station", "type_of_station", "alias_name"):
            out[name] = _text(d)
        elif name == "ip" and len(d) >= 12:
            out["ip"], out["netmask"], out["gateway"] = _ip(d[0:4]), _ip(d[4:8]), _ip(d[8:12])
            if b.info is not None:
                out["ip_block_info"] = b.info
        elif name == "full_ip_suite" and len(d) >= 12:
            out["ip"], out["netmask"], out["gateway"] = _ip(d[0:4]), _ip(d[4:8]), _ip(d[8:12])
            out["dns"] = [_ip(d[i : i + 4]) for i in range(12, len(d) - 3, 4) if any(d[i : i + 4])]
        elif name == "mac_address" and len(d) >= 6:
            out["mac_address"] = d[:6].hex(":")
        elif name in ("device_id", "oem_device_id") and len(d) >= 4:
            prefix = "" if name == "device_id" else "oem_"
            out[f"{prefix}vendor_id"] = int.from_bytes(d[0:2], "big")
            out[f"{prefix}device_id"] = int.from_bytes(d[2:4], "big")
        elif name == "device_role" and d:
            out["device_role"] = [v for k, v in DEVICE_ROLES.items() if d[0] & k]
        elif name == "device_instance" and len(d) >= 2:
            out["device_instance"] = (d[0] << 8) | d[1]
        elif name == "device_options":
            out["device_options"] = [
                BLOCK_NAMES.get((d[i], d[i + 1]), f"{d[i]}/{d[i + 1]}")
                for i in range(0, len(d) - 1, 2)
            ]
        elif name == "device_initiative" and len(d) >= 2:
            out["hello_after_power_on"] = bool(d[1] & 1)
        elif name == "signal" and len(d) >= 2:
            out["signal_value"] = int.from_bytes(d[0:2], "big")
        elif name == "response" and len(d) >= 3:
            answered = BLOCK_NAMES.get((d[0], d[1]), f"{d[0]}/{d[1]}")
            out.setdefault("responses", []).append(
                {"block": answered, "error": d[2], "error_name": BLOCK_ERRORS.get(d[2], "?")}
            )
    return out


def set_targets(pdu: DcpPdu) -> list[str]:
    """What a Set request sets (block names other than the transaction markers)."""
    return [b.name for b in pdu.blocks if b.name not in ("start_transaction", "end_transaction")]


def permanent(pdu: DcpPdu) -> bool | None:
    """Whether a Set request's IP/name blocks are to be stored (BlockQualifier bit 0)."""
    flags = [b.info & 1 for b in pdu.blocks if b.info is not None and b.name in NETWORK_SETS]
    return bool(any(flags)) if flags else None
