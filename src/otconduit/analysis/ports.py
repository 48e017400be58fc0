"""Well-known industrial ports: used only to choose the server side of a connection
that was already running when the capture began, never to name a protocol."""

from __future__ import annotations

ICS_TCP_PORTS = frozenset(
    {
        102,  # ISO-on-TCP (S7comm)
        502,  # Modbus/TCP
        2404,  # IEC 60870-5-104
        4840,  # OPC UA
        20000,  # DNP3
        44818,  # EtherNet/IP
        1911,  # Niagara Fox
        789,  # Red Lion Crimson
        9600,  # Omron FINS
        5094,  # HART-IP
        18245,  # GE SRTP
        2222,  # EtherNet/IP implicit I/O
    }
)
ICS_UDP_PORTS = frozenset({2222, 44818, 47808, 20000, 34964, 5094, 9600, 161, 502})


def server_side(port_a: int, port_b: int, transport: str) -> int:
    """Return 0 when endpoint a looks like the server, 1 when b does.

    Used when the handshake was not captured: a known industrial port wins, then the
    lower port number (ephemeral client ports are high).
    """
    known = ICS_TCP_PORTS if transport == "tcp" else ICS_UDP_PORTS
    a_known, b_known = port_a in known, port_b in known
    if a_known != b_known:
        return 0 if a_known else 1
    return 0 if port_a <= port_b else 1
