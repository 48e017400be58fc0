"""Property tests: arbitrary bytes in arbitrary chunks never break the framer."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymodbus.pdu import ExceptionResponse
from pymodbus.pdu import bit_message as bm
from pymodbus.pdu import mei_message as mm
from pymodbus.pdu import register_message as rm

from otconduit.protocols.events import NEED_DATA, Malformed, NeedData
from otconduit.protocols.modbus import ModbusMessage, ModbusStream

from .modbus_helpers import adu, comparable, decode_stream

VALID_ADUS = [
    adu(rm.ReadHoldingRegistersRequest(address=0, count=10), tid=1),
    adu(bm.WriteMultipleCoilsRequest(address=5, bits=[True, False] * 9), tid=2),
    adu(rm.WriteMultipleRegistersRequest(address=7, registers=list(range(20))), tid=3),
    adu(rm.ReadHoldingRegistersResponse(registers=list(range(30))), tid=4),
    adu(ExceptionResponse(3, 2), tid=5),
    adu(mm.ReadDeviceInformationResponse(read_code=1, information={0: b"Acme", 1: b"X1"}), tid=6),
]
MAX_BUFFER = 1024
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated_stream(draw: st.DrawFn) -> bytes:
    """Valid ADUs back to back, then flipped, inserted and deleted bytes."""
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID_ADUS), max_size=12))))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=20))
        elif data and at < len(data):
            if op == "flip":
                data[at] = draw(st.integers(0, 255))
            else:
                del data[at : at + draw(st.integers(1, 10))]
    return bytes(data)


streams = st.one_of(st.binary(max_size=3000), mutated_stream())


@st.composite
def plan(draw: st.DrawFn) -> tuple[bytes, list[int], bool]:
    data = draw(streams)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return data, sizes, draw(st.booleans())


@SETTINGS
@given(plan())
def test_framer_only_yields_events_and_accounts_for_every_byte(
    case: tuple[bytes, list[int], bool],
) -> None:
    data, sizes, is_request = case
    stream = ModbusStream(is_request=is_request, max_buffer=MAX_BUFFER)
    events: list[ModbusMessage | Malformed] = []

    def pump() -> None:
        for _ in range(len(data) + 10):  # every event consumes at least one byte
            event = stream.next_event()
            if isinstance(event, NeedData):
                assert event is NEED_DATA
                assert stream.buffered < MAX_BUFFER
                return
            assert isinstance(event, ModbusMessage | Malformed)
            events.append(event)
        raise AssertionError("framer did not return NEED_DATA")

    pos = 0
    for frame, size in enumerate(sizes):
        stream.feed(data[pos : pos + size], frame, frame)
        pos += size
        pump()
    stream.end()
    pump()

    # Each byte ends up in exactly one event, in stream order.
    offset = 0
    for event in events:
        if isinstance(event, Malformed):
            assert event.offset == offset and event.data
            assert len(event.data) <= MAX_BUFFER
            offset += len(event.data)
        else:
            assert len(event.raw) == 6 + event.length
            offset += len(event.raw)
    assert offset == len(data)
    assert stream.buffered == 0


@SETTINGS
@given(plan())
def test_events_do_not_depend_on_segmentation(case: tuple[bytes, list[int], bool]) -> None:
    data, sizes, is_request = case
    whole = [comparable(e) for e in decode_stream(data, is_request=is_request)]
    cut = [comparable(e) for e in decode_stream(data, is_request=is_request, chunks=sizes)]
    assert cut == whole


@SETTINGS
@given(streams, st.integers(0, 300), st.integers(0, 3000), st.booleans())
def test_gaps_never_break_the_framer(data: bytes, lost: int, at: int, is_request: bool) -> None:
    at = min(at, len(data))
    stream = ModbusStream(is_request=is_request, max_buffer=MAX_BUFFER)
    stream.feed(data[:at], 1, 1)
    stream.gap(lost, 2, 2)
    stream.feed(data[at:], 3, 3)
    stream.end()
    seen = 0
    while not isinstance(event := stream.next_event(), NeedData):
        assert isinstance(event, ModbusMessage | Malformed)
        seen += len(event.data) if isinstance(event, Malformed) else len(event.raw)
    assert seen == len(data)
    assert stream.offset == len(data) + lost
