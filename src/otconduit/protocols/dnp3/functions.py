"""DNP3 lookup tables kept as data: function codes, operation classes, IIN flags, CROB codes.

Application function names follow the upper-snake spelling of Zeek ICSNPP's ``dnp3.log``
so conformance tests can compare logs field by field. Numbers and meanings come from
IEEE 1815-2012 (cited as "1815 §x"; object definitions as "1815 Annex A").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from otconduit.model import OpClass

CONFIRM: Final = 0
READ: Final = 1
WRITE: Final = 2
SELECT: Final = 3
OPERATE: Final = 4
DIRECT_OPERATE: Final = 5
DIRECT_OPERATE_NR: Final = 6
RESPONSE: Final = 0x81
UNSOLICITED_RESPONSE: Final = 0x82
AUTHENTICATE_RESP: Final = 0x83

# 1815 §4.2.2.5: application layer function codes (names as Zeek ICSNPP logs them).
FUNCTION_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "CONFIRM",
        1: "READ",
        2: "WRITE",
        3: "SELECT",
        4: "OPERATE",
        5: "DIRECT_OPERATE",
        6: "DIRECT_OPERATE_NR",
        7: "IMMED_FREEZE",
        8: "IMMED_FREEZE_NR",
        9: "FREEZE_CLEAR",
        10: "FREEZE_CLEAR_NR",
        11: "FREEZE_AT_TIME",
        12: "FREEZE_AT_TIME_NR",
        13: "COLD_RESTART",
        14: "WARM_RESTART",
        15: "INITIALIZE_DATA",
        16: "INITIALIZE_APPL",
        17: "START_APPL",
        18: "STOP_APPL",
        19: "SAVE_CONFIG",
        20: "ENABLE_UNSOLICITED",
        21: "DISABLE_UNSOLICITED",
        22: "ASSIGN_CLASS",
        23: "DELAY_MEASURE",
        24: "RECORD_CURRENT_TIME",
        25: "OPEN_FILE",
        26: "CLOSE_FILE",
        27: "DELETE_FILE",
        28: "GET_FILE_INFO",
        29: "AUTHENTICATE_FILE",
        30: "ABORT_FILE",
        31: "ACTIVATE_CONFIG",
        32: "AUTHENTICATE_REQ",
        33: "AUTHENTICATE_REQ_NR",
        RESPONSE: "RESPONSE",
        UNSOLICITED_RESPONSE: "UNSOLICITED_RESPONSE",
        AUTHENTICATE_RESP: "AUTHENTICATE_RESP",
    }
)

# 1815 §4.2.2.5: codes 0x00-0x80 are requests (header without IIN), 0x81-0xFF responses.
FIRST_RESPONSE_CODE: Final = 0x81

# Requests whose object headers carry no object data (1815 §4.2.2.5 function codes:
# read, freeze, class assignment and unsolicited control name points, send no values).
HEADERS_ONLY_REQUESTS: Final = frozenset({1, 7, 8, 9, 10, 20, 21, 22})
# Freeze-at-time: a g50 time-and-interval object, then headers only.
FREEZE_AT_TIME_REQUESTS: Final = frozenset({11, 12})

_CONTROL_FUNCTIONS: Final = frozenset({3, 4, 5, 6})
_CONTROL_GROUPS: Final = frozenset({12, 41})  # CROB / pattern, analog output block
_FILE_GROUP: Final = 70

_FUNCTION_CLASSES: Final[Mapping[int, OpClass]] = MappingProxyType(
    {
        1: OpClass.READ,
        2: OpClass.WRITE,
        3: OpClass.WRITE,  # refined by object group in op_class()
        4: OpClass.WRITE,
        5: OpClass.WRITE,
        6: OpClass.WRITE,
        7: OpClass.WRITE,  # freezes copy live counters: they change device state
        8: OpClass.WRITE,
        9: OpClass.WRITE,
        10: OpClass.WRITE,
        11: OpClass.WRITE,
        12: OpClass.WRITE,
        13: OpClass.CONTROL,
        14: OpClass.CONTROL,
        15: OpClass.CONTROL,
        16: OpClass.CONTROL,
        17: OpClass.CONTROL,
        18: OpClass.CONTROL,
        19: OpClass.CONTROL,
        20: OpClass.CONTROL,
        21: OpClass.CONTROL,
        22: OpClass.OTHER,
        23: OpClass.DIAGNOSTIC,
        24: OpClass.OTHER,
        25: OpClass.PROGRAM,
        26: OpClass.PROGRAM,
        27: OpClass.PROGRAM,
        28: OpClass.READ,
        29: OpClass.PROGRAM,
        30: OpClass.PROGRAM,
        31: OpClass.CONTROL,
        32: OpClass.SESSION,
        33: OpClass.SESSION,
        AUTHENTICATE_RESP: OpClass.SESSION,
    }
)


def function_name(code: int) -> str:
    """Log name of an application function code; never fails (``UNKNOWN_n`` otherwise,
    the project-wide spelling for codes without a name)."""
    return FUNCTION_NAMES.get(code, f"UNKNOWN_{code}")


def is_response_code(code: int) -> bool:
    """True for codes sent by outstations, whose header carries IIN (1815 §4.2.2.5)."""
    return code >= FIRST_RESPONSE_CODE


def op_class(code: int, groups: Iterable[int] = ()) -> OpClass:
    """Operation class of a request, refined by the object groups it carries.

    Select/operate of a control relay output block (g12) or an analog output block (g41)
    moves equipment: control. A write of file objects (g70) changes stored programs or
    configuration: program. Everything else follows the function code.
    """
    group_set = set(groups)
    if code in _CONTROL_FUNCTIONS and group_set & _CONTROL_GROUPS:
        return OpClass.CONTROL
    if code == WRITE and _FILE_GROUP in group_set:
        return OpClass.PROGRAM
    return _FUNCTION_CLASSES.get(code, OpClass.OTHER)


# 1815 §4.2.2.6: internal indications, IIN1 (first octet) bits 0-7 then IIN2 bits 0-7.
IIN1_NAMES: Final = (
    "BROADCAST",
    "CLASS_1_EVENTS",
    "CLASS_2_EVENTS",
    "CLASS_3_EVENTS",
    "NEED_TIME",
    "LOCAL_CONTROL",
    "DEVICE_TROUBLE",
    "DEVICE_RESTART",
)
IIN2_NAMES: Final = (
    "NO_FUNC_CODE_SUPPORT",
    "OBJECT_UNKNOWN",
    "PARAMETER_ERROR",
    "EVENT_BUFFER_OVERFLOW",
    "ALREADY_EXECUTING",
    "CONFIG_CORRUPT",
    "RESERVED_2",
    "RESERVED_1",
)
# IIN2 bits that mean the outstation refused or could not parse the request.
IIN2_ERROR_MASK: Final = 0x07


def iin_names(iin: int) -> list[str]:
    """Names of the bits set in ``iin`` = IIN1 << 8 | IIN2 (the wire order, as Zeek logs)."""
    iin1, iin2 = iin >> 8, iin & 0xFF
    names = [name for bit, name in enumerate(IIN1_NAMES) if iin1 >> bit & 1]
    names += [name for bit, name in enumerate(IIN2_NAMES) if iin2 >> bit & 1]
    return names


# 1815 Annex A, g12v1 control code: operation type (bits 0-3), trip-close code (bits 6-7),
# clear (bit 5), queue (bit 4, obsolete); status codes in the last octet (bits 0-6).
CROB_OP_TYPES: Final[Mapping[int, str]] = MappingProxyType(
    {0: "NUL", 1: "PULSE_ON", 2: "PULSE_OFF", 3: "LATCH_ON", 4: "LATCH_OFF"}
)
CROB_TRIP_CLOSE: Final[Mapping[int, str]] = MappingProxyType(
    {0: "NUL", 1: "CLOSE", 2: "TRIP", 3: "RESERVED"}
)
CONTROL_STATUS: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "SUCCESS",
        1: "TIMEOUT",
        2: "NO_SELECT",
        3: "FORMAT_ERROR",
        4: "NOT_SUPPORTED",
        5: "ALREADY_ACTIVE",
        6: "HARDWARE_ERROR",
        7: "LOCAL",
        8: "TOO_MANY_OBJS",
        9: "NOT_AUTHORIZED",
        10: "AUTOMATION_INHIBIT",
        11: "PROCESSING_LIMITED",
        12: "OUT_OF_RANGE",
        13: "DOWNSTREAM_LOCAL",
        14: "ALREADY_COMPLETE",
        15: "BLOCKED",
        16: "CANCELLED",
        17: "BLOCKED_OTHER_MASTER",
        18: "DOWNSTREAM_FAIL",
        126: "NON_PARTICIPATING",
        127: "UNDEFINED",
    }
)


def control_status_name(code: int) -> str:
    return CONTROL_STATUS.get(code, f"UNKNOWN_{code}")


# 1815 §9.2.4.1.3: link layer function codes, primary (PRM=1) and secondary (PRM=0).
LINK_PRIMARY_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "RESET_LINK_STATES",
        1: "RESET_USER_PROCESS",  # obsolete
        2: "TEST_LINK_STATES",
        3: "CONFIRMED_USER_DATA",
        4: "UNCONFIRMED_USER_DATA",
        9: "REQUEST_LINK_STATUS",
    }
)
LINK_SECONDARY_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "ACK",
        1: "NACK",
        11: "LINK_STATUS",
        14: "LINK_SERVICE_NOT_FUNCTIONING",
        15: "NOT_SUPPORTED",
    }
)
LINK_USER_DATA: Final = frozenset({3, 4})  # primary codes that carry transport segments


def link_function_name(prm: bool, code: int) -> str:
    table = LINK_PRIMARY_NAMES if prm else LINK_SECONDARY_NAMES
    return table.get(code, f"UNKNOWN_{code}")


# 1815 Annex A, group 0: device attribute variations → inventory attribute names.
DEVICE_ATTRIBUTES: Final[Mapping[int, str]] = MappingProxyType(
    {
        242: "firmware_version",  # device manufacturer's software version
        243: "hardware_version",  # device manufacturer's hardware version
        245: "location",  # user-assigned location name
        246: "user_id",  # user-assigned ID code/number
        247: "device_name",  # user-assigned device name
        248: "serial_number",  # device serial number
        249: "dnp3_subset",  # DNP3 subset and conformance
        250: "product_name",  # device manufacturer's product name and model
        252: "vendor",  # device manufacturer's name
    }
)
