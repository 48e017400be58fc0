"""Segmentation invariance and hostile input for the OPC UA decoder.

Whole, one byte at a time, in random pieces, with trailing bytes or not: every stream
(each OPC UA connection of the shared corpus, and a session encoded by asyncua) gives
the same events. Random mutations of real PDUs, random bytes, gaps and tight limits
only ever give the documented events, terminate, and keep every buffer in its bound.
"""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.events import Malformed
from otconduit.protocols.opcua import SPEC, ChunkStream, OpcUaDecoder, parse_body
from otconduit.protocols.opcua.services import Body

from .opcua_helpers import (
    CORPUS,
    ENDPOINTS,
    Chunks,
    decode,
    opcua_captures,
    synthetic_exchange,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _synthetic() -> Chunks:
    return [(d, b, len(b), i + 1, (i + 1) * 1000) for i, (d, b) in enumerate(synthetic_exchange())]


def _streams() -> list[tuple[str, Chunks]]:
    from tests.streams import flows

    out = [("synthetic", _synthetic())]
    for capture in opcua_captures():
        for k, f in enumerate(flows(capture, {4840})):
            if f.chunks:
                out.append((f"{capture.name}#{k}", f.chunks))
    return out


STREAMS = _streams()


def _pieces(chunks: Chunks, cut: object) -> Chunks:
    """Every data chunk cut into pieces (gaps kept), each piece keeping its frame."""
    out: Chunks = []
    for d, data, n, frame, ts in chunks:
        if data is None or len(data) < 2:
            out.append((d, data, n, frame, ts))
            continue
        if cut == 1:
            points = list(range(len(data) + 1))
        else:
            assert isinstance(cut, random.Random)
            inner = sorted(cut.sample(range(1, len(data)), min(len(data) - 1, cut.randint(0, 6))))
            points = [0, *inner, len(data)]
        out += [(d, data[a:b], b - a, frame, ts) for a, b in pairwise(points)]
    return out


@pytest.mark.parametrize("name,chunks", STREAMS, ids=[n for n, _ in STREAMS])
def test_same_events_whatever_the_segmentation(name: str, chunks: Chunks) -> None:
    whole = decode(ENDPOINTS, chunks).events
    assert [e for e in whole if isinstance(e, Operation)]
    assert decode(ENDPOINTS, _pieces(chunks, 1)).events == whole
    rng = random.Random(name)
    for _ in range(5):
        assert decode(ENDPOINTS, _pieces(chunks, rng)).events == whole
    last_frame = max(c[3] for c in chunks)
    for tail in (b"\x00", b"MSGF\x30\x00", bytes(rng.randrange(256) for _ in range(40))):
        for d in (0, 1):
            trailing = [*chunks, (d, tail, len(tail), last_frame + 1, chunks[-1][4] + 1)]
            with_tail = decode(ENDPOINTS, trailing).events
            assert [e for e in with_tail if not isinstance(e, Malformed)] == [
                e for e in whole if not isinstance(e, Malformed)
            ]
            assert any(isinstance(e, Malformed) for e in with_tail)
            assert decode(ENDPOINTS, _pieces(trailing, 1)).events == with_tail
            assert decode(ENDPOINTS, _pieces(trailing, rng)).events == with_tail


def _unfinished(chunks: Chunks) -> list[Chunks]:
    """The stream followed by the first half of its first message, per direction."""
    last = max(c[3] for c in chunks)
    out = []
    for d in (0, 1):
        first = next((data for dd, data, *_ in chunks if dd == d and data), None)
        if first is not None and len(first) > 1:
            half = first[: len(first) // 2]
            out.append([*chunks, (d, half, len(half), last + 1, (last + 1) * 1000)])
    return out


def _before_the_end(chunks: Chunks) -> list[object]:
    dec = OpcUaDecoder(ENDPOINTS)
    out: list[object] = []
    for d, data, n, frame, ts in chunks:
        if data is None:
            dec.gap(d, n, frame, ts)
        else:
            dec.feed(d, data, frame, ts)
        out += dec.events()
    return out


@pytest.mark.parametrize("name,chunks", STREAMS, ids=[n for n, _ in STREAMS])
def test_an_unfinished_next_message_changes_nothing(name: str, chunks: Chunks) -> None:
    before = _before_the_end(chunks)
    for longer in _unfinished(chunks):
        assert _before_the_end(longer) == before


def test_corpus_streams_are_included() -> None:
    if CORPUS.is_dir():
        assert len(STREAMS) >= 8  # synthetic + 7 corpus connections with data


# --- fuzzing -----------------------------------------------------------------------------------

POOL = [data for _, chunks in STREAMS for _, data, *_ in chunks if data]


@st.composite
def mutated(draw: st.DrawFn, count: int = 8) -> bytes:
    """Real chunks back to back, then flipped, inserted and deleted bytes."""
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(POOL), max_size=count))))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "size"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=24))
        elif data and at < len(data):
            if op == "flip":
                data[at] = draw(st.integers(0, 255))
            elif op == "delete":
                del data[at : at + draw(st.integers(1, 16))]
            else:  # a chunk or string length field gets a wild value
                data[at : at + 4] = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little")
    return bytes(data)


streams = st.one_of(st.binary(max_size=2000), mutated())
MAX_CHUNK = 4096
KINDS = (Operation, IdentityClaim, Malformed)


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 1), streams, st.booleans(), st.integers(1, 9)), max_size=6),
    st.integers(1, 8),
    st.integers(1, 4),
)
def test_decoder_only_documented_events(
    steps: list[tuple[int, bytes, bool, int]], max_outstanding: int, max_partial: int
) -> None:
    dec = OpcUaDecoder(
        ENDPOINTS,
        max_outstanding=max_outstanding,
        max_chunk=MAX_CHUNK,
        max_message=8192,
        max_chunks=16,
        max_partial=max_partial,
    )
    events: list[object] = []
    for direction, data, gap, frame in steps:
        if gap:
            dec.gap(direction, 13, frame, frame)
        for at in range(0, len(data), 97):
            dec.feed(direction, data[at : at + 97], frame, frame)
            events += dec.events()
        for stream in dec.streams:
            assert stream.buffered < MAX_CHUNK + 4096
        assert len(dec.session._open) <= max_outstanding
        assert len(dec.session._held) <= max_outstanding
        for partials in dec.channel._partial:
            assert len(partials) <= max_partial
            assert all(p.size <= 8192 + MAX_CHUNK for p in partials.values())
    events += dec.finish()
    assert dec.finish() == []
    assert all(isinstance(e, KINDS) for e in events)
    for e in events:
        if isinstance(e, Operation):
            assert e.protocol == "opcua" and e.function
            assert e.request_frame is not None or e.response_frame is not None
        if isinstance(e, Malformed):
            assert e.reason and len(e.data) <= 4096


@SETTINGS
@given(st.one_of(st.binary(max_size=800), mutated(count=1)))
def test_body_parser_never_raises(data: bytes) -> None:
    for body in (data, data[24:], b"\x01\x00" + data[2:]):
        assert isinstance(parse_body(body), Body | str)


@SETTINGS
@given(streams, st.lists(st.integers(0, 5000), max_size=12))
def test_framer_chunking_invariance(data: bytes, cuts: list[int]) -> None:
    def frame(pieces: list[bytes]) -> list[object]:
        s = ChunkStream(max_chunk=MAX_CHUNK, skip_limit=256)
        out: list[object] = []
        for p in pieces:
            s.feed(p, 1, 1)
            out += list(s.events())
            assert s.buffered < MAX_CHUNK + 256
        s.end()
        return out + list(s.events())

    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    assert frame([data[a:b] for a, b in pairwise(points)]) == frame([data])


def test_verdict_on_first_bytes() -> None:
    hello = next(b for d, b in synthetic_exchange() if b.startswith(b"HEL"))
    assert SPEC.verdict(hello, b"", True) is True
    assert SPEC.verdict(hello[:5], b"", True) is None
    assert SPEC.verdict(b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", False) is False
    assert SPEC.verdict(b"\x16\x03\x01\x02\x00\x01\x00\x01", b"", False) is None
    assert (
        SPEC.verdict(b"\x03\x00\x00\x16\x11\xe0\x00\x00", b"\x03\x00\x00\x16\x11\xd0\x00\x00", True)
        is False
    )
    assert SPEC.verdict(b"MSGF\x18\x00\x00\x00", b"", False) is True  # mid-connection capture
    assert SPEC.name == "opcua" and 4840 in SPEC.ports and SPEC.transports == {"tcp"}


def test_resumable_contract() -> None:
    dec = SPEC.factory(ENDPOINTS)
    assert isinstance(dec, OpcUaDecoder)
    assert dec.quiescent() and dec.export_state() is None
    chunks = _synthetic()
    for d, data, _, frame, ts in chunks[:2]:
        assert data is not None
        dec.feed(d, data, frame, ts)
    assert not dec.quiescent()  # an operation is waiting to be collected
    dec.events()
    assert dec.quiescent()
    fork = dec.fork()
    assert fork.quiescent() and fork is not dec


def test_long_garbage_costs_linear_time() -> None:
    """Megabytes without a header: reported in runs of at most ``skip_limit`` bytes,
    without rescanning the buffer for each run."""
    import time

    junk = bytes(random.Random(1).randrange(256) for _ in range(1 << 16)) * 32  # 2 MiB
    hello = next(b for _, b in synthetic_exchange() if b.startswith(b"HEL"))
    start = time.perf_counter()
    stream = ChunkStream(skip_limit=4096)
    stream.feed(junk + hello, 1, 1)
    events = list(stream.events())
    assert time.perf_counter() - start < 5
    assert all(isinstance(e, Malformed) and len(e.data) <= 4096 for e in events[:-1])
    assert sum(len(e.data) for e in events[:-1]) == len(junk)
    assert not isinstance(events[-1], Malformed) and events[-1].msg_type == b"HEL"
