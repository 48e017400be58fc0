"""Recognising S7comm on ISO-on-TCP (TPKT + COTP) from the first bytes of a connection.

A stream is ISO-on-TCP when it starts with a TPKT header (RFC 1006 §6: 0x03 0x00, a
length >= 7) followed by a COTP TPDU that opens or carries a connection: CR, CC, DT or
DR (ISO 8073 §13). HTTP, TLS and SSH start with bytes other than 0x03 0x00; a TLS
record header, for instance, starts with its content type 0x14..0x17.

ISO-on-TCP also carries MMS (IEC 61850, :mod:`otconduit.protocols.iec61850`), so
:func:`verdict` says S7 only once the first COTP data starts with an S7 protocol id
(0x32 S7comm, 0x72 S7comm-plus) and defers otherwise; a connection that ends (or fills
the probe) still undecided is S7 when it is ISO-on-TCP at all (:func:`iso_on_tcp`, the
spec's ``settle``): a CR/CC exchange alone stays S7comm as before MMS was known.
"""

from __future__ import annotations

from typing import Final

from otconduit.protocols.s7.tpkt import (
    MIN_TPKT_LENGTH,
    PLAUSIBLE_PREFIX,
    TPDU_CC,
    TPDU_CR,
    TPDU_DR,
    TPDU_DT,
    TPKT_HEADER,
    TPKT_VERSION,
    tpdu_code,
)

STARTING_TPDUS: Final = frozenset({TPDU_CR, TPDU_CC, TPDU_DT, TPDU_DR})


def starts_with_tpkt(data: bytes) -> bool | None:
    """True: a TPKT header and a CR/CC/DT/DR TPDU; False: not; None: under 6 bytes."""
    if len(data) < PLAUSIBLE_PREFIX:
        return None
    if data[0] != TPKT_VERSION or data[1] != 0:
        return False
    length = (data[2] << 8) | data[3]
    return length >= MIN_TPKT_LENGTH and tpdu_code(data[5]) in STARTING_TPDUS


S7_PROTOCOL_IDS: Final = frozenset({0x32, 0x72})  # S7comm, S7comm-plus


def first_dt_data(stream: bytes, minimum: int = 1) -> bytes | None:
    """The user data of the first COTP DT among the first TPKT packets of a stream
    (None: not TPKT, or no DT with ``minimum`` bytes of data yet)."""
    pos = 0
    while pos + TPKT_HEADER + 3 <= len(stream):
        if stream[pos] != TPKT_VERSION or stream[pos + 1] != 0:
            return None
        length = (stream[pos + 2] << 8) | stream[pos + 3]
        if length < MIN_TPKT_LENGTH:
            return None
        if tpdu_code(stream[pos + 5]) == TPDU_DT:
            start = pos + TPKT_HEADER + 1 + stream[pos + 4]
            end = min(pos + length, len(stream))
            return stream[start:end] if end - start >= minimum else None
        pos += length
    return None


def verdict(client: bytes, server: bytes, on_known_port: bool = False) -> bool | None:
    """:data:`~otconduit.protocols.base.Verdict` for S7comm (port is not evidence).

    True when the first COTP data (the client's, else the server's) starts with an S7
    protocol id; False when neither direction is ISO-on-TCP (as :func:`iso_on_tcp`);
    None otherwise: no data yet, or data of another protocol over ISO-on-TCP (MMS),
    which the registry asks about first.
    """
    if iso_on_tcp(client, server) is False:
        return False
    for data in (client, server):
        user = first_dt_data(data)
        if user is not None:
            return True if user[0] in S7_PROTOCOL_IDS else None
    return None


def iso_on_tcp(client: bytes, server: bytes, on_known_port: bool = False) -> bool | None:
    """ISO-on-TCP from the first bytes of either direction.

    True when either direction starts like ISO-on-TCP; False when both directions hold
    at least 7 bytes and neither does; None otherwise (feed more bytes).
    """
    c, s = starts_with_tpkt(client), starts_with_tpkt(server)
    if c or s:
        return True
    if len(client) >= MIN_TPKT_LENGTH and len(server) >= MIN_TPKT_LENGTH:
        return False
    return None
