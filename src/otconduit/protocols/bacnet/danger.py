"""Dangerous BACnet operations, as data and in the registry's shape
(:mod:`otconduit.protocols.danger`).

:data:`DANGEROUS` is the table: each entry names the operations it covers (``function``
values of :mod:`.ops`), an optional condition on their detail (every listed key must
hold one of the listed values; a list-valued detail matches when any element does) or
operation class, the detection rule it raises, a severity when it should differ from
the rule's default, and suggested MITRE ATT&CK for ICS techniques (most specific
first). Only requests count: a reply without its request is the device talking.

For the registry: :func:`classify` (an operation as the store returns it -> hits),
:data:`DETAIL_KEYS` (what it reads), :data:`RULES` (one per rule id, with wire examples
that raise it) and :data:`DEFINES` (catalogue rules of BACnet's own, ``bacnet-*``).
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


@dataclass(frozen=True, slots=True)
class DangerousOperation:
    key: str  # stable id within the protocol
    title: str
    functions: frozenset[str]
    rule: str  # rule id: detect/rules.py, or one of DEFINES
    techniques: tuple[str, ...]  # suggested ATT&CK for ICS ids
    when: tuple[tuple[str, frozenset[Any]], ...] = ()  # detail key -> allowed values
    op_class: str | None = None  # the operation class it needs, if any
    severity: SeverityName | None = None  # None: the rule's default
    note: str = ""

    def matches(self, function: str, detail: Mapping[str, Any], op_class: str = "") -> bool:
        if function not in self.functions:
            return False
        if self.op_class is not None and op_class != self.op_class:
            return False
        for key, allowed in self.when:
            value = detail.get(key)
            values = value if isinstance(value, list) else [value]
            if not any(v in allowed for v in values if isinstance(v, str | int)):
                return False
        return True


def _f(*names: str) -> frozenset[str]:
    return frozenset(names)


DANGEROUS: Final = (
    DangerousOperation(
        "reinitialize-restart",
        "Device restart (ReinitializeDevice coldstart/warmstart/activate-changes)",
        _f("reinitialize_device"),
        "device-restart",
        ("T0816", "T0881"),
        (("state", frozenset({"coldstart", "warmstart", "activate-changes"})),),
        note="The controller restarts: the building systems it runs stop while it does.",
    ),
    DangerousOperation(
        "reinitialize-backup",
        "Configuration backup started or ended (ReinitializeDevice)",
        _f("reinitialize_device"),
        "program-upload",
        ("T0845",),
        (("state", frozenset({"startbackup", "endbackup"})),),
        note="Backup reads the device's configuration out (AtomicReadFile follows).",
    ),
    DangerousOperation(
        "reinitialize-restore",
        "Configuration restore (ReinitializeDevice)",
        _f("reinitialize_device"),
        "program-download",
        ("T0843", "T0816"),
        (("state", frozenset({"startrestore", "endrestore", "abortrestore"})),),
        note="Restore replaces the device's configuration and restarts it.",
    ),
    DangerousOperation(
        "communication-disable",
        "Device communication disabled (DeviceCommunicationControl)",
        _f("device_communication_control"),
        "bacnet-communication-disable",
        ("T0814", "T0804", "T0803"),
        (("enable_disable", frozenset({"disable", "disable-initiation"})),),
        note="The device stops answering (disable) or stops reporting "
        "(disable-initiation) for the duration given, or until re-enabled.",
    ),
    DangerousOperation(
        "file-write",
        "File written to a device (AtomicWriteFile)",
        _f("atomic_write_file"),
        "program-download",
        ("T0843", "T0857"),
        note="Files hold programs, configuration and firmware images.",
    ),
    DangerousOperation(
        "file-read",
        "File read from a device (AtomicReadFile)",
        _f("atomic_read_file"),
        "program-upload",
        ("T0845",),
    ),
    DangerousOperation(
        "out-of-service",
        "Object taken out of service (write of out-of-service)",
        _f("write_property"),
        "process-write",
        ("T0835", "T0836"),
        (("property", frozenset({"out-of-service"})),),
        severity="medium",
        note="Out of service decouples present-value from the physical point: what is "
        "written there is what every reader sees.",
    ),
    DangerousOperation(
        "out-of-service-multiple",
        "Object taken out of service (WritePropertyMultiple)",
        _f("write_property_multiple"),
        "process-write",
        ("T0835", "T0836"),
        (("written_properties", frozenset({"out-of-service"})),),
        severity="medium",
    ),
    DangerousOperation(
        "property-write",
        "Property written",
        _f("write_property", "write_property_multiple", "write_group"),
        "process-write",
        ("T0855", "T0836"),
        note="Routine from a workstation; who writes, and at which priority, decides.",
    ),
    DangerousOperation(
        "object-delete",
        "Object deleted (DeleteObject)",
        _f("delete_object"),
        "program-modify",
        ("T0809", "T0889"),
    ),
    DangerousOperation(
        "object-create",
        "Object created (CreateObject)",
        _f("create_object"),
        "program-modify",
        ("T0889",),
        severity="medium",
    ),
    DangerousOperation(
        "time-set",
        "Device clock set (TimeSynchronization / UTCTimeSynchronization)",
        _f("time_synchronization", "utc_time_synchronization"),
        "time-set",
        ("T0836",),
        severity="low",
        note="Time masters broadcast it routinely; from anyone else it shifts time stamps.",
    ),
    DangerousOperation(
        "alarm-silence",
        "Life safety silence or reset (LifeSafetyOperation)",
        _f("life_safety_operation"),
        "bacnet-alarm-silence",
        ("T0878",),
        note="Silences or resets fire and life safety alarms.",
    ),
    DangerousOperation(
        "bbmd-change",
        "Broadcast distribution or foreign device table changed",
        _f("write_broadcast_distribution_table", "delete_foreign_device_table_entry"),
        "network-config-change",
        ("T0836", "T0830"),
        note="Changes which networks a BBMD forwards broadcasts between.",
    ),
    DangerousOperation(
        "foreign-device",
        "Foreign device registration",
        _f("register_foreign_device"),
        "bacnet-foreign-device",
        ("T0846", "T0886"),
        note="A registered foreign device sends and receives the site's broadcasts from "
        "anywhere routable: how remote Who-Is sweeps are made.",
    ),
    DangerousOperation(
        "routing-change",
        "Router table changed (Initialize-Routing-Table with entries)",
        _f("initialize_routing_table"),
        "network-config-change",
        ("T0836", "T0830"),
        op_class="write",
    ),
    DangerousOperation(
        "device-id-assigned",
        "Device identity assigned (You-Are)",
        _f("you_are"),
        "network-config-change",
        ("T0836", "T0849"),
        severity="medium",
    ),
)

DETAIL_KEYS: Final = frozenset({"orphan_response", *(key for d in DANGEROUS for key, _ in d.when)})


def dangerous(
    function: str, detail: Mapping[str, Any], op_class: str = ""
) -> list[DangerousOperation]:
    """The entries an operation (its ``function``, ``detail`` and class) matches."""
    return [d for d in DANGEROUS if d.matches(function, detail, op_class)]


def classify(op: OpView) -> list[Hit]:
    """Rules a BACnet request triggers (one per rule, most specific entry's note)."""
    detail = op["detail"]
    if detail.get("orphan_response"):
        return []
    hits: dict[str, Hit] = {}
    for entry in dangerous(op["function"], detail, str(op["operation"])):
        if entry.rule not in hits:
            hits[entry.rule] = Hit(entry.rule, entry.severity, note=entry.title)
    return list(hits.values())


DEFINES: Final = (
    RuleDefinition(
        id="bacnet-communication-disable",
        title="Device communication disabled (BACnet DeviceCommunicationControl)",
        category="controller-state",
        severity="high",
        techniques=("T0814", "T0804", "T0803"),
        description="A BACnet device was told to stop communicating (disable) or to stop "
        "initiating messages such as alarms and COV reports (disable-initiation), for a "
        "time or until re-enabled: the building management system loses sight of it.",
    ),
    RuleDefinition(
        id="bacnet-alarm-silence",
        title="Life safety alarm silenced or reset (BACnet)",
        category="configuration",
        severity="high",
        techniques=("T0878",),
        description="A LifeSafetyOperation silenced, reset or unsilenced fire and life "
        "safety alarms over the network.",
    ),
    RuleDefinition(
        id="bacnet-foreign-device",
        title="BACnet foreign device registration",
        category="reconnaissance",
        severity="medium",
        techniques=("T0846", "T0886"),
        description="A host registered with a BBMD as a foreign device: it now sends and "
        "receives the site's BACnet broadcasts (Who-Is, I-Am) from wherever it is.",
    ),
)


# -- examples: requests as BACnet/IP datagrams (Original-Unicast-NPDU, NPDU version 1) ----
def _datagram(apdu: bytes, function: int = 0x0A) -> bytes:
    body = b"\x01\x04" + apdu  # NPDU: version 1, expecting reply
    return bytes([0x81, function]) + (4 + len(body)).to_bytes(2, "big") + body


def _bvll(function: int, body: bytes) -> bytes:
    return bytes([0x81, function]) + (4 + len(body)).to_bytes(2, "big") + body


def _confirmed(service: int, params: bytes) -> Example:
    """Confirmed-Request, invoke id 1, max APDU 1476 (135 §20.1.2)."""
    return Example(
        messages=((0, _datagram(bytes([0x02, 0x05, 0x01, service]) + params)),), transport="udp"
    )


def _unconfirmed(service: int, params: bytes) -> Example:
    return Example(
        messages=((0, _datagram(bytes([0x10, service]) + params, 0x0B)),), transport="udp"
    )


_AI1 = bytes([0x0C, 0x00, 0x00, 0x00, 0x01])  # [0] object identifier analog-input 1
_FILE1 = bytes([0xC4, 0x02, 0x80, 0x00, 0x01])  # application object identifier file 1
_REAL_42 = bytes([0x44, 0x42, 0x28, 0x00, 0x00])  # REAL 42.0

RULES: Final = (
    DangerRule(
        rule="device-restart",
        trigger="ReinitializeDevice coldstart, warmstart, activate-changes",
        examples=(_confirmed(20, b"\x09\x00"), _confirmed(20, b"\x09\x01")),
    ),
    DangerRule(
        rule="program-upload",
        trigger="ReinitializeDevice startbackup/endbackup, AtomicReadFile",
        examples=(
            _confirmed(20, b"\x09\x02"),
            _confirmed(6, _FILE1 + b"\x0e\x31\x00\x22\x02\x00\x0f"),
        ),
    ),
    DangerRule(
        rule="program-download",
        trigger="ReinitializeDevice startrestore/endrestore/abortrestore, AtomicWriteFile",
        examples=(
            _confirmed(20, b"\x09\x04"),
            _confirmed(7, _FILE1 + b"\x0e\x31\x00\x63\x01\x02\x03\x0f"),
        ),
    ),
    DangerRule(
        rule="bacnet-communication-disable",
        trigger="DeviceCommunicationControl disable / disable-initiation",
        examples=(_confirmed(17, b"\x09\x1e\x19\x01"), _confirmed(17, b"\x19\x02")),
    ),
    DangerRule(
        rule="process-write",
        trigger="WriteProperty, WritePropertyMultiple, WriteGroup (out-of-service: medium)",
        examples=(
            _confirmed(15, _AI1 + b"\x19\x55\x3e" + _REAL_42 + b"\x3f\x49\x08"),
            _confirmed(15, _AI1 + b"\x19\x51\x3e\x11\x3f"),
            _confirmed(16, _AI1 + b"\x1e\x09\x51\x2e\x11\x2f\x1f"),
        ),
    ),
    DangerRule(
        rule="program-modify",
        trigger="CreateObject, DeleteObject",
        examples=(
            _confirmed(11, bytes([0xC4, 0x00, 0x00, 0x00, 0x07])),
            _confirmed(10, b"\x0e\x09\x02\x0f"),
        ),
    ),
    DangerRule(
        rule="time-set",
        trigger="TimeSynchronization, UTCTimeSynchronization (low)",
        examples=(_unconfirmed(6, b"\xa4\x7d\x06\x01\x07\xb4\x08\x00\x00\x00"),),
    ),
    DangerRule(
        rule="bacnet-alarm-silence",
        trigger="LifeSafetyOperation",
        examples=(_confirmed(27, b"\x09\x01\x1c\x00ops\x29\x01"),),
    ),
    DangerRule(
        rule="network-config-change",
        trigger="Write-BDT, Delete-FDT-Entry, Initialize-Routing-Table with entries, You-Are",
        examples=(
            Example(
                messages=((0, _bvll(0x01, bytes([10, 0, 0, 1, 0xBA, 0xC0, 255, 255, 255, 255]))),),
                transport="udp",
            ),
            Example(
                messages=(
                    (0, _bvll(0x0A, bytes([0x01, 0x80, 0x06, 0x01, 0x00, 0x09, 0x01, 0x00]))),
                ),
                transport="udp",
            ),
        ),
    ),
    DangerRule(
        rule="bacnet-foreign-device",
        trigger="Register-Foreign-Device",
        examples=(Example(messages=((0, _bvll(0x05, b"\x00\x3c")),), transport="udp"),),
    ),
)
