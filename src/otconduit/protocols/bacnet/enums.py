"""BACnet enumerations kept as data: BVLC functions, network layer messages, APDU types,
services, object types, errors and the enumerated property values people read.

Numbers and meanings follow ASHRAE 135 (cited "135 §x"; Annex J for BACnet/IP). Names
are the standard's ASN.1 spellings, except three families that follow Zeek ICSNPP's
``bacnet.log`` so conformance tests compare field by field: APDU types
(``CONFIRMED_REQUEST``), service choices in snake case (``read_property``) and, in
:data:`ZEEK_BVLC_NAMES`, Zeek's own BVLC function spelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# -- BVLC (135 Annex J.2) ----------------------------------------------------------------
BVLC_TYPE_IP: Final = 0x81
BVLC_TYPE_IPV6: Final = 0x82

BVLC_RESULT: Final = 0x00
WRITE_BDT: Final = 0x01
READ_BDT: Final = 0x02
READ_BDT_ACK: Final = 0x03
FORWARDED_NPDU: Final = 0x04
REGISTER_FOREIGN_DEVICE: Final = 0x05
READ_FDT: Final = 0x06
READ_FDT_ACK: Final = 0x07
DELETE_FDT_ENTRY: Final = 0x08
DISTRIBUTE_BROADCAST: Final = 0x09
ORIGINAL_UNICAST: Final = 0x0A
ORIGINAL_BROADCAST: Final = 0x0B
SECURE_BVLL: Final = 0x0C

BVLC_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        BVLC_RESULT: "BVLC-Result",
        WRITE_BDT: "Write-Broadcast-Distribution-Table",
        READ_BDT: "Read-Broadcast-Distribution-Table",
        READ_BDT_ACK: "Read-Broadcast-Distribution-Table-Ack",
        FORWARDED_NPDU: "Forwarded-NPDU",
        REGISTER_FOREIGN_DEVICE: "Register-Foreign-Device",
        READ_FDT: "Read-Foreign-Device-Table",
        READ_FDT_ACK: "Read-Foreign-Device-Table-Ack",
        DELETE_FDT_ENTRY: "Delete-Foreign-Device-Table-Entry",
        DISTRIBUTE_BROADCAST: "Distribute-Broadcast-To-Network",
        ORIGINAL_UNICAST: "Original-Unicast-NPDU",
        ORIGINAL_BROADCAST: "Original-Broadcast-NPDU",
        SECURE_BVLL: "Secure-BVLL",
    }
)
# Zeek ICSNPP's spelling of the same functions (bacnet.log ``bvlc_function``).
ZEEK_BVLC_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        BVLC_RESULT: "BVLC_Result",
        WRITE_BDT: "Write_Broadcast_Table",
        READ_BDT: "Read_Broadcast_Table",
        READ_BDT_ACK: "Read_Broadcast_Table_ACK",
        FORWARDED_NPDU: "Forwarded_NPDU",
        REGISTER_FOREIGN_DEVICE: "Register_Foreign_Device",
        READ_FDT: "Read_Foreign_Device_Table",
        READ_FDT_ACK: "Read_Foreign_Device_Table_ACK",
        DELETE_FDT_ENTRY: "Delete_Foreign_Device_Table_Entry",
        DISTRIBUTE_BROADCAST: "Distribute_Broadcast_to_Network",
        ORIGINAL_UNICAST: "Original_Unicast_NPDU",
        ORIGINAL_BROADCAST: "Original_Broadcast_NPDU",
    }
)
# Functions that carry an NPDU after their own fields.
NPDU_FUNCTIONS: Final = frozenset(
    {FORWARDED_NPDU, DISTRIBUTE_BROADCAST, ORIGINAL_UNICAST, ORIGINAL_BROADCAST}
)
# BVLC-Result codes (J.2.1.1): success, or which request was refused.
BVLC_RESULT_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x00: "Successful-Completion",
        0x10: "Write-Broadcast-Distribution-Table-NAK",
        0x20: "Read-Broadcast-Distribution-Table-NAK",
        0x30: "Register-Foreign-Device-NAK",
        0x40: "Read-Foreign-Device-Table-NAK",
        0x50: "Delete-Foreign-Device-Table-Entry-NAK",
        0x60: "Distribute-Broadcast-To-Network-NAK",
    }
)
# The request a NAK code refuses, and the acknowledgement that answers a request.
BVLC_NAK_OF: Final[Mapping[int, int]] = MappingProxyType(
    {
        0x10: WRITE_BDT,
        0x20: READ_BDT,
        0x30: REGISTER_FOREIGN_DEVICE,
        0x40: READ_FDT,
        0x50: DELETE_FDT_ENTRY,
        0x60: DISTRIBUTE_BROADCAST,
    }
)
BVLC_ACK_OF: Final[Mapping[int, int]] = MappingProxyType(
    {READ_BDT_ACK: READ_BDT, READ_FDT_ACK: READ_FDT}
)
# BVLC requests a BBMD answers (with BVLC-Result or an ACK).
BVLC_REQUESTS: Final = frozenset(
    {WRITE_BDT, READ_BDT, REGISTER_FOREIGN_DEVICE, READ_FDT, DELETE_FDT_ENTRY}
)

# -- network layer messages (135 §6.2.4) -------------------------------------------------
NETWORK_MESSAGE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x00: "who_is_router_to_network",
        0x01: "i_am_router_to_network",
        0x02: "i_could_be_router_to_network",
        0x03: "reject_message_to_network",
        0x04: "router_busy_to_network",
        0x05: "router_available_to_network",
        0x06: "initialize_routing_table",
        0x07: "initialize_routing_table_ack",
        0x08: "establish_connection_to_network",
        0x09: "disconnect_connection_to_network",
        0x0A: "challenge_request",
        0x0B: "security_payload",
        0x0C: "security_response",
        0x0D: "request_key_update",
        0x0E: "update_key_set",
        0x0F: "update_distribution_key",
        0x10: "request_master_key",
        0x11: "set_master_key",
        0x12: "what_is_network_number",
        0x13: "network_number_is",
    }
)
INITIALIZE_ROUTING_TABLE: Final = 0x06
REJECT_REASONS_NETWORK: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "other",
        1: "not-directly-connected",
        2: "router-busy",
        3: "unknown-network-message",
        4: "message-too-long",
        5: "security-error",
        6: "addressing-error",
    }
)

# -- APDU (135 §20.1) --------------------------------------------------------------------
CONFIRMED_REQUEST: Final = 0
UNCONFIRMED_REQUEST: Final = 1
SIMPLE_ACK: Final = 2
COMPLEX_ACK: Final = 3
SEGMENT_ACK: Final = 4
ERROR: Final = 5
REJECT: Final = 6
ABORT: Final = 7

PDU_TYPE_NAMES: Final = (
    "CONFIRMED_REQUEST",
    "UNCONFIRMED_REQUEST",
    "SIMPLE_ACK",
    "COMPLEX_ACK",
    "SEGMENT_ACK",
    "ERROR_PDU",
    "REJECT_PDU",
    "ABORT_PDU",
)

# Confirmed service choices (135 §21, BACnetConfirmedServiceChoice).
ACKNOWLEDGE_ALARM: Final = 0
CONFIRMED_COV_NOTIFICATION: Final = 1
CONFIRMED_EVENT_NOTIFICATION: Final = 2
SUBSCRIBE_COV: Final = 5
ATOMIC_READ_FILE: Final = 6
ATOMIC_WRITE_FILE: Final = 7
CREATE_OBJECT: Final = 10
DELETE_OBJECT: Final = 11
READ_PROPERTY: Final = 12
READ_PROPERTY_MULTIPLE: Final = 14
WRITE_PROPERTY: Final = 15
WRITE_PROPERTY_MULTIPLE: Final = 16
DEVICE_COMMUNICATION_CONTROL: Final = 17
CONFIRMED_PRIVATE_TRANSFER: Final = 18
REINITIALIZE_DEVICE: Final = 20
READ_RANGE: Final = 26
SUBSCRIBE_COV_PROPERTY: Final = 28

CONFIRMED_SERVICE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "acknowledge_alarm",
        1: "confirmed_cov_notification",
        2: "confirmed_event_notification",
        3: "get_alarm_summary",
        4: "get_enrollment_summary",
        5: "subscribe_cov",
        6: "atomic_read_file",
        7: "atomic_write_file",
        8: "add_list_element",
        9: "remove_list_element",
        10: "create_object",
        11: "delete_object",
        12: "read_property",
        13: "read_property_conditional",
        14: "read_property_multiple",
        15: "write_property",
        16: "write_property_multiple",
        17: "device_communication_control",
        18: "confirmed_private_transfer",
        19: "confirmed_text_message",
        20: "reinitialize_device",
        21: "vt_open",
        22: "vt_close",
        23: "vt_data",
        24: "authenticate",
        25: "request_key",
        26: "read_range",
        27: "life_safety_operation",
        28: "subscribe_cov_property",
        29: "get_event_information",
        30: "subscribe_cov_property_multiple",
        31: "confirmed_cov_notification_multiple",
        32: "confirmed_audit_notification",
        33: "audit_log_query",
    }
)

# Unconfirmed service choices (BACnetUnconfirmedServiceChoice).
I_AM: Final = 0
I_HAVE: Final = 1
UNCONFIRMED_COV_NOTIFICATION: Final = 2
TIME_SYNCHRONIZATION: Final = 6
WHO_HAS: Final = 7
WHO_IS: Final = 8
UTC_TIME_SYNCHRONIZATION: Final = 9

UNCONFIRMED_SERVICE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "i_am",
        1: "i_have",
        2: "unconfirmed_cov_notification",
        3: "unconfirmed_event_notification",
        4: "unconfirmed_private_transfer",
        5: "unconfirmed_text_message",
        6: "time_synchronization",
        7: "who_has",
        8: "who_is",
        9: "utc_time_synchronization",
        10: "write_group",
        11: "unconfirmed_cov_notification_multiple",
        12: "unconfirmed_audit_notification",
        13: "who_am_i",
        14: "you_are",
    }
)

# -- objects and errors ------------------------------------------------------------------
DEVICE_OBJECT: Final = 8
FILE_OBJECT: Final = 10

OBJECT_TYPE_NAMES: Final = (
    "analog-input",
    "analog-output",
    "analog-value",
    "binary-input",
    "binary-output",
    "binary-value",
    "calendar",
    "command",
    "device",
    "event-enrollment",
    "file",
    "group",
    "loop",
    "multi-state-input",
    "multi-state-output",
    "notification-class",
    "program",
    "schedule",
    "averaging",
    "multi-state-value",
    "trend-log",
    "life-safety-point",
    "life-safety-zone",
    "accumulator",
    "pulse-converter",
    "event-log",
    "global-group",
    "trend-log-multiple",
    "load-control",
    "structured-view",
    "access-door",
    "timer",
    "access-credential",
    "access-point",
    "access-rights",
    "access-user",
    "access-zone",
    "credential-data-input",
    "network-security",
    "bitstring-value",
    "characterstring-value",
    "date-pattern-value",
    "date-value",
    "datetime-pattern-value",
    "datetime-value",
    "integer-value",
    "large-analog-value",
    "octetstring-value",
    "positive-integer-value",
    "time-pattern-value",
    "time-value",
    "notification-forwarder",
    "alert-enrollment",
    "channel",
    "lighting-output",
    "binary-lighting-output",
    "network-port",
    "elevator-group",
    "escalator",
    "lift",
    "staging",
    "audit-log",
    "audit-reporter",
    "color",
    "color-temperature",
)
# Object types whose present-value is BACnetBinaryPV (inactive/active).
BINARY_OBJECTS: Final = frozenset({3, 4, 5, 55})

ERROR_CLASS_NAMES: Final = (
    "device",
    "object",
    "property",
    "resources",
    "security",
    "services",
    "vt",
    "communication",
)

ERROR_CODE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "other",
        1: "authentication-failed",
        2: "configuration-in-progress",
        3: "device-busy",
        4: "dynamic-creation-not-supported",
        5: "file-access-denied",
        6: "incompatible-security-levels",
        7: "inconsistent-parameters",
        8: "inconsistent-selection-criterion",
        9: "invalid-data-type",
        10: "invalid-file-access-method",
        11: "invalid-file-start-position",
        12: "invalid-operator-name",
        13: "invalid-parameter-data-type",
        14: "invalid-time-stamp",
        15: "key-generation-error",
        16: "missing-required-parameter",
        17: "no-objects-of-specified-type",
        18: "no-space-for-object",
        19: "no-space-to-add-list-element",
        20: "no-space-to-write-property",
        21: "no-vt-sessions-available",
        22: "property-is-not-a-list",
        23: "object-deletion-not-permitted",
        24: "object-identifier-already-exists",
        25: "operational-problem",
        26: "password-failure",
        27: "read-access-denied",
        28: "security-not-supported",
        29: "service-request-denied",
        30: "timeout",
        31: "unknown-object",
        32: "unknown-property",
        34: "unknown-vt-class",
        35: "unknown-vt-session",
        36: "unsupported-object-type",
        37: "value-out-of-range",
        38: "vt-session-already-closed",
        39: "vt-session-termination-failure",
        40: "write-access-denied",
        41: "character-set-not-supported",
        42: "invalid-array-index",
        43: "cov-subscription-failed",
        44: "not-cov-property",
        45: "optional-functionality-not-supported",
        46: "invalid-configuration-data",
        47: "datatype-not-supported",
        48: "duplicate-name",
        49: "duplicate-object-id",
        50: "property-is-not-an-array",
        51: "abort-buffer-overflow",
        52: "abort-invalid-apdu-in-this-state",
        53: "abort-preempted-by-higher-priority-task",
        54: "abort-segmentation-not-supported",
        55: "abort-proprietary",
        56: "abort-other",
        57: "invalid-tag",
        58: "network-down",
        59: "reject-buffer-overflow",
        60: "reject-inconsistent-parameters",
        61: "reject-invalid-parameter-data-type",
        62: "reject-invalid-tag",
        63: "reject-missing-required-parameter",
        64: "reject-parameter-out-of-range",
        65: "reject-too-many-arguments",
        66: "reject-undefined-enumeration",
        67: "reject-unrecognized-service",
        68: "reject-proprietary",
        69: "reject-other",
        70: "unknown-device",
        71: "unknown-route",
        72: "value-not-initialized",
        73: "invalid-event-state",
        74: "no-alarm-configured",
        75: "log-buffer-full",
        76: "logged-value-purged",
        77: "no-property-specified",
        78: "not-configured-for-triggered-logging",
        79: "unknown-subscription",
        80: "parameter-out-of-range",
        81: "list-element-not-found",
        82: "busy",
        83: "communication-disabled",
        84: "success",
        85: "access-denied",
        86: "bad-destination-address",
        87: "bad-destination-device-id",
        88: "bad-signature",
        89: "bad-source-address",
        90: "bad-timestamp",
        91: "cannot-use-key",
        92: "cannot-verify-message-id",
        93: "correct-key-revision",
        94: "destination-device-id-required",
        95: "duplicate-message",
        96: "encryption-not-configured",
        97: "encryption-required",
        98: "incorrect-key",
        99: "invalid-key-data",
        100: "key-update-in-progress",
        101: "malformed-message",
        102: "not-key-server",
        103: "security-not-configured",
        104: "source-security-required",
        105: "too-many-keys",
        106: "unknown-authentication-type",
        107: "unknown-key",
        108: "unknown-key-revision",
        109: "unknown-source-message",
        110: "not-router-to-dnet",
        111: "router-busy",
        112: "unknown-network-message",
        113: "message-too-long",
        114: "security-error",
        115: "addressing-error",
        116: "write-bdt-failed",
        117: "read-bdt-failed",
        118: "register-foreign-device-failed",
        119: "read-fdt-failed",
        120: "delete-fdt-entry-failed",
        121: "distribute-broadcast-failed",
        122: "unknown-file-size",
        123: "abort-apdu-too-long",
        124: "abort-application-exceeded-reply-time",
        125: "abort-out-of-resources",
        126: "abort-tsm-timeout",
        127: "abort-window-size-out-of-range",
        128: "file-full",
        129: "inconsistent-configuration",
        130: "inconsistent-object-type",
        131: "internal-error",
        132: "not-configured",
        133: "out-of-memory",
        134: "value-too-long",
        135: "abort-insufficient-security",
        136: "abort-security-error",
    }
)

REJECT_REASON_NAMES: Final = (
    "other",
    "buffer-overflow",
    "inconsistent-parameters",
    "invalid-parameter-data-type",
    "invalid-tag",
    "missing-required-parameter",
    "parameter-out-of-range",
    "too-many-arguments",
    "undefined-enumeration",
    "unrecognized-service",
)

ABORT_REASON_NAMES: Final = (
    "other",
    "buffer-overflow",
    "invalid-apdu-in-this-state",
    "preempted-by-higher-priority-task",
    "segmentation-not-supported",
    "security-error",
    "insufficient-security",
    "window-size-out-of-range",
    "application-exceeded-reply-time",
    "out-of-resources",
    "tsm-timeout",
    "apdu-too-long",
)

# -- service parameters ------------------------------------------------------------------
# ReinitializeDevice reinitialized-state-of-device (135 §16.4.1.1.1).
REINITIALIZE_STATES: Final = (
    "coldstart",
    "warmstart",
    "startbackup",
    "endbackup",
    "startrestore",
    "endrestore",
    "abortrestore",
    "activate-changes",
)
# DeviceCommunicationControl enable-disable (135 §16.1.1.1.2).
DCC_STATES: Final = ("enable", "disable", "disable-initiation")
# BACnetSegmentation (I-Am segmentation-supported, property 107).
SEGMENTATION_NAMES: Final = (
    "segmented-both",
    "segmented-transmit",
    "segmented-receive",
    "no-segmentation",
)
# Max-APDU-length-accepted codes of a confirmed request (135 §20.1.2.5).
MAX_APDU_SIZES: Final = (50, 128, 206, 480, 1024, 1476)
# Max-segments-accepted codes (135 §20.1.2.4); None: unspecified.
MAX_SEGMENTS: Final = (None, 2, 4, 8, 16, 32, 64, 65)

# -- enumerated property values (135 §21) ------------------------------------------------
EVENT_STATES: Final = (
    "normal",
    "fault",
    "offnormal",
    "high-limit",
    "low-limit",
    "life-safety-alarm",
)
NOTIFY_TYPES: Final = ("alarm", "event", "ack-notification")
POLARITY: Final = ("normal", "reverse")
BINARY_PV: Final = ("inactive", "active")
DEVICE_STATUS: Final = (
    "operational",
    "operational-read-only",
    "download-required",
    "download-in-progress",
    "non-operational",
    "backup-in-progress",
)
LOGGING_TYPES: Final = ("polled", "cov", "triggered")
RELIABILITY: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "no-fault-detected",
        1: "no-sensor",
        2: "over-range",
        3: "under-range",
        4: "open-loop",
        5: "shorted-loop",
        6: "no-output",
        7: "unreliable-other",
        8: "process-error",
        9: "multi-state-fault",
        10: "configuration-error",
        12: "communication-failure",
        13: "member-fault",
        14: "monitored-object-fault",
        15: "tripped",
        16: "lamp-failure",
        17: "activation-failure",
        18: "renew-dhcp-failure",
        19: "renew-fd-registration-failure",
        20: "restart-auto-negotiation-failure",
        21: "restart-failure",
        22: "proprietary-command-failure",
        23: "faults-listed",
        24: "referenced-object-fault",
    }
)
# BACnetEngineeringUnits 0..189 (135 §21).
UNITS: Final = (
    "square-meters",
    "square-feet",
    "milliamperes",
    "amperes",
    "ohms",
    "volts",
    "kilovolts",
    "megavolts",
    "volt-amperes",
    "kilovolt-amperes",
    "megavolt-amperes",
    "volt-amperes-reactive",
    "kilovolt-amperes-reactive",
    "megavolt-amperes-reactive",
    "degrees-phase",
    "power-factor",
    "joules",
    "kilojoules",
    "watt-hours",
    "kilowatt-hours",
    "btus",
    "therms",
    "ton-hours",
    "joules-per-kilogram-dry-air",
    "btus-per-pound-dry-air",
    "cycles-per-hour",
    "cycles-per-minute",
    "hertz",
    "grams-of-water-per-kilogram-dry-air",
    "percent-relative-humidity",
    "millimeters",
    "meters",
    "inches",
    "feet",
    "watts-per-square-foot",
    "watts-per-square-meter",
    "lumens",
    "luxes",
    "foot-candles",
    "kilograms",
    "pounds-mass",
    "tons",
    "kilograms-per-second",
    "kilograms-per-minute",
    "kilograms-per-hour",
    "pounds-mass-per-minute",
    "pounds-mass-per-hour",
    "watts",
    "kilowatts",
    "megawatts",
    "btus-per-hour",
    "horsepower",
    "tons-refrigeration",
    "pascals",
    "kilopascals",
    "bars",
    "pounds-force-per-square-inch",
    "centimeters-of-water",
    "inches-of-water",
    "millimeters-of-mercury",
    "centimeters-of-mercury",
    "inches-of-mercury",
    "degrees-celsius",
    "degrees-kelvin",
    "degrees-fahrenheit",
    "degree-days-celsius",
    "degree-days-fahrenheit",
    "years",
    "months",
    "weeks",
    "days",
    "hours",
    "minutes",
    "seconds",
    "meters-per-second",
    "kilometers-per-hour",
    "feet-per-second",
    "feet-per-minute",
    "miles-per-hour",
    "cubic-feet",
    "cubic-meters",
    "imperial-gallons",
    "liters",
    "us-gallons",
    "cubic-feet-per-minute",
    "cubic-meters-per-second",
    "imperial-gallons-per-minute",
    "liters-per-second",
    "liters-per-minute",
    "us-gallons-per-minute",
    "degrees-angular",
    "degrees-celsius-per-hour",
    "degrees-celsius-per-minute",
    "degrees-fahrenheit-per-hour",
    "degrees-fahrenheit-per-minute",
    "no-units",
    "parts-per-million",
    "parts-per-billion",
    "percent",
    "percent-per-second",
    "per-minute",
    "per-second",
    "psi-per-degree-fahrenheit",
    "radians",
    "revolutions-per-minute",
    "currency1",
    "currency2",
    "currency3",
    "currency4",
    "currency5",
    "currency6",
    "currency7",
    "currency8",
    "currency9",
    "currency10",
    "square-inches",
    "square-centimeters",
    "btus-per-pound",
    "centimeters",
    "pounds-mass-per-second",
    "delta-degrees-fahrenheit",
    "delta-degrees-kelvin",
    "kilohms",
    "megohms",
    "millivolts",
    "kilojoules-per-kilogram",
    "megajoules",
    "joules-per-degree-kelvin",
    "joules-per-kilogram-degree-kelvin",
    "kilohertz",
    "megahertz",
    "per-hour",
    "milliwatts",
    "hectopascals",
    "millibars",
    "cubic-meters-per-hour",
    "liters-per-hour",
    "kilowatt-hours-per-square-meter",
    "kilowatt-hours-per-square-foot",
    "megajoules-per-square-meter",
    "megajoules-per-square-foot",
    "watts-per-square-meter-degree-kelvin",
    "cubic-feet-per-second",
    "percent-obscuration-per-foot",
    "percent-obscuration-per-meter",
    "milliohms",
    "megawatt-hours",
    "kilo-btus",
    "mega-btus",
    "kilojoules-per-kilogram-dry-air",
    "megajoules-per-kilogram-dry-air",
    "kilojoules-per-degree-kelvin",
    "megajoules-per-degree-kelvin",
    "newton",
    "grams-per-second",
    "grams-per-minute",
    "tons-per-hour",
    "kilo-btus-per-hour",
    "hundredths-seconds",
    "milliseconds",
    "newton-meters",
    "millimeters-per-second",
    "millimeters-per-minute",
    "meters-per-minute",
    "meters-per-hour",
    "cubic-meters-per-minute",
    "meters-per-second-per-second",
    "amperes-per-meter",
    "amperes-per-square-meter",
    "ampere-square-meters",
    "farads",
    "henrys",
    "ohm-meters",
    "siemens",
    "siemens-per-meter",
    "teslas",
    "volts-per-degree-kelvin",
    "volts-per-meter",
    "webers",
    "candelas",
    "candelas-per-square-meter",
    "degrees-kelvin-per-hour",
    "degrees-kelvin-per-minute",
    "joule-seconds",
    "radians-per-second",
    "square-meters-per-newton",
    "kilograms-per-cubic-meter",
    "newton-seconds",
    "newtons-per-meter",
    "watts-per-meter-per-degree-kelvin",
)

# Properties whose enumerated values have names (property id -> names by value).
ENUMERATED_PROPERTIES: Final[Mapping[int, tuple[str, ...] | Mapping[int, str]]] = MappingProxyType(
    {
        36: EVENT_STATES,
        72: NOTIFY_TYPES,
        79: OBJECT_TYPE_NAMES,
        84: POLARITY,
        103: RELIABILITY,
        107: SEGMENTATION_NAMES,
        112: DEVICE_STATUS,
        117: UNITS,
        197: LOGGING_TYPES,
    }
)
PRESENT_VALUE: Final = 85


def pick(names: tuple[str, ...] | Mapping[int, str], value: int, fallback: str) -> str:
    """``names[value]`` from a tuple or mapping, else ``fallback``."""
    if isinstance(names, tuple):
        return names[value] if 0 <= value < len(names) else fallback
    return names.get(value, fallback)


def object_type_name(value: int) -> str:
    """Standard object type name; proprietary types (128+) as ``proprietary-<n>``."""
    if 0 <= value < len(OBJECT_TYPE_NAMES):
        return OBJECT_TYPE_NAMES[value]
    return f"proprietary-{value}" if value >= 128 else f"object-type-{value}"


def confirmed_service_name(choice: int) -> str:
    return CONFIRMED_SERVICE_NAMES.get(choice, f"confirmed_service_{choice}")


def unconfirmed_service_name(choice: int) -> str:
    return UNCONFIRMED_SERVICE_NAMES.get(choice, f"unconfirmed_service_{choice}")


def network_message_name(kind: int) -> str:
    if kind >= 0x80:
        return f"proprietary_network_message_{kind}"
    return NETWORK_MESSAGE_NAMES.get(kind, f"network_message_{kind}")


def bvlc_name(function: int) -> str:
    return BVLC_NAMES.get(function, f"BVLC-0x{function:02x}")


def error_code_name(code: int) -> str:
    return ERROR_CODE_NAMES.get(code, f"error-{code}")


def error_class_name(value: int) -> str:
    return pick(ERROR_CLASS_NAMES, value, f"error-class-{value}")
