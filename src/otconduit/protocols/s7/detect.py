"""Recognising ISO-on-TCP (TPKT + COTP) from the first bytes of a connection.

A stream is ISO-on-TCP when it starts with a TPKT header (RFC 1006 §6: 0x03 0x00, a
length >= 7) followed by a COTP TPDU that opens or carries a connection: CR, CC, DT or
DR (ISO 8073 §13). HTTP, TLS and SSH start with bytes other than 0x03 0x00; a TLS
record header, for instance, starts with its content type 0x14..0x17.
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


def verdict(client: bytes, server: bytes, on_known_port: bool = False) -> bool | None:
    """:data:`~otconduit.protocols.base.Verdict` for S7comm (port is not evidence).

    True when either direction starts like ISO-on-TCP; False when both directions hold
    at least 7 bytes and neither does; None otherwise (feed more bytes).
    """
    c, s = starts_with_tpkt(client), starts_with_tpkt(server)
    if c or s:
        return True
    if len(client) >= MIN_TPKT_LENGTH and len(server) >= MIN_TPKT_LENGTH:
        return False
    return None
