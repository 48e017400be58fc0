"""Encapsulation header, commands, statuses and Common Packet Format items."""

from __future__ import annotations

import struct

import pytest

from otconduit.protocols.enip import encap
from otconduit.protocols.enip.encap import (
    header_problem,
    parse_carrier,
    parse_cpf,
    parse_header,
    parse_sockaddr,
    plausible_header,
)

from .enip_helpers import CTX, SESSION, cpf
from .enip_helpers import encap as build


def test_header_fields_little_endian() -> None:
    raw = build(0x6F, b"x" * 10, session=0x11020100, status=0, context=b"\x01\x02" + bytes(6))
    h = parse_header(raw)
    assert (h.command, h.length, h.session, h.status, h.options) == (0x6F, 10, 0x11020100, 0, 0)
    assert h.context == b"\x01\x02" + bytes(6)
    assert raw[4:8] == b"\x00\x01\x02\x11"  # session handle is little-endian on the wire


def test_command_and_status_names_follow_icsnpp() -> None:
    assert encap.command_name(0x70) == "Send Unit Data"
    assert encap.command_name(0x6F) == "Send RR Data"
    assert encap.command_name(0x63) == "List Identity"
    assert encap.command_name(0x66) == "Unregister Session"
    assert encap.command_name(0x01) == "unknown"
    assert encap.status_name(0x64) == "Invalid Session Handle"
    assert encap.status_name(0x42) == "Unknown ENIP Status-0x42"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (build(0x42), "unknown command"),
        (build(0x65, b"\x01\x00\x00\x00", options=1), "options"),
        (build(0x6F, bytes(8), status=0x99), "unknown status"),
        (build(0x65, b"\x01\x00"), "Register Session length 2"),
        (build(0x66, b"\x00"), "Unregister Session length 1"),
        (build(0x70, bytes(4)), "below 8"),
    ],
)
def test_header_problems(raw: bytes, reason: str) -> None:
    problem = header_problem(parse_header(raw))
    assert problem is not None and reason in problem
    assert not plausible_header(raw, 0)


def test_error_replies_may_omit_command_data() -> None:
    # Vol 2 §2-3.3: a reply with a non-zero status need not carry the usual data.
    assert header_problem(parse_header(build(0x6F, status=0x64))) is None
    assert header_problem(parse_header(build(0x65, status=0x69))) is None


def test_cpf_items_parse() -> None:
    items, problem = parse_cpf(cpf([(0x00A1, b"\x01\x02\x03\x04"), (0x00B1, b"\x05\x00ab")]))
    assert problem is None
    assert [(i.type_id, i.data) for i in items] == [
        (0x00A1, b"\x01\x02\x03\x04"),
        (0x00B1, b"\x05\x00ab"),
    ]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x01", "item count"),
        (struct.pack("<H", 200), "does not fit"),
        (struct.pack("<HHH", 1, 0x00B2, 5) + b"ab", "exceeds"),
        (cpf([(0x00A1, b"\x01\x02")]), "length 2 is not 4"),
        (cpf([(0x8002, bytes(4))]), "length 4 is not 8"),
        (cpf([(0x0000, b"")]) + b"zz", "after the last CPF item"),
    ],
)
def test_cpf_problems(raw: bytes, reason: str) -> None:
    _, problem = parse_cpf(raw)
    assert problem is not None and reason in problem


def test_carrier_prefix() -> None:
    body = struct.pack("<IH", 0, 5) + cpf([(0x0000, b""), (0x00B2, b"\x01\x00")])
    prefix, problem = parse_carrier(body)
    assert problem is None and prefix is not None
    assert (prefix.interface_handle, prefix.timeout, len(prefix.items)) == (0, 5, 2)
    assert parse_carrier(b"\x00\x00")[0] is None


def test_sockaddr_is_big_endian() -> None:
    sa = parse_sockaddr(bytes.fromhex("0002af120a0101a4") + bytes(8))
    assert (sa.family, sa.port, sa.ip) == (2, 44818, "10.1.1.164")
    with pytest.raises(ValueError):
        parse_sockaddr(b"\x00\x02")


def test_service_entry() -> None:
    entry = encap.parse_service_entry(struct.pack("<HH16s", 1, 0x0120, b"Communications"))
    assert entry is not None
    assert (entry.version, entry.flags, entry.name) == (1, 0x0120, "Communications")
    assert encap.parse_service_entry(b"\x01") is None


def test_helpers_context_and_session_defaults() -> None:
    h = parse_header(build(0x65, b"\x01\x00\x00\x00"))
    assert h.context == CTX and h.session == SESSION
