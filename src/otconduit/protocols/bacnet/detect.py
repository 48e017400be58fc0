"""Content-based BACnet/IP recognition from a flow's first datagram in each direction.

A datagram is BACnet/IP when it is one whole BVLL message (135 Annex J.2): type 0x81, a
function code 0x00..0x0C, a length field equal to the datagram's size, and what the
function carries in place: an NPDU of protocol version 1 for the NPDU-carrying
functions, the fixed sizes of the others (BVLC-Result and Register-Foreign-Device 6
octets, Read-BDT/FDT 4, Delete-FDT-Entry 10, BDT/FDT lists 4 + 10n). Random data passes
the first octet and the length 1 time in 2**24 or so; the function and NPDU version
checks make it rarer still, so one datagram decides, on any port.
"""

from __future__ import annotations

from otconduit.protocols.bacnet import enums as E

_FIXED_SIZE = {
    E.BVLC_RESULT: 6,
    E.REGISTER_FOREIGN_DEVICE: 6,
    E.READ_BDT: 4,
    E.READ_FDT: 4,
    E.DELETE_FDT_ENTRY: 10,
}


def looks_like_bvll(data: bytes) -> bool:
    """Whether ``data`` (one datagram) is a well-formed BACnet/IP BVLL message."""
    if len(data) < 4 or data[0] != E.BVLC_TYPE_IP:
        return False
    function = data[1]
    if function > E.SECURE_BVLL or int.from_bytes(data[2:4], "big") != len(data):
        return False
    if function in _FIXED_SIZE:
        return len(data) == _FIXED_SIZE[function]
    if function in (E.WRITE_BDT, E.READ_BDT_ACK, E.READ_FDT_ACK):
        return (len(data) - 4) % 10 == 0
    if function == E.FORWARDED_NPDU:
        return len(data) >= 12 and data[10] == 1
    if function in E.NPDU_FUNCTIONS:
        return len(data) >= 6 and data[4] == 1
    return True  # Secure-BVLL


def _bvll_head(data: bytes) -> bool:
    """BACnet/IP type, a defined function and, where an NPDU follows, its version: a BVLL
    message whose length field is wrong (a truncated or padded datagram)."""
    if len(data) < 4 or data[0] != E.BVLC_TYPE_IP or data[1] > E.SECURE_BVLL:
        return False
    return data[1] not in E.NPDU_FUNCTIONS or (len(data) > 4 and data[4] == 1)


def bacnet_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """True: a first datagram is a BVLL message (on UDP 47808, also one whose length
    field does not fit the datagram: the decoder reports it). False: a first datagram
    was seen and none is. None: no datagram yet."""
    if looks_like_bvll(client) or looks_like_bvll(server):
        return True
    if on_known_port and (_bvll_head(client) or _bvll_head(server)):
        return True
    if client or server:
        return False
    return None
