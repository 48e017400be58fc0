"""Property tests: random and mutated DNP3 traffic never breaks the decoder.

Only documented outcomes come out (Operation, IdentityClaim, Malformed), every call
returns, buffers stay within their documented bounds, and nothing is left at the end.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.dnp3 import SPEC, Dnp3ConnectionDecoder, LinkFramer, parse_fragment
from otconduit.protocols.dnp3.link import MAX_FRAME
from otconduit.protocols.dnp3.session import DEFAULT_MAX_OUTSTANDING
from otconduit.protocols.dnp3.transport import DEFAULT_MAX_ASSOCIATIONS, DEFAULT_MAX_FRAGMENT
from otconduit.protocols.events import NEED_DATA, Malformed
from tests.protocols.dnp3_helpers import (
    ENDPOINTS,
    confirm,
    link_frame,
    request,
    response,
    segments,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STRINGS = (bytes([110, 200, 0x07, 1]) + bytes(200)) * 2  # a fragment of two segments
CROB = bytes([12, 1, 0x17, 1, 3]) + struct.pack("<BBIIB", 0x41, 1, 100, 0, 0)
VALID = [
    (0, request(1, 1, bytes([60, 2, 6, 60, 3, 6, 60, 4, 6, 60, 1, 6]))),
    (1, response(0x81, 1, bytes([30, 2, 0, 0, 3]) + b"\x01\x00\x00" * 4, iin=0x8200)),
    (0, request(3, 2, CROB)),
    (1, response(0x81, 2, CROB)),
    (1, response(0x82, 5, bytes([2, 2, 0x28, 1, 0, 4, 0, 0x81]) + bytes(6), control=0xF5)),
    (0, confirm(0xD5)),
    (0, request(2, 3, bytes([50, 1, 7, 1]) + bytes(6))),
    (1, response(0x81, 3, bytes([0, 252, 0, 0, 0, 1, 4]) + b"ACME")),
    (0, b"".join(link_frame(s) for s in segments(bytes([0xC4, 2]) + STRINGS, first_seq=60))),
]
FRAMER_BOUND = MAX_FRAME - 1 + 4096  # partial frame + skipped run (LinkFramer default)


def check(dec: Dnp3ConnectionDecoder, events: Sequence[object]) -> None:
    for event in events:
        assert isinstance(event, Operation | IdentityClaim | Malformed)
        if isinstance(event, Malformed):
            assert event.reason and len(event.data) <= max(DEFAULT_MAX_FRAGMENT, 4096)
    for framer in dec.framers:
        assert framer.buffered <= FRAMER_BOUND
    assert dec.transport.buffered <= DEFAULT_MAX_ASSOCIATIONS * DEFAULT_MAX_FRAGMENT
    assert dec.session.outstanding <= DEFAULT_MAX_OUTSTANDING


def run(chunks: list[tuple[int, bytes]]) -> list[object]:
    dec = SPEC.factory(ENDPOINTS)
    assert isinstance(dec, Dnp3ConnectionDecoder)
    out: list[object] = []
    for frame, (d, data) in enumerate(chunks, 1):
        dec.feed(d, data, frame, frame)
        events = dec.events()
        check(dec, events)
        out += events
    tail = dec.finish()
    check(dec, tail)
    assert all(f.buffered == 0 for f in dec.framers)
    assert dec.session.outstanding == 0
    return out + tail


@st.composite
def mutated(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    """Valid messages, then flipped, inserted and deleted octets, cut into chunks."""
    picks = draw(st.lists(st.sampled_from(VALID), max_size=10))
    streams = [bytearray(b"".join(m for d, m in picks if d == k)) for k in (0, 1)]
    for data in streams:
        for _ in range(draw(st.integers(0, 6))):
            at = draw(st.integers(0, len(data)))
            op = draw(st.sampled_from(["flip", "insert", "delete"]))
            if op == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=12))
            elif at < len(data):
                if op == "flip":
                    data[at] ^= draw(st.integers(1, 255))
                else:
                    del data[at : at + draw(st.integers(1, 8))]
    chunks: list[tuple[int, bytes]] = []
    pos = [0, 0]
    while pos[0] < len(streams[0]) or pos[1] < len(streams[1]):
        d = draw(st.integers(0, 1))
        if pos[d] >= len(streams[d]):
            d = 1 - d
        n = draw(st.integers(1, 64))
        chunks.append((d, bytes(streams[d][pos[d] : pos[d] + n])))
        pos[d] += n
    return chunks


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 1), st.binary(min_size=1, max_size=300)), max_size=20))
def test_random_bytes(chunks: list[tuple[int, bytes]]) -> None:
    run(chunks)


@SETTINGS
@given(mutated())
def test_mutated_traffic(chunks: list[tuple[int, bytes]]) -> None:
    run(chunks)


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.binary(min_size=1, max_size=40),
            st.sampled_from([b"\x05", b"\x05\x64", b"\x05\x64\xff", link_frame(b"x" * 20)]),
        ),
        max_size=30,
    )
)
def test_framer_progress_near_start_octets(pieces: list[bytes]) -> None:
    framer = LinkFramer(max_skip=64)
    total = 0
    for i, piece in enumerate(pieces):
        framer.feed(piece, i, i)
        total += len(piece)
        while framer.next_event() is not NEED_DATA:
            pass
        assert framer.buffered <= MAX_FRAME - 1 + 64
    framer.end()
    events = list(framer.events())
    assert framer.buffered == 0 and framer.next_event() is NEED_DATA
    assert all(isinstance(e, Malformed) or e.data is not None for e in events)


@SETTINGS
@given(st.binary(max_size=400))
def test_fragment_parser_never_raises(data: bytes) -> None:
    frag = parse_fragment(data)
    if frag is None:
        assert len(data) < 2
        return
    assert frag.function_code == data[1] and frag.size == len(data)
    for header in frag.objects:
        if header.start is not None and header.stop is not None and header.range_code < 6:
            assert header.stop >= header.start


def test_mutations_reach_every_outcome() -> None:
    """The valid set alone decodes cleanly (so the properties above test damage)."""
    events = run(list(VALID))
    assert not [e for e in events if isinstance(e, Malformed)]
    assert {e.function for e in events if isinstance(e, Operation)} >= {
        "READ",
        "SELECT",
        "UNSOLICITED_RESPONSE",
        "WRITE",
    }


def run_split(chunks: list[tuple[int, bytes]], size: int) -> list[object]:
    """Like :func:`run`, with every chunk fed in pieces of ``size`` octets, each piece
    carrying its chunk's frame (TCP may deliver a frame's bytes in any pieces)."""
    dec = SPEC.factory(ENDPOINTS)
    out: list[object] = []
    for frame, (d, data) in enumerate(chunks, 1):
        for at in range(0, len(data), size):
            dec.feed(d, data[at : at + size], frame, frame)
            out += dec.events()
    return out + dec.finish()


@SETTINGS
@given(mutated(), st.integers(1, 40), st.binary(max_size=20))
def test_segmentation_invariance(chunks: list[tuple[int, bytes]], size: int, tail: bytes) -> None:
    """Whole, one octet at a time or in any pieces, with trailing octets or not: the
    decoder reports the same events."""
    for stream in (chunks, [*chunks, (0, tail)] if tail else chunks):
        whole = run(stream)
        assert run_split(stream, size) == whole
        assert run_split(stream, 1) == whole
