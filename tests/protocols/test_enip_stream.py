"""TCP framing of encapsulation messages: segmentation, resync, gaps, bounds."""

from __future__ import annotations

import random

from otconduit.protocols.enip import EncapMessage, EncapStream
from otconduit.protocols.enip.stream import MAX_MESSAGE
from otconduit.protocols.events import NEED_DATA, Malformed

from .enip_helpers import encap, path, request, rr

MESSAGES = [
    encap(0x65, b"\x01\x00\x00\x00", session=0),
    rr(request(0x0E, path(0x01, 1, 7))),
    rr(request(0x01, path(0x01, 1)) + b"x" * 300),
    encap(0x00, b"keepalive"),
    encap(0x66),
]
STREAM = b"".join(MESSAGES)


def frame_all(pieces: list[bytes]) -> list[EncapMessage | Malformed]:
    s = EncapStream()
    out: list[EncapMessage | Malformed] = []
    for piece in pieces:
        s.feed(piece, 1, 1000)
        out += list(s.events())
        assert s.next_event() is NEED_DATA
    s.end()
    return out + list(s.events())


def summary(events: list[EncapMessage | Malformed]) -> list[tuple[str, int, int, bytes]]:
    out = []
    for e in events:
        if isinstance(e, EncapMessage):
            out.append(("msg", e.offset, e.header.command, e.body))
        else:
            out.append(("bad", e.offset, len(e.data), e.data))
    return out


def test_messages_framed_by_length() -> None:
    events = frame_all([STREAM])
    assert [e.header.command for e in events if isinstance(e, EncapMessage)] == [
        0x65,
        0x6F,
        0x6F,
        0x00,
        0x66,
    ]
    assert not [e for e in events if isinstance(e, Malformed)]
    assert events[1].offset == len(MESSAGES[0])


def test_segmentation_invariance() -> None:
    whole = summary(frame_all([STREAM]))
    bytewise = summary(frame_all([STREAM[i : i + 1] for i in range(len(STREAM))]))
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(STREAM)), 25))
    chunks = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
    assert whole == bytewise == summary(frame_all(chunks))


def test_resync_after_garbage_reports_skipped_bytes() -> None:
    junk = b"GET / HTTP/1.1\r\n\r\n" + bytes(range(40))
    events = frame_all([MESSAGES[0] + junk + MESSAGES[1]])
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["EncapMessage", "Malformed", "EncapMessage"]
    bad = events[1]
    assert isinstance(bad, Malformed) and bad.data == junk and "invalid" in bad.reason
    assert bad.offset == len(MESSAGES[0])


def test_zero_runs_are_not_resync_points() -> None:
    # 24 zero bytes parse as a NOP; after garbage they must not pass for a message.
    events = frame_all([b"\xff" * 5 + bytes(60) + MESSAGES[1]])
    msgs = [e for e in events if isinstance(e, EncapMessage)]
    assert [m.header.command for m in msgs] == [0x6F]
    assert sum(len(e.data) for e in events if isinstance(e, Malformed)) == 65


def test_unknown_command_framed_by_length() -> None:
    odd = encap(0x0042, b"vendor data")
    events = frame_all([odd + MESSAGES[1]])
    assert isinstance(events[0], Malformed) and "unknown command 0x0042" in events[0].reason
    assert events[0].data == odd
    assert isinstance(events[1], EncapMessage) and events[1].offset == len(odd)


def test_gap_reports_partial_message_and_resyncs() -> None:
    s = EncapStream()
    s.feed(MESSAGES[1] + MESSAGES[2][:30], 1, 10)
    s.gap(100, 2, 20)
    s.feed(b"tail-of-lost-message" + MESSAGES[1], 3, 30)
    events = list(s.events())
    assert isinstance(events[0], EncapMessage)
    assert isinstance(events[1], Malformed) and "before a gap" in events[1].reason
    assert events[1].frame == 2
    assert isinstance(events[2], Malformed) and events[2].data == b"tail-of-lost-message"
    last = events[3]
    assert isinstance(last, EncapMessage)
    assert last.offset == len(MESSAGES[1]) + 30 + 100 + len(b"tail-of-lost-message")


def test_truncated_at_end() -> None:
    s = EncapStream()
    s.feed(MESSAGES[2][:50], 4, 40)
    assert s.next_event() is NEED_DATA
    s.end()
    (event,) = list(s.events())
    assert isinstance(event, Malformed) and "50 of" in event.reason and event.frame == 4


def test_frame_is_the_one_completing_the_message() -> None:
    s = EncapStream()
    msg = MESSAGES[2]
    s.feed(msg[:10], 1, 100)
    s.feed(msg[10:], 2, 200)
    (event,) = list(s.events())
    assert isinstance(event, EncapMessage) and (event.frame, event.ts_ns) == (2, 200)


def test_garbage_buffer_stays_bounded() -> None:
    s = EncapStream(max_skip=256)
    reported = 0
    rng = random.Random(3)
    for _ in range(200):
        s.feed(bytes(rng.randrange(1, 256) for _ in range(97)), 1, 1)
        for e in s.events():
            assert isinstance(e, Malformed) and len(e.data) <= 256
            reported += len(e.data)
        assert s.buffered < 256 + 24
    assert reported > 0
    assert s.buffered <= MAX_MESSAGE
