"""ISO-on-TCP recognition from the first bytes of both directions."""

from __future__ import annotations

import pytest

from otconduit.analysis.connections import identify
from otconduit.protocols import registry
from otconduit.protocols.s7 import SPEC, iso_on_tcp, verdict

from .s7_helpers import cc, cr, dr, dt, job, setup_param, tpkt

HTTP = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
TLS = bytes.fromhex("1603010200010001fc0303") + bytes(40)
MODBUS = bytes.fromhex("000100000006010300000001")


@pytest.mark.parametrize("first", [cr(), cc(), dr(), dt(b"\x32"), job(1, setup_param())])
def test_either_direction_starting_with_tpkt_cotp_is_iso_on_tcp(first: bytes) -> None:
    assert iso_on_tcp(first, b"", False) is True
    assert iso_on_tcp(b"", first, True) is True
    assert iso_on_tcp(HTTP, first, False) is True
    assert SPEC.settle is not None and SPEC.settle(first, b"", False) is True


@pytest.mark.parametrize("first", [dt(b"\x32"), dt(b"\x72\x01"), job(1, setup_param())])
def test_s7_once_the_first_cotp_data_says_so(first: bytes) -> None:
    assert verdict(first, b"", False) is True
    assert verdict(b"", first, True) is True
    assert verdict(cr() + first, cc(), False) is True
    assert SPEC.verdict(HTTP, first, False) is True


@pytest.mark.parametrize("first", [cr(), cc(), dr(), cr() + dt(b"\x0d\x01")])
def test_defers_until_the_first_cotp_data_is_s7(first: bytes) -> None:
    # CR/CC alone, or data of another protocol on ISO-on-TCP (MMS): not yet S7.
    assert verdict(first, b"", False) is None
    assert verdict(b"", first, True) is None


def test_a_connection_that_never_shows_data_settles_on_s7() -> None:
    specs = registry.default_protocols()
    got = identify(specs, "tcp", cr(), cc(), 102, 50000, False)
    assert got is None  # wait for the first data
    assert identify(specs, "tcp", cr(), cc(), 102, 50000, True) is SPEC
    other = cr() + dt(b"\xff\xff\xff")  # neither S7 nor MMS: S7comm as before
    assert identify(specs, "tcp", other, cc(), 102, 50000, True) is SPEC


@pytest.mark.parametrize(
    "other",
    [
        HTTP,
        TLS,
        MODBUS,
        tpkt(bytes([4, 0x60, 0, 1, 0])),  # an AK TPDU does not start a connection
        bytes.fromhex("0300000602f080"),  # TPKT length below 7
        bytes.fromhex("0400000702f080"),  # TPKT version 4
    ],
)
def test_not_iso_on_tcp(other: bytes) -> None:
    assert verdict(other, other, True) is False
    assert verdict(other, HTTP, False) is False


def test_undecided_until_both_directions_have_seven_bytes() -> None:
    assert verdict(b"", b"", True) is None
    assert verdict(b"\x03\x00\x00", b"", False) is None  # too short to judge
    assert verdict(HTTP, b"", False) is None  # the server may still answer with TPKT
    assert verdict(HTTP, b"HTTP/1", False) is None  # 6 bytes: not enough
