"""TCP stream reassembly for one direction."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from otconduit.capture.packet import TCP_ACK, TCP_PSH, TCP_SYN
from otconduit.capture.tcp import (
    StreamData,
    StreamEvent,
    StreamGap,
    TcpReassembler,
    seq_diff,
)

ISN = 1_000_000
DATA = bytes(range(256)) * 4
PA = TCP_PSH | TCP_ACK


def _stream(events: list[StreamEvent]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, StreamData))


def _syn(r: TcpReassembler, isn: int = ISN) -> None:
    assert r.feed(isn, TCP_SYN, b"", 1, 0) == []


def test_in_order_delivery() -> None:
    r = TcpReassembler()
    _syn(r)
    assert r.next_seq == ISN + 1
    assert r.feed(ISN + 1, PA, b"abc", 2, 20) == [StreamData(b"abc", 2, 20)]
    assert r.feed(ISN + 4, PA, b"defg", 3, 30) == [StreamData(b"defg", 3, 30)]
    assert r.feed(ISN + 8, TCP_ACK, b"", 4, 40) == []  # a pure ACK
    assert (r.delivered_bytes, r.next_seq, r.clean) == (7, ISN + 8, True)


def test_out_of_order_is_held_until_the_hole_fills() -> None:
    r = TcpReassembler()
    _syn(r)
    assert r.feed(ISN + 11, PA, b"second", 3, 30) == []
    assert r.feed(ISN + 17, PA, b"third", 4, 40) == []
    assert not r.clean and r.buffered_bytes == 11
    # Released with the frame that filled the hole: when, in capture order, they could be read.
    assert r.feed(ISN + 1, PA, b"first-----", 5, 50) == [
        StreamData(b"first-----", 5, 50),
        StreamData(b"second", 5, 50),
        StreamData(b"third", 5, 50),
    ]
    assert r.out_of_order == 2 and r.clean and r.gaps == 0


def test_retransmissions_are_dropped() -> None:
    r = TcpReassembler()
    _syn(r)
    r.feed(ISN + 1, PA, b"hello", 2, 0)
    assert r.feed(ISN + 1, PA, b"hello", 3, 0) == []
    assert r.feed(ISN + 3, PA, b"ll", 4, 0) == []
    r.feed(ISN + 20, PA, b"later", 5, 0)
    assert r.feed(ISN + 20, PA, b"LATER", 6, 0) == []  # a copy of held data
    assert r.retransmitted == 3 and r.delivered_bytes == 5 and r.buffered_bytes == 5


def test_partial_overlap_keeps_delivered_bytes() -> None:
    r = TcpReassembler()
    _syn(r)
    r.feed(ISN + 1, PA, b"abcdef", 2, 0)
    assert r.feed(ISN + 4, PA, b"XYZghi", 3, 0) == [StreamData(b"ghi", 3, 0)]
    # Held segments overlapping each other: the first held wins.
    r.feed(ISN + 20, PA, b"0123", 4, 0)
    r.feed(ISN + 22, PA, b"XX45", 5, 0)
    events = r.feed(ISN + 10, PA, b"jklmnopqrs", 6, 0)
    assert _stream(events) == b"jklmnopqrs012345"
    assert r.overlaps == 2


def test_gap_and_flush() -> None:
    r = TcpReassembler()
    _syn(r)
    r.feed(ISN + 1, PA, b"aaaa", 2, 20)
    assert r.feed(ISN + 9, PA, b"cccc", 4, 40) == []  # frame 3 with "bbbb" was lost
    assert r.feed(ISN + 17, PA, b"eeee", 6, 60) == []  # and frame 5 with "dddd"
    assert r.flush() == [
        StreamGap(4, 4, 40),
        StreamData(b"cccc", 4, 40),
        StreamGap(4, 6, 60),
        StreamData(b"eeee", 6, 60),
    ]
    assert (r.gaps, r.gap_bytes, r.delivered_bytes, r.clean) == (2, 8, 12, True)
    assert r.feed(ISN + 21, PA, b"ffff", 7, 70) == [StreamData(b"ffff", 7, 70)]
    assert r.flush() == []


def test_mid_stream_start() -> None:
    r = TcpReassembler()
    assert r.next_seq is None
    assert r.feed(5555, PA, b"resp", 1, 0) == [StreamData(b"resp", 1, 0)]
    assert r.feed(5559, PA, b"more", 2, 0) == [StreamData(b"more", 2, 0)]
    assert r.feed(5000, PA, b"old", 3, 0) == []  # before the capture started
    assert r.retransmitted == 1


def test_syn_with_data_and_repeated_syn() -> None:
    r = TcpReassembler()
    assert r.feed(ISN, TCP_SYN, b"fastopen", 1, 0) == [StreamData(b"fastopen", 1, 0)]
    assert r.feed(ISN, TCP_SYN, b"", 2, 0) == []
    assert r.next_seq == ISN + 9


def test_sequence_wraparound() -> None:
    isn = 0xFFFFFFF0
    r = TcpReassembler()
    _syn(r, isn)
    chunks = [DATA[i : i + 10] for i in range(0, 60, 10)]
    seqs = [(isn + 1 + 10 * i) & 0xFFFFFFFF for i in range(6)]
    events = []
    for i in (0, 2, 1, 4, 3, 5):  # reordered across the wrap
        events += r.feed(seqs[i], PA, chunks[i], i + 2, 0)
    assert _stream(events) == DATA[:60]
    assert r.next_seq == (isn + 61) & 0xFFFFFFFF and r.next_seq < 100
    assert r.feed(seqs[1], PA, chunks[1], 9, 0) == [] and r.retransmitted == 1
    assert seq_diff(5, 0xFFFFFFFB) == 10 and seq_diff(0xFFFFFFFB, 5) == -10


def test_bound_exceeded_emits_gap() -> None:
    r = TcpReassembler(max_bytes=1000, max_segments=3)
    _syn(r)
    # The segment at ISN+1 (100 bytes) never arrives; four later ones do.
    events = []
    for i in range(1, 5):
        events += r.feed(ISN + 1 + 100 * i, PA, DATA[100 * i : 100 * (i + 1)], i + 1, i)
    assert events[0] == StreamGap(100, 5, 4)  # on the fourth held segment, frame 5
    assert _stream(events) == DATA[100:500]
    assert r.clean and r.gap_bytes == 100
    r2 = TcpReassembler(max_bytes=150, max_segments=100)
    _syn(r2)
    r2.feed(ISN + 101, PA, DATA[:100], 2, 0)
    events = r2.feed(ISN + 301, PA, DATA[:100], 3, 0)  # 200 bytes held > 150
    assert [type(e) for e in events] == [StreamGap, StreamData]
    assert r2.buffered_bytes == 100 and r2.next_seq == ISN + 201


def test_data_beyond_any_window_is_dropped() -> None:
    r = TcpReassembler()
    _syn(r)
    assert r.feed(ISN + 1 + (1 << 30) + 1, PA, b"far", 2, 0) == []
    assert r.clean and r.out_of_window == 1
    assert r.feed(ISN + 1 + (1 << 30), PA, b"near", 3, 0) == [] and not r.clean


def test_sync_to_after_bulk_path() -> None:
    r = TcpReassembler()
    _syn(r)
    r.feed(ISN + 1, PA, b"abc", 2, 0)
    assert r.sync_to(ISN + 1004) == []  # the bulk path delivered 1000 bytes itself
    assert r.feed(ISN + 1004, PA, b"next", 3, 0) == [StreamData(b"next", 3, 0)]
    r.feed(ISN + 1100, PA, b"held", 4, 0)
    assert r.sync_to(ISN + 1100) == [StreamData(b"held", 4, 0)]
    assert r.delivered_bytes == 11


@settings(max_examples=150, deadline=None)
@given(
    cuts=st.lists(st.integers(1, len(DATA) - 1), max_size=20, unique=True),
    rng=st.randoms(use_true_random=False),
    isn=st.integers(0, 0xFFFFFFFF),
    dups=st.integers(0, 5),
)
def test_any_segmentation_and_order_gives_the_stream(
    cuts: list[int], rng: random.Random, isn: int, dups: int
) -> None:
    """Segmentation invariance: whatever the segments and their order, the bytes come out."""
    bounds = [0, *sorted(cuts), len(DATA)]
    segs = [(bounds[i], DATA[bounds[i] : bounds[i + 1]]) for i in range(len(bounds) - 1)]
    segs += [rng.choice(segs) for _ in range(dups)]
    rng.shuffle(segs)
    r = TcpReassembler()
    _syn(r, isn)
    events = []
    for n, (off, data) in enumerate(segs):
        events += r.feed((isn + 1 + off) & 0xFFFFFFFF, PA, data, n + 2, 0)
    events += r.flush()
    assert _stream(events) == DATA
    assert r.gaps == 0 and r.delivered_bytes == len(DATA)


def test_peer_ack_declares_capture_loss_at_once() -> None:
    """A hole the receiver has acknowledged will never be seen: gap now, not at flush."""
    from otconduit.capture.tcp import StreamData, StreamGap, TcpReassembler

    r = TcpReassembler()
    assert r.feed(1000, 0, b"aaaa", 1, 10) == [StreamData(b"aaaa", 1, 10)]
    assert r.feed(1008, 0, b"cccc", 3, 30) == []  # bytes 1004..1007 missing
    assert r.peer_ack(1006, 4, 40) == [StreamGap(2, 4, 40)]  # only what was acked
    events = r.peer_ack(1012, 5, 50)
    assert events == [StreamGap(2, 5, 50), StreamData(b"cccc", 3, 30)]
    assert r.clean and r.gaps == 2 and r.gap_bytes == 4


def test_peer_ack_ignores_old_and_wild_acks() -> None:
    from otconduit.capture.tcp import TcpReassembler

    r = TcpReassembler()
    r.feed(1000, 0, b"aaaa", 1, 10)
    r.feed(1008, 0, b"cccc", 3, 30)
    assert r.peer_ack(1000, 4, 40) == []  # behind us
    assert r.peer_ack(1004 + (1 << 30), 4, 40) == []  # far beyond any window
    assert not r.clean
