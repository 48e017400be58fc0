"""Property tests: arbitrary and mutated traffic yields only documented outcomes, ends,
and keeps buffers and tables bounded."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.base import Endpoints
from otconduit.protocols.enip import (
    EnipDecoder,
    cm,
    identity,
    logix,
    parse_cpf,
    parse_epath,
    parse_list_identity_item,
    parse_request,
    parse_response,
    split_multiple,
)
from otconduit.protocols.enip.stream import MAX_MESSAGE
from otconduit.protocols.events import Malformed

from .enip_helpers import TCP, UDP, UDP_IO, cpf, encap, io_packet, list_identity_item
from .test_enip_decoder import CONVERSATION

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_PENDING = 8


def _check(dec: EnipDecoder, events: list[object]) -> None:
    for e in events:
        assert isinstance(e, Operation | IdentityClaim | Malformed)
        if isinstance(e, Malformed):
            assert len(e.data) <= MAX_MESSAGE
    for stream in dec._streams:
        assert stream.buffered < MAX_MESSAGE + stream.max_skip
    assert len(dec._rr_pending) <= MAX_PENDING
    assert dec._conn_pending_count <= MAX_PENDING
    assert len(dec._encap_pending) <= MAX_PENDING


def _drive(endpoints: Endpoints, chunks: list[tuple[int, bytes]]) -> list[object]:
    return _run(endpoints, chunks)[1]


def _run(endpoints: Endpoints, chunks: list[tuple[int, bytes]]) -> tuple[EnipDecoder, list[object]]:
    dec = EnipDecoder(endpoints, max_pending=MAX_PENDING)
    events: list[object] = []
    for frame, (direction, data) in enumerate(chunks, start=1):
        dec.feed(direction, data, frame, frame)
        events += dec.events()
        _check(dec, events)
    events += dec.finish()
    _check(dec, events)
    assert dec.finish() == []  # idempotent
    return dec, events


@st.composite
def mutated(draw: st.DrawFn, messages: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Valid messages, some flipped, cut, extended or duplicated."""
    out = []
    for direction, msg in draw(st.lists(st.sampled_from(messages), max_size=14)):
        data = bytearray(msg)
        for _ in range(draw(st.integers(0, 3))):
            op = draw(st.sampled_from(["flip", "insert", "delete"]))
            at = draw(st.integers(0, len(data)))
            if op == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=12))
            elif at < len(data):
                if op == "flip":
                    data[at] = draw(st.integers(0, 255))
                else:
                    del data[at : at + draw(st.integers(1, 8))]
        out.append((direction, bytes(data)))
    return out


chunks = st.lists(st.tuples(st.integers(0, 1), st.binary(max_size=200)), max_size=20)


@SETTINGS
@given(chunks)
def test_random_tcp_bytes(data: list[tuple[int, bytes]]) -> None:
    _drive(TCP, data)


@SETTINGS
@given(chunks)
def test_random_udp_datagrams(data: list[tuple[int, bytes]]) -> None:
    dec, events = _run(UDP, data)
    # every datagram is used or reported: no silent drops of non-empty garbage
    used = sum(dec.command_counts.values()) + dec.io_packets
    reported = sum(isinstance(e, Malformed) for e in events)
    assert used + reported >= sum(1 for _, d in data if d)


@SETTINGS
@given(mutated(CONVERSATION))
def test_mutated_tcp_conversation(data: list[tuple[int, bytes]]) -> None:
    _drive(TCP, data)


@SETTINGS
@given(mutated(CONVERSATION), st.integers(1, 40))
def test_mutated_stream_rechunked(data: list[tuple[int, bytes]], size: int) -> None:
    """Re-chunking any byte stream changes nothing a decoder reports."""
    stream = [(d, b[i : i + size]) for d, b in data for i in range(0, len(b), size)]
    assert _strip(_drive(TCP, data)) == _strip(_drive(TCP, stream))


def _strip(events: list[object]) -> list[str]:
    """Events without frame numbers (which differ by construction when re-chunking)."""
    out = []
    for e in events:
        if isinstance(e, Malformed):
            out.append(f"M{e.offset}:{e.reason}:{e.data.hex()}")
        elif isinstance(e, Operation):
            out.append(f"O{e.function}:{e.status}:{e.quantity}:{e.values}:{e.detail}")
        elif isinstance(e, IdentityClaim):
            out.append(f"C{e.ip}:{e.attribute}:{e.value}")
    return out


UDP_MESSAGES = [
    (0, encap(0x63, session=0)),
    (1, encap(0x63, cpf([(0x000C, list_identity_item())]), session=0)),
    (0, encap(0x04, session=0)),
    (1, encap(0x04, cpf([(0x0100, b"\x01\x00\x20\x01Communications\x00\x00")]), session=0)),
]


@SETTINGS
@given(mutated(UDP_MESSAGES))
def test_mutated_udp(data: list[tuple[int, bytes]]) -> None:
    _drive(UDP, data)


@SETTINGS
@given(mutated([(0, io_packet(5, 1)), (1, io_packet(6, 2, b"\x00" * 30))]))
def test_mutated_io(data: list[tuple[int, bytes]]) -> None:
    events = _drive(UDP_IO, data)
    io = [e for e in events if isinstance(e, Operation)]
    assert sum(op.quantity or 0 for op in io if op.function == "IMPLICIT_IO") <= len(data)


@SETTINGS
@given(st.binary(max_size=120))
def test_parsers_never_raise(raw: bytes) -> None:
    parse_epath(raw)
    parse_epath(raw, padded=False)
    parse_request(raw)
    parse_response(raw)
    split_multiple(raw)
    parse_cpf(raw)
    parse_list_identity_item(raw)
    cm.parse_forward_open(raw, large=False)
    cm.parse_forward_open(raw, large=True)
    cm.parse_forward_open_reply(raw, success=True)
    cm.parse_forward_close(raw, request=True)
    cm.parse_unconnected_send(raw)
    identity.parse_get_attributes_all(raw)
    identity.parse_get_attribute_list(raw)
    for attribute in (1, 4, 7, 8, 11):
        identity.parse_get_attribute_single(attribute, raw)
    for service in (0x4C, 0x4D, 0x4E, 0x52, 0x53):
        logix.parse_tag_request(service, raw)
