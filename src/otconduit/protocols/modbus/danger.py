"""Dangerous Modbus requests: diagnostics sub-functions 1 (restart communications) and 4
(force listen-only), MB §6.8; the legacy FC 19 link reset; programming and firmware
codes (Modicon 9/13/18/40/126, UMAS 90, FC 125); writes."""

from __future__ import annotations

import struct

from otconduit.protocols.danger import DangerRule, Example, Hit, OpView

_DIAG = {
    1: ("comm-restart", "restart communications"),
    4: ("listen-only", "force listen-only mode"),
}
_PROGRAM_NAMES = frozenset({"PROGRAM_484", "PROGRAM_584_984", "PROGRAM_884_U84", "PROGRAM_CONCEPT"})


def classify(op: OpView) -> list[Hit]:
    """Rules a Modbus request triggers."""
    fn, cls, detail = op["function"], op["operation"], op["detail"]
    if fn == "DIAGNOSTICS":
        sub = detail.get("subfunction")
        if sub in _DIAG:
            rule, what = _DIAG[sub]
            return [Hit(rule, note=f"diagnostics sub-function {sub}: {what}")]
        return []
    if fn == "RESET_COMM_LINK_884_U84":
        return [Hit("comm-restart", note="reset communications link (884/U84)")]
    if cls == "firmware":
        return [Hit("firmware-change", note=fn)]
    if cls == "program" or fn in _PROGRAM_NAMES:
        return [Hit("program-download", note=fn)]
    if cls == "write":
        return [Hit("process-write")]
    return []


def _request(pdu: bytes) -> Example:
    """One request ADU (MBAP header, IG §3.1.3) to unit 1."""
    return Example(messages=((0, struct.pack(">HHHB", 1, 0, len(pdu) + 1, 1) + pdu),))


RULES = (
    DangerRule(
        rule="comm-restart",
        trigger="FC 8 sub-function 1, FC 19 (884/U84 reset communications link)",
        examples=(_request(bytes.fromhex("0800010000")), _request(bytes([19]))),
    ),
    DangerRule(
        rule="listen-only",
        trigger="FC 8 sub-function 4",
        examples=(_request(bytes.fromhex("0800040000")),),
    ),
    DangerRule(
        rule="firmware-change",
        trigger="a firmware-class function (FC 125)",
        examples=(_request(bytes([125, 1, 2])),),
    ),
    DangerRule(
        rule="program-download",
        trigger="a program-class function (Modicon 9/13/18/40/126, UMAS 90)",
        examples=(_request(bytes([13, 0, 1])), _request(bytes([90, 0, 0x40]))),
    ),
    DangerRule(
        rule="process-write",
        trigger="a write-class function (5, 6, 15, 16, 21, 22, 23)",
        examples=(_request(bytes.fromhex("0600010003")),),
    ),
)
