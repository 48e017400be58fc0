"""Protocol-neutral records that analysis produces and the store keeps.

Every protocol decoder maps its transactions onto :class:`Operation`, so inventory,
policy and detection never need to know a protocol's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class OpClass(StrEnum):
    """Normalised operation classes, the vocabulary that policy and detection speak."""

    READ = "read"
    WRITE = "write"
    CONTROL = "control"
    DIAGNOSTIC = "diagnostic"
    PROGRAM = "program"
    FIRMWARE = "firmware"
    IDENTITY = "identity"
    SESSION = "session"
    OTHER = "other"


class OpStatus(StrEnum):
    OK = "ok"
    EXCEPTION = "exception"
    NO_RESPONSE = "no_response"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One request/response transaction of an industrial protocol."""

    ts_ns: int
    protocol: str
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    operation: OpClass
    function: str
    function_code: int
    unit: int | None = None
    address: int | None = None
    quantity: int | None = None
    values: tuple[int, ...] | None = None
    status: OpStatus = OpStatus.OK
    exception: str | None = None
    exception_code: int | None = None
    latency_ns: int | None = None
    request_frame: int | None = None
    response_frame: int | None = None
    transaction_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityClaim:
    """One identity attribute of an asset with where it came from and how sure we are."""

    ip: str
    attribute: str  # vendor, product_code, revision, model, product_name, ...
    value: str
    source: str  # oui, modbus_43_14, cip_identity, s7_szl, policy, user
    confidence: float
    ts_ns: int
