"""Content-based detection: real Modbus yes, HTTP/TLS/random no."""

from __future__ import annotations

import random

from pymodbus.pdu import ExceptionResponse
from pymodbus.pdu import bit_message as bm
from pymodbus.pdu import mei_message as mm
from pymodbus.pdu import register_message as rm

from otconduit.protocols.modbus import looks_like_modbus, modbus_score

from .modbus_helpers import adu

CLIENT = b"".join(
    adu(p, tid=i)
    for i, p in enumerate(
        [
            rm.ReadHoldingRegistersRequest(address=0, count=10),
            bm.WriteSingleCoilRequest(address=3, bits=[True]),
            rm.WriteMultipleRegistersRequest(address=1, registers=[1, 2, 3]),
            mm.ReadDeviceInformationRequest(read_code=1, object_id=0),
        ]
    )
)
SERVER = b"".join(
    [
        adu(rm.ReadHoldingRegistersResponse(registers=list(range(10))), tid=0),
        adu(bm.WriteSingleCoilResponse(address=3, bits=[True]), tid=1),
        adu(ExceptionResponse(16, 2), tid=2),
    ]
)
HTTP = b"GET /index.html HTTP/1.1\r\nHost: plc.example\r\nUser-Agent: curl/8.0\r\n\r\n"
HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
TLS_CLIENT_HELLO = bytes.fromhex(
    "160301012c010001280303"
    + "5a" * 32
    + "20"
    + "11" * 32
    + "0004130113020100"
    + "00fb"
    + "00" * 64
)
SSH = b"SSH-2.0-OpenSSH_9.6\r\n"


def test_real_modbus_streams_detected() -> None:
    assert looks_like_modbus(CLIENT)
    assert looks_like_modbus(SERVER)
    assert modbus_score(CLIENT) > 0.9
    single = adu(rm.ReadHoldingRegistersRequest(address=0, count=1))
    assert looks_like_modbus(single)
    assert modbus_score(single) < modbus_score(CLIENT)


def test_cut_short_sample_still_counts_complete_adus() -> None:
    assert looks_like_modbus(CLIENT[:-3])
    assert modbus_score(CLIENT[:9]) == 0.25  # one incomplete ADU is not enough
    assert not looks_like_modbus(CLIENT[:9])


def test_other_protocols_rejected() -> None:
    for sample in (HTTP, HTTP_RESPONSE, TLS_CLIENT_HELLO, SSH, b"", b"\x00" * 64):
        assert modbus_score(sample) == 0.0, sample[:16]
        assert not looks_like_modbus(sample)


def test_garbage_after_one_adu_is_not_enough() -> None:
    single = adu(rm.ReadHoldingRegistersRequest(address=0, count=1))
    assert not looks_like_modbus(single + HTTP)


def test_body_violation_is_not_evidence() -> None:
    # Valid MBAP, known code, but quantity 0 and a length that does not fit FC 3.
    assert not looks_like_modbus(bytes.fromhex("0001 0000 0006 01 03 0000 0000"))
    assert not looks_like_modbus(bytes.fromhex("0001 0000 0008 01 03 0000 0001 0000"))


def test_low_false_positive_rate_on_random_bytes() -> None:
    rng = random.Random(502)
    hits = sum(looks_like_modbus(rng.randbytes(64)) for _ in range(2000))
    assert hits <= 2  # expected rate is far below 1e-4


def test_random_bytes_with_zero_protocol_id_mostly_rejected() -> None:
    # Force the cheapest coincidence (protocol id 0) and check the rest still filters.
    rng = random.Random(7)
    hits = 0
    for _ in range(2000):
        sample = bytearray(rng.randbytes(64))
        sample[2:4] = b"\x00\x00"
        hits += looks_like_modbus(bytes(sample))
    assert hits <= 20
