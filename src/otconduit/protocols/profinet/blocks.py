"""PROFINET IO context management bodies (IEC 61158-6-10 §5.1, "Coding of the RPC
services"): the NDR arguments of a request or response and the PNIO blocks in them.

Request body (NDR, drep byte order): ArgsMaximum (4), ArgsLength (4), MaximumCount (4),
Offset (4), ActualCount (4), then ArgsLength bytes of blocks. Response body: PNIOStatus
(4, a drep-ordered 32-bit value: ErrorCode, ErrorDecode, ErrorCode1, ErrorCode2 from its
most significant byte), ArgsLength, MaximumCount, Offset, ActualCount, blocks.

Blocks are big-endian whatever the drep: BlockType (2), BlockLength (2, counting from
the version on), BlockVersionHigh (1), BlockVersionLow (1), body.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

NDR_ARGS: Final = 20
BLOCK_HEADER: Final = 6
MAX_BLOCKS: Final = 256

CONNECT: Final = 0
RELEASE: Final = 1
READ: Final = 2
WRITE: Final = 3
CONTROL: Final = 4
READ_IMPLICIT: Final = 5
# Names as Zeek ICSNPP's profinet_io_cm.log spells them.
OPNUMS: Final = {
    0: "Connect",
    1: "Release",
    2: "Read",
    3: "Write",
    4: "Control",
    5: "Read Implicit",
}

BLOCK_NAMES: Final = {
    0x0001: "AlarmNotificationHigh",
    0x0002: "AlarmNotificationLow",
    0x0008: "IODWriteReqHeader",
    0x0009: "IODReadReqHeader",
    0x0010: "DiagnosisData",
    0x0020: "I&M0",
    0x0021: "I&M1",
    0x0022: "I&M2",
    0x0023: "I&M3",
    0x0024: "I&M4",
    0x0030: "I&M0FilterDataSubmodule",
    0x0031: "I&M0FilterDataModule",
    0x0032: "I&M0FilterDataDevice",
    0x0101: "ARBlockReq",
    0x0102: "IOCRBlockReq",
    0x0103: "AlarmCRBlockReq",
    0x0104: "ExpectedSubmoduleBlockReq",
    0x0105: "PrmServerBlockReq",
    0x0106: "MCRBlockReq",
    0x0107: "ARRPCBlockReq",
    0x0108: "ARVendorBlockReq",
    0x0109: "IRInfoBlock",
    0x010A: "SRInfoBlock",
    0x010B: "ARFSUBlock",
    0x0110: "IODControlReq PrmEnd",
    0x0111: "IODControlReq PrmEnd Plug",
    0x0112: "IOXControlReq ApplicationReady",
    0x0113: "IOXControlReq ApplicationReady Plug",
    0x0114: "ReleaseBlockReq",
    0x0116: "IOXControlReq ReadyForCompanion",
    0x0117: "IOXControlReq ReadyForRT_CLASS_3",
    0x0118: "IODControlReq PrmBegin",
    0x0119: "SubmoduleListBlock",
    0x0200: "PDPortDataCheck",
    0x0202: "PDPortDataAdjust",
    0x0240: "PDInterfaceDataReal",
    0x0250: "PDInterfaceAdjust",
    0x0400: "MultipleBlockHeader",
    0x0401: "COContainerContent",
    0x8001: "AlarmAckHigh",
    0x8002: "AlarmAckLow",
    0x8008: "IODWriteResHeader",
    0x8009: "IODReadResHeader",
    0x8101: "ARBlockRes",
    0x8102: "IOCRBlockRes",
    0x8103: "AlarmCRBlockRes",
    0x8104: "ModuleDiffBlock",
    0x8105: "PrmServerBlockRes",
    0x8106: "ARServerBlock",
    0x8107: "ARRPCBlockRes",
    0x8108: "ARVendorBlockRes",
    0x8110: "IODControlRes PrmEnd",
    0x8111: "IODControlRes PrmEnd Plug",
    0x8112: "IOXControlRes ApplicationReady",
    0x8113: "IOXControlRes ApplicationReady Plug",
    0x8114: "ReleaseBlockRes",
    0x8116: "IOXControlRes ReadyForCompanion",
    0x8117: "IOXControlRes ReadyForRT_CLASS_3",
    0x8118: "IODControlRes PrmBegin",
}
CONTROL_COMMANDS: Final = (
    (0x0001, "PrmEnd"),
    (0x0002, "ApplicationReady"),
    (0x0004, "Release"),
    (0x0008, "Done"),
    (0x0010, "ReadyForCompanion"),
    (0x0020, "ReadyForRT_CLASS_3"),
    (0x0040, "PrmBegin"),
)
AR_TYPES: Final = {
    0x0001: "IOCARSingle",
    0x0006: "IOSAR",
    0x0010: "IOCARSingle RT_CLASS_3",
    0x0020: "IOCARSR",
}
IOCR_TYPES: Final = {1: "input", 2: "output", 3: "multicast-provider", 4: "multicast-consumer"}
# Record indices (IEC 61158-6-10 Table "Index"), those worth a name.
INDEX_NAMES: Final = {
    0x8000: "ExpectedIdentificationData",
    0x8001: "RealIdentificationData",
    0x800A: "Diagnosis channel",
    0x800B: "Diagnosis all",
    0x800C: "Diagnosis, maintenance, qualified, status",
    0x801E: "SubstituteValues",
    0x8028: "RecordInputDataObjectElement",
    0x8029: "RecordOutputDataObjectElement",
    0x802A: "PDPortDataReal",
    0x802B: "PDPortDataCheck",
    0x802C: "PDIRData",
    0x802D: "PDSyncData",
    0x802F: "PDPortDataAdjust",
    0x8030: "IsochronousModeData",
    0x8052: "PDInterfaceMrpDataAdjust",
    0x8053: "PDPortMrpDataAdjust",
    0x8062: "PDPortFODataAdjust",
    0x8071: "PDInterfaceAdjust",
    0x8072: "PDPortStatistic",
    0x8080: "PDInterfaceDataReal",
    0x8090: "PDInterfaceFSUDataAdjust",
    0x80B0: "CombinedObjectContainer",
    0xAFF0: "I&M0",
    0xAFF1: "I&M1",
    0xAFF2: "I&M2",
    0xAFF3: "I&M3",
    0xAFF4: "I&M4",
    0xE000: "ExpectedIdentificationData (AR)",
    0xE001: "RealIdentificationData (AR)",
    0xE002: "ModuleDiffBlock (AR)",
    0xE00C: "Diagnosis (AR)",
    0xE040: "WriteMultiple",
    0xE050: "ARFSUDataAdjust",
    0xF000: "RealIdentificationData (API)",
    0xF00C: "Diagnosis (API)",
    0xF020: "ARData (API)",
    0xF80C: "Diagnosis (device)",
    0xF820: "ARData",
    0xF821: "APIData",
    0xF830: "LogBookData",
    0xF831: "PDevData",
    0xF840: "I&M0FilterData",
    0xF841: "PDRealData",
    0xF842: "PDExpectedData",
    0xF880: "AssetManagementData",
}
# Indices whose write changes how the device sits on the network (ports, MRP, domains).
NETWORK_INDICES: Final = frozenset({0x802C, 0x802D, 0x802F, 0x8052, 0x8053, 0x8062, 0x8071, 0x8090})
WRITE_MULTIPLE: Final = 0xE040
COMBINED_OBJECT_CONTAINER: Final = 0x80B0
CO_CONTAINER_CONTENT: Final = 0x0401
IM0: Final = 0xAFF0


def index_name(index: int) -> str:
    if index <= 0x7FFF:
        return "user"
    if 0xAFF5 <= index <= 0xAFFF:
        return f"I&M{index - 0xAFF0}"
    return INDEX_NAMES.get(index, f"0x{index:04x}")


def control_names(command: int) -> list[str]:
    return [name for bit, name in CONTROL_COMMANDS if command & bit]


@dataclass(frozen=True, slots=True)
class Block:
    type: int
    version: tuple[int, int]
    body: bytes

    @property
    def name(self) -> str:
        return BLOCK_NAMES.get(self.type, f"0x{self.type:04x}")


@dataclass(slots=True)
class IocmBody:
    """A decoded request or response body: its PNIO status (responses), blocks and what
    they say (``fields``, JSON-friendly)."""

    status: tuple[int, int, int, int] | None = None
    blocks: list[Block] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


def _u16(b: bytes, at: int) -> int:
    return (b[at] << 8) | b[at + 1]


def _u32(b: bytes, at: int) -> int:
    return int.from_bytes(b[at : at + 4], "big")


def _uuid(b: bytes, at: int) -> str:
    return str(uuid.UUID(bytes=bytes(b[at : at + 16])))


def parse_body(opnum: int, is_request: bool, little: bool, body: bytes) -> IocmBody:
    """Decode an IO-CM request or response body; never raises."""
    out = IocmBody()
    if not is_request:
        if len(body) < 4:
            out.problem = f"response body of {len(body)} bytes"
            return out
        status = int.from_bytes(body[:4], "little" if little else "big")
        out.status = (
            (status >> 24) & 0xFF,
            (status >> 16) & 0xFF,
            (status >> 8) & 0xFF,
            status & 0xFF,
        )
        if len(body) == 4:
            return out
    # Request: ArgsMaximum, ArgsLength, MaximumCount, Offset, ActualCount; a response
    # has the PNIOStatus where ArgsMaximum would be.
    start = NDR_ARGS
    if len(body) < start:
        out.problem = f"body of {len(body)} bytes (NDR arguments truncated)"
        return out
    order = "<" if little else ">"
    _first, args_length, _count, _offset, actual = struct.unpack_from(order + "5I", body, 0)
    args = body[start : start + min(args_length, actual)]
    if start + args_length > len(body):
        out.problem = f"ArgsLength {args_length} with {len(body) - start} bytes"
    try:
        blocks, problem = _walk(args)
    except (IndexError, struct.error, ValueError) as exc:  # bounds are checked; a net
        blocks, problem = [], f"blocks: {exc}"
    out.blocks = blocks
    out.problem = out.problem or problem
    for b in blocks:
        try:
            _block_fields(b, out.fields)
        except (IndexError, struct.error, ValueError):
            out.problem = out.problem or f"{b.name}: too short"
    return out


def _walk(args: bytes) -> tuple[list[Block], str | None]:
    """Blocks of the arguments; a write/read record's data becomes a type-0 block."""
    out: list[Block] = []
    pos = 0
    multiple = False
    while pos + BLOCK_HEADER <= len(args) and len(out) < MAX_BLOCKS:
        btype, length = _u16(args, pos), _u16(args, pos + 2)
        end = pos + 4 + length
        if length < 2 or end > len(args):
            return out, f"block 0x{btype:04x} length {length} exceeds the arguments"
        block = Block(btype, (args[pos + 4], args[pos + 5]), args[pos + 6 : end])
        out.append(block)
        pos = end
        if btype == 0x0008 and len(block.body) >= 32 and _u16(block.body, 28) == WRITE_MULTIPLE:
            multiple = True  # the sub-writes follow as blocks, each 32-bit aligned
            continue
        if btype in (0x0008, 0x8009) and len(block.body) >= 34:
            take = min(_u32(block.body, 30), len(args) - pos)
            record = args[pos : pos + take]
            out.append(Block(0, (0, 0), record))
            pos += take
            if btype == 0x8009 and _u16(block.body, 28) == IM0:
                inner, _ = _walk(record)
                out += inner
            if btype == 0x0008 and _u16(block.body, 28) == COMBINED_OBJECT_CONTAINER:
                inner, _ = _walk(record)
                out += [b for b in inner if b.type == CO_CONTAINER_CONTENT]
            if multiple:
                pos += -pos % 4
    if pos < len(args) and len(out) < MAX_BLOCKS and any(args[pos:]):
        return out, f"{len(args) - pos} bytes after the last block"
    return out, None


def _block_fields(b: Block, f: dict[str, Any]) -> None:
    """What one block says (IEC 61158-6-10 §5.2, block coding), into ``f``."""
    d, t = b.body, b.type
    if t == 0x0101 and len(d) >= 54:  # ARBlockReq
        f["ar_type"] = AR_TYPES.get(_u16(d, 0), f"0x{_u16(d, 0):04x}")
        f["ar_uuid"] = _uuid(d, 2)
        f["session_key"] = _u16(d, 18)
        f["initiator_mac"] = d[20:26].hex(":")
        f["ar_properties"] = _u32(d, 42)
        f["initiator_udp_port"] = _u16(d, 48)
        n = _u16(d, 50)
        f["initiator_station"] = d[52 : 52 + n].decode("latin-1")
    elif t == 0x8101 and len(d) >= 28:  # ARBlockRes
        f["ar_type"] = AR_TYPES.get(_u16(d, 0), f"0x{_u16(d, 0):04x}")
        f["ar_uuid"] = _uuid(d, 2)
        f["session_key"] = _u16(d, 18)
        f["responder_mac"] = d[20:26].hex(":")
        f["responder_udp_port"] = _u16(d, 26)
    elif t == 0x0102 and len(d) >= 10:  # IOCRBlockReq
        f.setdefault("iocrs", []).append(
            {
                "type": IOCR_TYPES.get(_u16(d, 0), str(_u16(d, 0))),
                "reference": _u16(d, 2),
                "data_length": _u16(d, 10) if len(d) >= 12 else None,
                "frame_id": _u16(d, 12) if len(d) >= 14 else None,
                "send_clock_factor": _u16(d, 14) if len(d) >= 16 else None,
                "reduction_ratio": _u16(d, 16) if len(d) >= 18 else None,
            }
        )
    elif t == 0x8102 and len(d) >= 6:  # IOCRBlockRes
        f.setdefault("iocrs", []).append(
            {
                "type": IOCR_TYPES.get(_u16(d, 0), str(_u16(d, 0))),
                "reference": _u16(d, 2),
                "frame_id": _u16(d, 4),
            }
        )
    elif t == 0x0104 and len(d) >= 2:  # ExpectedSubmoduleBlockReq: NumberOfAPIs, ...
        f["expected_submodule_blocks"] = f.get("expected_submodule_blocks", 0) + 1
    elif t in (0x0008, 0x0009, 0x8008, 0x8009) and len(d) >= 32:  # IODWrite/Read headers
        rec = {
            "seq_number": _u16(d, 0),
            "ar_uuid": _uuid(d, 2),
            "api": _u32(d, 18),
            "slot": _u16(d, 22),
            "subslot": _u16(d, 24),
            "index": _u16(d, 28),
            "index_name": index_name(_u16(d, 28)),
            "record_data_length": _u32(d, 30),
        }
        if t in (0x8008, 0x8009) and len(d) >= 38:
            rec["additional_value1"], rec["additional_value2"] = _u16(d, 34), _u16(d, 36)
        if t == 0x8008 and len(d) >= 42:
            rec["status"] = d[38:42].hex()
        if t == 0x0009 and len(d) >= 50:
            rec["target_ar_uuid"] = _uuid(d, 34)
        f.setdefault("records", []).append(rec)
    elif t in (0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0116, 0x0117, 0x0118) and len(d) >= 24:
        f["ar_uuid"] = _uuid(d, 2)
        f["session_key"] = _u16(d, 18)
        f["control_command"] = control_names(_u16(d, 22))
        f["control_block"] = b.name
    elif (
        (t & 0x8000)
        and (t & 0x7FFF) in (0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0116, 0x0117, 0x0118)
        and len(d) >= 24
    ):
        f["response_control_command"] = control_names(_u16(d, 22))
    elif t == CO_CONTAINER_CONTENT and len(d) >= 14:
        # COContainerContent: padding (2), API (4), slot, subslot, padding, index, a block.
        f.setdefault("records", []).append(
            {
                "container": True,
                "api": _u32(d, 2),
                "slot": _u16(d, 6),
                "subslot": _u16(d, 8),
                "index": _u16(d, 12),
                "index_name": index_name(_u16(d, 12)),
                "record_data_length": len(d) - 14,
            }
        )
    elif t == 0x8104:
        f["module_diff"] = True
    elif t == 0x0020 and len(d) >= 54:  # I&M0 (record 0xAFF0)
        f["im0"] = im0_fields(d)


def im0_fields(d: bytes) -> dict[str, Any]:
    """I&M0 (IEC 61158-6-10 §5.2.x, I&M0 block body): VendorIDHigh/Low (2), OrderID (20),
    IM_Serial_Number (16), IM_Hardware_Revision (2), IM_Software_Revision (4: a prefix
    letter V/R/P/U/T and three numbers), IM_Revision_Counter (2), IM_Profile_ID (2),
    IM_Profile_Specific_Type (2), IM_Version (2), IM_Supported (2)."""
    sw = d[40:44]
    prefix = chr(sw[0]) if 32 <= sw[0] < 127 else "?"
    return {
        "vendor_id": _u16(d, 0),
        "order_id": d[2:22].decode("latin-1").strip(),
        "serial_number": d[22:38].decode("latin-1").strip(),
        "hardware_revision": _u16(d, 38),
        "software_revision": f"{prefix}{sw[1]}.{sw[2]}.{sw[3]}",
        "revision_counter": _u16(d, 44),
        "profile_id": _u16(d, 46),
    }
