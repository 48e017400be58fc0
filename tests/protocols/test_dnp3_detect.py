"""DNP3 recognition from the first bytes of each direction."""

from __future__ import annotations

from otconduit.protocols.dnp3 import SPEC, dnp3_verdict
from tests.protocols.dnp3_helpers import link_frame, request, response

READ = request(1, 1, bytes([60, 1, 6]))


def test_spec() -> None:
    assert SPEC.name == "dnp3"
    assert SPEC.transports == frozenset({"tcp", "udp"})
    assert SPEC.ports == frozenset({20000})
    assert SPEC.verdict is dnp3_verdict


def test_either_direction_with_a_header_is_enough() -> None:
    assert dnp3_verdict(READ, b"", False) is True
    assert dnp3_verdict(b"", response(0x82, 0), False) is True
    assert dnp3_verdict(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03", READ, True) is True
    assert dnp3_verdict(link_frame(b""), b"", False) is True  # a link reset: no user data
    assert dnp3_verdict(READ[:10], b"", False) is True  # the header alone is checked


def test_not_enough_data() -> None:
    assert dnp3_verdict(b"", b"", True) is None
    assert dnp3_verdict(READ[:9], b"", True) is None
    assert dnp3_verdict(b"GET / HTTP/1.1\r\n", b"", False) is None  # the server may answer


def test_bad_header_crc_or_length_is_not_dnp3() -> None:
    bad_crc = bytearray(READ)
    bad_crc[8] ^= 1
    assert dnp3_verdict(bytes(bad_crc), b"", True) is None
    assert dnp3_verdict(bytes(bad_crc), b"HTTP/1.1 200 OK\r\n", True) is False
    short = link_frame(b"")
    short = short[:2] + b"\x04" + short[3:]  # LEN 4 (with a CRC that no longer matches)
    assert dnp3_verdict(short, b"\x00" * 10, False) is False


def test_other_protocols() -> None:
    http = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n")
    assert dnp3_verdict(*http, False) is False
    modbus = (
        bytes.fromhex("00010000000601030000000a"),
        bytes.fromhex("000100000017010314") + bytes(20),
    )
    assert dnp3_verdict(*modbus, True) is False
    # Start octets alone are not enough: the header CRC must match.
    assert dnp3_verdict(b"\x05\x64" + bytes(8), b"\x05\x64" + bytes(8), True) is False
