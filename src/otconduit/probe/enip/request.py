"""EtherNet/IP ListIdentity (CIP Vol 2 §2-4.2): a 24-byte encapsulation header with
command 0x0063 and no data. It needs no session, so it is the quietest way to ask a CIP
device for its Identity object (vendor, device type, product code, revision, serial,
product name)."""

from __future__ import annotations

import struct

LIST_IDENTITY = 0x0063
HEADER = struct.Struct("<HHII8sI")  # command, length, session, status, context, options
CONTEXT = b"conduitp"  # sender context: echoed back by the target (Vol 2 §2-3.1)


def list_identity(context: bytes = CONTEXT) -> bytes:
    """The ListIdentity request; session handle, status and options are zero."""
    return HEADER.pack(LIST_IDENTITY, 0, 0, 0, context, 0)


def answer_length(buf: bytes) -> int | None:
    """Header plus its length field, None while incomplete."""
    if len(buf) < HEADER.size:
        return None
    (length,) = struct.unpack_from("<H", buf, 2)
    total = HEADER.size + length
    return total if len(buf) >= total else None
