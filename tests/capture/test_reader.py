"""The capture reader: formats, block boundaries, damage and errors."""

from __future__ import annotations

import gzip
import random
import struct
from pathlib import Path

import pytest

from otconduit.capture import pcapwriter as pw
from otconduit.capture.packet import LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_RAW
from otconduit.capture.reader import CaptureError, open_capture

from .conftest import T0, nrb_block, raw_ipv4_udp, read_all, sample_frames, tcp_frame

STEP = 1_234_567  # ns between packets, so microsecond files must round down


def _packets() -> list[tuple[int, bytes]]:
    return [(T0 + i * STEP, f) for i, f in enumerate(sample_frames() * 3)]


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
@pytest.mark.parametrize("nanosecond", [False, True], ids=["usec", "nsec"])
def test_pcap_round_trip(tmp_path: Path, big_endian: bool, nanosecond: bool) -> None:
    packets = _packets()
    path = tmp_path / "x.pcap"
    pw.write_pcap(path, packets, nanosecond=nanosecond, big_endian=big_endian)
    recs, report = read_all(path)
    assert [r.frame for r in recs] == list(range(1, len(packets) + 1))
    assert [r.data for r in recs] == [f for _, f in packets]
    unit = 1 if nanosecond else 1000
    assert [r.ts_ns for r in recs] == [ts // unit * unit for ts, _ in packets]
    assert all(r.linktype == LINKTYPE_ETHERNET for r in recs)
    assert all(r.caplen == r.wirelen == len(r.data) for r in recs)
    assert report.format == "pcap" and not report.compressed and report.error is None
    assert report.packets == len(packets)
    assert report.bytes_read == report.file_size == report.progress == path.stat().st_size
    assert report.linktypes == {LINKTYPE_ETHERNET}


def test_pcap_snaplen_keeps_original_length(tmp_path: Path) -> None:
    frame = tcp_frame(0, payload=b"p" * 500)
    path = tmp_path / "snap.pcap"
    pw.write_pcap(path, [(T0, frame)], snaplen=96)
    (rec,), _ = read_all(path)
    assert (rec.caplen, rec.wirelen, rec.data) == (96, len(frame), frame[:96])


def test_pcap_linktype_ignores_fcs_bits(tmp_path: Path) -> None:
    """The upper bits of the LinkType field carry FCS information (pcap §4)."""
    path = tmp_path / "fcs.pcap"
    pw.write_pcap(path, [(T0, raw_ipv4_udp())], linktype=LINKTYPE_RAW)
    data = bytearray(path.read_bytes())
    data[20:24] = struct.pack("<I", LINKTYPE_RAW | 0x14000000)
    path.write_bytes(bytes(data))
    (rec,), _ = read_all(path)
    assert rec.linktype == LINKTYPE_RAW


def test_pcapng_two_interfaces(tmp_path: Path) -> None:
    """Ethernet in microseconds and raw IPv4 in nanoseconds, interleaved."""
    ifaces = [pw.Interface(LINKTYPE_ETHERNET, 6), pw.Interface(LINKTYPE_IPV4, 9)]
    packets = [
        (T0 + i * STEP, tcp_frame(i) if i % 2 == 0 else raw_ipv4_udp(i), i % 2) for i in range(20)
    ]
    path = tmp_path / "two.pcapng"
    pw.write_pcapng(path, packets, ifaces)
    recs, report = read_all(path)
    assert [r.data for r in recs] == [p[1] for p in packets]
    assert [r.linktype for r in recs] == [LINKTYPE_ETHERNET, LINKTYPE_IPV4] * 10
    expected = [ts if i == 1 else ts // 1000 * 1000 for ts, _, i in packets]
    assert [r.ts_ns for r in recs] == expected
    assert report.format == "pcapng" and report.error is None and report.packets == 20
    assert report.linktypes == {LINKTYPE_ETHERNET, LINKTYPE_IPV4}


def test_pcapng_binary_resolution_and_offset(tmp_path: Path) -> None:
    """if_tsresol with the high bit is a power of two; if_tsoffset adds seconds."""
    iface = pw.Interface(LINKTYPE_ETHERNET, tsresol=0x80 | 20, tsoffset=1_600_000_000)
    units = (100_000_000 << 20) + (1 << 19)  # 1e8 s and half a second past the offset
    path = tmp_path / "bin.pcapng"
    path.write_bytes(pw.pcapng_shb() + pw.pcapng_idb(iface) + pw.pcapng_epb(0, units, b"x" * 14))
    (rec,), _ = read_all(path)
    assert rec.ts_ns == (1_600_000_000 + 100_000_000) * 10**9 + 500_000_000


@pytest.mark.parametrize("block_size", [64, 8 << 20])
def test_pcapng_interleaved_interfaces_of_every_kind(tmp_path: Path, block_size: int) -> None:
    """Decimal, binary and offset resolutions interleaved, with a skipped block among them:
    packets come out in file order whichever indexing loop took them.
    """
    ifaces = [
        pw.Interface(LINKTYPE_ETHERNET, 6),
        pw.Interface(LINKTYPE_RAW, 0x80 | 30),  # 2**-30 s units
        pw.Interface(LINKTYPE_IPV4, 9, tsoffset=-1_000_000),
        pw.Interface(LINKTYPE_ETHERNET, 0),  # whole seconds
    ]
    rng = random.Random(11)
    which = [rng.randrange(4) for _ in range(300)]
    body = b""
    expected = []
    for i, k in enumerate(which):
        ts = T0 + i * 7_777_777
        data = raw_ipv4_udp(i % 5) if ifaces[k].linktype != LINKTYPE_ETHERNET else tcp_frame(i)
        units = ifaces[k].units(ts)
        body += pw.pcapng_epb(k, units, data)
        if i % 50 == 0:
            body += nrb_block()
        if k == 1:
            ts = units * 10**9 >> 30
        else:
            resol = ifaces[k].tsresol
            ts = units * 10 ** (9 - resol) + ifaces[k].tsoffset * 10**9
        expected.append((i + 1, ts, ifaces[k].linktype, data))
    path = tmp_path / "kinds.pcapng"
    path.write_bytes(pw.pcapng_shb() + b"".join(pw.pcapng_idb(i) for i in ifaces) + body)
    recs, report = read_all(path, block_size)
    assert [(r.frame, r.ts_ns, r.linktype, r.data) for r in recs] == expected
    assert report.skipped_blocks == 6 and report.error is None


def test_pcapng_spb_opb_skipped_blocks_and_sections(tmp_path: Path) -> None:
    frames = [tcp_frame(i) for i in range(4)]
    first = (
        pw.pcapng_shb()
        + pw.pcapng_idb(pw.Interface(LINKTYPE_ETHERNET, snaplen=64))
        + nrb_block()
        + pw.pcapng_spb(frames[0])  # cut to the interface snaplen
        + pw.pcapng_opb(0, 5_000_000, frames[1])
        + pw.pcapng_block(0x40000BAD, b"custom data")
    )
    # A second section in the other byte order, with its own interface list.
    second = (
        pw.pcapng_shb(big_endian=True)
        + pw.pcapng_idb(pw.Interface(LINKTYPE_RAW, 9), big_endian=True)
        + pw.pcapng_epb(0, T0, raw_ipv4_udp(7), big_endian=True)
        + pw.pcapng_block(5, bytes(12), big_endian=True)  # interface statistics
    )
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(first + second)
    recs, report = read_all(path)
    assert [(r.frame, r.linktype, r.caplen, r.wirelen) for r in recs] == [
        (1, LINKTYPE_ETHERNET, 64, len(frames[0])),
        (2, LINKTYPE_ETHERNET, len(frames[1]), len(frames[1])),
        (3, LINKTYPE_RAW, len(raw_ipv4_udp(7)), len(raw_ipv4_udp(7))),
    ]
    assert recs[0].data == frames[0][:64] and recs[0].ts_ns == 0
    assert recs[1].ts_ns == 5_000_000_000
    assert recs[2].ts_ns == T0 and recs[2].data == raw_ipv4_udp(7)
    # The statistics block is read (it has no counters), not skipped.
    assert report.skipped_blocks == 2 and report.error is None
    assert report.interface_stats == {}


@pytest.mark.parametrize("big_endian", [False, True])
def test_pcapng_interface_statistics_counters(tmp_path: Path, big_endian: bool) -> None:
    """pcapng §4.6: isb_ifrecv (4), isb_ifdrop (5), isb_osdrop (7) are u64 options; the
    newest block per interface is what the capture engine says it lost."""
    e = ">" if big_endian else "<"

    def isb(recv: int, ifdrop: int, osdrop: int) -> bytes:
        opts = b"".join(struct.pack(e + "HHQ", code, 8, v) for code, v in
                        ((4, recv), (5, ifdrop), (7, osdrop)))  # fmt: skip
        opts += struct.pack(e + "HH", 2, 8) + bytes(8)  # isb_starttime: not a counter
        return pw.pcapng_block(5, struct.pack(e + "III", 0, 0, 0) + opts + bytes(4),
                               big_endian=big_endian)  # fmt: skip

    path = tmp_path / "isb.pcapng"
    path.write_bytes(
        pw.pcapng_shb(big_endian=big_endian)
        + pw.pcapng_idb(pw.Interface(LINKTYPE_ETHERNET), big_endian=big_endian)
        + pw.pcapng_epb(0, T0, tcp_frame(1), big_endian=big_endian)
        + isb(10, 1, 2)
        + pw.pcapng_epb(0, T0, tcp_frame(2), big_endian=big_endian)
        + isb(20, 3, 4)
    )
    recs, report = read_all(path)
    assert len(recs) == 2 and report.error is None
    assert report.interface_stats == {0: {"received": 20, "dropped_interface": 3, "dropped_os": 4}}


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_gzip_matches_plain(tmp_path: Path, kind: str) -> None:
    plain = tmp_path / f"x.{kind}"
    packets = _packets()
    if kind == "pcap":
        pw.write_pcap(plain, packets, nanosecond=True)
    else:
        pw.write_pcapng(plain, packets, [pw.Interface(tsresol=9)])
    packed = tmp_path / f"x.{kind}.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    expected, _ = read_all(plain)
    for block_size in (64, 8 << 20):
        recs, report = read_all(packed, block_size)
        assert recs == expected
        assert report.compressed and report.format == kind and report.error is None
        assert report.progress == report.file_size == packed.stat().st_size
        assert report.bytes_read == plain.stat().st_size


@pytest.mark.parametrize("kind", ["pcap", "pcapng", "pcap.gz"])
@pytest.mark.parametrize("block_size", [64, 97, 1000, 8 << 20])
def test_block_size_does_not_change_results(tmp_path: Path, kind: str, block_size: int) -> None:
    path = tmp_path / "x"
    packets = _packets()
    if kind == "pcapng":
        pw.write_pcapng(path, packets)
    else:
        pw.write_pcap(path, packets)
    if kind.endswith(".gz"):
        path.write_bytes(gzip.compress(path.read_bytes()))
    recs, report = read_all(path, block_size)
    reference, _ = read_all(path)
    assert recs == reference and len(recs) == len(packets)
    assert report.error is None
    blocks = list(open_capture(path, block_size))
    starts = [b.first_frame for b in blocks]
    assert starts[0] == 1
    assert all(s + len(b) == nxt for s, b, nxt in zip(starts, blocks, starts[1:], strict=False))
    if block_size == 64:
        assert len(blocks) > 10


@pytest.mark.parametrize("cut", [1, 9, 20])  # into the record header, or 4 bytes into the data
def test_truncated_pcap_keeps_what_came_before(tmp_path: Path, cut: int) -> None:
    packets = _packets()[:5]
    path = tmp_path / "t.pcap"
    pw.write_pcap(path, packets)
    full = path.read_bytes()
    last_start = len(full) - (16 + len(packets[-1][1]))
    path.write_bytes(full[: last_start + cut])
    for block_size in (64, 8 << 20):
        recs, report = read_all(path, block_size)
        assert [r.data for r in recs] == [f for _, f in packets[:4]]
        assert report.error == f"truncated packet record at byte {last_start}"
        assert report.packets == 4


def test_truncated_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "t.pcapng"
    pw.write_pcapng(path, _packets()[:3])
    path.write_bytes(path.read_bytes()[:-10])
    recs, report = read_all(path, 64)
    assert len(recs) == 2
    assert report.error is not None and report.error.startswith("truncated block at byte ")


def test_truncated_gzip(tmp_path: Path) -> None:
    rng = random.Random(7)
    frames = [tcp_frame(i, payload=rng.randbytes(1000)) for i in range(200)]  # incompressible
    raw = tmp_path / "t.pcap"
    pw.write_pcap(raw, [(T0 + i, f) for i, f in enumerate(frames)])
    path = tmp_path / "t.pcap.gz"
    path.write_bytes(gzip.compress(raw.read_bytes())[:-4000])
    recs, report = read_all(path)
    # Everything decompressed before the cut comes out: only the last 4000-odd bytes are lost.
    assert 190 < len(recs) < 200
    assert [r.data for r in recs] == frames[: len(recs)]
    assert report.error is not None and report.error.startswith("compressed stream unreadable")


def test_corrupt_caplen_stops_with_error(tmp_path: Path) -> None:
    packets = _packets()[:4]
    path = tmp_path / "c.pcap"
    pw.write_pcap(path, packets)
    data = bytearray(path.read_bytes())
    third = 24 + sum(16 + len(f) for _, f in packets[:2])
    data[third + 8 : third + 12] = struct.pack("<I", 10_000_000)
    path.write_bytes(bytes(data))
    recs, report = read_all(path, 64)
    assert len(recs) == 2
    assert report.error == f"corrupt packet record at byte {third} (captured length 10000000)"


@pytest.mark.parametrize("damage", ["length", "trailer", "interface"])
def test_corrupt_pcapng_block(tmp_path: Path, damage: str) -> None:
    good = [pw.pcapng_epb(0, i, tcp_frame(i)) for i in range(3)]
    bad = bytearray(pw.pcapng_epb(0, 3, tcp_frame(3)))
    if damage == "length":
        bad[4:8] = struct.pack("<I", 13)
    elif damage == "trailer":
        bad[-4:] = struct.pack("<I", 4)
    else:
        bad[8:12] = struct.pack("<I", 5)  # no such interface
    head = pw.pcapng_shb() + pw.pcapng_idb(pw.Interface())
    path = tmp_path / "c.pcapng"
    path.write_bytes(head + b"".join(good) + bytes(bad) + good[0])
    recs, report = read_all(path)
    assert len(recs) == 3
    assert report.error is not None and report.error.endswith(f"at byte {len(head) + 3 * len(bad)}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"GARBAGE!" * 10, "not a pcap or pcapng capture: {p} (starts with 4 bytes 0x47415242)"),
        (b"", "not a pcap or pcapng capture: {p} (0 bytes long)"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header: {p}"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x01\x02\x03\x04", "not a pcapng capture: {p}"),
        (gzip.compress(b"hello world"), "not a pcap or pcapng capture: {p} (gzip-compressed, "),
        (b"\x1f\x8b\x08\x00garbage", "cannot read capture: {p}"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as info:
        open_capture(path)
    assert str(info.value).startswith(message.format(p=path))
    assert info.value.path == str(path)


def test_missing_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"cannot open capture: .*nope\.pcap"):
        open_capture(tmp_path / "nope.pcap")
    with pytest.raises(CaptureError, match="cannot open capture"):
        open_capture(tmp_path)


def test_context_manager_closes(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    pw.write_pcap(path, _packets())
    with open_capture(path) as reader:
        next(iter(reader))
    assert reader._src.raw.closed


def test_block_data_is_the_packet(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    packets = _packets()
    pw.write_pcap(path, packets)
    (block,) = list(open_capture(path))
    assert block.first_frame == 1 and len(block) == len(packets)
    for i, (_, frame) in enumerate(packets):
        start = int(block.offsets[i])
        assert block.buf[start : start + int(block.caplens[i])].tobytes() == frame
