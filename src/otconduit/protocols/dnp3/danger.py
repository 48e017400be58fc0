"""Dangerous DNP3 requests: IEEE 1815 §4.2.2.5 function codes (operate, restarts,
application start/stop, configuration, unsolicited, files, authentication) and what a
WRITE carries: object groups 50/51 (time), 70 (file), 120 (authentication), and 80
(IIN: clearing the restart bit is routine, not a write)."""

from __future__ import annotations

import struct

from otconduit.protocols.danger import DangerRule, Example, Hit, OpView
from otconduit.protocols.dnp3.link import crc16

_BY_FUNCTION = {
    "SELECT": "direct-operate",
    "OPERATE": "direct-operate",
    "DIRECT_OPERATE": "direct-operate",
    "DIRECT_OPERATE_NR": "direct-operate",
    "COLD_RESTART": "device-restart",
    "WARM_RESTART": "device-restart",
    "INITIALIZE_DATA": "device-restart",
    "INITIALIZE_APPL": "controller-start",
    "START_APPL": "controller-start",
    "STOP_APPL": "controller-stop",
    "SAVE_CONFIG": "program-modify",
    "ACTIVATE_CONFIG": "program-download",
    "DISABLE_UNSOLICITED": "unsolicited-disabled",
    "OPEN_FILE": "file-operation",
    "CLOSE_FILE": "file-operation",
    "DELETE_FILE": "file-operation",
    "GET_FILE_INFO": "file-operation",
    "AUTHENTICATE_FILE": "file-operation",
    "ABORT_FILE": "file-operation",
}
_AUTH = frozenset({"AUTHENTICATE_REQ", "AUTHENTICATE_REQ_NR"})


def classify(op: OpView) -> list[Hit]:
    """Rules a DNP3 request triggers (a WRITE may trigger several)."""
    fn, detail = op["function"], op["detail"]
    if fn in _BY_FUNCTION:
        return [Hit(_BY_FUNCTION[fn])]
    if fn in _AUTH:
        return [Hit("auth-operation", "low", note="secure authentication")]
    if fn != "WRITE":
        return []
    groups = {o.get("group") for o in detail.get("objects", [])}
    hits: list[Hit] = []
    if groups & {50, 51}:
        # Masters set outstation clocks routinely (time sync); still worth a low alert.
        hits.append(Hit("time-set", "low", note="DNP3 time write (g50/g51)"))
    if 70 in groups:
        hits.append(Hit("file-operation", note="file transfer object g70"))
    if 120 in groups:
        hits.append(Hit("auth-operation", note="authentication object g120"))
    other = groups - {50, 51, 70, 80, 120}
    if other:
        named = ", g".join(map(str, sorted(g for g in other if g is not None)))
        hits.append(Hit("process-write", note=f"objects g{named}"))
    return hits


# -- examples: one request fragment in one transport segment in one link frame -----------
def _request(fc: int, objects: bytes = b"") -> Example:
    """Master 1 to outstation 10: link header (1815 §9.2.4.1, CRC per 16-byte block),
    transport header FIR|FIN (§8.2.1), application control FIR|FIN seq 1, function."""
    user = bytes([0xC0, 0xC1, fc]) + objects
    head = b"\x05\x64" + bytes([5 + len(user), 0xC4]) + struct.pack("<HH", 10, 1)
    out = head + crc16(head).to_bytes(2, "little")
    for i in range(0, len(user), 16):
        out += user[i : i + 16] + crc16(user[i : i + 16]).to_bytes(2, "little")
    return Example(messages=((0, out),))


# g12v1 CROB, qualifier 0x17 (1-octet count and index), one point: index 3, latch on.
_CROB = bytes([12, 1, 0x17, 1, 3]) + struct.pack("<BBIIB", 0x03, 1, 100, 0, 0)
_G50_TIME = bytes([50, 1, 0x07, 1]) + bytes(6)  # g50v1 absolute time, qualifier 7, count 1
_G70_FILE = bytes([70, 2, 0x5B, 1]) + struct.pack("<H", 4) + bytes(4)  # g70v2 file authentication
_G120_AUTH = bytes([120, 7, 0x5B, 1]) + struct.pack("<H", 4) + bytes(4)  # g120v7 error
_G41_AO = bytes([41, 2, 0x17, 1, 0]) + struct.pack("<hB", 500, 0)  # g41v2 16-bit output

RULES = (
    DangerRule(
        rule="direct-operate",
        trigger="SELECT, OPERATE, DIRECT_OPERATE(_NR)",
        examples=(_request(3, _CROB), _request(5, _G41_AO)),
    ),
    DangerRule(
        rule="device-restart",
        trigger="COLD_RESTART, WARM_RESTART, INITIALIZE_DATA",
        examples=(_request(13), _request(14)),
    ),
    DangerRule(
        rule="controller-start", trigger="INITIALIZE_APPL, START_APPL", examples=(_request(17),)
    ),
    DangerRule(rule="controller-stop", trigger="STOP_APPL", examples=(_request(18),)),
    DangerRule(rule="program-modify", trigger="SAVE_CONFIG", examples=(_request(19),)),
    DangerRule(rule="program-download", trigger="ACTIVATE_CONFIG", examples=(_request(31),)),
    DangerRule(
        rule="unsolicited-disabled",
        trigger="DISABLE_UNSOLICITED",
        examples=(_request(21, bytes([60, 2, 6, 60, 3, 6, 60, 4, 6])),),
    ),
    DangerRule(
        rule="file-operation",
        trigger="file functions 25-30, WRITE of g70",
        examples=(_request(27), _request(2, _G70_FILE)),
    ),
    DangerRule(
        rule="auth-operation",
        trigger="AUTHENTICATE_REQ(_NR) (low), WRITE of g120",
        examples=(_request(32), _request(2, _G120_AUTH)),
    ),
    DangerRule(
        rule="time-set", trigger="WRITE of g50/g51 (low)", examples=(_request(2, _G50_TIME),)
    ),
    DangerRule(
        rule="process-write",
        trigger="WRITE of any other group but g80 (IIN)",
        examples=(_request(2, bytes([10, 1, 0x00, 0, 0, 0x01])),),
    ),
)
