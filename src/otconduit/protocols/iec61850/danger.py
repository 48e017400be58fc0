"""Dangerous MMS requests and GOOSE abuse signals, in the registry's shape
(:mod:`otconduit.protocols.danger`).

MMS (ISO 9506-2 services; IEC 61850-8-1 maps the control model and settings onto them):

- write to ``...$CO$...$Oper`` (operate a controllable object: a breaker, a switch;
  ``$SBOw``/``$SBO``/``$Cancel``: select or cancel, low) -> ``direct-operate``; any other
  write -> ``process-write`` (settings ``$SP$``/``$SG$``/``$SE$``/``$CF$``: medium);
- fileDelete (high), fileRename and obtainFile, fileOpen (low: a file read out) ->
  ``file-operation``;
- start / resume -> ``controller-start``; stop / kill -> ``controller-stop``; reset ->
  ``device-restart``;
- domain download services -> ``program-download``; upload services ->
  ``program-upload``; deleteDomain, create/deleteProgramInvocation -> ``program-modify``;
- an association (ACSE AARQ) authenticated with a password -> ``auth-operation`` (the
  password crossed the network in clear text).

GOOSE (operations of the ``goose`` variant, :mod:`.goose`): sequence anomalies ->
``goose-spoofing``; the test/simulation flag switched on -> ``goose-simulation`` (both
rules of IEC 61850's own, :data:`DEFINES`).

Suggested ATT&CK for ICS techniques are the rules' (``detect/rules.py`` and DEFINES).
:data:`RULES` holds TCP examples the MMS decoder replays; GOOSE examples are Ethernet
frames (:data:`FRAME_RULES`, ``Example.transport == "ethernet"``, each message a whole
frame: destination, source, EtherType, payload) that the registry's harness cannot
replay through a connection factory yet.
"""

from __future__ import annotations

import struct
from typing import Final

from otconduit.protocols.danger import (
    DangerRule,
    Example,
    Hit,
    OpView,
    RuleDefinition,
    SeverityName,
)

DETAIL_KEYS: Final = frozenset(
    {"orphan_response", "variables", "control_variables", "file", "authentication", "anomalies"}
)

_PROGRAM: Final[dict[str, tuple[str, SeverityName | None]]] = {
    "start": ("controller-start", None),
    "resume": ("controller-start", None),
    "stop": ("controller-stop", None),
    "kill": ("controller-stop", None),
    "reset": ("device-restart", None),
    "initiateDownloadSequence": ("program-download", None),
    "downloadSegment": ("program-download", "low"),
    "terminateDownloadSequence": ("program-download", None),
    "requestDomainDownload": ("program-download", None),
    "loadDomainContent": ("program-download", None),
    "initiateUploadSequence": ("program-upload", None),
    "uploadSegment": ("program-upload", "low"),
    "terminateUploadSequence": ("program-upload", None),
    "requestDomainUpload": ("program-upload", None),
    "storeDomainContent": ("program-upload", None),
    "deleteDomain": ("program-modify", None),
    "createProgramInvocation": ("program-modify", None),
    "deleteProgramInvocation": ("program-modify", None),
    "fileDelete": ("file-operation", "high"),
    "fileRename": ("file-operation", None),
    "obtainFile": ("file-operation", None),
    "fileOpen": ("file-operation", "low"),
}
_SETTINGS: Final = ("$SP$", "$SG$", "$SE$", "$CF$")
_GOOSE_SEVERITY: Final = {
    "replay": "high",
    "stnum-jump": "high",
    "second-publisher": "high",
    "sqnum-reset": "medium",
    "stnum-reset": "medium",
    "time-backwards": "medium",
    "confrev-changed": "low",
}


def classify(op: OpView) -> list[Hit]:
    """Rules an MMS request or a GOOSE message triggers."""
    detail = op["detail"]
    if op["protocol"] == "goose":
        return _goose(detail.get("anomalies") or [])
    if detail.get("orphan_response"):
        return []
    fn = op["function"]
    if fn == "write":
        controls = detail.get("control_variables") or []
        if controls:
            select = all(not c.endswith("$Oper") for c in controls)
            return [Hit("direct-operate", "low" if select else None, ", ".join(controls[:4]))]
        names = detail.get("variables") or []
        setting = any(tag in n for n in names for tag in _SETTINGS)
        return [Hit("process-write", "medium" if setting else None, ", ".join(names[:4]))]
    if fn in _PROGRAM:
        rule, severity = _PROGRAM[fn]
        return [Hit(rule, severity, f"{fn} {detail.get('file', '')}".strip())]
    if fn == "initiate" and detail.get("authentication") == "password":
        return [Hit("auth-operation", None, "ACSE password authentication in clear text")]
    return []


def _goose(anomalies: list[str]) -> list[Hit]:
    hits: list[Hit] = []
    for a in anomalies:
        if a == "simulation-set":
            hits.append(Hit("goose-simulation", note="test/simulation flag set"))
        elif a in _GOOSE_SEVERITY:
            severity = _GOOSE_SEVERITY[a]
            hits.append(Hit("goose-spoofing", severity, a))  # type: ignore[arg-type]
    return hits


DEFINES: Final = (
    RuleDefinition(
        id="goose-spoofing",
        title="GOOSE sequence anomaly (replay, injection or second publisher)",
        category="protocol-abuse",
        severity="high",
        techniques=("T0830", "T0856", "T0855", "T0831"),
        description="A GOOSE control block's state and sequence numbers went backwards, "
        "repeated, jumped, restarted, or came from a second MAC address. Subscribers "
        "act on the highest state number they see: an injected or replayed message can "
        "trip or block breakers. A publisher restart or a lossy capture explains some.",
    ),
    RuleDefinition(
        id="goose-simulation",
        title="GOOSE test/simulation flag set",
        category="protocol-abuse",
        severity="medium",
        techniques=("T0856", "T0855"),
        description="A GOOSE publisher sent messages flagged test or simulation on a live "
        "network: subscribers in simulation mode take them instead of the real ones.",
    ),
)


# -- examples: MMS PDUs in COTP DT TPDUs (RFC 1006 §6, ISO 8073 §13.7) --------------------
def _tlv(identifier: bytes, content: bytes) -> bytes:
    n = len(content)
    length = (
        bytes([n])
        if n < 0x80
        else bytes([0x81, n])
        if n < 0x100
        else b"\x82" + struct.pack(">H", n)
    )
    return identifier + length + content


def _dt(user_data: bytes) -> bytes:
    return struct.pack(">BBH", 3, 0, 7 + len(user_data)) + bytes([2, 0xF0, 0x80]) + user_data


def _confirmed(service: bytes, invoke: int = 1) -> Example:
    """A confirmed-RequestPDU [0]: invokeID, then the service element."""
    pdu = _tlv(b"\xa0", _tlv(b"\x02", bytes([invoke])) + service)
    return Example(messages=((0, _dt(pdu)),))


def _vis(text: str, identifier: bytes = b"\x1a") -> bytes:
    return _tlv(identifier, text.encode())


def _domain_name(domain: str, item: str) -> bytes:
    """ObjectName domain-specific [1] { domainId, itemId }."""
    return _tlv(b"\xa1", _vis(domain) + _vis(item))


def _write(domain: str, item: str, data: bytes) -> Example:
    """Write [5]: listOfVariable [0] { { name [0] ObjectName } }, listOfData [0]."""
    spec = _tlv(b"\xa0", _tlv(b"\x30", _tlv(b"\xa0", _domain_name(domain, item))))
    return _confirmed(_tlv(b"\xa5", spec + _tlv(b"\xa0", data)))


def _program(tag: int, name: str) -> Example:
    """Start [40] / stop [41] / reset [43]: programInvocationName [0] (+ for start an
    empty executionArgument [1])."""
    extra = b"\x81\x00" if tag == 40 else b""
    return _confirmed(_tlv(bytes([0xBF, tag]), _vis(name, b"\x80") + extra))


_OPER = _write(
    "IED1LD0",
    "CSWI1$CO$Pos$Oper",
    # Oper structure: ctlVal TRUE, origin {orCat 3, orIdent}, ctlNum, T, Test, Check
    _tlv(
        b"\xa2",
        b"\x83\x01\xff"
        + _tlv(b"\xa2", b"\x85\x01\x03" + _tlv(b"\x89", b"HMI"))
        + b"\x86\x01\x01"
        + _tlv(b"\x91", bytes(8))
        + b"\x83\x01\x00"
        + _tlv(b"\x84", b"\x06\x00"),
    ),
)
_SETTING = _write(
    "IED1PROT", "PTOC1$SP$StrVal$setMag$f", _tlv(b"\x87", b"\x08" + struct.pack(">f", 2.5))
)
_FILE_DELETE = _confirmed(_tlv(b"\xbf\x4c", _vis("COMTRADE/fault1.cfg", b"\x19")))
_DOWNLOAD = _confirmed(_tlv(b"\xba", _vis("IED1LD0", b"\x80") + _tlv(b"\xa1", _vis("x"))))
_UPLOAD = _confirmed(_tlv(b"\x9d", b"IED1LD0"))
_DELETE_PI = _confirmed(_tlv(b"\x9f\x27", b"Application_1"))


def _password_association() -> Example:
    """Session CONNECT (X.225: SI 13; Connect/Accept item, User Data PGI 193) with a
    presentation CP-type (X.226: mode normal, user data fully encoded) carrying an ACSE
    AARQ (X.227: MMS context, password mechanism, authentication value) whose
    user-information holds an MMS initiate-RequestPDU."""
    initiate = _tlv(
        b"\xa8",
        b"\x80\x03\x00\xfd\xe8\x81\x01\x05\x82\x01\x05\x83\x01\x0a"
        + _tlv(b"\xa4", b"\x80\x01\x01\x81\x03\x05\xf1\x00\x82\x0c\x03\xee\x1c" + bytes(9)),
    )
    external = _tlv(b"\x28", b"\x02\x01\x03" + _tlv(b"\xa0", initiate))
    aarq = _tlv(
        b"\x60",
        b"\xa1\x07\x06\x05\x28\xca\x22\x02\x03"  # application context 1.0.9506.2.3
        + b"\x8a\x02\x06\x80"  # sender ACSE requirements: authentication
        + b"\x8b\x03\x52\x03\x01"  # mechanism 2.2.3.1 (password)
        + _tlv(b"\xac", _vis("secret", b"\x80"))
        + _tlv(b"\xbe", external),
    )
    pdv = _tlv(b"\x30", b"\x02\x01\x01" + _tlv(b"\xa0", aarq))
    cp = _tlv(
        b"\x31",
        _tlv(b"\xa0", b"\x80\x01\x01")
        + _tlv(b"\xa2", b"\x81\x04\x00\x00\x00\x01\x82\x04\x00\x00\x00\x01" + _tlv(b"\x61", pdv)),
    )
    params = b"\x05\x06\x13\x01\x00\x16\x01\x02" + bytes([0xC1, len(cp)]) + cp
    spdu = bytes([13, len(params)]) + params
    return Example(messages=((0, _dt(spdu)),))


RULES: Final = (
    DangerRule(
        rule="direct-operate",
        trigger="write to an IEC 61850 control object ($CO$...$Oper; select/cancel: low)",
        examples=(_OPER,),
    ),
    DangerRule(
        rule="process-write",
        trigger="any other MMS write (settings $SP$/$SG$/$SE$/$CF$: medium)",
        examples=(_SETTING,),
    ),
    DangerRule(
        rule="file-operation",
        trigger="fileDelete (high), fileRename, obtainFile, fileOpen (low)",
        examples=(_FILE_DELETE,),
    ),
    DangerRule(rule="controller-start", trigger="start, resume", examples=(_program(40, "P1"),)),
    DangerRule(rule="controller-stop", trigger="stop, kill", examples=(_program(41, "P1"),)),
    DangerRule(rule="device-restart", trigger="reset", examples=(_program(43, "P1"),)),
    DangerRule(rule="program-download", trigger="domain download services", examples=(_DOWNLOAD,)),
    DangerRule(rule="program-upload", trigger="domain upload services", examples=(_UPLOAD,)),
    DangerRule(
        rule="program-modify",
        trigger="deleteDomain, create/deleteProgramInvocation",
        examples=(_DELETE_PI,),
    ),
    DangerRule(
        rule="auth-operation",
        trigger="ACSE association with password authentication",
        examples=(_password_association(),),
    ),
)


# -- GOOSE examples: whole Ethernet frames (IEC 61850-8-1 Annex C) ------------------------
def goose_frame(st_num: int, sq_num: int, *, simulation: bool = False) -> bytes:
    """A GOOSE frame of control block IED1LD0/LLN0$GO$gcb1 with one boolean."""
    pdu = _tlv(
        b"\x61",
        _vis("IED1LD0/LLN0$GO$gcb1", b"\x80")
        + b"\x81\x02\x07\xd0"
        + _vis("IED1LD0/LLN0$DS1", b"\x82")
        + _vis("gcb1", b"\x83")
        + _tlv(b"\x84", struct.pack(">I", 1_700_000_000 + st_num) + b"\x00\x00\x00\x0a")
        + _tlv(b"\x85", struct.pack(">I", st_num))
        + _tlv(b"\x86", struct.pack(">I", sq_num))
        + (b"\x87\x01\xff" if simulation else b"\x87\x01\x00")
        + b"\x88\x01\x01\x89\x01\x00\x8a\x01\x01"
        + _tlv(b"\xab", b"\x83\x01\x00"),
    )
    body = struct.pack(">HHHH", 0x0001, 8 + len(pdu), 0, 0) + pdu
    return bytes.fromhex("010ccd0100010a0000000001") + b"\x88\xb8" + body


def _frames(*frames: bytes) -> Example:
    return Example(messages=tuple((0, f) for f in frames), transport="ethernet")


FRAME_RULES: Final = (
    DangerRule(
        rule="goose-spoofing",
        trigger="GOOSE replay, stNum jump or reset, sqNum reset, second publisher",
        examples=(
            _frames(goose_frame(5, 0), goose_frame(5, 1), goose_frame(5, 1)),  # replay
            _frames(goose_frame(5, 0), goose_frame(9, 0)),  # stNum jump
        ),
    ),
    DangerRule(
        rule="goose-simulation",
        trigger="test/simulation flag on",
        examples=(_frames(goose_frame(5, 0), goose_frame(6, 0, simulation=True)),),
    ),
)
