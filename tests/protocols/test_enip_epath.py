"""EPATH segments (Vol 1 Appendix C-1.4): logical 8/16/32-bit, port, symbolic, keys."""

from __future__ import annotations

import struct

import pytest

from otconduit.protocols.enip import parse_epath

from .enip_helpers import logical, path, symbol


@pytest.mark.parametrize("width", [8, 16, 32])
def test_logical_widths(width: int) -> None:
    value = {8: 0x8E, 16: 0x2420, 32: 0x0001_2345}[width]
    p = parse_epath(logical(0, 0x6B) + logical(1, value, width) + logical(4, 3, width))
    assert p.problem is None
    assert (p.class_id, p.instance_id, p.attribute_id) == (0x6B, value, 3)
    assert p.classes == (0x6B,)


def test_sixteen_bit_class_and_member() -> None:
    p = parse_epath(logical(0, 0x0334, 16) + logical(1, 1) + logical(2, 9, 16))
    assert (p.class_id, p.instance_id, p.member_id) == (0x0334, 1, 9)


def test_last_object_of_a_nested_path() -> None:
    p = parse_epath(path(0x68, 0x2420) + path(0x6D, 0x2421))
    assert (p.class_id, p.instance_id) == (0x6D, 0x2421)
    assert p.classes == (0x68, 0x6D)


def test_ansi_symbol_with_pad_and_indices() -> None:
    raw = symbol("Program:Main") + symbol("Tank") + logical(2, 3) + logical(2, 300, 16)
    raw += symbol("Level")
    p = parse_epath(raw)
    assert p.problem is None
    assert p.tag == "Program:Main.Tank[3,300].Level"
    assert p.symbolic and p.class_id is None


def test_odd_symbol_is_padded() -> None:
    p = parse_epath(symbol("ABC") + logical(2, 1))
    assert p.problem is None and p.tag == "ABC[1]"


def test_symbolic_segment() -> None:
    raw = bytes([0x60 | 4]) + b"Tag1" + b"\x00"  # odd length 5 -> pad
    p = parse_epath(raw)
    assert p.problem is None and p.tag == "Tag1"


def test_port_segments() -> None:
    simple = bytes([0x01, 0x00])  # backplane, slot 0
    extended = bytes([0x12, 0x0C]) + b"192.168.1.10"  # port 2, 12-byte link address
    p = parse_epath(simple + extended + path(0x02, 1))
    assert p.problem is None
    assert p.ports == ((1, 0), (2, "192.168.1.10"))
    assert p.class_id == 0x02
    assert p.describe().startswith("port 1 link 0 port 2 link 192.168.1.10 class 0x02")


def test_extended_port_identifier() -> None:
    raw = bytes([0x0F]) + struct.pack("<H", 0x0123) + bytes([0x05])  # 4 bytes, even
    p = parse_epath(raw)
    assert p.problem is None and p.ports == ((0x0123, 5),)


def test_electronic_key() -> None:
    key = bytes([0x34, 0x04]) + struct.pack("<HHHBB", 1, 14, 54, 0x80 | 20, 11)
    p = parse_epath(key + path(0x02, 1))
    assert p.problem is None and p.key is not None
    assert (p.key.vendor_id, p.key.device_type, p.key.product_code) == (1, 14, 54)
    assert (p.key.major, p.key.minor, p.key.compatibility) == (20, 11, True)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (bytes([0x21, 0x00, 0x01]), "need 2"),  # 16-bit class cut short
        (bytes([0x23, 0x00]), "reserved logical format"),
        (bytes([0x91, 0x09]) + b"abc", "ANSI symbol"),
        (bytes([0xE0, 0x00]), "unsupported segment"),
        (bytes([0x34, 0x05]) + bytes(8), "key format 5"),
    ],
)
def test_problems_keep_earlier_segments(raw: bytes, reason: str) -> None:
    p = parse_epath(logical(0, 0x01) + raw)
    assert p.problem is not None and reason in p.problem
    assert p.class_id == 0x01


def test_packed_connection_path() -> None:
    packed = bytes([0x21]) + struct.pack("<H", 0x0334)  # no pad byte
    assert parse_epath(packed, padded=False).class_id == 0x0334
    assert parse_epath(packed).problem is not None
