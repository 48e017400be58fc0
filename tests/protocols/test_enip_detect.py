"""Content-based recognition: verdict(client, server, on_known_port)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from otconduit.protocols.enip import SPEC, starts_with_encapsulation, verdict
from tests.conftest import CORPUS, needs_shared
from tests.streams import flows

from .enip_helpers import cpf, encap, io_packet, path, request, rr

REGISTER = encap(0x65, b"\x01\x00\x00\x00", session=0)
REGISTERED = encap(0x65, b"\x01\x00\x00\x00")
HTTP = b"GET /index.html HTTP/1.1\r\nHost: plc\r\nUser-Agent: x\r\n\r\n"
TLS = bytes.fromhex("16030100c4010000c00303") + bytes(40)
MODBUS = struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, 0, 10) * 4


def test_spec_uses_this_verdict() -> None:
    assert SPEC.verdict is verdict


def test_valid_first_message() -> None:
    assert verdict(REGISTER, b"", False) is True
    assert verdict(b"", REGISTERED, False) is True
    assert verdict(rr(request(0x0E, path(0x01, 1, 1))) + REGISTER, b"", False) is True


def test_implicit_io_datagram() -> None:
    assert verdict(io_packet(0x004B0603, 4166875, bytes(6)), b"", True) is True
    assert verdict(cpf([(0x8002, bytes(8))]), b"", True) is None  # no data item


def test_cut_short_sample_is_consistent() -> None:
    big = rr(request(0x4D, path(0x6B, 1), bytes(900)))
    assert verdict(big[:512], b"", False) is True


def test_length_must_land_on_a_header() -> None:
    sample = REGISTER + b"garbage that is not a header at all"
    assert not starts_with_encapsulation(sample)
    assert verdict(sample, HTTP, False) is False
    assert verdict(sample, b"", True) is True  # on 44818 the first header decides


@pytest.mark.parametrize(
    "bad",
    [
        encap(0x65, b"\x01\x00\x00\x00", options=4),
        encap(0x4242, b""),  # no command is above 0xFF
        encap(0x42, b"", status=1),  # an unknown command with a status: noise
        encap(0x6F, b"", status=0x1234),
        encap(0x65, b"\x01\x00"),
    ],
)
def test_invalid_headers(bad: bytes) -> None:
    assert verdict(bad, HTTP, True) is False


@pytest.mark.parametrize("legacy", [0x0001, 0x0002, 0x0005, 0x0042])
def test_a_legacy_or_reserved_command_on_a_clean_header_is_enip(legacy: int) -> None:
    """Engineering software opens with pre-release command codes: the connection is
    still EtherNet/IP, on the port and (its lengths consistent) off it."""
    odd = encap(legacy, b"\x00" * 6, session=0)
    assert verdict(odd, b"", True) is True
    assert verdict(odd + REGISTER, b"", False) is True
    assert verdict(odd + b"garbage that is not a header at all", HTTP, False) is False


@pytest.mark.parametrize("other", [HTTP, TLS, MODBUS, bytes(range(64))])
def test_other_protocols_are_rejected(other: bytes) -> None:
    assert verdict(other, other, False) is False
    assert verdict(other, other, True) is False


def test_undecided_when_short() -> None:
    assert verdict(b"", b"", True) is None
    assert verdict(HTTP, b"", False) is None
    assert verdict(REGISTER[:20], HTTP, False) is None


@needs_shared
def test_every_enip_flow_of_the_corpus_is_recognised() -> None:
    captures = [
        CORPUS / "iti/EthernetIP/EthernetIP-CIP.pcap",
        CORPUS / "iti/EthernetIP/enip_test.pcap",
        CORPUS / "iti/openics/EIP-SoftwareUpload.pcap",
        CORPUS / "icsnpp/enip/enip_cip_example/enip_cip_example.pcap",
    ]
    seen = 0
    for cap in captures:
        for flow in flows(cap, {44818, 2222}):
            first: dict[int, bytes] = {0: b"", 1: b""}
            for d, data, _, _, _ in flow.chunks:
                if data is not None and not first[d]:
                    first[d] = data[:512]
            if not first[0] and not first[1]:
                continue  # handshake only
            seen += 1
            assert verdict(first[0], first[1], False) is True, (cap.name, flow.endpoints)
    assert seen >= 8


@needs_shared
def test_no_false_positives_on_other_ics_captures() -> None:
    others = sorted((CORPUS / "iti/ModbusTCP").glob("*.pcap"))[:3]
    if not others:
        pytest.skip("no Modbus captures in the corpus")
    checked = 0
    for cap in others:
        for flow in flows(Path(cap), {502}):
            first: dict[int, bytes] = {0: b"", 1: b""}
            for d, data, _, _, _ in flow.chunks:
                if data is not None and len(first[d]) < 512:
                    first[d] = (first[d] + data)[:512]
            if len(first[0]) >= 24 and len(first[1]) >= 24:
                checked += 1
                assert verdict(first[0], first[1], False) is False
    assert checked > 0
