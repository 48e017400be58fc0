"""Content-based IEC 104 recognition from the first bytes of each direction.

A direction is evidence when it starts with whole APDUs (104 §5.1): start octet 0x68, a
length 4..253, a control field that follows the rules of its format, and, for I-format
APDUs, an ASDU with a named type id and a cause of transmission 1..47. Two such APDUs
tiling one direction, or one on the well-known port (2404), or one U-format act (what
every connection starts with: STARTDT or TESTFR act) decide it. Random bytes pass the
start octet, the length and a legal control field about 1 time in 10**4 per APDU, so
two in a row is strong evidence anywhere.
"""

from __future__ import annotations

from typing import Final

from otconduit.protocols.iec104 import types as T
from otconduit.protocols.iec104.apci import MAX_LENGTH, MIN_LENGTH, START, classify_control

MAX_APDUS: Final = 8
_ACTS: Final = frozenset({0x07, 0x13, 0x43})


def _walk(data: bytes) -> tuple[int, bool, bool]:
    """(valid APDUs from offset 0, whether what follows them is a clean ending, whether
    the first is a U-format act)."""
    pos = count = 0
    act = False
    while pos < len(data) and count < MAX_APDUS:
        if len(data) - pos < 2:
            return count, data[pos] == START, act
        length = data[pos + 1]
        if data[pos] != START or not MIN_LENGTH <= length <= MAX_LENGTH:
            return count, False, act
        total = 2 + length
        if pos + total > len(data):
            return count, True, act  # cut short: neutral
        control = data[pos + 2 : pos + 6]
        kind, problem = classify_control(control, total - 6)
        if problem is not None:
            return count, False, act
        if kind == "I":
            type_id, cot = data[pos + 6], data[pos + 8] & 0x3F
            if type_id not in T.TYPE_NAMES or not 1 <= cot <= 47:
                return count, False, act
        if count == 0:
            act = kind == "U" and control[0] in _ACTS
        count += 1
        pos += total
    return count, True, act


def iec104_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """True: IEC 104. False: both directions have bytes and neither starts with a valid
    APDU. None: not enough data yet."""
    c_n, c_clean, c_act = _walk(client)
    s_n, s_clean, s_act = _walk(server)
    for n, clean, act in ((c_n, c_clean, c_act), (s_n, s_clean, s_act)):
        if clean and (n >= 2 or (n == 1 and (on_known_port or act))):
            return True
    if client and server and c_n == 0 and s_n == 0 and not (c_clean and s_clean):
        return False
    return None
