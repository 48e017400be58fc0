"""Function-code tables: names match Zeek's log, classes match the policy vocabulary."""

from __future__ import annotations

import pytest

from otconduit.model import OpClass
from otconduit.protocols.modbus.functions import (
    diagnostic_name,
    exception_name,
    function_name,
    object_name,
    op_class,
)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (1, "READ_COILS"),
        (2, "READ_DISCRETE_INPUTS"),
        (3, "READ_HOLDING_REGISTERS"),
        (4, "READ_INPUT_REGISTERS"),
        (5, "WRITE_SINGLE_COIL"),
        (6, "WRITE_SINGLE_REGISTER"),
        (7, "READ_EXCEPTION_STATUS"),
        (8, "DIAGNOSTICS"),
        (11, "GET_COMM_EVENT_COUNTER"),
        (12, "GET_COMM_EVENT_LOG"),
        (15, "WRITE_MULTIPLE_COILS"),
        (16, "WRITE_MULTIPLE_REGISTERS"),
        (17, "REPORT_SLAVE_ID"),
        (20, "READ_FILE_RECORD"),
        (21, "WRITE_FILE_RECORD"),
        (22, "MASK_WRITE_REGISTER"),
        (23, "READ_WRITE_MULTIPLE_REGISTERS"),
        (24, "READ_FIFO_QUEUE"),
        (43, "ENCAP_INTERFACE_TRANSPORT"),
        (90, "PROGRAM_UNITY"),
        (125, "FIRMWARE_REPLACEMENT"),
        (126, "PROGRAM_584_984_2"),
        (100, "USER_DEFINED_100"),
        (65, "USER_DEFINED_65"),
        (200, "UNKNOWN_200"),
        (0, "UNKNOWN_0"),
    ],
)
def test_function_names(code: int, name: str) -> None:
    assert function_name(code) == name


@pytest.mark.parametrize(
    ("code", "sub", "mei", "cls"),
    [
        (1, None, None, OpClass.READ),
        (4, None, None, OpClass.READ),
        (20, None, None, OpClass.READ),
        (24, None, None, OpClass.READ),
        (5, None, None, OpClass.WRITE),
        (21, None, None, OpClass.WRITE),
        (22, None, None, OpClass.WRITE),
        (23, None, None, OpClass.WRITE),
        (8, 2, None, OpClass.DIAGNOSTIC),
        (8, 1, None, OpClass.CONTROL),
        (8, 4, None, OpClass.CONTROL),
        (8, None, None, OpClass.DIAGNOSTIC),
        (7, None, None, OpClass.DIAGNOSTIC),
        (11, None, None, OpClass.DIAGNOSTIC),
        (12, None, None, OpClass.DIAGNOSTIC),
        (17, None, None, OpClass.IDENTITY),
        (43, None, 14, OpClass.IDENTITY),
        (43, None, 13, OpClass.OTHER),
        (90, None, None, OpClass.PROGRAM),
        (125, None, None, OpClass.FIRMWARE),
        (101, None, None, OpClass.OTHER),
        (250, None, None, OpClass.OTHER),
    ],
)
def test_op_class(code: int, sub: int | None, mei: int | None, cls: OpClass) -> None:
    assert op_class(code, subfunction=sub, mei_type=mei) is cls


def test_diagnostic_and_exception_names() -> None:
    assert diagnostic_name(2) == "Return Diagnostic Register"
    assert diagnostic_name(4) == "Force Listen Only Mode"
    assert diagnostic_name(10) == "Clear Counters and Diagnostic Register"
    assert diagnostic_name(20) == "Clear Overrun Counter and Flag"
    assert diagnostic_name(99) == "unknown-99"
    assert exception_name(2) == "ILLEGAL_DATA_ADDRESS"
    assert exception_name(11) == "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND"
    assert exception_name(9) == "UNKNOWN_9"


def test_object_names() -> None:
    assert [object_name(i) for i in range(7)] == [
        "VendorName",
        "ProductCode",
        "MajorMinorRevision",
        "VendorUrl",
        "ProductName",
        "ModelName",
        "UserApplicationName",
    ]
    assert object_name(0x80) == "Private_0x80"
    assert object_name(0x10) == "Reserved_0x10"
