"""Telling MMS from S7comm on ISO-on-TCP (port 102) by the first COTP data.

Both start with TPKT + COTP CR/CC; what the first DT TPDU carries decides: S7comm and
S7comm-plus PDUs start with their protocol ids 0x32 / 0x72, MMS with a session SPDU
(CONNECT 0x0D, or Give Tokens + Data 01 00 01 ..) or, from some stacks, a bare MMS PDU.
"""

from __future__ import annotations

from otconduit.protocols.iec61850.mms import looks_like_mms
from otconduit.protocols.iec61850.osi import looks_like_session
from otconduit.protocols.s7.detect import S7_PROTOCOL_IDS, first_dt_data, starts_with_tpkt

__all__ = ["S7_PROTOCOL_IDS", "carries_mms", "first_data", "verdict"]


def first_data(stream: bytes) -> bytes | None:
    """The user data of the first COTP DT in the first bytes of a stream (None: no DT
    complete enough to judge yet, or not TPKT)."""
    return first_dt_data(stream, minimum=2)


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
