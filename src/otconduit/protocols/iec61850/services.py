"""MMS vocabulary (ISO 9506-2): PDU kinds, confirmed and unconfirmed services, error
classes, reject reasons and data access errors, with the operation class of each service.

Operation ``function_code`` encoding for the ``mms`` protocol:

- 0-127: the ConfirmedServiceRequest choice number (tshark ``mms.confirmedServiceRequest``);
- 0x200 + n: unconfirmed service n (0x200 informationReport);
- 0x300 + n: the other PDUs by their MMSpdu choice number (0x308 initiate, 0x30B
  conclude, 0x305 cancel, 0x304 reject), and 0x3F0 ACSE release, 0x3F1 abort.
"""

from __future__ import annotations

from typing import Final

from otconduit.model import OpClass

# MMSpdu CHOICE (ISO 9506-2 §7.1).
CONFIRMED_REQUEST: Final = 0
CONFIRMED_RESPONSE: Final = 1
CONFIRMED_ERROR: Final = 2
UNCONFIRMED: Final = 3
REJECT: Final = 4
CANCEL_REQUEST: Final = 5
CANCEL_RESPONSE: Final = 6
CANCEL_ERROR: Final = 7
INITIATE_REQUEST: Final = 8
INITIATE_RESPONSE: Final = 9
INITIATE_ERROR: Final = 10
CONCLUDE_REQUEST: Final = 11
CONCLUDE_RESPONSE: Final = 12
CONCLUDE_ERROR: Final = 13
PDU_NAMES: Final = {
    0: "confirmed-RequestPDU",
    1: "confirmed-ResponsePDU",
    2: "confirmed-ErrorPDU",
    3: "unconfirmed-PDU",
    4: "rejectPDU",
    5: "cancel-RequestPDU",
    6: "cancel-ResponsePDU",
    7: "cancel-ErrorPDU",
    8: "initiate-RequestPDU",
    9: "initiate-ResponsePDU",
    10: "initiate-ErrorPDU",
    11: "conclude-RequestPDU",
    12: "conclude-ResponsePDU",
    13: "conclude-ErrorPDU",
}

UNCONFIRMED_BASE: Final = 0x200
PDU_BASE: Final = 0x300
RELEASE_CODE: Final = 0x3F0
ABORT_CODE: Final = 0x3F1

_R, _W, _C, _P, _I, _D = (
    OpClass.READ,
    OpClass.WRITE,
    OpClass.CONTROL,
    OpClass.PROGRAM,
    OpClass.IDENTITY,
    OpClass.DIAGNOSTIC,
)
# ConfirmedServiceRequest CHOICE (ISO 9506-2 §7.3): number -> (name, operation class).
CONFIRMED: Final[dict[int, tuple[str, OpClass]]] = {
    0: ("status", _D),
    1: ("getNameList", _R),
    2: ("identify", _I),
    3: ("rename", _W),
    4: ("read", _R),
    5: ("write", _W),
    6: ("getVariableAccessAttributes", _R),
    7: ("defineNamedVariable", _W),
    8: ("defineScatteredAccess", _W),
    9: ("getScatteredAccessAttributes", _R),
    10: ("deleteVariableAccess", _W),
    11: ("defineNamedVariableList", _W),
    12: ("getNamedVariableListAttributes", _R),
    13: ("deleteNamedVariableList", _W),
    14: ("defineNamedType", _W),
    15: ("getNamedTypeAttributes", _R),
    16: ("deleteNamedType", _W),
    17: ("input", _R),
    18: ("output", _W),
    19: ("takeControl", _C),
    20: ("relinquishControl", _C),
    21: ("defineSemaphore", _W),
    22: ("deleteSemaphore", _W),
    23: ("reportSemaphoreStatus", _R),
    24: ("reportPoolSemaphoreStatus", _R),
    25: ("reportSemaphoreEntryStatus", _R),
    26: ("initiateDownloadSequence", _P),
    27: ("downloadSegment", _P),
    28: ("terminateDownloadSequence", _P),
    29: ("initiateUploadSequence", _P),
    30: ("uploadSegment", _P),
    31: ("terminateUploadSequence", _P),
    32: ("requestDomainDownload", _P),
    33: ("requestDomainUpload", _P),
    34: ("loadDomainContent", _P),
    35: ("storeDomainContent", _P),
    36: ("deleteDomain", _P),
    37: ("getDomainAttributes", _R),
    38: ("createProgramInvocation", _P),
    39: ("deleteProgramInvocation", _P),
    40: ("start", _C),
    41: ("stop", _C),
    42: ("resume", _C),
    43: ("reset", _C),
    44: ("kill", _C),
    45: ("getProgramInvocationAttributes", _R),
    46: ("obtainFile", _W),
    47: ("defineEventCondition", _W),
    48: ("deleteEventCondition", _W),
    49: ("getEventConditionAttributes", _R),
    50: ("reportEventConditionStatus", _R),
    51: ("alterEventConditionMonitoring", _W),
    52: ("triggerEvent", _C),
    53: ("defineEventAction", _W),
    54: ("deleteEventAction", _W),
    55: ("getEventActionAttributes", _R),
    56: ("reportEventActionStatus", _R),
    57: ("defineEventEnrollment", _W),
    58: ("deleteEventEnrollment", _W),
    59: ("alterEventEnrollment", _W),
    60: ("reportEventEnrollmentStatus", _R),
    61: ("getEventEnrollmentAttributes", _R),
    62: ("acknowledgeEventNotification", _W),
    63: ("getAlarmSummary", _R),
    64: ("getAlarmEnrollmentSummary", _R),
    65: ("readJournal", _R),
    66: ("writeJournal", _W),
    67: ("initializeJournal", _W),
    68: ("reportJournalStatus", _R),
    69: ("createJournal", _W),
    70: ("deleteJournal", _W),
    71: ("getCapabilityList", _D),
    72: ("fileOpen", _R),
    73: ("fileRead", _R),
    74: ("fileClose", _R),
    75: ("fileRename", _W),
    76: ("fileDelete", _W),
    77: ("fileDirectory", _R),
}
FILE_SERVICES: Final = frozenset({46, 72, 73, 74, 75, 76, 77})
# UnconfirmedService CHOICE (ISO 9506-2 §7.4).
UNCONFIRMED_SERVICES: Final = {
    0: "informationReport",
    1: "unsolicitedStatus",
    2: "eventNotification",
}

# ServiceError.errorClass CHOICE (ISO 9506-2 §7.5.2): class -> (name, {code: name}).
ERROR_CLASSES: Final[dict[int, tuple[str, dict[int, str]]]] = {
    0: (
        "vmd-state",
        {
            0: "other",
            1: "vmd-state-conflict",
            2: "vmd-operational-problem",
            3: "domain-transfer-problem",
            4: "state-machine-id-invalid",
        },
    ),
    1: (
        "application-reference",
        {
            0: "other",
            1: "application-unreachable",
            2: "connection-lost",
            3: "application-reference-invalid",
            4: "context-unsupported",
        },
    ),
    2: (
        "definition",
        {
            0: "other",
            1: "object-undefined",
            2: "invalid-address",
            3: "type-unsupported",
            4: "type-inconsistent",
            5: "object-exists",
            6: "object-attribute-inconsistent",
        },
    ),
    3: (
        "resource",
        {
            0: "other",
            1: "memory-unavailable",
            2: "processor-resource-unavailable",
            3: "mass-storage-unavailable",
            4: "capability-unavailable",
            5: "capability-unknown",
        },
    ),
    4: (
        "service",
        {
            0: "other",
            1: "primitives-out-of-sequence",
            2: "object-state-conflict",
            3: "pdu-size",
            4: "continuation-invalid",
            5: "object-constraint-conflict",
        },
    ),
    5: ("service-preempt", {0: "other", 1: "timeout", 2: "deadlock", 3: "cancel"}),
    6: ("time-resolution", {0: "other", 1: "unsupportable-time-resolution"}),
    7: (
        "access",
        {
            0: "other",
            1: "object-access-unsupported",
            2: "object-non-existent",
            3: "object-access-denied",
            4: "object-invalidated",
        },
    ),
    8: ("initiate", {0: "other", 3: "max-services-outstanding-calling-insufficient"}),
    9: ("conclude", {0: "other", 1: "further-communication-required"}),
    10: ("cancel", {0: "other", 1: "invoke-id-unknown", 2: "cancel-not-possible"}),
    11: (
        "file",
        {
            0: "other",
            1: "filename-ambiguous",
            2: "file-busy",
            3: "filename-syntax-error",
            4: "content-type-invalid",
            5: "position-invalid",
            6: "file-access-denied",
            7: "file-non-existent",
            8: "duplicate-filename",
            9: "insufficient-space-in-filestore",
        },
    ),
    12: ("others", {}),
}

# RejectPDU.rejectReason CHOICE (ISO 9506-2 §7.6): tag -> (what was rejected, {code: name}).
REJECT_REASONS: Final[dict[int, tuple[str, dict[int, str]]]] = {
    1: (
        "confirmed-requestPDU",
        {
            0: "other",
            1: "unrecognized-service",
            2: "unrecognized-modifier",
            3: "invalid-invokeID",
            4: "invalid-argument",
            5: "invalid-modifier",
            6: "max-serv-outstanding-exceeded",
            8: "max-recursion-exceeded",
            9: "value-out-of-range",
        },
    ),
    2: ("confirmed-responsePDU", {0: "other", 1: "unrecognized-service", 2: "invalid-invokeID"}),
    3: ("confirmed-errorPDU", {0: "other", 1: "unrecognized-service", 2: "invalid-invokeID"}),
    4: ("unconfirmedPDU", {0: "other", 1: "unrecognized-service"}),
    5: ("pdu-error", {0: "unknown-pdu-type", 1: "invalid-pdu", 2: "illegal-acse-mapping"}),
    6: ("cancel-requestPDU", {0: "other", 1: "invalid-invokeID"}),
    7: ("cancel-responsePDU", {0: "other", 1: "invalid-invokeID"}),
    8: ("cancel-errorPDU", {0: "other", 1: "invalid-invokeID"}),
    9: ("conclude-requestPDU", {0: "other", 1: "invalid-argument"}),
    10: ("conclude-responsePDU", {0: "other", 1: "invalid-result"}),
    11: ("conclude-errorPDU", {0: "other", 1: "invalid-result"}),
}
REJECT_CODE_BASE: Final = 0x1000
# The reject a server answers an unknown service with: 0x1000 | confirmed-requestPDU << 8
# | unrecognized-service (a function-code scan shows many of them).
UNRECOGNIZED_SERVICE: Final = REJECT_CODE_BASE | (1 << 8) | 1

# DataAccessError (ISO 9506-2 §14.4.2).
DATA_ACCESS_ERRORS: Final = {
    0: "object-invalidated",
    1: "hardware-fault",
    2: "temporarily-unavailable",
    3: "object-access-denied",
    4: "object-undefined",
    5: "invalid-address",
    6: "type-unsupported",
    7: "type-inconsistent",
    8: "object-attribute-inconsistent",
    9: "object-access-unsupported",
    10: "object-non-existent",
    11: "object-value-invalid",
}

# ObjectClass for GetNameList (ISO 9506-2 §7.5.2 / IEC 61850-8-1 uses 0, 2, 9).
OBJECT_CLASSES: Final = {
    0: "namedVariable",
    1: "scatteredAccess",
    2: "namedVariableList",
    3: "namedType",
    4: "semaphore",
    5: "eventCondition",
    6: "eventAction",
    7: "eventEnrollment",
    8: "journal",
    9: "domain",
    10: "programInvocation",
    11: "operatorStation",
    12: "dataExchange",
    13: "accessControlList",
}


def confirmed_name(service: int | None) -> str:
    if service is None:
        return "unknown"
    entry = CONFIRMED.get(service)
    return entry[0] if entry else f"service-{service}"


def confirmed_class(service: int | None) -> OpClass:
    entry = CONFIRMED.get(service) if service is not None else None
    return entry[1] if entry else OpClass.OTHER


def error_name(error_class: int, code: int) -> str:
    name, codes = ERROR_CLASSES.get(error_class, (f"class-{error_class}", {}))
    return f"{name}: {codes.get(code, f'code {code}')}"


def reject_name(reason: int, code: int) -> str:
    name, codes = REJECT_REASONS.get(reason, (f"reason-{reason}", {}))
    return f"reject {name}: {codes.get(code, f'code {code}')}"


def access_error_name(code: int) -> str:
    return DATA_ACCESS_ERRORS.get(code, f"data-access-error {code}")
