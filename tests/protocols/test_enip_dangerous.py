"""Dangerous CIP operations: their class stays, ``detail["dangerous"]`` says why."""

from __future__ import annotations

import struct

import pytest

from otconduit.model import OpClass
from otconduit.protocols.base import CLIENT_TO_SERVER as C2S
from otconduit.protocols.base import SERVER_TO_CLIENT as S2C
from otconduit.protocols.enip.classify import dangerous_kind

from .enip_helpers import multiple, ops, path, reply, request, rr, run, symbol

# Interface Configuration (TCP/IP attribute 5, Vol 2 §5-4): IP, mask, gateway, DNS x2,
# domain name (STRING: UINT length + chars, padded)
IFACE_CONFIG = struct.pack("<5I", 0x0A000063, 0xFFFFFF00, 0x0A000001, 0, 0) + b"\x00\x00"


def one(req: bytes, rep: bytes | None = None) -> tuple[OpClass, str | None, dict[str, object]]:
    chunks = [(C2S, rr(req))] + ([(S2C, rr(rep))] if rep is not None else [])
    (op,) = ops(run(chunks))
    return op.operation, op.detail.get("dangerous"), op.detail


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        # TCP/IP Interface object 0xF5: attributes 3, 5, 6 and Set Attributes All
        (request(0x10, path(0xF5, 1, 3), b"\x02\x00\x00\x00"), "ip_address_change"),
        (request(0x10, path(0xF5, 1, 5), IFACE_CONFIG), "ip_address_change"),
        (request(0x10, path(0xF5, 1, 6), b"\x03\x00plc\x00"), "ip_address_change"),
        (request(0x02, path(0xF5, 1), IFACE_CONFIG), "ip_address_change"),
        (request(0x04, path(0xF5, 1), b"\x01\x00\x05\x00" + IFACE_CONFIG), "ip_address_change"),
        # other TCP/IP attributes (13: encapsulation inactivity timeout) are plain writes
        (request(0x10, path(0xF5, 1, 13), b"\x78\x00"), None),
        (request(0x04, path(0xF5, 1), b"\x01\x00\x0d\x00\x78\x00"), None),
        # Time Sync 0x43 and Logix WallClockTime 0x8B
        (request(0x10, path(0x43, 1, 1), b"\x00"), "time_set"),
        (request(0x04, path(0x8B, 1), b"\x01\x00\x06\x00" + bytes(8)), "time_set"),
        (request(0x10, path(0x8B, 1, 5), bytes(8)), "time_set"),
        # an ordinary Set stays unmarked
        (request(0x10, path(0x04, 100, 3), b"\x01\x02"), None),
    ],
)
def test_sets_stay_write_and_are_marked(req: bytes, expected: str | None) -> None:
    op_class, kind, _ = one(req, reply(req[0]))
    assert op_class is OpClass.WRITE
    assert kind == expected


def test_gets_on_dangerous_objects_are_not_dangerous() -> None:
    for req in (
        request(0x0E, path(0xF5, 1, 5)),
        request(0x01, path(0xF5, 1)),
        request(0x0E, path(0x43, 1, 3)),
        request(0x03, path(0x8B, 1), b"\x01\x00\x06\x00"),
    ):
        op_class, kind, _ = one(req)
        assert op_class is OpClass.READ and kind is None


@pytest.mark.parametrize("reset_type", [0, 1, 2])
def test_identity_reset(reset_type: int) -> None:
    op_class, kind, detail = one(request(0x05, path(0x01, 1), bytes([reset_type])), reply(0x05))
    assert (op_class, kind, detail["reset_type"]) == (OpClass.CONTROL, "reset", reset_type)


def test_identity_reset_without_type() -> None:
    op_class, kind, detail = one(request(0x05, path(0x01, 1)))
    assert (op_class, kind) == (OpClass.CONTROL, "reset") and "reset_type" not in detail


@pytest.mark.parametrize(
    ("req", "op_class", "expected"),
    [
        (request(0x06, path(0x8E, 1)), OpClass.CONTROL, "start"),
        (request(0x07, path(0x8E, 1)), OpClass.CONTROL, "stop"),
        (request(0x10, path(0x8E, 1, 1), b"\x06\x00"), OpClass.CONTROL, "mode_change"),
        (request(0x10, path(0x29, 1, 3), b"\x01"), OpClass.CONTROL, "drive_control"),
        (request(0x4B, path(0x68, 1)), OpClass.PROGRAM, "program"),
        (request(0x4B, path(0x37, 0xC8)), OpClass.PROGRAM, "program"),
        (request(0x4D, path(0xA1, 1)), OpClass.FIRMWARE, "firmware"),
        (request(0x4C, symbol("SCADA")), OpClass.READ, None),
        (request(0x4D, symbol("SCADA"), b"\xc3\x00\x01\x00\x2a\x00"), OpClass.WRITE, None),
    ],
)
def test_already_recognised_are_marked(req: bytes, op_class: OpClass, expected: str) -> None:
    got_class, kind, _ = one(req)
    assert (got_class, kind) == (op_class, expected)


def test_embedded_requests_are_marked() -> None:
    inner = [
        request(0x10, path(0xF5, 1, 5), IFACE_CONFIG),
        request(0x05, path(0x01, 1), b"\x00"),
        request(0x0E, path(0x01, 1, 7)),
    ]
    (wrapper, ip, reset, get) = ops(run([(C2S, rr(request(0x0A, path(0x02, 1), multiple(inner))))]))
    assert wrapper.detail.get("dangerous") is None
    assert [ip.detail.get("dangerous"), reset.detail.get("dangerous")] == [
        "ip_address_change",
        "reset",
    ]
    assert get.detail.get("dangerous") is None


def test_dangerous_kind_function() -> None:
    assert dangerous_kind(0x10, 0xF5, 5) == "ip_address_change"
    assert dangerous_kind(0x90, 0xF5, 5) == "ip_address_change"  # reply bit ignored
    assert dangerous_kind(0x10, 0xF5, None) is None  # no attribute named
    assert dangerous_kind(0x04, 0xF5, None, data=b"\x00\x00") is None  # empty list
    assert dangerous_kind(0x04, 0xF5, None, data=b"\x02\x00\x06\x00") == "ip_address_change"
    assert dangerous_kind(0x02, 0x43) == "time_set"
    assert dangerous_kind(0x0E, 0x43, 3) is None
    assert dangerous_kind(0x10, 0x01, 1) is None
