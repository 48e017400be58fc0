"""Dangerous IEC 104 operations, as data and in the registry's shape
(:mod:`otconduit.protocols.danger`).

:data:`DANGEROUS` is the table: each entry names the operations it covers (``function``
values of :mod:`.ops`: type mnemonics and U-format functions), an optional condition on
their detail (every listed key must hold one of the listed values), the detection rule
it raises, a severity when it should differ from the rule's default, and suggested
MITRE ATT&CK for ICS techniques (most specific first). Commands are dangerous when
executed: a select (S/E = 1) only arms an output, so it is listed apart, lower. Only
activations count (cause 6): confirmations, terminations, deactivations and mirrored
commands are not requests.

For the registry: :func:`classify`, :data:`DETAIL_KEYS`, :data:`RULES` (one per rule id,
with wire examples that raise it) and :data:`DEFINES` (catalogue rules of IEC 104's own,
``iec104-*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from otconduit.protocols.danger import (
    DangerRule,
    Example,
    Hit,
    OpView,
    RuleDefinition,
    SeverityName,
)

ACTIVATION: Final = 6


@dataclass(frozen=True, slots=True)
class DangerousOperation:
    key: str  # stable id within the protocol
    title: str
    functions: frozenset[str]
    rule: str  # rule id: detect/rules.py, or one of DEFINES
    techniques: tuple[str, ...]  # suggested ATT&CK for ICS ids
    when: tuple[tuple[str, frozenset[Any]], ...] = ()  # detail key -> allowed values
    severity: SeverityName | None = None  # None: the rule's default
    note: str = ""

    def matches(self, function: str, detail: Mapping[str, Any]) -> bool:
        if function not in self.functions:
            return False
        for key, allowed in self.when:
            value = detail.get(key)
            values = value if isinstance(value, list) else [value]
            if not any(v in allowed for v in values if isinstance(v, str | int)):
                return False
        return True


def _f(*names: str) -> frozenset[str]:
    return frozenset(names)


_SWITCHING = _f("C_SC_NA_1", "C_SC_TA_1", "C_DC_NA_1", "C_DC_TA_1", "C_RC_NA_1", "C_RC_TA_1")
_SETPOINTS = _f("C_SE_NA_1", "C_SE_NB_1", "C_SE_NC_1", "C_SE_TA_1", "C_SE_TB_1", "C_SE_TC_1")
_EXECUTE = (("select", frozenset({False})),)
_SELECT = (("select", frozenset({True})),)

DANGEROUS: Final = (
    DangerousOperation(
        "switching-command",
        "Single/double/step command executed (C_SC, C_DC, C_RC)",
        _SWITCHING,
        "direct-operate",
        ("T0855", "T0831"),
        _EXECUTE,
        note="Opens or closes a breaker or switch, or steps a tap changer.",
    ),
    DangerousOperation(
        "switching-select",
        "Single/double/step command selected (select before operate)",
        _SWITCHING,
        "direct-operate",
        ("T0855",),
        _SELECT,
        severity="low",
    ),
    DangerousOperation(
        "setpoint-command",
        "Set-point command executed (C_SE)",
        _SETPOINTS,
        "direct-operate",
        ("T0855", "T0836"),
        _EXECUTE,
    ),
    DangerousOperation(
        "setpoint-select",
        "Set-point command selected (C_SE)",
        _SETPOINTS,
        "direct-operate",
        ("T0855",),
        _SELECT,
        severity="low",
    ),
    DangerousOperation(
        "bitstring-command",
        "Bitstring command (C_BO)",
        _f("C_BO_NA_1", "C_BO_TA_1"),
        "direct-operate",
        ("T0855",),
    ),
    DangerousOperation(
        "reset-process",
        "Reset process command (C_RP_NA_1)",
        _f("C_RP_NA_1"),
        "device-restart",
        ("T0816",),
        note="A general reset restarts the outstation's process; it stops reporting while it does.",
    ),
    DangerousOperation(
        "clock-sync",
        "Clock synchronisation (C_CS_NA_1)",
        _f("C_CS_NA_1"),
        "time-set",
        ("T0836", "T0855"),
        severity="low",
        note="Event time stamps follow the outstation clock: routine from the SCADA "
        "master, suspicious from anyone else.",
    ),
    DangerousOperation(
        "parameter-change",
        "Measured value parameter set or activated (P_ME, P_AC)",
        _f("P_ME_NA_1", "P_ME_NB_1", "P_ME_NC_1", "P_AC_NA_1"),
        "process-write",
        ("T0836", "T0838"),
        severity="medium",
        note="Thresholds, smoothing and limits decide what is reported and alarmed.",
    ),
    DangerousOperation(
        "counter-reset",
        "Counter interrogation with freeze and reset (C_CI_NA_1)",
        _f("C_CI_NA_1"),
        "process-write",
        ("T0836",),
        (("freeze", frozenset({"freeze_and_reset", "reset"})),),
        severity="low",
    ),
    DangerousOperation(
        "interrogation",
        "General or counter interrogation (C_IC_NA_1, C_CI_NA_1)",
        _f("C_IC_NA_1", "C_CI_NA_1"),
        "iec104-interrogation",
        ("T0861", "T0801"),
        note="Routine from the SCADA master; from any other host it maps every point.",
    ),
    DangerousOperation(
        "stop-data-transfer",
        "Data transfer stopped (STOPDT act)",
        _f("STOPDT"),
        "iec104-stop-data-transfer",
        ("T0804", "T0814"),
        note="The outstation stops sending monitor information on this connection.",
    ),
    DangerousOperation(
        "file-transfer",
        "File transfer (F_*)",
        _f(
            "F_FR_NA_1",
            "F_SR_NA_1",
            "F_SC_NA_1",
            "F_LS_NA_1",
            "F_AF_NA_1",
            "F_SG_NA_1",
            "F_DR_TA_1",
            "F_SC_NB_1",
        ),
        "file-operation",
        ("T0845", "T0843"),
        severity="low",
    ),
)

DETAIL_KEYS: Final = frozenset({"cot_code", *(key for d in DANGEROUS for key, _ in d.when)})
_UNCONDITIONAL: Final = frozenset({"STOPDT"}) | frozenset(
    f for d in DANGEROUS if d.rule == "file-operation" for f in d.functions
)


def dangerous(function: str, detail: Mapping[str, Any]) -> list[DangerousOperation]:
    """The entries an operation (its ``function`` and ``detail``) matches."""
    return [d for d in DANGEROUS if d.matches(function, detail)]


def classify(op: OpView) -> list[Hit]:
    """Rules an IEC 104 activation (or STOPDT, or a file transfer) triggers."""
    function, detail = op["function"], op["detail"]
    if function not in _UNCONDITIONAL and detail.get("cot_code") != ACTIVATION:
        return []
    hits: dict[str, Hit] = {}
    for entry in dangerous(function, detail):
        if entry.rule not in hits:
            hits[entry.rule] = Hit(entry.rule, entry.severity, note=entry.title)
    return list(hits.values())


DEFINES: Final = (
    RuleDefinition(
        id="iec104-interrogation",
        title="IEC 104 general or counter interrogation",
        category="reconnaissance",
        severity="info",
        techniques=("T0861", "T0801"),
        description="An IEC 60870-5-104 station or counter interrogation: the outstation "
        "sends every point it has. The SCADA master does it after every connection; "
        "from any other host it maps the substation.",
    ),
    RuleDefinition(
        id="iec104-stop-data-transfer",
        title="IEC 104 data transfer stopped (STOPDT)",
        category="controller-state",
        severity="medium",
        techniques=("T0804", "T0814"),
        description="STOPDT act tells the outstation to stop sending monitor information "
        "(and to stop accepting commands) on the connection: the station goes blind to "
        "it until STARTDT.",
    ),
)


# -- examples: APDUs from the controlling station (104 §5, ASDU per 101 §7) -------------
def _apdu(ns: int, asdu: bytes) -> bytes:
    control = bytes([(ns << 1) & 0xFF, ns >> 7, 0, 0])
    return bytes([0x68, 4 + len(asdu)]) + control + asdu


def _activation(type_id: int, ioa: int, element: bytes, ns: int = 0) -> bytes:
    """Type, one object, cause 6 (activation), originator 0, common address 1."""
    head = bytes([type_id, 0x01, 0x06, 0x00, 0x01, 0x00])
    return _apdu(ns, head + ioa.to_bytes(3, "little") + element)


_STARTDT = bytes([0x68, 0x04, 0x07, 0x00, 0x00, 0x00])


def _tcp(*apdus: bytes) -> Example:
    return Example(messages=((0, _STARTDT), *((0, a) for a in apdus)))


_CP56 = bytes([0x10, 0x27, 0x1E, 0x0C, 0x15, 0x06, 0x19])  # 2025-06-21 12:30:10.000

RULES: Final = (
    DangerRule(
        rule="direct-operate",
        trigger="C_SC/C_DC/C_RC/C_SE/C_BO activation (select: low)",
        examples=(
            _tcp(_activation(45, 1001, b"\x01")),  # single command, execute, on
            _tcp(_activation(46, 1002, b"\x82"), _activation(46, 1002, b"\x02", 1)),
            _tcp(_activation(50, 2001, b"\x00\x00\xa0\x41\x00")),  # short float 20.0
            _tcp(_activation(51, 3001, b"\x0f\x00\x00\x00")),
        ),
    ),
    DangerRule(
        rule="device-restart",
        trigger="C_RP_NA_1 activation",
        examples=(_tcp(_activation(105, 0, b"\x01")),),
    ),
    DangerRule(
        rule="time-set",
        trigger="C_CS_NA_1 activation (low)",
        examples=(_tcp(_activation(103, 0, _CP56)),),
    ),
    DangerRule(
        rule="process-write",
        trigger="P_ME/P_AC activation (medium), C_CI_NA_1 with freeze and reset (low)",
        examples=(
            _tcp(_activation(112, 1300, b"\x00\x00\x80\x3f\x01")),  # threshold 1.0
            _tcp(_activation(101, 0, b"\x85")),  # general counter, freeze and reset
        ),
    ),
    DangerRule(
        rule="iec104-interrogation",
        trigger="C_IC_NA_1, C_CI_NA_1 activation",
        examples=(_tcp(_activation(100, 0, b"\x14")),),
    ),
    DangerRule(
        rule="iec104-stop-data-transfer",
        trigger="STOPDT act",
        examples=(_tcp(bytes([0x68, 0x04, 0x13, 0x00, 0x00, 0x00])),),
    ),
    DangerRule(
        rule="file-operation",
        trigger="F_* file transfer (low)",
        examples=(_tcp(_activation(122, 0, b"\x01\x00\x01\x01")),),
    ),
)
