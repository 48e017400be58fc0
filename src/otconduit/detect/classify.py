"""Which rules a single decoded operation triggers (dangerous commands and writes).

Input is the operation as the store returns it (``views.operations`` dict shape);
output is a list of :class:`Hit` (rule id, optional severity override, a short note).
Only requests matter: responses and unsolicited reports are the device talking.

The tables below follow each protocol's own vocabulary:
- Modbus Application Protocol v1.1b3 §6.8 (diagnostics sub-functions 1 restart
  communications, 4 force listen-only), FC 125/126 (firmware replacement, vendor).
- S7comm: job functions 0x1A-0x1F (download/upload), 0x28 PI services (P_PROGRAM,
  _INSE, _DELE, _MODU, _GARB, _N_LOGIN_), 0x29 PLC stop; userdata groups 1
  (programmer: modify/force, memory reset, breakpoints), 5 (security), 7 (set clock).
- CIP: ``detail["dangerous"]`` set by the decoder (see protocols/enip/classify.py); the
  File object (0x37) upload/download services (Vol 1 §5-42) tell uploads from downloads.
- DNP3 IEEE 1815 §4.2.2.5 function codes; object groups 50/51 (time), 70 (file),
  120 (authentication), 80 (IIN: clearing the restart bit is routine, not a write).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otconduit.detect.rules import Severity


@dataclass(frozen=True, slots=True)
class Hit:
    rule: str
    severity: Severity | None = None  # None: the rule's default
    note: str = ""


# -- Modbus ---------------------------------------------------------------------------
_MODBUS_DIAG = {
    1: ("comm-restart", "restart communications"),
    4: ("listen-only", "force listen-only mode"),
}
_MODBUS_PROGRAM_NAMES = frozenset(
    {"PROGRAM_484", "PROGRAM_584_984", "PROGRAM_884_U84", "PROGRAM_CONCEPT"}
)


def _modbus(op: dict[str, Any]) -> list[Hit]:
    fn, cls, detail = op["function"], op["operation"], op["detail"]
    if fn == "DIAGNOSTICS":
        sub = detail.get("subfunction")
        if sub in _MODBUS_DIAG:
            rule, what = _MODBUS_DIAG[sub]
            return [Hit(rule, note=f"diagnostics sub-function {sub}: {what}")]
        return []
    if fn == "RESET_COMM_LINK_884_U84":
        return [Hit("comm-restart", note="reset communications link (884/U84)")]
    if cls == "firmware":
        return [Hit("firmware-change", note=fn)]
    if cls == "program" or fn in _MODBUS_PROGRAM_NAMES:
        return [Hit("program-download", note=fn)]
    if cls == "write":
        return [Hit("process-write")]
    if cls == "control":
        return [Hit("controller-start", note=fn)]
    return []


# -- S7comm ---------------------------------------------------------------------------
_S7_JOBS = {
    "PLC Stop": "controller-stop",
    "Request Download": "program-download",
    "Download Block": "program-download",
    "Download Ended": "program-download",
    "Start Upload": "program-upload",
    "Upload": "program-upload",
    "End Upload": "program-upload",
    "Write Var": "process-write",
}
_S7_PI = {
    "P_PROGRAM": ("controller-start", "PI service P_PROGRAM (start/restart)"),
    "_INSE": ("program-download", "insert block (activate downloaded block)"),
    "_INS2": ("program-download", "insert block"),
    "_DELE": ("program-modify", "delete block"),
    "_MODU": ("program-modify", "copy RAM to ROM"),
    "_GARB": ("program-modify", "compress memory"),
    "_N_LOGIN_": ("auth-operation", "login"),
    "_N_LOGOUT": ("auth-operation", "logout"),
}
_S7_PROGRAMMER = {
    0x08: ("process-write", "modify variable"),
    0x09: ("process-write", "force"),
    0x0A: ("mode-change", "breakpoint"),
    0x0B: ("mode-change", "exit HOLD"),
    0x0C: ("device-restart", "memory reset"),
}


def _s7(op: dict[str, Any]) -> list[Hit]:
    fn, detail = op["function"], op["detail"]
    if fn in _S7_JOBS:
        return [Hit(_S7_JOBS[fn])]
    if fn == "PLC Control":
        pi = detail.get("pi_service")
        rule, what = _S7_PI.get(pi, ("controller-start", f"PI service {pi}"))
        return [Hit(rule, note=what)]
    group, sub = detail.get("group"), detail.get("subfunction")
    if group == 1 and sub in _S7_PROGRAMMER:
        rule, what = _S7_PROGRAMMER[sub]
        return [Hit(rule, note=what)]
    if group == 5:
        return [Hit("auth-operation", note=f"security function {fn}")]
    if group == 7 and sub in (2, 4):
        return [Hit("time-set", note=fn)]
    if op["operation"] in ("program", "firmware"):
        return [Hit("program-download", note=fn)]
    return []


def _s7plus(op: dict[str, Any]) -> list[Hit]:
    cls = op["operation"]
    if cls == "write":
        return [Hit("process-write", note=op["function"])]
    if cls in ("program", "firmware"):
        return [Hit("program-download", note=op["function"])]
    if cls == "control":
        return [Hit("controller-start", note=op["function"])]
    return []


# -- CIP ------------------------------------------------------------------------------
_CIP_DANGEROUS = {
    "firmware": "firmware-change",
    "reset": "device-restart",
    "start": "controller-start",
    "stop": "controller-stop",
    "mode_change": "mode-change",
    "drive_control": "drive-control",
    "ip_address_change": "network-config-change",
    "time_set": "time-set",
}
_FILE_OBJECT = 0x37
_FILE_UPLOAD = frozenset({0x4B, 0x4D, 0x4F})  # initiate upload, partial read, upload transfer
_FILE_DOWNLOAD = frozenset({0x4C, 0x4E, 0x50})  # initiate download, partial write, transfer
_FILE_CLEAR = 0x51
# Generic CIP reads (Get Attribute*, Logix Read Tag/Fragmented, Get Instance Attr List).
_READ_SERVICES = frozenset({0x01, 0x03, 0x0E, 0x4B, 0x4C, 0x4F, 0x52, 0x55})


def _cip_program(op: dict[str, Any]) -> Hit:
    service = op["function_code"] & 0x7F
    class_id = op["detail"].get("class_id")
    if class_id == _FILE_OBJECT:
        if service in _FILE_UPLOAD:
            return Hit("program-upload", note="File object upload")
        if service == _FILE_CLEAR:
            return Hit("program-modify", note="File object cleared")
        return Hit("program-download", note="File object download")
    if service in _READ_SERVICES:
        return Hit("program-upload", note=f"read of program object class 0x{class_id or 0:02x}")
    return Hit("program-download", note=f"write to program object class 0x{class_id or 0:02x}")


def _cip(op: dict[str, Any]) -> list[Hit]:
    detail = op["detail"]
    kind = detail.get("dangerous")
    if kind == "program":
        return [_cip_program(op)]
    if kind in _CIP_DANGEROUS:
        note = op["function"]
        if kind == "reset" and "reset_type" in detail:
            note += f" (reset type {detail['reset_type']})"
        return [Hit(_CIP_DANGEROUS[kind], note=note)]
    if op["operation"] == "write":
        return [Hit("process-write", note=op["function"])]
    return []


# -- DNP3 -----------------------------------------------------------------------------
_DNP3 = {
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
_DNP3_AUTH = frozenset({"AUTHENTICATE_REQ", "AUTHENTICATE_REQ_NR"})


def _dnp3(op: dict[str, Any]) -> list[Hit]:
    fn, detail = op["function"], op["detail"]
    if fn in _DNP3:
        return [Hit(_DNP3[fn])]
    if fn in _DNP3_AUTH:
        return [Hit("auth-operation", Severity.LOW, note="secure authentication")]
    if fn != "WRITE":
        return []
    groups = {o.get("group") for o in detail.get("objects", [])}
    hits: list[Hit] = []
    if groups & {50, 51}:
        # Masters set outstation clocks routinely (time sync); still worth a low alert.
        hits.append(Hit("time-set", Severity.LOW, note="DNP3 time write (g50/g51)"))
    if 70 in groups:
        hits.append(Hit("file-operation", note="file transfer object g70"))
    if 120 in groups:
        hits.append(Hit("auth-operation", note="authentication object g120"))
    other = groups - {50, 51, 70, 80, 120}
    if other:
        hits.append(
            Hit(
                "process-write",
                note=f"objects g{', g'.join(map(str, sorted(g for g in other if g is not None)))}",
            )
        )
    return hits


_BY_PROTOCOL = {
    "modbus": _modbus,
    "s7comm": _s7,
    "s7comm-plus": _s7plus,
    "cip": _cip,
    "enip": _cip,
    "dnp3": _dnp3,
}

# Operation classes that can never trigger an op-level rule: the scan skips them.
QUIET_CLASSES = frozenset({"read", "identity", "diagnostic"})


def classify(op: dict[str, Any]) -> list[Hit]:
    """Rules this operation triggers (empty for routine traffic)."""
    fn = _BY_PROTOCOL.get(op["protocol"])
    if fn is None:
        if op["operation"] == "write":
            return [Hit("process-write", note=op["function"])]
        return []
    return fn(op)
