"""IP fragment reassembly."""

from __future__ import annotations

import random
import struct

from otconduit.capture import pcapwriter as pw
from otconduit.capture.decode import decode_frame
from otconduit.capture.ipfrag import FRAG_TIMEOUT_NS, MAX_FRAGMENTS, Defragmenter
from otconduit.capture.packet import IPPROTO_UDP, LINKTYPE_ETHERNET, LINKTYPE_RAW, Packet

from .conftest import MAC_A, MAC_B, T0

SRC, DST = "10.10.0.1", "10.10.0.2"
PAYLOAD = random.Random(3).randbytes(3000)
UDP = pw.udp_datagram(SRC, DST, 47808, 47809, PAYLOAD)


def _fragments(
    udp: bytes = UDP, size: int = 1480, ip_id: int = 99, ts: int = T0, first_frame: int = 1
) -> list[Packet]:
    """Decoded Ethernet/IPv4 fragments of ``udp``, in order."""
    out = []
    for n, off in enumerate(range(0, len(udp), size)):
        piece = udp[off : off + size]
        more = 0x2000 if off + size < len(udp) else 0
        packet = pw.ipv4(SRC, DST, IPPROTO_UDP, piece, ip_id=ip_id, frag=more | off // 8)
        frame = pw.ethernet(MAC_A, MAC_B, 0x0800, packet, vlans=(7,))
        pkt = decode_frame(frame, LINKTYPE_ETHERNET, first_frame + n, ts + n, len(frame))
        assert isinstance(pkt, Packet)
        out.append(pkt)
    return out


def _feed_all(defrag: Defragmenter, pkts: list[Packet]) -> list[Packet]:
    return [out for pkt in pkts if (out := defrag.feed(pkt)) is not None]


def _check(whole: Packet, last: Packet, frames: tuple[int, ...]) -> None:
    assert (whole.sport, whole.dport, whole.payload) == (47808, 47809, PAYLOAD)
    assert (whole.frame, whole.ts_ns, whole.frames) == (last.frame, last.ts_ns, frames)
    assert (whole.ip_proto, whole.ip_len, whole.ip_id) == (IPPROTO_UDP, 20 + len(UDP), 99)
    assert not whole.more_fragments and whole.frag_offset == 0 and whole.problem is None
    assert (whole.src_mac, whole.vlans, whole.src_ip) == (MAC_A, (7,), SRC)


def test_not_a_fragment_passes_through() -> None:
    pkt = _fragments(UDP[:100])[0]
    defrag = Defragmenter()
    assert defrag.feed(pkt) is pkt and defrag.in_flight == 0


def test_in_order() -> None:
    frags = _fragments()
    defrag = Defragmenter()
    assert [defrag.feed(p) for p in frags[:-1]] == [None, None]
    whole = defrag.feed(frags[-1])
    assert whole is not None
    _check(whole, frags[-1], (1, 2, 3))
    assert (defrag.reassembled, defrag.overlaps, defrag.in_flight) == (1, 0, 0)


def test_reversed_and_shuffled() -> None:
    frags = _fragments(size=240)
    for order in (frags[::-1], random.Random(5).sample(frags, len(frags))):
        defrag = Defragmenter()
        (whole,) = _feed_all(defrag, order)
        _check(whole, order[-1], tuple(range(1, len(frags) + 1)))


def test_duplicates_are_counted() -> None:
    frags = _fragments()
    defrag = Defragmenter()
    (whole,) = _feed_all(defrag, [frags[0], frags[1], frags[0], frags[1], frags[2]])
    _check(whole, frags[2], (1, 2, 3))
    assert defrag.overlaps == 2


def test_overlap_first_data_wins() -> None:
    frags = _fragments()
    # Other bytes over the first fragment's tail and the second's head (UDP bytes 1000-1800).
    evil = pw.ipv4(SRC, DST, IPPROTO_UDP, b"X" * 800, ip_id=99, frag=0x2000 | 1000 // 8)
    bad = decode_frame(evil, LINKTYPE_RAW, 9, T0, len(evil))
    assert isinstance(bad, Packet)
    defrag = Defragmenter()
    (whole,) = _feed_all(defrag, [frags[0], frags[1], bad, frags[2]])
    assert whole.payload == PAYLOAD and defrag.overlaps == 1
    assert whole.frames == (1, 2, 3, 9)
    # Arriving before the second fragment, its bytes past the first fragment win.
    defrag = Defragmenter()
    (whole,) = _feed_all(defrag, [frags[0], bad, frags[1], frags[2]])
    assert whole.payload == PAYLOAD[:1472] + b"X" * 320 + PAYLOAD[1792:]
    assert defrag.overlaps == 2


def test_timeout_by_capture_time() -> None:
    frags = _fragments()
    late = _fragments(ts=T0 + FRAG_TIMEOUT_NS + 1)
    defrag = Defragmenter()
    assert defrag.feed(frags[0]) is None
    assert _feed_all(defrag, late[1:]) == []  # the first fragment was dropped by then
    assert (defrag.timed_out, defrag.in_flight, defrag.reassembled) == (1, 1, 0)


def test_bounded_datagrams_in_flight() -> None:
    defrag = Defragmenter(max_datagrams=4)
    for ip_id in range(10):
        assert defrag.feed(_fragments(ip_id=ip_id)[0]) is None
    assert (defrag.in_flight, defrag.timed_out) == (4, 6)
    last_ones = _fragments(ip_id=9)[1:]
    assert len(_feed_all(defrag, last_ones)) == 1


def test_interleaved_datagrams_and_truncated_fragment() -> None:
    a, b = _fragments(ip_id=1), _fragments(ip_id=2, first_frame=10)
    defrag = Defragmenter()
    got = _feed_all(defrag, [a[0], b[0], b[1], a[1], b[2], a[2]])
    assert [p.frames for p in got] == [(10, 11, 12), (1, 2, 3)]
    truncated = _fragments(ip_id=3)[0]
    truncated.l4_truncated = True
    assert defrag.feed(truncated) is None and defrag.dropped == 1 and defrag.in_flight == 0


def test_too_many_fragments_drop_the_datagram() -> None:
    tiny = _fragments(size=8)  # 376 fragments of 8 bytes
    defrag = Defragmenter()
    assert _feed_all(defrag, tiny) == []
    assert defrag.dropped == MAX_FRAGMENTS + 1 and defrag.reassembled == 0
    assert defrag.in_flight == 1  # the later fragments, headless, wait for their timeout


def test_ipv6_fragments_with_destination_options() -> None:
    src, dst = "2001:db8::1", "2001:db8::2"
    udp = pw.udp_datagram(src, dst, 4840, 50001, PAYLOAD)
    fragmentable = bytes([IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0]) + udp  # destination options first
    pkts = []
    for n, off in enumerate(range(0, len(fragmentable), 1232)):
        more = 1 if off + 1232 < len(fragmentable) else 0
        head = struct.pack("!BBHI", 60, 0, off | more, 0x1234)
        packet = pw.ipv6(src, dst, 44, head + fragmentable[off : off + 1232])
        pkt = decode_frame(packet, LINKTYPE_RAW, n + 1, T0 + n, len(packet))
        assert isinstance(pkt, Packet) and pkt.ip_id == 0x1234
        pkts.append(pkt)
    (whole,) = _feed_all(Defragmenter(), pkts[::-1])
    assert (whole.ip_proto, whole.sport, whole.dport, whole.payload) == (17, 4840, 50001, PAYLOAD)
    assert whole.ip_len == 40 + 8 + len(fragmentable) and whole.frames == (1, 2, 3)
