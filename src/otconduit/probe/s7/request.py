"""S7comm identification requests over ISO-on-TCP: TPKT (RFC 1006 §6), COTP connection
request and data TPDUs (ISO 8073 / X.224 §13.3, §13.7), S7 Setup Communication (job,
function 0xF0) and a user-data Read SZL (CPU functions group 4, subfunction 1).

SZL 0x0011 (module identification) carries the order number and versions, 0x001C
(component identification) the module name, type, serial and plant designation. Field
layouts follow Siemens' "System Software for S7-300/400 System and Standard Functions"
manual, chapter 28 (SSL-ID W#16#xy11 and W#16#xy1C).
"""

from __future__ import annotations

import struct

TPKT_VERSION = 3
COTP_CR = 0xE0  # connection request
COTP_CC = 0xD0  # connection confirm
COTP_DR = 0x80  # disconnect request
COTP_DT = 0xF0  # data
S7_PROTOCOL_ID = 0x32
ROSCTR_JOB = 0x01
ROSCTR_ACK_DATA = 0x03
ROSCTR_USERDATA = 0x07
SRC_TSAP = 0x0100  # PG/PC connection resource, rack 0 slot 0
# Destination TSAP: connection type 1 (PG) in the high byte, rack * 32 + slot in the low.
TSAP_S7_300 = 0x0102  # rack 0, slot 2: S7-300/400 CPUs
TSAP_ALT = 0x0200  # connection type 2 (OP), slot 0: S7-1200/1500 and many others accept it
SZL_MODULE_ID = 0x0011
SZL_COMPONENT_ID = 0x001C
PDU_SIZE = 480


def tpkt(payload: bytes) -> bytes:
    """RFC 1006 §6: version 3, reserved, length including this 4-byte header."""
    return struct.pack(">BBH", TPKT_VERSION, 0, len(payload) + 4) + payload


def cotp_connect(dst_tsap: int, src_tsap: int = SRC_TSAP, src_ref: int = 1) -> bytes:
    """COTP CR TPDU, class 0, TPDU size 1024 (code 0x0A), calling/called TSAPs."""
    params = bytes([0xC1, 2]) + struct.pack(">H", src_tsap)
    params += bytes([0xC2, 2]) + struct.pack(">H", dst_tsap)
    params += bytes([0xC0, 1, 0x0A])
    fixed = struct.pack(">BHHB", COTP_CR, 0x0000, src_ref, 0x00)
    body = fixed + params
    return tpkt(bytes([len(body)]) + body)


def _dt(s7: bytes) -> bytes:
    """COTP DT TPDU (length 2, code 0xF0, EOT + TPDU number 0) around one S7 PDU."""
    return tpkt(bytes([0x02, COTP_DT, 0x80]) + s7)


def setup_communication(pdu_ref: int, pdu_size: int = PDU_SIZE) -> bytes:
    """S7 job 0xF0: one outstanding job each way, the PDU size the client can take."""
    params = struct.pack(">BBHHH", 0xF0, 0x00, 1, 1, pdu_size)
    header = struct.pack(">BBHHHH", S7_PROTOCOL_ID, ROSCTR_JOB, 0, pdu_ref, len(params), 0)
    return _dt(header + params)


def read_szl(pdu_ref: int, szl_id: int, index: int = 0) -> bytes:
    """User-data request: parameter head 00 01 12, length 4, method 0x11 (request),
    type/group 0x44 (request, CPU functions), subfunction 0x01 (read SZL), sequence 0;
    data: return code 0xFF, transport size 0x09 (octet string), length 4, id, index."""
    params = bytes([0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01, 0x00])
    data = struct.pack(">BBHHH", 0xFF, 0x09, 4, szl_id, index)
    header = struct.pack(
        ">BBHHHH", S7_PROTOCOL_ID, ROSCTR_USERDATA, 0, pdu_ref, len(params), len(data)
    )
    return _dt(header + params + data)


def answer_length(buf: bytes) -> int | None:
    """Whole TPKT length, None while incomplete."""
    if len(buf) < 4:
        return None
    (length,) = struct.unpack_from(">H", buf, 2)
    return length if len(buf) >= length else None
