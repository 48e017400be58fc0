"""Ground-truth labels: what a scenario did, when, from where, to what.

A detector is scored against these, so each label carries the wall-clock time the packets
left (``ts``, epoch seconds), the flow (source, target, port), the protocol and the
normalised operation class, plus the protocol-native function name and code.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Operation = Literal[
    "read", "write", "control", "program", "firmware", "identity", "diagnostic", "session", "other"
]
OPERATIONS: tuple[str, ...] = (
    "read",
    "write",
    "control",
    "program",
    "firmware",
    "identity",
    "diagnostic",
    "session",
    "other",
)
# OPC UA service request encodings (OPC 10000-6, NodeIds.csv): what a label's
# function_code names for OPC UA.
OPCUA_SERVICES: dict[str, tuple[int, Operation]] = {
    "ActivateSession": (467, "session"),
    "Browse": (527, "read"),
    "Read": (631, "read"),
    "Write": (673, "write"),
}
PROTOCOLS: tuple[str, ...] = ("modbus", "s7comm", "enip", "opcua", "bacnet", "iec104", "tcp")

# BACnet confirmed services (ASHRAE 135 §21, BACnetConfirmedServiceChoice) -> (choice,
# operation class). Unconfirmed services (Who-Is) are labelled without a code.
BACNET_SERVICES: dict[str, tuple[int, Operation]] = {
    "SubscribeCOV": (5, "read"),
    "ReadProperty": (12, "read"),
    "ReadPropertyMultiple": (14, "read"),
    "WriteProperty": (15, "write"),
    "DeviceCommunicationControl": (17, "control"),
    "ReinitializeDevice": (20, "control"),
}
# IEC 60870-5-101 §7.2.1 type identifications the lab sends -> (type id, operation class).
IEC104_TYPES: dict[str, tuple[int, Operation]] = {
    "C_SC_NA_1": (45, "control"),
    "C_IC_NA_1": (100, "read"),
    "C_CS_NA_1": (103, "write"),
}

# Modbus function code -> (native name, operation class)
MODBUS_FUNCTIONS: dict[int, tuple[str, Operation]] = {
    1: ("READ_COILS", "read"),
    2: ("READ_DISCRETE_INPUTS", "read"),
    3: ("READ_HOLDING_REGISTERS", "read"),
    4: ("READ_INPUT_REGISTERS", "read"),
    5: ("WRITE_SINGLE_COIL", "write"),
    6: ("WRITE_SINGLE_REGISTER", "write"),
    7: ("READ_EXCEPTION_STATUS", "diagnostic"),
    8: ("DIAGNOSTICS", "diagnostic"),
    11: ("GET_COMM_EVENT_COUNTER", "diagnostic"),
    12: ("GET_COMM_EVENT_LOG", "diagnostic"),
    15: ("WRITE_MULTIPLE_COILS", "write"),
    16: ("WRITE_MULTIPLE_REGISTERS", "write"),
    17: ("REPORT_SERVER_ID", "identity"),
    20: ("READ_FILE_RECORD", "read"),
    21: ("WRITE_FILE_RECORD", "write"),
    22: ("MASK_WRITE_REGISTER", "write"),
    23: ("READ_WRITE_MULTIPLE_REGISTERS", "write"),
    24: ("READ_FIFO_QUEUE", "read"),
    43: ("ENCAP_INTERFACE_TRANSPORT", "identity"),
    90: ("UMAS", "program"),
}

# S7 job function code -> (native name, operation class)
S7_FUNCTIONS: dict[int, tuple[str, Operation]] = {
    0xF0: ("SETUP_COMMUNICATION", "other"),
    0x04: ("READ_VAR", "read"),
    0x05: ("WRITE_VAR", "write"),
    0x1A: ("REQUEST_DOWNLOAD", "program"),
    0x1B: ("DOWNLOAD_BLOCK", "program"),
    0x1C: ("DOWNLOAD_ENDED", "program"),
    0x1D: ("START_UPLOAD", "program"),
    0x1E: ("UPLOAD", "program"),
    0x1F: ("END_UPLOAD", "program"),
    0x28: ("PLC_CONTROL", "control"),
    0x29: ("PLC_STOP", "control"),
}


def modbus_function(fc: int) -> tuple[str, Operation]:
    return MODBUS_FUNCTIONS.get(fc, (f"FUNCTION_{fc}", "other"))


@dataclass
class Label:
    """One ground-truth event. ``ts``/``ts_end`` are wall-clock epoch seconds."""

    id: str
    scenario: str
    kind: str
    ts: float
    src_ip: str
    dst_ip: str
    protocol: str
    operation: str
    function: str
    description: str
    dst_port: int | None = None
    function_code: int | None = None
    ts_end: float | None = None
    address: int | None = None
    values: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["extra"]:
            del d["extra"]
        return {k: v for k, v in d.items() if v is not None}


class LabelSink:
    """Collects labels from every scenario task (thread-safe) and writes them as JSON."""

    def __init__(self) -> None:
        self._labels: list[Label] = []
        self._lock = threading.Lock()

    def add(self, **kwargs: Any) -> Label:
        if kwargs.get("operation") not in OPERATIONS:
            raise ValueError(f"unknown operation class {kwargs.get('operation')!r}")
        if kwargs.get("protocol") not in PROTOCOLS:
            raise ValueError(f"unknown protocol {kwargs.get('protocol')!r}")
        with self._lock:
            label = Label(id=f"L{len(self._labels) + 1:04d}", **kwargs)
            self._labels.append(label)
            return label

    @property
    def labels(self) -> list[Label]:
        with self._lock:
            return sorted(self._labels, key=lambda lab: (lab.ts, lab.id))

    def as_json(self) -> list[dict[str, Any]]:
        return [lab.to_dict() for lab in self.labels]

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.as_json(), indent=2) + "\n")
