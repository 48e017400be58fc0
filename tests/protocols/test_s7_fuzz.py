"""Property tests: random and mutated input gives only documented outcomes, terminates,
and keeps every buffer within its documented bound."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.events import Malformed
from otconduit.protocols.s7 import (
    CotpConnect,
    CotpData,
    CotpDisconnect,
    CotpOther,
    PlusPdu,
    S7Decoder,
    S7Pdu,
    TpktStream,
    parse_pdu,
    parse_plus,
)
from otconduit.protocols.s7.tpkt import MAX_TPKT_LENGTH

from .s7_helpers import (
    ENDPOINTS,
    ack_data,
    any_item,
    block_job_param,
    cc,
    cr,
    data_item,
    dr,
    job,
    pi_param,
    plc_stop_param,
    plus_pdu,
    s7,
    segmented,
    setup_param,
    szl_0011_records,
    szl_body,
    userdata,
    var_param,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SKIP_LIMIT = 256
MAX_TSDU = 2048

VALID = [
    cr(),
    cc(),
    dr(),
    job(1, setup_param()),
    ack_data(1, setup_param(240)),
    job(2, var_param(0x04, [any_item(0x84, 1, 2), any_item(0x81, 0, 0, 1, size=1)])),
    ack_data(2, b"\x04\x02", data_item(b"\x01\x02\x03", last=False) + data_item(b"\x01")),
    job(3, var_param(0x05, [any_item(0x83, 0, 4)]), data_item(b"\x07", rc=0)),
    ack_data(3, b"\x05\x01", b"\xff"),
    job(4, block_job_param(0x1D, b"_0A00001A")),
    job(5, pi_param(b"_INSE", b"\x01\x000A00001P")),
    job(6, plc_stop_param()),
    userdata(7, 4, 1, body=b"\x00\x11\x00\x00"),
    userdata(7, 4, 1, type_=8, seq=1, body=szl_body(0x11, 0, szl_0011_records())),
    userdata(8, 7, 2, body=bytes.fromhex("00191602082308100002")),
    segmented(s7(1, 9, setup_param()), 4),
    plus_pdu(0x31, 0x054C, 1),
    plus_pdu(0x32, 0x054C, 1),
]
PDUS = [
    s7(1, 1, setup_param()),
    s7(1, 2, var_param(0x04, [any_item(0x84, 1, 2)])),
    s7(3, 2, b"\x04\x01", data_item(b"\x01\x02")),
    s7(1, 4, block_job_param(0x1A, b"_0A00001P", tail=b"\x0d1000216000088")),
    s7(1, 5, pi_param(b"P_PROGRAM", b"C ")),
    s7(7, 6, bytes.fromhex("000112081284010201000000"), bytes.fromhex("ff0900080011000000")),
]


@st.composite
def mutated(draw: st.DrawFn, pool: list[bytes], count: int = 10) -> bytes:
    """Valid units back to back, then flipped, inserted and deleted bytes."""
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(pool), max_size=count))))
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


streams = st.one_of(st.binary(max_size=3000), mutated(VALID))


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in pairwise(points)]


def frame_events(data: bytes, cuts: list[int]) -> tuple[list[object], TpktStream]:
    s = TpktStream(skip_limit=SKIP_LIMIT, max_tsdu=MAX_TSDU)
    out: list[object] = []
    for chunk in chunked(data, cuts):
        s.feed(chunk, 1, 1)
        out += list(s.events())
        # documented bound once NEED_DATA: < one packet unread, skipped run < limit
        assert s.buffered < MAX_TPKT_LENGTH + SKIP_LIMIT + MAX_TSDU
    s.end()
    return out + list(s.events()), s


@SETTINGS
@given(streams, st.lists(st.integers(0, 5000), max_size=20))
def test_framer_outcomes_and_chunking_invariance(data: bytes, cuts: list[int]) -> None:
    events, stream = frame_events(data, cuts)
    kinds = (CotpConnect, CotpDisconnect, CotpData, CotpOther, Malformed)
    assert all(isinstance(e, kinds) for e in events)
    assert stream.buffered == 0  # everything is reported by the end
    whole, _ = frame_events(data, [])
    assert events == whole


@SETTINGS
@given(st.one_of(st.binary(max_size=600), mutated(PDUS, count=1)))
def test_pdu_parsers_never_raise(payload: bytes) -> None:
    assert isinstance(parse_pdu(payload), S7Pdu | str)
    assert isinstance(parse_plus(payload), PlusPdu | str)
    assert isinstance(parse_plus(b"\x72" + payload[1:]), PlusPdu | str)
    assert isinstance(parse_pdu(b"\x32" + payload[1:]), S7Pdu | str)


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 1), streams, st.booleans(), st.integers(1, 8)), max_size=6),
    st.integers(1, 64),
)
def test_decoder_only_documented_events(
    steps: list[tuple[int, bytes, bool, int]], max_outstanding: int
) -> None:
    # Frame numbers may go backwards: after a hole the reassembler releases one
    # direction late, and held responses must still pair (or stay bounded).
    dec = S7Decoder(ENDPOINTS, max_outstanding=max_outstanding, max_tsdu=MAX_TSDU)
    events = []
    for direction, data, gap, frame in steps:
        if gap:
            dec.gap(direction, 17, frame, frame)
        dec.feed(direction, data, frame, frame)
        events += dec.events()
        for stream in dec.streams:
            assert stream.buffered < MAX_TPKT_LENGTH + 4096 + MAX_TSDU
        assert len(dec.session._open) <= max_outstanding
        assert len(dec.session._held) <= max_outstanding
    events += dec.finish()
    assert dec.finish() == []
    assert all(isinstance(e, Operation | IdentityClaim | Malformed) for e in events)
    for e in events:
        if isinstance(e, Operation):
            assert e.protocol in ("s7comm", "s7comm-plus") and e.function
            assert e.request_frame is not None or e.response_frame is not None
