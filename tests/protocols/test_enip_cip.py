"""CIP message formats, service names by class, statuses and operation classes."""

from __future__ import annotations

import struct

import pytest

from otconduit.model import OpClass
from otconduit.protocols.enip import (
    cip_op_class,
    encap_op_class,
    general_status_name,
    parse_request,
    parse_response,
    service_name,
    split_multiple,
)
from otconduit.protocols.enip.cip import extended_status_name
from otconduit.protocols.enip.classes import class_name
from otconduit.protocols.enip.device_types import device_type_name
from otconduit.protocols.enip.vendors import vendor_name

from .enip_helpers import multiple, path, reply, request, symbol


def test_request_format() -> None:
    req, problem = parse_request(request(0x0E, path(0x01, 1, 7), b"extra"))
    assert problem is None and req is not None
    assert (req.service, req.path.class_id, req.path.instance_id, req.path.attribute_id) == (
        0x0E,
        1,
        1,
        7,
    )
    assert req.data == b"extra"


def test_truncated_request_keeps_service() -> None:
    req, problem = parse_request(bytes([0x4C, 5, 0x91]))
    assert req is not None and req.service == 0x4C
    assert problem is not None and "exceeds" in problem
    assert parse_request(b"") == (None, "empty CIP message")


def test_reply_format_with_extended_status() -> None:
    rsp, problem = parse_response(reply(0x54, 0x01, b"\x07\x00", ext=(0x0100, 0x0203)))
    assert problem is None and rsp is not None
    assert (rsp.service, rsp.general_status, rsp.extended_status) == (0x54, 1, (0x100, 0x203))
    assert rsp.data == b"\x07\x00"
    rsp, problem = parse_response(bytes([0xCC, 0, 0, 3, 1]))
    assert problem is not None and rsp is not None and rsp.service == 0x4C


def test_status_names() -> None:
    assert general_status_name(0) == "Success"
    assert general_status_name(0x08) == "Service Not Supported"
    assert general_status_name(0x1E) == "Embedded Service Error"
    assert general_status_name(0x77) == "Unknown CIP Status-0x77"
    assert extended_status_name(0x0100) == "Connection in use or duplicate Forward Open"
    assert extended_status_name(0x9999) == "Unknown Extended Status-0x9999"


@pytest.mark.parametrize(
    ("service", "class_id", "name"),
    [
        (0x01, 0x01, "Get Attributes All"),
        (0x03, 0x8E, "Get Attribute List"),
        (0x0A, 0x02, "Multiple Service Packet"),
        (0x0E, 0x01, "Get Attributes Single"),  # ICSNPP spelling
        (0x17, 0x01, "NOP"),
        (0x4E, 0x06, "Forward Close"),
        (0x4E, None, "Read Modify Write Tag"),
        (0x52, 0x06, "Unconnected Send"),
        (0x52, None, "Read Tag Fragmented"),
        (0x52, 0x6B, "Read Tag Fragmented"),
        (0x53, None, "Write Tag Fragmented"),
        (0x4C, None, "Read Tag"),
        (0x4D, 0x6B, "Write Tag"),
        (0x4C, 0x72, "Service 0x4C"),
        (0x54, 0x06, "Forward Open"),
        (0x5B, 0x06, "Large Forward Open"),
        (0x4B, 0x67, "Execute PCCC Service"),
        (0x4F, 0x37, "Upload Transfer"),
        (0xCC, None, "Read Tag"),  # reply bit ignored
    ],
)
def test_service_names_depend_on_class(service: int, class_id: int | None, name: str) -> None:
    assert service_name(service, class_id) == name


def test_split_multiple() -> None:
    parts = [request(0x0E, path(0x01, 1, 1)), request(0x4C, symbol("A"), b"\x01\x00")]
    got, problem = split_multiple(multiple(parts))
    assert problem is None and got == parts


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x05", "number of services"),
        (struct.pack("<HH", 3, 8), "do not fit"),
        (struct.pack("<HHH", 2, 8, 6) + bytes(6), "out of order"),
        (struct.pack("<HH", 1, 40) + bytes(4), "out of range"),
    ],
)
def test_split_multiple_problems(raw: bytes, reason: str) -> None:
    _, problem = split_multiple(raw)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    ("service", "class_id", "classes", "expected"),
    [
        (0x01, 0x01, (), OpClass.IDENTITY),
        (0x0E, 0x01, (), OpClass.IDENTITY),
        (0x03, 0x8E, (), OpClass.READ),
        (0x10, 0x8E, (), OpClass.CONTROL),  # Logix mode change
        (0x10, 0x29, (), OpClass.CONTROL),  # drive Control Supervisor (run, fault reset)
        (0x10, 0xF5, (), OpClass.WRITE),
        (0x04, 0x8B, (), OpClass.WRITE),
        (0x05, 0x01, (), OpClass.CONTROL),
        (0x06, 0x8E, (), OpClass.CONTROL),
        (0x07, 0x8E, (), OpClass.CONTROL),
        (0x54, 0x06, (), OpClass.SESSION),
        (0x5B, 0x06, (), OpClass.SESSION),
        (0x4E, 0x06, (), OpClass.SESSION),
        (0x52, 0x06, (), OpClass.OTHER),
        (0x0A, 0x02, (), OpClass.OTHER),
        (0x4C, None, (), OpClass.READ),
        (0x52, None, (), OpClass.READ),
        (0x4D, None, (), OpClass.WRITE),
        (0x53, 0x6B, (), OpClass.WRITE),
        (0x4E, None, (), OpClass.WRITE),
        (0x4F, 0x37, (), OpClass.PROGRAM),  # File object upload transfer
        (0x10, 0x37, (), OpClass.PROGRAM),
        (0x0E, 0x37, (), OpClass.READ),
        (0x4C, 0x6D, (0x68, 0x6D), OpClass.PROGRAM),  # Logix routine
        (0x4B, 0x6A, (0x68, 0x6A), OpClass.PROGRAM),
        (0x4B, 0x6C, (0x6C,), OpClass.OTHER),
        (0x10, 0xA1, (), OpClass.FIRMWARE),
        (0x0E, 0xA1, (), OpClass.READ),
        (0x4B, 0x67, (), OpClass.OTHER),
        (0x17, 0x01, (), OpClass.OTHER),
        (0x08, 0x04, (), OpClass.WRITE),  # Create
        (0x09, 0x04, (), OpClass.WRITE),  # Delete
        (0x0D, 0xF5, (), OpClass.WRITE),  # Apply Attributes
        (0x15, 0x0F, (), OpClass.WRITE),  # Restore
        (0x16, 0x0F, (), OpClass.WRITE),  # Save
        (0x11, 0x0F, (), OpClass.READ),  # Find Next Object Instance
        (0x18, 0x04, (), OpClass.READ),  # Get Member
        (0x19, 0x04, (), OpClass.WRITE),  # Set Member
        (0x1A, 0x04, (), OpClass.WRITE),  # Insert Member
        (0x1B, 0x04, (), OpClass.WRITE),  # Remove Member
        (0x1C, 0x04, (), OpClass.OTHER),  # Group Sync
        (0x02, 0x01, (), OpClass.WRITE),  # Set Attributes All on Identity
    ],
)
def test_operation_classes(
    service: int, class_id: int | None, classes: tuple[int, ...], expected: OpClass
) -> None:
    assert cip_op_class(service, class_id, classes) is expected


def test_encapsulation_classes() -> None:
    assert encap_op_class(0x65) is OpClass.SESSION
    assert encap_op_class(0x66) is OpClass.SESSION
    assert encap_op_class(0x63) is OpClass.IDENTITY
    assert encap_op_class(0x04) is OpClass.IDENTITY
    assert encap_op_class(0x64) is OpClass.IDENTITY
    assert encap_op_class(0x00) is OpClass.OTHER


def test_lookup_tables() -> None:
    assert vendor_name(1) == "Rockwell Automation/Allen-Bradley"
    assert vendor_name(0) == "Vendor 0"  # reserved ids are not names
    assert vendor_name(65000) == "Vendor 65000"
    assert device_type_name(12) == "Communications Adapter"
    assert device_type_name(14) == "Programmable Logic Controller"
    assert device_type_name(0x64) == "Device Type 100"
    assert class_name(0x01) == "Identity" and class_name(0x02) == "Message Router"
    assert class_name(0x69) == "unknown"
