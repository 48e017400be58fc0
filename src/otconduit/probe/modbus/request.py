"""Modbus/TCP Read Device Identification requests (Modbus Application Protocol v1.1b3
§6.21, function 43 / MEI type 14), framed with the MBAP header (Modbus Messaging on
TCP/IP Implementation Guide v1.0b §3.1.3)."""

from __future__ import annotations

import struct

FUNCTION = 0x2B  # Encapsulated Interface Transport
MEI_READ_DEVICE_ID = 0x0E
BASIC = 0x01  # ReadDevId code: basic objects 0x00-0x02 (vendor, product code, revision)
REGULAR = 0x02  # ... regular objects 0x03-0x06 too (stream access)
MBAP_SIZE = 7
# Unit 255: "not used" on Modbus/TCP devices that are not gateways (guide §4.4.2), so a
# device answers for itself; a gateway forwards to unit 255, which no serial slave has.
DEFAULT_UNIT = 0xFF


def read_device_id(
    transaction_id: int, unit: int, code: int = REGULAR, object_id: int = 0
) -> bytes:
    """One MBAP-framed 43/14 request: read ``code`` objects starting at ``object_id``."""
    if not 0 <= unit <= 0xFF or unit == 0:
        raise ValueError("unit must be 1-255 (0 is broadcast: no device answers it)")
    pdu = bytes([FUNCTION, MEI_READ_DEVICE_ID, code, object_id])
    # MBAP: transaction id, protocol id 0, length (unit id + PDU), unit id.
    return struct.pack(">HHHB", transaction_id, 0, len(pdu) + 1, unit) + pdu


def answer_length(buf: bytes) -> int | None:
    """Whole ADU length from the MBAP length field, None while incomplete."""
    if len(buf) < 6:
        return None
    (length,) = struct.unpack_from(">H", buf, 4)
    total = 6 + length
    return total if len(buf) >= total else None
