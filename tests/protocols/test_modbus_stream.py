"""MBAP framing: segmentation invariance, resynchronisation, gaps, bounds, counters."""

from __future__ import annotations

import random

import pytest
from pymodbus.pdu import ExceptionResponse
from pymodbus.pdu import bit_message as bm
from pymodbus.pdu import register_message as rm

from otconduit.protocols.events import NEED_DATA, Malformed
from otconduit.protocols.modbus import ModbusMessage, ModbusStream

from .modbus_helpers import adu, comparable, decode_stream, drain, raw_adu

REQUESTS = b"".join(
    [
        adu(rm.ReadHoldingRegistersRequest(address=0, count=10), tid=1),
        adu(bm.WriteMultipleCoilsRequest(address=5, bits=[True, False] * 9), tid=2),
        adu(rm.WriteMultipleRegistersRequest(address=7, registers=list(range(100))), tid=3),
        adu(bm.ReadCoilsRequest(address=1, count=2000), tid=4),
        raw_adu(b"\x5a\x00\x02", tid=5),  # vendor code
    ]
)
RESPONSES = b"".join(
    [
        adu(rm.ReadHoldingRegistersResponse(registers=list(range(125))), tid=1),
        adu(ExceptionResponse(15, 2), tid=2),
        adu(rm.WriteMultipleRegistersResponse(address=7, count=100), tid=3),
        adu(bm.ReadCoilsResponse(bits=[True] * 2000), tid=4),
    ]
)
GARBAGE = bytes(range(1, 40))  # no zero pair anywhere: no plausible header inside


def messages(events: list[ModbusMessage | Malformed]) -> list[ModbusMessage]:
    return [e for e in events if isinstance(e, ModbusMessage)]


def malformed(events: list[ModbusMessage | Malformed]) -> list[Malformed]:
    return [e for e in events if isinstance(e, Malformed)]


def random_chunks(total: int, rng: random.Random) -> list[int]:
    sizes = []
    while total > 0:
        size = min(total, rng.randint(1, 40))
        sizes.append(size)
        total -= size
    return sizes


def test_back_to_back_adus() -> None:
    events = decode_stream(REQUESTS, is_request=True)
    msgs = messages(events)
    assert [m.tid for m in msgs] == [1, 2, 3, 4, 5]
    assert [m.function_code for m in msgs] == [3, 15, 16, 1, 90]
    assert msgs[2].values == tuple(range(100))
    assert not malformed(events)


@pytest.mark.parametrize(
    "data",
    [
        REQUESTS,
        GARBAGE + REQUESTS,
        REQUESTS[:30] + b"\x00\x01\x12\x34\x00\x06\x01\x03" + REQUESTS[30:],
        REQUESTS + REQUESTS[:11],  # trailing partial ADU
        raw_adu(b"\x03\x00\x00\x00\x01", pid=7) + REQUESTS,
    ],
)
@pytest.mark.parametrize("is_request", [True, False])
def test_segmentation_invariance(data: bytes, is_request: bool) -> None:
    whole = [comparable(e) for e in decode_stream(data, is_request=is_request)]
    bytewise = [
        comparable(e) for e in decode_stream(data, is_request=is_request, chunks=[1] * len(data))
    ]
    assert bytewise == whole
    rng = random.Random(len(data))
    for _ in range(20):
        chunks = random_chunks(len(data), rng)
        got = [comparable(e) for e in decode_stream(data, is_request=is_request, chunks=chunks)]
        assert got == whole


def test_segmentation_invariance_responses() -> None:
    whole = [comparable(e) for e in decode_stream(RESPONSES, is_request=False)]
    assert len(whole) == 4
    bytewise = decode_stream(RESPONSES, is_request=False, chunks=[1] * len(RESPONSES))
    assert [comparable(e) for e in bytewise] == whole


def test_frame_and_ts_of_completing_chunk() -> None:
    first = adu(rm.ReadHoldingRegistersRequest(address=0, count=1), tid=1)
    second = adu(rm.ReadHoldingRegistersRequest(address=1, count=1), tid=2)
    stream = ModbusStream(is_request=True)
    stream.feed(first[:5], 10, 1000)
    assert stream.next_event() is NEED_DATA
    stream.feed(first[5:] + second[:3], 11, 2000)
    (msg,) = drain(stream)
    assert isinstance(msg, ModbusMessage)
    assert (msg.tid, msg.frame, msg.ts_ns) == (1, 11, 2000)
    stream.feed(second[3:], 12, 3000)
    (msg2,) = drain(stream)
    assert isinstance(msg2, ModbusMessage)
    assert (msg2.tid, msg2.frame, msg2.ts_ns) == (2, 12, 3000)


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (raw_adu(b"\x03\x00\x00\x00\x01", pid=1), "protocol id 1"),
        (b"\x00\x01\x00\x00\x00\x00\x01\x03", "length 0"),
        (b"\x00\x01\x00\x00\x00\x01\x01\x03", "length 1"),
        (b"\x00\x01\x00\x00\x01\x00\x01\x03", "length 256"),
        (b"\x00\x01\x00\x00\xff\xff\x01\x03", "length 65535"),
    ],
)
def test_invalid_mbap_then_recovery(header: bytes, needle: str) -> None:
    good = adu(rm.ReadHoldingRegistersRequest(address=3, count=4), tid=9)
    stream = ModbusStream(is_request=True)
    stream.feed(header + good, 1, 1)
    events = drain(stream)
    assert len(events) == 2
    bad, msg = events
    assert isinstance(bad, Malformed) and needle in bad.reason
    assert bad.offset == 0 and bad.data == header
    assert isinstance(msg, ModbusMessage) and (msg.tid, msg.address, msg.quantity) == (9, 3, 4)
    assert (stream.resyncs, stream.malformed, stream.bytes_skipped) == (1, 1, len(header))
    assert stream.messages == 1


def test_garbage_prefix_reported_with_offset() -> None:
    events = decode_stream(GARBAGE + REQUESTS, is_request=True)
    bad = malformed(events)
    assert len(bad) == 1
    assert (bad[0].offset, bad[0].data) == (0, GARBAGE)
    assert [m.tid for m in messages(events)] == [1, 2, 3, 4, 5]


def test_body_violation_is_a_message_not_malformed_event() -> None:
    data = raw_adu(bytes.fromhex("10 0000 0002 03 000100"), tid=4) + adu(
        rm.ReadHoldingRegistersRequest(address=0, count=1), tid=5
    )
    stream = ModbusStream(is_request=True)
    stream.feed(data, 1, 1)
    first, second = drain(stream)
    assert isinstance(first, ModbusMessage) and first.malformed_reason is not None
    assert isinstance(second, ModbusMessage) and second.malformed_reason is None
    assert (stream.messages, stream.malformed_pdus, stream.malformed) == (2, 1, 0)


def test_end_reports_truncated_tail() -> None:
    good = adu(rm.ReadHoldingRegistersRequest(address=0, count=1), tid=1)
    stream = ModbusStream(is_request=True)
    stream.feed(good + good[:9], 3, 30)
    assert len(drain(stream)) == 1
    stream.end()
    (tail,) = drain(stream)
    assert isinstance(tail, Malformed)
    assert "truncated" in tail.reason and "9 of 12" in tail.reason
    assert (tail.offset, tail.data, tail.frame) == (len(good), good[:9], 3)
    assert stream.next_event() is NEED_DATA
    with pytest.raises(RuntimeError):
        stream.feed(b"x", 4, 40)


def test_gap_drops_partial_and_resyncs() -> None:
    first = adu(rm.ReadHoldingRegistersRequest(address=0, count=1), tid=1)
    second = adu(rm.WriteMultipleRegistersRequest(address=0, registers=[1, 2, 3]), tid=2)
    third = adu(rm.ReadHoldingRegistersRequest(address=5, count=2), tid=3)
    stream = ModbusStream(is_request=True)
    stream.feed(first + second[:8], 1, 100)
    stream.gap(5, 2, 200)  # bytes 8..12 of `second` lost
    stream.feed(second[13:] + third, 3, 300)
    events = drain(stream)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["ModbusMessage", "Malformed", "Malformed", "ModbusMessage"]
    before, after = events[1], events[2]
    assert isinstance(before, Malformed) and isinstance(after, Malformed)
    assert before.reason.startswith("incomplete message before gap")
    assert (before.offset, before.data, before.frame) == (len(first), second[:8], 2)
    assert after.data == second[13:]
    assert after.offset == len(first) + 13  # offsets count the lost bytes
    last = events[3]
    assert isinstance(last, ModbusMessage) and (last.tid, last.address) == (3, 5)
    assert stream.resyncs == 1


def test_gap_on_boundary_loses_nothing_else() -> None:
    first = adu(rm.ReadHoldingRegistersRequest(address=0, count=1), tid=1)
    stream = ModbusStream(is_request=True)
    stream.feed(first, 1, 1)
    stream.gap(100, 2, 2)
    stream.feed(first, 3, 3)
    events = drain(stream)
    assert [type(e) for e in events] == [ModbusMessage, ModbusMessage]
    assert stream.offset == 2 * len(first) + 100


def test_long_garbage_is_bounded_and_reported_in_pieces() -> None:
    rng = random.Random(1)
    junk = bytes(rng.choice(range(1, 256)) for _ in range(20_000))
    good = adu(rm.ReadHoldingRegistersRequest(address=0, count=1), tid=1)
    stream = ModbusStream(is_request=True, max_buffer=1024)
    events = []
    for i in range(0, len(junk), 997):
        stream.feed(junk[i : i + 997], i, i)
        events += drain(stream)
        assert stream.buffered < stream.max_buffer
    stream.feed(good, 99, 99)
    events += drain(stream)
    bad = malformed(events)
    assert all(len(e.data) <= 1024 - 260 for e in bad)
    assert sum(len(e.data) for e in bad) == len(junk)
    assert isinstance(events[-1], ModbusMessage)
    assert stream.bytes_skipped == len(junk)


def test_max_buffer_must_hold_two_adus() -> None:
    with pytest.raises(ValueError):
        ModbusStream(is_request=True, max_buffer=300)


def test_resync_ignores_implausible_zero_pairs() -> None:
    # A zero protocol id with an unknown function code is not a resync point.
    decoy = b"\x00\x01\x00\x00\x00\x06\x01\xc8\x00\x00\x00\x01"
    good = adu(rm.ReadHoldingRegistersRequest(address=0, count=1), tid=7)
    bad_header = b"\x12\x34\x56\x78\x00\x06"
    events = decode_stream(bad_header + decoy + good, is_request=True)
    assert [type(e) for e in events] == [Malformed, ModbusMessage]
    msg = events[1]
    assert isinstance(msg, ModbusMessage) and msg.tid == 7


def test_exception_responses_resync_only_in_response_direction() -> None:
    exc = adu(ExceptionResponse(3, 2), tid=4)
    events = decode_stream(b"\xff" * 8 + exc, is_request=False)
    assert [type(e) for e in events] == [Malformed, ModbusMessage]
    events = decode_stream(b"\xff" * 8 + exc, is_request=True)
    assert [type(e) for e in events] == [Malformed]


def test_length_255_is_framed_but_flagged() -> None:
    """Modicon UMAS sends MBAP length 255 (one byte over the spec): keep the message."""
    body = b"\x5a\x00\x0a" + bytes(251)
    raw = b"\x00\x07\x00\x00\x00\xff\x00" + body
    stream = ModbusStream(is_request=True)
    stream.feed(raw, 1, 1)
    (msg,) = drain(stream)
    assert isinstance(msg, ModbusMessage)
    assert msg.function_code == 90 and msg.tid == 7
    assert msg.malformed_reason is not None and "exceeds 254" in msg.malformed_reason
