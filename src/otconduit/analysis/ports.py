"""Well-known industrial ports: used only to choose the server side of a connection
that was already running when the capture began, never to name a protocol."""

from __future__ import annotations

from otconduit.protocols import registry

# The registered protocols' ports come from the registry; these are industrial ports of
# protocols Conduit does not decode (yet).
_UNDECODED_TCP = frozenset(
    {
        2404,  # IEC 60870-5-104
        1911,  # Niagara Fox
        789,  # Red Lion Crimson
        9600,  # Omron FINS
        5094,  # HART-IP
        18245,  # GE SRTP
    }
)
_UNDECODED_UDP = frozenset(
    {
        47808,  # BACnet/IP
        34964,  # PROFINET context manager
        5094,  # HART-IP
        9600,  # Omron FINS
        161,  # SNMP
        502,  # Modbus over UDP
    }
)
ICS_TCP_PORTS = _UNDECODED_TCP | registry.server_ports("tcp")
ICS_UDP_PORTS = _UNDECODED_UDP | registry.server_ports("udp")


def server_side(port_a: int, port_b: int, transport: str) -> int:
    """Return 0 when endpoint a looks like the server, 1 when b does.

    Used when the handshake was not captured: a known industrial port wins, then the
    lower port number (ephemeral client ports are high). Endpoint a sent the first
    packet seen: with equal ports (BACnet 47808 to 47808) the one who spoke first asked,
    so b is the server.
    """
    known = ICS_TCP_PORTS if transport == "tcp" else ICS_UDP_PORTS
    a_known, b_known = port_a in known, port_b in known
    if a_known != b_known:
        return 0 if a_known else 1
    return 0 if port_a < port_b else 1
