"""S7comm code tables: ROSCTR, functions, userdata groups, areas, sizes, error codes.

Names follow Zeek ICSNPP's s7comm logs where those logs show them (``consts.zeek`` of
cisagov/icsnpp-s7comm: "Read Variable", "Setup Communication", "Read SZL", ...), so our
operations line up with that baseline. Code values come from the Wireshark S7comm
dissector documentation (``packet-s7comm.c``, cited "WS") and Siemens' "System Software
for S7-300/400, System and Standard Functions", Volume 2, A5E00739858-01 (cited "SFC
§33"). The protocol is not publicly specified by Siemens; these tables are what the
public reverse-engineering agrees on.

``function_code`` of an Operation (documented here, used by every S7 module):

- ``0x00..0xFF``: the S7 job function byte (parameter byte 0 of Job/Ack-Data PDUs).
- ``0x4000 | group << 8 | subfunction``: a userdata function (group is 4 bits).
- ``0x8000 | tpdu_code``: COTP connection events (``0x80E0`` connect, ``0x8080``
  disconnect), which are no S7 functions at all.
- S7comm-plus operations (protocol "s7comm-plus") carry the 16-bit plus function code.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from otconduit.model import OpClass

# --- header ------------------------------------------------------------------------------

PROTOCOL_ID: Final = 0x32

ROSCTR_JOB: Final = 0x01
ROSCTR_ACK: Final = 0x02
ROSCTR_ACK_DATA: Final = 0x03
ROSCTR_USERDATA: Final = 0x07

# Spelled as ICSNPP's rosctr_name column.
ROSCTR_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        ROSCTR_JOB: "Job-Request",
        ROSCTR_ACK: "ACK",
        ROSCTR_ACK_DATA: "ACK-Data",
        ROSCTR_USERDATA: "User-Data",
    }
)

# WS errcls_names: error class byte of Ack/Ack-Data headers.
ERROR_CLASSES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x00: "No error",
        0x81: "Application relationship",
        0x82: "Object definition",
        0x83: "No resources available",
        0x84: "Error on service processing",
        0x85: "Error on supplies",
        0x87: "Access error",
    }
)

# WS param_errcode_names (16-bit: header class << 8 | code, or the userdata parameter
# error word). A selection of the codes seen in practice, names shortened.
ERROR_CODES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x0000: "No error",
        0x0110: "Invalid block number",
        0x0111: "Invalid request length",
        0x0112: "Invalid parameter",
        0x0113: "Invalid block type",
        0x0114: "Block not found",
        0x0115: "Block already exists",
        0x0116: "Block is write-protected",
        0x0119: "Incorrect password",
        0x011C: "Protocol error",
        0x8104: "Service not implemented or frame error",
        0x8301: "Insufficient memory",
        0x8304: "No further parallel upload possible",
        0x8305: "Function not available",
        0x8401: "Invalid service sequence",
        0x8402: "Service not possible in object state",
        0x8404: "Function cannot be performed",
        0x8500: "Wrong frames",
        0x8701: "Object addressing error",
        0x8702: "Service not supported by module",
        0x8703: "Access to object refused",
        0x8704: "Object damaged",
        0xD081: "Function not permitted in current mode",
        0xD0A1: "Function not permitted in current protection level",
        0xD201: "Syntax error in block name",
        0xD202: "Syntax error in function parameters",
        0xD209: "Block not found on module",
        0xD20C: "OB priority class does not exist",
        0xD20E: "No (further) block available",
        0xD210: "Invalid block number",
        0xD241: "Function not permitted in current protection level",
        0xD401: "Information function unavailable",
        0xD402: "Information function unavailable",
        0xD405: "Service not supported or syntax error",
        0xD406: "Required information currently unavailable",
        0xD602: "Incorrect password",
        0xD603: "Connection already legitimized",
        0xD605: "Password does not exist",
        0xD801: "Invalid tag address",
        0xD802: "Specified job does not exist",
        0xDC01: "Date and/or time invalid",
    }
)


def error_name(error_class: int, error_code: int) -> str:
    """Name of a header error: the 16-bit code if known, else the class."""
    combined = (error_class << 8) | error_code
    if combined in ERROR_CODES:
        return ERROR_CODES[combined]
    if error_class in ERROR_CLASSES and error_class != 0:
        return ERROR_CLASSES[error_class]
    return f"Error 0x{combined:04x}"


def parameter_error_name(code: int) -> str:
    """Name of a 16-bit userdata parameter error word."""
    return ERROR_CODES.get(code, f"Parameter error 0x{code:04x}")


# --- job functions ------------------------------------------------------------------------

FUNC_CPU_SERVICES: Final = 0x00
FUNC_READ_VAR: Final = 0x04
FUNC_WRITE_VAR: Final = 0x05
FUNC_REQUEST_DOWNLOAD: Final = 0x1A
FUNC_DOWNLOAD_BLOCK: Final = 0x1B
FUNC_DOWNLOAD_ENDED: Final = 0x1C
FUNC_START_UPLOAD: Final = 0x1D
FUNC_UPLOAD: Final = 0x1E
FUNC_END_UPLOAD: Final = 0x1F
FUNC_PI_SERVICE: Final = 0x28
FUNC_PLC_STOP: Final = 0x29
FUNC_SETUP_COMMUNICATION: Final = 0xF0

# ICSNPP s7comm_functions (function_name column of s7comm.log).
JOB_FUNCTIONS: Final[Mapping[int, str]] = MappingProxyType(
    {
        FUNC_CPU_SERVICES: "CPU Services",
        FUNC_READ_VAR: "Read Variable",
        FUNC_WRITE_VAR: "Write Variable",
        FUNC_REQUEST_DOWNLOAD: "Request Download",
        FUNC_DOWNLOAD_BLOCK: "Download Block",
        FUNC_DOWNLOAD_ENDED: "Download Ended",
        FUNC_START_UPLOAD: "Start Upload",
        FUNC_UPLOAD: "Upload",
        FUNC_END_UPLOAD: "End Upload",
        FUNC_PI_SERVICE: "PLC Control",
        FUNC_PLC_STOP: "PLC Stop",
        FUNC_SETUP_COMMUNICATION: "Setup Communication",
    }
)

PROGRAM_FUNCTIONS: Final = frozenset(range(FUNC_REQUEST_DOWNLOAD, FUNC_END_UPLOAD + 1))

_JOB_CLASSES: Final[Mapping[int, OpClass]] = MappingProxyType(
    {
        FUNC_CPU_SERVICES: OpClass.OTHER,
        FUNC_READ_VAR: OpClass.READ,
        FUNC_WRITE_VAR: OpClass.WRITE,
        FUNC_PI_SERVICE: OpClass.CONTROL,
        FUNC_PLC_STOP: OpClass.CONTROL,
        FUNC_SETUP_COMMUNICATION: OpClass.SESSION,
        **dict.fromkeys(PROGRAM_FUNCTIONS, OpClass.PROGRAM),
    }
)


def job_function_name(code: int) -> str:
    return JOB_FUNCTIONS.get(code, f"Unknown Function 0x{code:02x}")


def job_op_class(code: int, pi_service: str | None = None) -> OpClass:
    """Class of a job; a PI service (0x28) is program or control by its service name."""
    if code == FUNC_PI_SERVICE and pi_service is not None:
        return PI_SERVICE_CLASSES.get(pi_service, OpClass.CONTROL)
    return _JOB_CLASSES.get(code, OpClass.OTHER)


# --- PI services (function 0x28 and 0x29) --------------------------------------------------

# ICSNPP s7comm_plc_control_services (subfunction_name column for PLC Control rows).
PI_SERVICES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "_INSE": "Activates a PLC module",
        "_INS2": "Activates a PLC module",
        "_DELE": "Removes module from the PLC's passive file system",
        "P_PROGRAM": "PLC Start / Stop",
        "_MODU": "PLC Copy Ram to Rom",
        "_GARB": "Compress PLC memory",
        "_N_LOGIN_": "Login",
        "_N_LOGOUT": "Logout",
    }
)

# Services that change what program the PLC holds; everything else (start, NC services
# we cannot name) counts as control.
PI_SERVICE_CLASSES: Final[Mapping[str, OpClass]] = MappingProxyType(
    {
        "_INSE": OpClass.PROGRAM,
        "_INS2": OpClass.PROGRAM,
        "_DELE": OpClass.PROGRAM,
        "_MODU": OpClass.PROGRAM,
        "_GARB": OpClass.PROGRAM,
        "_N_LOGIN_": OpClass.SESSION,
        "_N_LOGOUT": OpClass.SESSION,
    }
)

# --- userdata -----------------------------------------------------------------------------

USERDATA_BASE: Final = 0x4000

UD_TYPE_PUSH: Final = 0x0
UD_TYPE_REQUEST: Final = 0x4
UD_TYPE_RESPONSE: Final = 0x8
UD_TYPE_NC_PUSH: Final = 0x3
UD_TYPE_NC_REQUEST: Final = 0x7
UD_TYPE_NC_RESPONSE: Final = 0xB
UD_REQUEST_TYPES: Final = frozenset({UD_TYPE_REQUEST, UD_TYPE_NC_REQUEST})
UD_RESPONSE_TYPES: Final = frozenset({UD_TYPE_RESPONSE, UD_TYPE_NC_RESPONSE})
UD_TYPE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        UD_TYPE_PUSH: "Push",
        UD_TYPE_REQUEST: "Request",
        UD_TYPE_RESPONSE: "Response",
        UD_TYPE_NC_PUSH: "NC Push",
        UD_TYPE_NC_REQUEST: "NC Request",
        UD_TYPE_NC_RESPONSE: "NC Response",
    }
)

GROUP_MODE_TRANSITION: Final = 0x0
GROUP_PROGRAMMER: Final = 0x1
GROUP_CYCLIC: Final = 0x2
GROUP_BLOCK: Final = 0x3
GROUP_CPU: Final = 0x4
GROUP_SECURITY: Final = 0x5
GROUP_PBC: Final = 0x6
GROUP_TIME: Final = 0x7
GROUP_NC: Final = 0xF

SUB_READ_SZL: Final = 0x01
SUB_LIST_BLOCKS: Final = 0x01
SUB_LIST_BLOCKS_OF_TYPE: Final = 0x02
SUB_BLOCK_INFO: Final = 0x03
SUB_READ_CLOCK: Final = 0x01
SUB_SET_CLOCK: Final = 0x02
SUB_READ_CLOCK_FOLLOWING: Final = 0x03
SUB_SET_CLOCK_2: Final = 0x04

# ICSNPP s7comm_userdata_functions (the name after "Request: " in function_name).
USERDATA_GROUPS: Final[Mapping[int, str]] = MappingProxyType(
    {
        GROUP_MODE_TRANSITION: "Mode-Transition",
        GROUP_PROGRAMMER: "Programmer Controls",
        GROUP_CYCLIC: "Cyclic Services",
        GROUP_BLOCK: "Block Functions",
        GROUP_CPU: "CPU Functions",
        GROUP_SECURITY: "Security",
        GROUP_PBC: "PBC BSEND-BRECV",
        GROUP_TIME: "Time Functions",
        GROUP_NC: "NC Programming",
    }
)

# ICSNPP s7comm_*_subfunctions (subfunction_name column); Security 0x02 from WS.
USERDATA_SUBFUNCTIONS: Final[Mapping[int, Mapping[int, str]]] = MappingProxyType(
    {
        GROUP_MODE_TRANSITION: {
            0x00: "Stop",
            0x01: "Warm Restart",
            0x02: "Run",
            0x03: "Hot Restart",
            0x04: "Hold",
            0x06: "Cold Restart",
            0x09: "Run_R",
            0x0B: "Link-Up",
            0x0C: "Update",
        },
        GROUP_PROGRAMMER: {
            0x01: "Block Status",
            0x02: "Variable Status",
            0x03: "Output ISTACK",
            0x04: "Output BSTACK",
            0x05: "Output LSTACK",
            0x06: "Time Measurement",
            0x07: "Force Selection",
            0x08: "Modify Variable",
            0x09: "Force",
            0x0A: "Breakpoint",
            0x0B: "Exit HOLD",
            0x0C: "Memory Reset",
            0x0D: "Disable Job",
            0x0E: "Enable Job",
            0x0F: "Delete Job",
            0x10: "Read Job List",
            0x11: "Read Job",
            0x12: "Replace Job",
            0x13: "Block Status v2",
            0x16: "Flash LED",
        },
        GROUP_CYCLIC: {
            0x01: "Cyclic Transfer",
            0x04: "Unsubscribe",
            0x05: "Change Driven Transfer",
            0x07: "Change Driven Transfer Modify",
            0x08: "RDREC",
        },
        GROUP_BLOCK: {
            SUB_LIST_BLOCKS: "List Blocks",
            SUB_LIST_BLOCKS_OF_TYPE: "List Blocks of Type",
            SUB_BLOCK_INFO: "Get Block Info",
        },
        GROUP_CPU: {
            SUB_READ_SZL: "Read SZL",
            0x02: "Message Service",
            0x03: "Diagnostic Message",
            0x04: "ALARM_8 Indication",
            0x05: "NOTIFY Indication",
            0x06: "ALARM_8 Lock",
            0x07: "ALARM_8 Unlock",
            0x08: "SCAN Indication",
            0x0B: "ALARM_S Indication",
            0x0C: "ALARM_SQ Indication",
            0x0D: "ALARM Query",
            0x0E: "ALARM ACK",
            0x11: "ALARM ACK Indication",
            0x12: "ALARM Lock Indication",
            0x13: "ALARM Unlock Indication",
            0x16: "NOTIFY_8 Indication",
        },
        GROUP_SECURITY: {0x01: "PLC Password", 0x02: "Clean Session"},
        GROUP_PBC: {},
        GROUP_TIME: {
            SUB_READ_CLOCK: "Read Clock",
            SUB_SET_CLOCK: "Set Clock",
            SUB_READ_CLOCK_FOLLOWING: "Read Clock (Following)",
            SUB_SET_CLOCK_2: "Set Clock (2)",
        },
        GROUP_NC: {},
    }
)


def userdata_code(group: int, subfunction: int) -> int:
    """Operation ``function_code`` of a userdata function (see the module docstring)."""
    return USERDATA_BASE | ((group & 0x0F) << 8) | (subfunction & 0xFF)


def group_name(group: int) -> str:
    return USERDATA_GROUPS.get(group, f"Unknown Group 0x{group:x}")


def subfunction_name(group: int, subfunction: int) -> str:
    name = USERDATA_SUBFUNCTIONS.get(group, {}).get(subfunction)
    return name if name is not None else f"{group_name(group)} 0x{subfunction:02x}"


_PROGRAMMER_CLASSES: Final[Mapping[int, OpClass]] = MappingProxyType(
    {
        0x08: OpClass.WRITE,  # modify variable
        0x09: OpClass.WRITE,  # force
        0x0A: OpClass.CONTROL,  # breakpoint
        0x0B: OpClass.CONTROL,  # exit HOLD
        0x0C: OpClass.CONTROL,  # memory reset
    }
)


def userdata_op_class(group: int, subfunction: int) -> OpClass:
    """Normalised class of a userdata function (programmer commands mostly diagnose)."""
    if group == GROUP_PROGRAMMER:
        return _PROGRAMMER_CLASSES.get(subfunction, OpClass.DIAGNOSTIC)
    if group == GROUP_CPU:
        return OpClass.IDENTITY if subfunction == SUB_READ_SZL else OpClass.DIAGNOSTIC
    if group == GROUP_TIME:
        reads = (SUB_READ_CLOCK, SUB_READ_CLOCK_FOLLOWING)
        return OpClass.READ if subfunction in reads else OpClass.OTHER
    return {
        GROUP_MODE_TRANSITION: OpClass.DIAGNOSTIC,
        GROUP_CYCLIC: OpClass.READ,
        GROUP_BLOCK: OpClass.DIAGNOSTIC,
        GROUP_SECURITY: OpClass.SESSION,
        GROUP_NC: OpClass.PROGRAM,
    }.get(group, OpClass.OTHER)


# --- items (read/write variable) ----------------------------------------------------------

SYNTAX_S7ANY: Final = 0x10
VAR_SPEC: Final = 0x12  # WS: variable specification marker before each item address

# WS syntax ids of a variable specification.
SYNTAX_IDS: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x10: "S7ANY",
        0x13: "PBC-R_ID",
        0x15: "ALARM_LOCKFREE",
        0x16: "ALARM_IND",
        0x19: "ALARM_ACK",
        0x1A: "ALARM_QUERYREQ",
        0x1C: "NOTIFY_IND",
        0x82: "DRIVEESANY",
        0xA2: "NCK",
        0xB0: "DBREAD",
        0xB2: "1200SYM",
    }
)

AREA_DB: Final = 0x84
# WS item_areanames_short.
AREAS: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x01: "RECORD",
        0x03: "SI200",
        0x05: "SF200",
        0x06: "AI200",
        0x07: "AO200",
        0x1C: "C",
        0x1D: "T",
        0x1E: "C200",
        0x1F: "T200",
        0x80: "P",
        0x81: "I",
        0x82: "Q",
        0x83: "M",
        0x84: "DB",
        0x85: "DI",
        0x86: "L",
        0x87: "V",
    }
)

# WS item_transportsizenames: the transport size of a request item.
TRANSPORT_SIZES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x01: "BIT",
        0x02: "BYTE",
        0x03: "CHAR",
        0x04: "WORD",
        0x05: "INT",
        0x06: "DWORD",
        0x07: "DINT",
        0x08: "REAL",
        0x09: "DATE",
        0x0A: "TOD",
        0x0B: "TIME",
        0x0C: "S5TIME",
        0x0F: "DATE_AND_TIME",
        0x1C: "COUNTER",
        0x1D: "TIMER",
        0x1E: "IEC_TIMER",
        0x1F: "IEC_COUNTER",
        0x20: "HS_COUNTER",
    }
)

# WS data transport sizes (data part of read responses / write requests). For these the
# length field counts bits; for the others it counts bytes.
DATA_SIZE_BIT: Final = 0x03
DATA_SIZES_IN_BITS: Final = frozenset({0x03, 0x04, 0x05})
DATA_TRANSPORT_SIZES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x00: "NULL",
        0x03: "BIT",
        0x04: "BYTE/WORD/DWORD",
        0x05: "INTEGER",
        0x06: "DINTEGER",
        0x07: "REAL",
        0x09: "OCTET STRING",
    }
)

RETURN_SUCCESS: Final = 0xFF
RETURN_NO_DATA: Final = 0x0A  # "object does not exist", also the empty-data marker
# ICSNPP s7comm_userdata_return_codes = WS item return values.
RETURN_CODES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x00: "Reserved",
        0x01: "Hardware error",
        0x03: "Accessing the object not allowed",
        0x05: "Invalid address",
        0x06: "Data type not supported",
        0x07: "Data type inconsistent",
        0x0A: "Object does not exist",
        RETURN_SUCCESS: "Success",
    }
)


def return_code_name(code: int) -> str:
    return RETURN_CODES.get(code, f"Return code 0x{code:02x}")


# --- blocks ------------------------------------------------------------------------------

# ICSNPP s7comm_block_types: two ASCII hex digits in file names and block functions.
BLOCK_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "08": "Organization Block",
        "0A": "Data Block",
        "0B": "System Data Block",
        "0C": "Function",
        "0D": "System Function",
        "0E": "Function Block",
        "0F": "System Function Block",
    }
)
# WS: the last character of a block file name says where the block lives.
FILESYSTEMS: Final[Mapping[str, str]] = MappingProxyType(
    {"P": "Passive", "A": "Active", "B": "Active and passive"}
)

# --- SZL ---------------------------------------------------------------------------------

# ICSNPP s7comm_szl_id, keyed by the partial list number (low byte of the SZL id).
SZL_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x00: "List of all the SZL-IDs of a module",
        0x11: "Module identification",
        0x12: "CPU characteristics",
        0x13: "User memory areas",
        0x14: "System areas",
        0x15: "Block types",
        0x16: "Priority classes",
        0x17: "List of the permitted SDBs with a number < 1000",
        0x18: "Maximum S7-300 I/O configuration",
        0x19: "Status of the module LEDs",
        0x1C: "Component Identification",
        0x21: "Interrupt / error assignment",
        0x22: "Interrupt status",
        0x23: "Priority classes",
        0x24: "Modes",
        0x25: "Assignment between process image partitions and OBs",
        0x31: "Communication capability parameters",
        0x32: "Communication status data",
        0x33: "Diagnostics: device logon list",
        0x37: "Ethernet - Details of a Module",
        0x71: "H CPU group information",
        0x74: "Status of the module LEDs",
        0x75: "Switched DP slaves in the H-system",
        0x81: "Start information list",
        0x82: "Start event list",
        0x91: "Module status information",
        0x92: "Rack / station status information",
        0x94: "Rack / station status information",
        0x95: "Extended DP master system information",
        0x96: "Module status information, PROFINET IO and PROFIBUS DP",
        0xA0: "Diagnostic buffer of the CPU",
        0xB1: "Module diagnostic information (data record 0)",
        0xB2: "Module diagnostic information (data record 1), geographical address",
        0xB3: "Module diagnostic information (data record 1), logical address",
        0xB4: "Diagnostic data of a DP slave",
    }
)


def szl_name(szl_id: int) -> str:
    return SZL_NAMES.get(szl_id & 0xFF, "Unknown")


# --- COTP pseudo functions -----------------------------------------------------------------

COTP_BASE: Final = 0x8000
COTP_CONNECT_CODE: Final = COTP_BASE | 0xE0
COTP_DISCONNECT_CODE: Final = COTP_BASE | 0x80
COTP_CONNECT: Final = "COTP_CONNECT"
COTP_DISCONNECT: Final = "COTP_DISCONNECT"
