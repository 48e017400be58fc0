"""Modbus lookup tables kept as data: names, operation classes and code sets.

Names follow the upper-snake spelling of Zeek's Modbus log (ICSNPP) so conformance
tests can compare logs field by field. Numbers and meanings come from the MODBUS
Application Protocol Specification V1.1b3 (cited as "MB §x").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from otconduit.model import OpClass

# MB §5.1: public function codes (well defined, documented by modbus.org).
PUBLIC_FUNCTION_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: "READ_COILS",  # MB §6.1
        2: "READ_DISCRETE_INPUTS",  # MB §6.2
        3: "READ_HOLDING_REGISTERS",  # MB §6.3
        4: "READ_INPUT_REGISTERS",  # MB §6.4
        5: "WRITE_SINGLE_COIL",  # MB §6.5
        6: "WRITE_SINGLE_REGISTER",  # MB §6.6
        7: "READ_EXCEPTION_STATUS",  # MB §6.7 (serial line only)
        8: "DIAGNOSTICS",  # MB §6.8 (serial line only)
        11: "GET_COMM_EVENT_COUNTER",  # MB §6.9
        12: "GET_COMM_EVENT_LOG",  # MB §6.10
        15: "WRITE_MULTIPLE_COILS",  # MB §6.11
        16: "WRITE_MULTIPLE_REGISTERS",  # MB §6.12
        17: "REPORT_SLAVE_ID",  # MB §6.13 (Report Server ID)
        20: "READ_FILE_RECORD",  # MB §6.14
        21: "WRITE_FILE_RECORD",  # MB §6.15
        22: "MASK_WRITE_REGISTER",  # MB §6.16
        23: "READ_WRITE_MULTIPLE_REGISTERS",  # MB §6.17
        24: "READ_FIFO_QUEUE",  # MB §6.18
        43: "ENCAP_INTERFACE_TRANSPORT",  # MB §6.19
    }
)

# Legacy Modicon and vendor codes seen on real networks (names as Zeek logs them).
VENDOR_FUNCTION_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        9: "PROGRAM_484",
        10: "POLL_484",
        13: "PROGRAM_584_984",
        14: "POLL_584_984",
        18: "PROGRAM_884_U84",
        19: "RESET_COMM_LINK_884_U84",
        40: "PROGRAM_CONCEPT",
        41: "MULTIPLE_FUNCTION_CODES",
        90: "PROGRAM_UNITY",  # 0x5A, Schneider UMAS
        91: "OBJECT_MESSAGING",
        125: "FIRMWARE_REPLACEMENT",  # Modicon
        126: "PROGRAM_584_984_2",  # Modicon
        127: "REPORT_LOCAL_ADDRESS",
    }
)

FUNCTION_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {**PUBLIC_FUNCTION_NAMES, **VENDOR_FUNCTION_NAMES}
)

# MB §5.1: user-defined function code ranges.
USER_DEFINED_RANGES: Final = (range(65, 73), range(100, 111))

EXCEPTION_BIT: Final = 0x80  # MB §7: exception response = function code | 0x80

# MB §7: exception codes.
EXCEPTION_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: "ILLEGAL_FUNCTION",
        2: "ILLEGAL_DATA_ADDRESS",
        3: "ILLEGAL_DATA_VALUE",
        4: "SLAVE_DEVICE_FAILURE",
        5: "ACKNOWLEDGE",
        6: "SLAVE_DEVICE_BUSY",
        7: "NEGATIVE_ACKNOWLEDGE",
        8: "MEMORY_PARITY_ERROR",
        10: "GATEWAY_PATH_UNAVAILABLE",
        11: "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
    }
)

# MB §6.8.1: diagnostics (FC 8) sub-function codes, spelled as Zeek ICSNPP logs them.
DIAGNOSTIC_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "Return Query Data",
        1: "Restart Communications Option",
        2: "Return Diagnostic Register",
        3: "Change ASCII Input Delimiter",
        4: "Force Listen Only Mode",
        10: "Clear Counters and Diagnostic Register",
        11: "Return Bus Message Count",
        12: "Return Bus Communication Error Count",
        13: "Return Bus Exception Error Count",
        14: "Return Server Message Count",
        15: "Return Server No Response Count",
        16: "Return Server NAK Count",
        17: "Return Server Busy Count",
        18: "Return Bus Character Overrun Count",
        20: "Clear Overrun Counter and Flag",
        21: "Get/Clear Modbus Plus Statistics",
    }
)

# Diagnostics sub-functions that change the device's behaviour rather than report on it.
DIAGNOSTIC_CONTROL_SUBFUNCTIONS: Final = frozenset({1, 4})

# MB §6.19: MEI types carried by FC 43 (names spelt as Zeek ICSNPP logs them).
MEI_CANOPEN: Final = 13  # MB §6.20
MEI_READ_DEVICE_ID: Final = 14  # MB §6.21
MEI_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {MEI_CANOPEN: "CANopen General Reference", MEI_READ_DEVICE_ID: "Read Device Identification"}
)

# MB §6.21: Read Device ID codes and object ids.
READ_DEVICE_ID_CODES: Final[Mapping[int, str]] = MappingProxyType(
    {1: "basic", 2: "regular", 3: "extended", 4: "specific"}
)
DEVICE_ID_OBJECT_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "VendorName",
        1: "ProductCode",
        2: "MajorMinorRevision",
        3: "VendorUrl",
        4: "ProductName",
        5: "ModelName",
        6: "UserApplicationName",
    }
)

_FUNCTION_CLASSES: Final[Mapping[int, OpClass]] = MappingProxyType(
    {
        1: OpClass.READ,
        2: OpClass.READ,
        3: OpClass.READ,
        4: OpClass.READ,
        5: OpClass.WRITE,
        6: OpClass.WRITE,
        7: OpClass.DIAGNOSTIC,
        8: OpClass.DIAGNOSTIC,  # refined by sub-function in op_class()
        11: OpClass.DIAGNOSTIC,
        12: OpClass.DIAGNOSTIC,
        15: OpClass.WRITE,
        16: OpClass.WRITE,
        17: OpClass.IDENTITY,
        20: OpClass.READ,
        21: OpClass.WRITE,
        22: OpClass.WRITE,
        23: OpClass.WRITE,  # read + write counts as a write: it changes state
        24: OpClass.READ,
        43: OpClass.IDENTITY,  # refined by MEI type in op_class()
        9: OpClass.PROGRAM,
        13: OpClass.PROGRAM,
        18: OpClass.PROGRAM,
        19: OpClass.CONTROL,
        40: OpClass.PROGRAM,
        90: OpClass.PROGRAM,  # UMAS carries reads too, but also downloads and run/stop
        125: OpClass.FIRMWARE,
        126: OpClass.PROGRAM,
        127: OpClass.IDENTITY,
    }
)


def is_user_defined(function_code: int) -> bool:
    """True for the MB §5.1 user-defined ranges (65-72, 100-110)."""
    return any(function_code in r for r in USER_DEFINED_RANGES)


def function_name(function_code: int) -> str:
    """Log name of a function code (without the exception bit); never fails."""
    name = FUNCTION_NAMES.get(function_code)
    if name is not None:
        return name
    if is_user_defined(function_code):
        return f"USER_DEFINED_{function_code}"
    return f"UNKNOWN_{function_code}"


def exception_name(exception_code: int) -> str:
    """Log name of an exception code; unknown codes keep their number."""
    return EXCEPTION_NAMES.get(exception_code, f"UNKNOWN_{exception_code}")


def diagnostic_name(subfunction: int) -> str:
    """Name of a diagnostics sub-function; unknown ones as Zeek spells them."""
    return DIAGNOSTIC_NAMES.get(subfunction, f"unknown-{subfunction}")


def mei_name(mei_type: int) -> str:
    """Name of an FC 43 MEI type."""
    return MEI_NAMES.get(mei_type, f"unknown-{mei_type}")


def object_name(object_id: int) -> str:
    """Name of a Read Device Identification object id (MB §6.21)."""
    name = DEVICE_ID_OBJECT_NAMES.get(object_id)
    if name is not None:
        return name
    if object_id >= 0x80:  # 0x80..0xFF: product dependent (private) objects
        return f"Private_0x{object_id:02X}"
    return f"Reserved_0x{object_id:02X}"


def op_class(
    function_code: int, *, subfunction: int | None = None, mei_type: int | None = None
) -> OpClass:
    """Normalised operation class; sub-function and MEI type refine FC 8 and FC 43."""
    if function_code == 8 and subfunction in DIAGNOSTIC_CONTROL_SUBFUNCTIONS:
        return OpClass.CONTROL
    if function_code == 43 and mei_type is not None and mei_type != MEI_READ_DEVICE_ID:
        return OpClass.OTHER
    return _FUNCTION_CLASSES.get(function_code, OpClass.OTHER)


def is_known_function(function_code: int) -> bool:
    """True for codes with a name (public or commonly seen vendor codes)."""
    return function_code in FUNCTION_NAMES
