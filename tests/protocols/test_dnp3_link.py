"""DNP3 link layer: CRC vectors, framing across data blocks, CRC failures, resync."""

from __future__ import annotations

import pytest

from otconduit.protocols.dnp3.link import (
    MAX_FRAME,
    LinkFrame,
    LinkFramer,
    crc16,
    frame_octets,
    frame_size,
    header_problem,
)
from otconduit.protocols.events import Malformed
from tests.protocols.dnp3_helpers import link_frame


def collect(framer: LinkFramer) -> list[LinkFrame | Malformed]:
    return list(framer.events())


class TestCrc:
    def test_catalogue_check_value(self) -> None:
        # CRC-16/DNP check value for "123456789": poly 0x3D65 reflected, xorout 0xFFFF.
        assert crc16(b"123456789") == 0xEA82

    def test_reset_link_header(self) -> None:
        # The well-known "reset link states" frame, master 1 to outstation 0.
        assert crc16(bytes.fromhex("056405c001000004")).to_bytes(2, "little") == b"\xe9\x21"

    def test_header_from_capture(self) -> None:
        # dnp3_example.pcap frame 310: 05 64 18 c4 05 00 64 00 | fe dd
        assert crc16(bytes.fromhex("056418c405006400")).to_bytes(2, "little") == b"\xfe\xdd"

    def test_empty_and_one_octet(self) -> None:
        assert crc16(b"") == 0xFFFF  # nothing in, complement of the zero register
        assert crc16(b"\x00") != crc16(b"\x01")


class TestFraming:
    def test_frame_size(self) -> None:
        assert frame_size(5) == 10
        assert frame_size(6) == 13  # one octet of user data in one block
        assert frame_size(21) == 28  # 16 octets: exactly one block
        assert frame_size(22) == 31  # 17 octets: two blocks
        assert frame_size(255) == MAX_FRAME == 292

    @pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 32, 33, 100, 250])
    def test_user_data_across_blocks(self, size: int) -> None:
        data = bytes(range(256))[:size]
        framer = LinkFramer()
        framer.feed(link_frame(data, dst=0x1234, src=0xABCD, control=0xC4), 7, 70)
        (frame,) = collect(framer)
        assert isinstance(frame, LinkFrame)
        assert frame.data == data and frame.crc_ok
        assert (frame.dst, frame.src) == (0x1234, 0xABCD)
        assert frame.dir and frame.prm and frame.function == 4
        assert (frame.frame, frame.ts_ns, frame.offset) == (7, 70, 0)
        assert framer.buffered == 0

    @pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 250])
    def test_a_frame_is_given_back_as_it_came(self, size: int) -> None:
        """What a fast path is handed when it takes a connection over (a response
        awaiting its confirm): the frame's octets exactly as on the wire."""
        wire = link_frame(
            bytes((7 + i) % 256 for i in range(size)), dst=3, src=0x0405, control=0x44
        )
        framer = LinkFramer()
        framer.feed(wire, 1, 1)
        (frame,) = collect(framer)
        assert isinstance(frame, LinkFrame)
        assert frame_octets(frame) == wire

    def test_secondary_frame_bits(self) -> None:
        framer = LinkFramer()
        framer.feed(link_frame(b"", control=0x0B), 1, 1)  # LINK_STATUS from an outstation
        (frame,) = collect(framer)
        assert isinstance(frame, LinkFrame)
        assert not frame.dir and not frame.prm and frame.function == 11 and frame.data == b""

    def test_several_frames_in_one_chunk(self) -> None:
        framer = LinkFramer()
        frames = [link_frame(bytes([i]) * (i * 7)) for i in range(6)]
        framer.feed(b"".join(frames), 1, 1)
        out = collect(framer)
        assert [f.data for f in out if isinstance(f, LinkFrame)] == [
            bytes([i]) * (i * 7) for i in range(6)
        ]
        offsets = [f.offset for f in out if isinstance(f, LinkFrame)]
        assert offsets == [sum(len(f) for f in frames[:i]) for i in range(6)]

    def test_needs_more_data(self) -> None:
        raw = link_frame(b"x" * 40)
        framer = LinkFramer()
        for i, byte in enumerate(raw[:-1]):
            framer.feed(bytes([byte]), i, i)
            assert collect(framer) == []
        framer.feed(raw[-1:], 99, 990)
        (frame,) = collect(framer)
        assert isinstance(frame, LinkFrame) and frame.frame == 99 and frame.ts_ns == 990


class TestCrcFailures:
    def test_bad_data_crc_is_reported_and_passed_up(self) -> None:
        data = bytes(range(40))  # three blocks
        framer = LinkFramer()
        framer.feed(link_frame(data, corrupt=1) + link_frame(b"ok"), 3, 30)
        out = collect(framer)
        assert isinstance(out[0], Malformed)
        assert out[0].reason.startswith("bad CRC in data block 1")
        assert isinstance(out[1], LinkFrame) and out[1].bad_blocks == (1,)
        assert out[1].data == data and not out[1].crc_ok
        assert isinstance(out[2], LinkFrame) and out[2].data == b"ok" and out[2].crc_ok
        assert framer.bad_crc_frames == 1 and framer.frames == 2

    def test_bad_header_crc_skips_to_next_frame(self) -> None:
        bad = link_frame(b"payload-one", corrupt=-2)
        good = link_frame(b"payload-two")
        framer = LinkFramer()
        framer.feed(bad + good, 5, 50)
        out = collect(framer)
        assert len(out) == 2
        assert isinstance(out[0], Malformed)
        assert out[0].reason.startswith("bad CRC in link header")
        assert out[0].data == bad and out[0].offset == 0
        assert isinstance(out[1], LinkFrame) and out[1].data == b"payload-two"
        assert framer.bad_crc_frames == 1 and framer.frames == 1

    def test_bad_length_with_good_crc(self) -> None:
        head = b"\x05\x64\x04\xc4\x01\x00\x02\x00"
        raw = head + crc16(head).to_bytes(2, "little")
        assert header_problem(raw) is not None
        framer = LinkFramer()
        framer.feed(raw + link_frame(b"z"), 1, 1)
        out = collect(framer)
        assert isinstance(out[0], Malformed) and out[0].reason.startswith("bad length 4")
        assert isinstance(out[1], LinkFrame) and out[1].data == b"z"


class TestResync:
    def test_garbage_before_frame(self) -> None:
        framer = LinkFramer()
        framer.feed(b"GET / HTTP/1.0\r\n" + link_frame(b"a"), 1, 1)
        out = collect(framer)
        assert isinstance(out[0], Malformed) and out[0].reason.startswith("no link header")
        assert out[0].data == b"GET / HTTP/1.0\r\n"
        assert isinstance(out[1], LinkFrame) and out[1].offset == 16

    def test_trailing_05_is_kept(self) -> None:
        framer = LinkFramer()
        raw = link_frame(b"b")
        framer.feed(b"zz" + raw[:1], 1, 1)
        assert collect(framer) == []  # garbage waits until we know what the 05 starts
        framer.feed(raw[1:], 2, 2)
        out = collect(framer)
        assert [type(e) for e in out] == [Malformed, LinkFrame]
        assert out[0].data == b"zz"

    def test_skipped_run_is_bounded(self) -> None:
        framer = LinkFramer(max_skip=100)
        framer.feed(b"\xff" * 1000, 1, 1)
        out = collect(framer)
        assert all(isinstance(e, Malformed) for e in out)
        assert sum(len(e.data) for e in out if isinstance(e, Malformed)) == 1000
        assert max(len(e.data) for e in out if isinstance(e, Malformed)) == 100
        assert framer.buffered == 0

    def test_gap_reports_partial_frame(self) -> None:
        raw = link_frame(b"c" * 30)
        framer = LinkFramer()
        framer.feed(raw[:20], 1, 1)
        framer.gap(7, 2, 2)
        framer.feed(link_frame(b"d"), 3, 3)
        out = collect(framer)
        assert isinstance(out[0], Malformed) and "before a gap" in out[0].reason
        assert out[0].data == raw[:20]
        assert isinstance(out[1], LinkFrame) and out[1].offset == 27

    def test_end_reports_truncated_frame(self) -> None:
        framer = LinkFramer()
        framer.feed(link_frame(b"e" * 30)[:-3], 4, 4)
        assert collect(framer) == []
        framer.end()
        (event,) = collect(framer)
        assert isinstance(event, Malformed) and "end of stream" in event.reason
        assert event.frame == 4 and framer.buffered == 0
