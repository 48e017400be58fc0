"""Dangerous S7comm and S7comm-plus requests.

S7comm (function bytes and userdata groups after the Wireshark S7comm dissector, see
:mod:`.functions`): job functions 0x1A-0x1F (download/upload), 0x05 write variable, 0x28
PI services (P_PROGRAM, _INSE, _DELE, _MODU, _GARB, _N_LOGIN_), 0x29 PLC stop; userdata
groups 1 (programmer: modify/force, breakpoints, memory reset), 5 (security), 7 (set
clock), 0xF (NC programming). S7comm-plus: set-variable functions (writes).
"""

from __future__ import annotations

import struct

from otconduit.protocols.danger import DangerRule, Example, Hit, OpView

_JOBS = {
    "PLC Stop": "controller-stop",
    "Request Download": "program-download",
    "Download Block": "program-download",
    "Download Ended": "program-download",
    "Start Upload": "program-upload",
    "Upload": "program-upload",
    "End Upload": "program-upload",
    "Write Variable": "process-write",
}
_PI = {
    "P_PROGRAM": ("controller-start", "PI service P_PROGRAM (start/restart)"),
    "_INSE": ("program-download", "insert block (activate downloaded block)"),
    "_INS2": ("program-download", "insert block"),
    "_DELE": ("program-modify", "delete block"),
    "_MODU": ("program-modify", "copy RAM to ROM"),
    "_GARB": ("program-modify", "compress memory"),
    "_N_LOGIN_": ("auth-operation", "login"),
    "_N_LOGOUT": ("auth-operation", "logout"),
}
_PROGRAMMER = {
    0x08: ("process-write", "modify variable"),
    0x09: ("process-write", "force"),
    0x0A: ("mode-change", "breakpoint"),
    0x0B: ("mode-change", "exit HOLD"),
    0x0C: ("device-restart", "memory reset"),
}


def classify(op: OpView) -> list[Hit]:
    """Rules an S7comm or S7comm-plus request triggers."""
    if op["protocol"] == "s7comm-plus":
        return _plus(op)
    fn, detail = op["function"], op["detail"]
    if fn in _JOBS:
        return [Hit(_JOBS[fn])]
    if fn == "PLC Control":
        pi = detail.get("pi_service")
        rule, what = _PI.get(pi, ("controller-start", f"PI service {pi}"))
        return [Hit(rule, note=what)]
    group, sub = detail.get("group"), detail.get("subfunction")
    if group == 1 and sub in _PROGRAMMER:
        rule, what = _PROGRAMMER[sub]
        return [Hit(rule, note=what)]
    if group == 5:
        return [Hit("auth-operation", note=f"security function {fn}")]
    if group == 7 and sub in (2, 4):
        return [Hit("time-set", note=fn)]
    if op["operation"] in ("program", "firmware"):
        return [Hit("program-download", note=fn)]
    return []


def _plus(op: OpView) -> list[Hit]:
    # S7comm-plus operations are read, write, session or other (plus.op_class).
    if op["operation"] == "write":
        return [Hit("process-write", note=op["function"])]
    return []


# -- examples: TPKT (RFC 1006 §6) + COTP DT class 0 (ISO 8073 §13.7) + S7 header ----------
def _dt(user_data: bytes) -> bytes:
    return struct.pack(">BBH", 3, 0, 7 + len(user_data)) + bytes([2, 0xF0, 0x80]) + user_data


def _job(param: bytes, data: bytes = b"") -> Example:
    """One job request (S7 header: 0x32, ROSCTR 1, redundancy, PDU ref, lengths)."""
    head = struct.pack(">BBHHHH", 0x32, 1, 0, 1, len(param), len(data))
    return Example(messages=((0, _dt(head + param + data)),))


def _userdata(group: int, sub: int) -> Example:
    """A userdata request (ROSCTR 7): parameter head 00 01 12, length 4, method 0x11,
    type 4 (request) << 4 | group, subfunction, sequence; no data."""
    param = bytes([0, 1, 0x12, 4, 0x11, 0x40 | group, sub, 0])
    data = bytes([0x0A, 0, 0, 0])
    head = struct.pack(">BBHHHH", 0x32, 7, 0, 1, len(param), len(data))
    return Example(messages=((0, _dt(head + param + data)),))


def _pi(service: bytes) -> Example:
    """PI service 0x28: 7 reserved bytes, empty block, service name."""
    return _job(bytes([0x28, 0, 0, 0, 0, 0, 0, 0xFD, 0, 0, len(service)]) + service)


def _block_job(func: int) -> Example:
    """Upload/download job: function, status, reserved (2), upload id (4), file name
    (length, "_" + block type 08 (OB) + number 00001 + "P" passive file system)."""
    return _job(bytes([func, 0, 0, 0, 0, 0, 0, 0, 9]) + b"_0800001P")


_WRITE_VAR = _job(
    bytes([0x05, 1, 0x12, 10, 0x10, 0x02, 0, 2, 0, 1, 0x84, 0, 0, 0]),  # DB1.DBW0
    bytes([0x00, 0x04, 0, 16, 0x12, 0x34]),
)
# S7comm-plus (Wireshark S7comm-plus plugin): 0x72, version 2, data length; opcode 0x31
# request, function 0x0542 Set Multi Variables, sequence, session id, flags; trailer.
_PLUS_BODY = bytes([0x31, 0, 0]) + struct.pack(">HHHIB", 0x0542, 0, 1, 0x3BE, 0x34) + bytes(4)
_PLUS_PDU = bytes([0x72, 2]) + struct.pack(">H", len(_PLUS_BODY)) + _PLUS_BODY + b"\x72\x02\0\0"
_PLUS_SET = Example(messages=((0, _dt(_PLUS_PDU)),))

RULES = (
    DangerRule(
        rule="controller-stop",
        trigger="job 0x29 PLC Stop",
        examples=(_job(bytes([0x29, 0, 0, 0, 0, 0, 9]) + b"P_PROGRAM"),),
    ),
    DangerRule(
        rule="controller-start",
        trigger="PI service P_PROGRAM or one we cannot name",
        examples=(_pi(b"P_PROGRAM"),),
    ),
    DangerRule(
        rule="program-download",
        trigger="jobs 0x1A-0x1C, PI _INSE/_INS2, userdata NC group (0xF)",
        examples=(_block_job(0x1A), _pi(b"_INSE"), _userdata(0xF, 1)),
    ),
    DangerRule(rule="program-upload", trigger="jobs 0x1D-0x1F", examples=(_block_job(0x1D),)),
    DangerRule(
        rule="program-modify",
        trigger="PI _DELE, _MODU, _GARB",
        examples=(_pi(b"_DELE"), _pi(b"_MODU"), _pi(b"_GARB")),
    ),
    DangerRule(
        rule="process-write",
        trigger="job 0x05 Write Var; programmer modify/force; S7comm-plus set-variable",
        examples=(_WRITE_VAR, _userdata(1, 0x08), _PLUS_SET),
    ),
    DangerRule(
        rule="mode-change",
        trigger="programmer breakpoint / exit HOLD (group 1, 0x0A/0x0B)",
        examples=(_userdata(1, 0x0A),),
    ),
    DangerRule(
        rule="device-restart",
        trigger="programmer memory reset (group 1, 0x0C)",
        examples=(_userdata(1, 0x0C),),
    ),
    DangerRule(
        rule="auth-operation",
        trigger="PI _N_LOGIN_/_N_LOGOUT, security group (5)",
        examples=(_pi(b"_N_LOGIN_"), _userdata(5, 1)),
    ),
    DangerRule(
        rule="time-set",
        trigger="time group set clock (group 7, 2 or 4)",
        examples=(_userdata(7, 2),),
    ),
)
