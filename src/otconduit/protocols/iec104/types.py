"""IEC 60870-5-101/104 type identifications and causes of transmission, as data.

Type ids and their information element layouts follow IEC 60870-5-101 §7.3 (the
companion standard 104 reuses them, §8 of 60870-5-104, with a 2-octet cause of
transmission, a 2-octet common address and 3-octet information object addresses);
security types 41 and 81..95 come from IEC 60870-5-7. Names are the standard's
mnemonics (``M_SP_NA_1``), as Wireshark shows them.

``ELEMENT_SIZE`` is the size in octets of one information element, without its
address; None marks types whose element has no fixed size (file segments, security),
decoded as one object holding what is left. ``OP_CLASSES`` is the operation class
vocabulary of policy and detection:

- monitor information (1..40) and end of initialisation (70, diagnostic);
- commands that move equipment or set values (45..51, 58..64) -> ``control``;
- interrogation (100, 101) and read (102) -> ``read``; clock synchronisation (103) and
  parameters (110..113) -> ``write``; reset process (105) -> ``control``; test and delay
  acquisition commands (104, 106, 107) -> ``diagnostic``;
- file transfer (120..127) -> ``program``; security (41: read, 81..95) -> ``session``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from otconduit.model import OpClass

TYPE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: "M_SP_NA_1",
        2: "M_SP_TA_1",
        3: "M_DP_NA_1",
        4: "M_DP_TA_1",
        5: "M_ST_NA_1",
        6: "M_ST_TA_1",
        7: "M_BO_NA_1",
        8: "M_BO_TA_1",
        9: "M_ME_NA_1",
        10: "M_ME_TA_1",
        11: "M_ME_NB_1",
        12: "M_ME_TB_1",
        13: "M_ME_NC_1",
        14: "M_ME_TC_1",
        15: "M_IT_NA_1",
        16: "M_IT_TA_1",
        17: "M_EP_TA_1",
        18: "M_EP_TB_1",
        19: "M_EP_TC_1",
        20: "M_PS_NA_1",
        21: "M_ME_ND_1",
        30: "M_SP_TB_1",
        31: "M_DP_TB_1",
        32: "M_ST_TB_1",
        33: "M_BO_TB_1",
        34: "M_ME_TD_1",
        35: "M_ME_TE_1",
        36: "M_ME_TF_1",
        37: "M_IT_TB_1",
        38: "M_EP_TD_1",
        39: "M_EP_TE_1",
        40: "M_EP_TF_1",
        41: "S_IT_TC_1",
        45: "C_SC_NA_1",
        46: "C_DC_NA_1",
        47: "C_RC_NA_1",
        48: "C_SE_NA_1",
        49: "C_SE_NB_1",
        50: "C_SE_NC_1",
        51: "C_BO_NA_1",
        58: "C_SC_TA_1",
        59: "C_DC_TA_1",
        60: "C_RC_TA_1",
        61: "C_SE_TA_1",
        62: "C_SE_TB_1",
        63: "C_SE_TC_1",
        64: "C_BO_TA_1",
        70: "M_EI_NA_1",
        81: "S_CH_NA_1",
        82: "S_RP_NA_1",
        83: "S_AR_NA_1",
        84: "S_KR_NA_1",
        85: "S_KS_NA_1",
        86: "S_KC_NA_1",
        87: "S_ER_NA_1",
        90: "S_US_NA_1",
        91: "S_UQ_NA_1",
        92: "S_UR_NA_1",
        93: "S_UK_NA_1",
        94: "S_UA_NA_1",
        95: "S_UC_NA_1",
        100: "C_IC_NA_1",
        101: "C_CI_NA_1",
        102: "C_RD_NA_1",
        103: "C_CS_NA_1",
        104: "C_TS_NA_1",
        105: "C_RP_NA_1",
        106: "C_CD_NA_1",
        107: "C_TS_TA_1",
        110: "P_ME_NA_1",
        111: "P_ME_NB_1",
        112: "P_ME_NC_1",
        113: "P_AC_NA_1",
        120: "F_FR_NA_1",
        121: "F_SR_NA_1",
        122: "F_SC_NA_1",
        123: "F_LS_NA_1",
        124: "F_AF_NA_1",
        125: "F_SG_NA_1",
        126: "F_DR_TA_1",
        127: "F_SC_NB_1",
    }
)

# Octets of one information element (without its 3-octet address). CP24Time2a is 3
# octets, CP56Time2a 7, CP16Time2a 2; SIQ/DIQ/QDS/VTI/SCO/DCO/RCO/QOS/QOI/QCC/QRP/QPM/
# QPA/COI 1; NVA/SVA 2; IEEE 754 short float 4; BSI 4; BCR 5.
ELEMENT_SIZE: Final[Mapping[int, int | None]] = MappingProxyType(
    {
        1: 1,
        2: 4,
        3: 1,
        4: 4,
        5: 2,
        6: 5,
        7: 5,
        8: 8,
        9: 3,
        10: 6,
        11: 3,
        12: 6,
        13: 5,
        14: 8,
        15: 5,
        16: 8,
        17: 6,
        18: 7,
        19: 7,
        20: 5,
        21: 2,
        30: 8,
        31: 8,
        32: 9,
        33: 12,
        34: 10,
        35: 10,
        36: 12,
        37: 12,
        38: 10,
        39: 11,
        40: 11,
        41: None,
        45: 1,
        46: 1,
        47: 1,
        48: 3,
        49: 3,
        50: 5,
        51: 4,
        58: 8,
        59: 8,
        60: 8,
        61: 10,
        62: 10,
        63: 12,
        64: 11,
        70: 1,
        100: 1,
        101: 1,
        102: 0,
        103: 7,
        104: 2,
        105: 1,
        106: 2,
        107: 9,
        110: 3,
        111: 3,
        112: 5,
        113: 1,
        120: 6,
        121: 7,
        122: 4,
        123: 5,
        124: 4,
        125: None,
        126: 13,
        127: 16,
        **dict.fromkeys((81, 82, 83, 84, 85, 86, 87, 90, 91, 92, 93, 94, 95), None),
    }
)

# Commands (control direction, answered with activation confirmation/termination).
SINGLE_COMMANDS: Final = frozenset({45, 58})
DOUBLE_COMMANDS: Final = frozenset({46, 59})
STEP_COMMANDS: Final = frozenset({47, 60})
SETPOINT_COMMANDS: Final = frozenset({48, 49, 50, 61, 62, 63})
BITSTRING_COMMANDS: Final = frozenset({51, 64})
PROCESS_COMMANDS: Final = (
    SINGLE_COMMANDS | DOUBLE_COMMANDS | STEP_COMMANDS | SETPOINT_COMMANDS | BITSTRING_COMMANDS
)
INTERROGATION: Final = 100
COUNTER_INTERROGATION: Final = 101
READ_COMMAND: Final = 102
CLOCK_SYNC: Final = 103
TEST_COMMAND: Final = 104
RESET_PROCESS: Final = 105
DELAY_ACQUISITION: Final = 106
TEST_COMMAND_TIME: Final = 107
END_OF_INIT: Final = 70
SYSTEM_COMMANDS: Final = frozenset(range(100, 108))
PARAMETERS: Final = frozenset({110, 111, 112, 113})
# Everything a controlling station activates and an outstation confirms.
ACTIVATED: Final = PROCESS_COMMANDS | SYSTEM_COMMANDS | PARAMETERS
# Activations that end with their confirmation (no activation termination follows).
ENDS_AT_CONFIRMATION: Final = frozenset(
    {READ_COMMAND, CLOCK_SYNC, TEST_COMMAND, RESET_PROCESS, DELAY_ACQUISITION, TEST_COMMAND_TIME}
    | PARAMETERS
)
MONITOR: Final = frozenset(t for t in TYPE_NAMES if t <= 40)
SECURITY: Final = frozenset({41, 81, 82, 83, 84, 85, 86, 87, 90, 91, 92, 93, 94, 95})
FILES: Final = frozenset(range(120, 128))

_C = OpClass
OP_CLASSES: Final[Mapping[int, OpClass]] = MappingProxyType(
    {
        **dict.fromkeys(MONITOR, _C.READ),
        41: _C.READ,
        **dict.fromkeys(PROCESS_COMMANDS, _C.CONTROL),
        END_OF_INIT: _C.DIAGNOSTIC,
        INTERROGATION: _C.READ,
        COUNTER_INTERROGATION: _C.READ,
        READ_COMMAND: _C.READ,
        CLOCK_SYNC: _C.WRITE,
        TEST_COMMAND: _C.DIAGNOSTIC,
        RESET_PROCESS: _C.CONTROL,
        DELAY_ACQUISITION: _C.DIAGNOSTIC,
        TEST_COMMAND_TIME: _C.DIAGNOSTIC,
        **dict.fromkeys(PARAMETERS, _C.WRITE),
        **dict.fromkeys(FILES, _C.PROGRAM),
        **dict.fromkeys(SECURITY - {41}, _C.SESSION),
    }
)

# Causes of transmission (101 §7.2.3).
PERIODIC: Final = 1
SPONTANEOUS: Final = 3
REQUEST: Final = 5
ACTIVATION: Final = 6
ACTIVATION_CON: Final = 7
DEACTIVATION: Final = 8
DEACTIVATION_CON: Final = 9
ACTIVATION_TERM: Final = 10
UNKNOWN_CAUSES: Final = frozenset({44, 45, 46, 47})

COT_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: "periodic",
        2: "background",
        3: "spontaneous",
        4: "initialized",
        5: "request",
        6: "activation",
        7: "activation_con",
        8: "deactivation",
        9: "deactivation_con",
        10: "activation_term",
        11: "return_remote",
        12: "return_local",
        13: "file_transfer",
        14: "authentication",
        15: "session_key",
        16: "user_role_key",
        20: "interrogated_station",
        **{20 + g: f"interrogated_group_{g}" for g in range(1, 17)},
        37: "counter_interrogated",
        **{37 + g: f"counter_group_{g}" for g in range(1, 5)},
        44: "unknown_type",
        45: "unknown_cause",
        46: "unknown_common_address",
        47: "unknown_ioa",
    }
)


def type_name(type_id: int) -> str:
    """The mnemonic, or ``TYPE_<n>`` for reserved and private (128..255) ids."""
    return TYPE_NAMES.get(type_id, f"TYPE_{type_id}")


def op_class(type_id: int) -> OpClass:
    return OP_CLASSES.get(type_id, OpClass.OTHER)


def cot_name(cot: int) -> str:
    return COT_NAMES.get(cot, f"cause_{cot}")
