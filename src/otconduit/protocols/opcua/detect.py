"""Recognising OPC UA binary (UA TCP) from the first bytes of a connection, on any port.

A UA TCP connection starts with a Hello from the client (or a ReverseHello from a
server that dials out, OPC 10000-6 §7.1.3), answered by an Acknowledge or Error; a
capture that begins mid-connection starts with OPN, MSG or CLO chunks. Each of those
starts with three ASCII letters, a chunk type F/C/A and a size no smaller than the
message type allows (:func:`~.chunks.header_problem`), which HTTP, TLS, SSH, Modbus,
S7 and EtherNet/IP streams do not.
"""

from __future__ import annotations

from otconduit.protocols.opcua.chunks import DEFAULT_MAX_CHUNK, HEADER, header_problem


def starts_with_chunk(data: bytes) -> bool | None:
    """True: an acceptable UA TCP chunk header; False: not; None: under 8 bytes."""
    if len(data) < HEADER:
        return None
    return header_problem(data, 0, DEFAULT_MAX_CHUNK) is None


def verdict(client: bytes, server: bytes, on_known_port: bool = False) -> bool | None:
    """:data:`~otconduit.protocols.base.Verdict` for OPC UA (the port is not evidence).

    True when either direction starts with a UA TCP chunk header; False when both hold
    at least 8 bytes and neither does; None otherwise (feed more bytes).
    """
    c, s = starts_with_chunk(client), starts_with_chunk(server)
    if c or s:
        return True
    if c is False and s is False:
        return False
    return None
