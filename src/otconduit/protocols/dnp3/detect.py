"""Content-based DNP3 recognition: a connection is DNP3 when a direction starts with a
link header (05 64, LEN >= 5, header CRC right; 1815 §9.2.4).

The header CRC makes this strict: random bytes pass the start octets 1 time in 65536
and the CRC 1 time in 65536 more. Only the start of a direction is tried, as the
engine offers the first bytes of each: a capture that begins mid-frame waits (None)
until the other direction speaks.
"""

from __future__ import annotations

from otconduit.protocols.dnp3.link import HEADER_SIZE, valid_header_at


def starts_with_link_header(data: bytes) -> bool:
    return valid_header_at(data, 0)


def dnp3_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """True: a direction starts with a valid link header. False: both directions have a
    full header's worth of bytes and neither does. None: not enough data yet.

    ``on_known_port`` does not change the answer: the CRC-checked header is evidence
    enough either way.
    """
    if starts_with_link_header(client) or starts_with_link_header(server):
        return True
    if len(client) >= HEADER_SIZE and len(server) >= HEADER_SIZE:
        return False
    return None
