"""PROFINET IO alarms: the acyclic real-time transport RTA (IEC 61158-6-10 §4.9, FrameIDs
0xFC01 high and 0xFE01 low priority) and the PNIOStatus that answers and aborts carry.

RTA-PDU: AlarmDstEndpoint (2), AlarmSrcEndpoint (2), PDUType (1: type in the low
nibble, 1 DATA, 2 NACK, 3 ACK, 4 ERR; version in the high nibble), AddFlags (1: window
size, TACK 0x10), SendSeqNum (2), AckSeqNum (2), VarPartLen (2), then the SDU:

- DATA: an AlarmNotification block (0x0001 high, 0x0002 low): AlarmType (2), API (4),
  SlotNumber (2), SubslotNumber (2), ModuleIdentNumber (4), SubmoduleIdentNumber (4),
  AlarmSpecifier (2: sequence number in bits 0-10), alarm items; or an AlarmAck block
  (0x8001 / 0x8002): AlarmType, API, slot, subslot, AlarmSpecifier, PNIOStatus (4);
- ERR: a PNIOStatus (the alarm channel, and with it the AR, is aborted);
- ACK / NACK: transport acknowledgements, no SDU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

DATA: Final = 1
NACK: Final = 2
ACK: Final = 3
ERR: Final = 4
PDU_TYPES: Final = {1: "DATA-RTA", 2: "NACK-RTA", 3: "ACK-RTA", 4: "ERR-RTA"}
HEADER: Final = 12

ALARM_TYPES: Final = {
    0x0001: "Diagnosis",
    0x0002: "Process",
    0x0003: "Pull",
    0x0004: "Plug",
    0x0005: "Status",
    0x0006: "Update",
    0x0007: "Media redundancy",
    0x0008: "Controlled by supervisor",
    0x0009: "Released",
    0x000A: "Plug wrong submodule",
    0x000B: "Return of submodule",
    0x000C: "Diagnosis disappears",
    0x000D: "Multicast communication mismatch",
    0x000E: "Port data change notification",
    0x000F: "Sync data changed notification",
    0x0010: "Isochronous mode problem notification",
    0x0011: "Network component problem notification",
    0x0012: "Time data changed notification",
    0x0013: "Dynamic frame packing problem notification",
    0x0014: "MRPD problem notification",
    0x0016: "Multiple interface mismatch notification",
    0x001E: "Upload and retrieval notification",
    0x001F: "Pull module",
}

# PNIOStatus (IEC 61158-6-10 §5.2.6): ErrorCode, ErrorDecode, ErrorCode1, ErrorCode2.
ERROR_CODES: Final = {
    0x00: "no error",
    0x81: "PNIO",
    0xCF: "RTA error",
    0xDA: "AlarmAck",
    0xDB: "IODConnectRes",
    0xDC: "IODReleaseRes",
    0xDD: "IODControlRes",
    0xDE: "IODReadRes",
    0xDF: "IODWriteRes",
}
ERROR_DECODES: Final = {0x80: "PNIORW", 0x81: "PNIO", 0x82: "manufacturer specific"}
# ErrorCode1 under PNIORW (read/write record): class and code.
PNIORW_CODES: Final = {
    0xA0: "application: read error",
    0xA1: "application: write error",
    0xA2: "application: module failure",
    0xA7: "application: busy",
    0xA8: "application: version conflict",
    0xA9: "application: feature not supported",
    0xB0: "access: invalid index",
    0xB1: "access: write length error",
    0xB2: "access: invalid slot/subslot",
    0xB3: "access: type conflict",
    0xB4: "access: invalid area/API",
    0xB5: "access: state conflict",
    0xB6: "access: access denied",
    0xB7: "access: invalid range",
    0xB8: "access: invalid parameter",
    0xB9: "access: invalid type",
    0xBA: "access: backup",
    0xC0: "resource: read constrain conflict",
    0xC1: "resource: write constrain conflict",
    0xC2: "resource: resource busy",
    0xC3: "resource: resource unavailable",
}
RTA_PROTOCOL: Final = 0xFD  # ErrorCode1 RTA_ERR_CLS_PROTOCOL (ErrorCode2: the AR reason)
RTA_REASONS: Final = {2: "instance closed", 15: "AR release.ind received"}


def status_text(status: tuple[int, int, int, int]) -> str:
    """A PNIOStatus for people: 'IODWriteRes, PNIORW, access: invalid index (0x00)'."""
    code, decode, code1, code2 = status
    if status == (0, 0, 0, 0):
        return "OK"
    parts = [ERROR_CODES.get(code, f"0x{code:02x}"), ERROR_DECODES.get(decode, f"0x{decode:02x}")]
    if decode == 0x80:
        parts.append(PNIORW_CODES.get(code1, f"0x{code1:02x}") + f" (0x{code2:02x})")
    elif code1 == RTA_PROTOCOL:
        parts.append(f"RTA protocol: {RTA_REASONS.get(code2, f'reason {code2}')}")
    else:
        parts.append(f"0x{code1:02x}/0x{code2:02x}")
    return ", ".join(parts)


def status_code(status: tuple[int, int, int, int]) -> int:
    """The four PNIOStatus bytes as one number (an Operation's exception_code)."""
    return int.from_bytes(bytes(status), "big")


@dataclass(frozen=True, slots=True, kw_only=True)
class RtaPdu:
    frame_id: int
    dst_endpoint: int
    src_endpoint: int
    pdu_type: int
    version: int
    add_flags: int
    send_seq: int
    ack_seq: int
    block_type: int | None = None  # DATA: AlarmNotification or AlarmAck block
    alarm_type: int | None = None
    api: int | None = None
    slot: int | None = None
    subslot: int | None = None
    module_ident: int | None = None
    submodule_ident: int | None = None
    specifier: int | None = None
    status: tuple[int, int, int, int] | None = None  # ERR, and AlarmAck
    problem: str | None = None

    @property
    def pdu_name(self) -> str:
        return PDU_TYPES.get(self.pdu_type, f"RTA type {self.pdu_type}")

    @property
    def high(self) -> bool:
        return self.frame_id == 0xFC01

    @property
    def alarm_name(self) -> str:
        t = self.alarm_type
        return "unknown" if t is None else ALARM_TYPES.get(t, f"0x{t:04x}")

    @property
    def sequence(self) -> int | None:
        return None if self.specifier is None else self.specifier & 0x07FF

    @property
    def is_notification(self) -> bool:
        return self.block_type in (0x0001, 0x0002)

    @property
    def is_ack(self) -> bool:
        return self.block_type in (0x8001, 0x8002)


def _u16(b: bytes, at: int) -> int:
    return (b[at] << 8) | b[at + 1]


def parse_rta(frame_id: int, payload: bytes) -> RtaPdu | str:
    """Decode an RTA-PDU (``payload`` follows the FrameID; Ethernet padding after the
    VarPart is ignored)."""
    if len(payload) < HEADER:
        return f"RTA-PDU of {len(payload)} bytes"
    pdu_type = payload[4] & 0x0F
    head: dict[str, Any] = {
        "frame_id": frame_id,
        "dst_endpoint": _u16(payload, 0),
        "src_endpoint": _u16(payload, 2),
        "pdu_type": pdu_type,
        "version": payload[4] >> 4,
        "add_flags": payload[5],
        "send_seq": _u16(payload, 6),
        "ack_seq": _u16(payload, 8),
    }
    var_len = _u16(payload, 10)
    sdu = payload[HEADER : HEADER + var_len]
    if pdu_type not in PDU_TYPES:
        return f"RTA PDU type {pdu_type}"
    if len(sdu) < var_len:
        return RtaPdu(**head, problem=f"VarPartLen {var_len} with {len(sdu)} bytes")
    if pdu_type == ERR:
        if len(sdu) < 4:
            return RtaPdu(**head, problem="ERR-RTA without a PNIOStatus")
        return RtaPdu(**head, status=(sdu[0], sdu[1], sdu[2], sdu[3]))
    if pdu_type != DATA:
        return RtaPdu(**head)
    if len(sdu) < 6:
        return RtaPdu(**head, problem=f"DATA-RTA with a {len(sdu)}-byte SDU")
    block = _u16(sdu, 0)
    body = sdu[6 : 4 + _u16(sdu, 2)]
    if block in (0x0001, 0x0002) and len(body) >= 20:
        return RtaPdu(
            **head,
            block_type=block,
            alarm_type=_u16(body, 0),
            api=int.from_bytes(body[2:6], "big"),
            slot=_u16(body, 6),
            subslot=_u16(body, 8),
            module_ident=int.from_bytes(body[10:14], "big"),
            submodule_ident=int.from_bytes(body[14:18], "big"),
            specifier=_u16(body, 18),
        )
    if block in (0x8001, 0x8002) and len(body) >= 16:
        return RtaPdu(
            **head,
            block_type=block,
            alarm_type=_u16(body, 0),
            api=int.from_bytes(body[2:6], "big"),
            slot=_u16(body, 6),
            subslot=_u16(body, 8),
            specifier=_u16(body, 10),
            status=(body[12], body[13], body[14], body[15]),
        )
    return RtaPdu(**head, block_type=block, problem=f"DATA-RTA block 0x{block:04x} unreadable")
