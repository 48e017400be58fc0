"""Content-based EtherNet/IP identification from the first bytes of a connection.

A direction is EtherNet/IP when it starts with a well-formed encapsulation header
(Vol 2 §2-3.1: known command, options 0, a known status, command-specific sizes; see
:func:`~otconduit.protocols.enip.encap.header_problem`) whose length is consistent with
the bytes seen. A reserved or legacy command (engineering software still sends the
pre-release codes below 0x0063) on an otherwise clean header (options and status 0,
:func:`~otconduit.protocols.enip.encap.tolerable_unknown`) counts too: the stream frames
it by its length and reports it, and decodes what follows. The length must be
consistent: the message either runs past the sample (cut short) or ends exactly
where the next well-formed header, or the end of the sample, begins. Implicit I/O (UDP
2222) has no encapsulation header: a datagram that is a CPF block with a sequenced (or
connected) address item followed by a connected data item counts instead.

Why this is safe: a header fixes 4 zero option bytes, a status from 8 values in 4 bytes
and a command from 11 values in 2 bytes, about 2**-75 at random; HTTP and TLS put
printable or version bytes where the command and length sit.
"""

from __future__ import annotations

from typing import Final

from otconduit.protocols.enip.decoder import parse_io
from otconduit.protocols.enip.encap import (
    COMMAND_NAMES,
    HEADER_SIZE,
    header_problem,
    parse_header,
    tolerable_unknown,
)

MAX_MESSAGES: Final = 8


def _header_prefix(tail: bytes) -> bool:
    """Whether fewer than 24 trailing bytes could begin a header."""
    if len(tail) >= 2 and (tail[1] != 0 or tail[0] not in COMMAND_NAMES):
        return False
    return not (len(tail) >= 12 and any(tail[10:12]))


def starts_with_encapsulation(data: bytes, *, strict: bool = True) -> bool:
    """Whether ``data`` begins with a well-formed header of consistent length; with
    ``strict=False`` the first header alone decides."""
    pos = 0
    count = 0
    while pos < len(data) and count < MAX_MESSAGES:
        if len(data) - pos < HEADER_SIZE:
            return count > 0 and _header_prefix(data[pos:])
        header = parse_header(data, pos)
        if header_problem(header) is not None and not tolerable_unknown(header):
            return False
        count += 1
        if not strict:
            return True
        pos += HEADER_SIZE + header.length
    return count > 0


def verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """True: EtherNet/IP (or CIP implicit I/O). False: both directions hold at least one
    header's worth of bytes and neither is valid. None: not enough data yet.

    On a well-known port the first header decides on its own; elsewhere what follows it
    must be consistent too.
    """
    for data in (client, server):
        if data and parse_io(data) is not None:
            return True
        if len(data) >= HEADER_SIZE and starts_with_encapsulation(data, strict=not on_known_port):
            return True
    if len(client) >= HEADER_SIZE and len(server) >= HEADER_SIZE:
        return False
    return None
