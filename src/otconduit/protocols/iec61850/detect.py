"""Telling MMS from S7comm on ISO-on-TCP (port 102) by the first COTP data.

Both start with TPKT + COTP CR/CC; what the first DT TPDU carries decides: S7comm and
S7comm-plus PDUs start with their protocol ids 0x32 / 0x72, MMS with a session SPDU
(CONNECT 0x0D, or Give Tokens + Data 01 00 01 ..) or, from some stacks, a bare MMS PDU.
"""

from __future__ import annotations

from typing import Final

from otconduit.protocols.iec61850.mms import looks_like_mms
from otconduit.protocols.iec61850.osi import looks_like_session
from otconduit.protocols.s7.detect import starts_with_tpkt
from otconduit.protocols.s7.tpkt import TPDU_DT, TPKT_HEADER, tpdu_code

S7_PROTOCOL_IDS: Final = frozenset({0x32, 0x72})


def first_data(stream: bytes) -> bytes | None:
    """The user data of the first COTP DT in the first bytes of a stream (None: no DT
    complete enough to judge yet, or not TPKT)."""
    pos = 0
    while pos + TPKT_HEADER + 3 <= len(stream):
        if stream[pos] != 3 or stream[pos + 1] != 0:
            return None
        length = (stream[pos + 2] << 8) | stream[pos + 3]
        if length < 7:
            return None
        li = stream[pos + 4]
        if tpdu_code(stream[pos + 5]) == TPDU_DT:
            start = pos + TPKT_HEADER + 1 + li
            end = min(pos + length, len(stream))
            return stream[start:end] if end - start >= 2 else None
        pos += length
    return None


def carries_mms(user_data: bytes) -> bool:
    """Whether the first COTP user data of a connection is MMS (through the OSI session
    layer, or bare)."""
    return looks_like_session(user_data) or looks_like_mms(user_data)


def verdict(client: bytes, server: bytes, on_known_port: bool = False) -> bool | None:
    """:data:`~otconduit.protocols.base.Verdict` for MMS: TPKT whose first COTP data is
    MMS. False when that data is S7 (or other), or when neither side is TPKT."""
    tpkt = [starts_with_tpkt(client), starts_with_tpkt(server)]
    if tpkt[0] is False and tpkt[1] is False:
        return False
    undecided = False
    for data, is_tpkt in ((client, tpkt[0]), (server, tpkt[1])):
        if not is_tpkt:
            undecided = undecided or is_tpkt is None
            continue
        user = first_data(data)
        if user is None:
            undecided = True
        else:
            return user[0] not in S7_PROTOCOL_IDS and carries_mms(user)
    return None if undecided else False
