"""Cross-checks against tshark, the peer whose reading of a capture we must match.

Frame numbers, timestamps, lengths, MACs, VLAN ids, addresses and ports, frame by frame, on
captures written here and on the real captures in ../shared/corpus.
"""

from __future__ import annotations

import gzip
import os
import struct
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from otconduit.capture import pcapwriter as pw
from otconduit.capture.decode import decode_block
from otconduit.capture.packet import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Packet,
)
from otconduit.capture.reader import open_capture

from .conftest import CORPUS, T0, needs_tshark, raw_ipv4_udp, sample_frames, tshark_fields

pytestmark = [needs_tshark, pytest.mark.tshark]

FIELDS = [
    "frame.number",
    "frame.time_epoch",
    "frame.len",
    "frame.cap_len",
    "eth.src",
    "ieee8021ad.id",  # 802.1ad service tags: the outer tags of QinQ
    "vlan.id",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.flags.mf",
    "ip.frag_offset",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
]
CORPUS_FILES = sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng"))


def _first(value: str) -> str:
    return value.split(",")[0]


def _ours(path: Path) -> list[tuple[int, int, int, int, Packet | None]]:
    """(frame, ts_ns, wirelen, caplen, decoded packet or None) for every frame."""
    out = []
    with open_capture(path, 1 << 16) as reader:
        for block in reader:
            for i, pkt in enumerate(decode_block(block)):
                meta = (int(block.ts_ns[i]), int(block.wirelens[i]), int(block.caplens[i]))
                out.append((block.first_frame + i, *meta, pkt if isinstance(pkt, Packet) else None))
        assert reader.report.error is None
    return out


def assert_matches_tshark(path: Path, rows: list[list[str]]) -> tuple[int, int]:
    """Compare our reading of ``path`` with tshark's field rows.

    Returns how many frames with TCP/UDP ports in tshark had them compared, and how many
    were excused (fragments, ICMP quoting other headers, frames we flag as malformed).
    """
    ours = _ours(path)
    assert len(ours) == len(rows)
    compared = excused = 0
    for (frame, ts_ns, wirelen, caplen, pkt), row in zip(ours, rows, strict=True):
        f = dict(zip(FIELDS, row, strict=False))
        where = f"{path.name} frame {frame}"
        assert int(f["frame.number"]) == frame, where
        sec, _, frac = f["frame.time_epoch"].partition(".")
        assert int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9]) == ts_ns, where
        assert (int(f["frame.len"]), int(f["frame.cap_len"])) == (wirelen, caplen), where
        has_ports = bool(_first(f["tcp.srcport"]) or _first(f["udp.srcport"]))
        if pkt is None:
            excused += has_ports
            continue
        if pkt.src_mac is not None and pkt.linktype == LINKTYPE_ETHERNET:
            assert _first(f["eth.src"]) == pkt.src_mac, where
        tags = f"{f['ieee8021ad.id']},{f['vlan.id']}"
        assert tuple(int(v) for v in tags.split(",") if v) == pkt.vlans, where
        if pkt.ip_version == 4 or _first(f["ip.src"]):
            assert (_first(f["ip.src"]), _first(f["ip.dst"])) == (pkt.src_ip, pkt.dst_ip), where
        if pkt.ip_version == 6 or _first(f["ipv6.src"]):
            assert (_first(f["ipv6.src"]), _first(f["ipv6.dst"])) == (pkt.src_ip, pkt.dst_ip)
        mf, offset = _first(f["ip.flags.mf"]), _first(f["ip.frag_offset"])
        fragment = mf in ("1", "True") or offset not in ("", "0")
        if fragment or pkt.problem or pkt.ip_proto in (1, 58):  # ICMP quotes other headers
            excused += has_ports
            continue
        for proto, number in (("tcp", 6), ("udp", 17)):
            if _first(f[f"{proto}.srcport"]):
                ports = (int(_first(f[f"{proto}.srcport"])), int(_first(f[f"{proto}.dstport"])))
                assert (number, *ports) == (pkt.ip_proto, pkt.sport, pkt.dport), where
                compared += 1
    return compared, excused


def test_written_pcapng_matches_tshark(tmp_path: Path) -> None:
    """Two interfaces (Ethernet in µs, raw IPv4 in ns), VLANs, QinQ, IPv6 and padding."""
    frames = sample_frames()
    packets = [(T0 + i * 1_000_001, f, 0) for i, f in enumerate(frames)]
    packets += [(T0 + 5_000_000_007 + i, raw_ipv4_udp(i), 1) for i in range(5)]
    ifaces = [pw.Interface(LINKTYPE_ETHERNET, 6), pw.Interface(LINKTYPE_IPV4, 9)]
    path = tmp_path / "mixed.pcapng"
    pw.write_pcapng(path, packets, ifaces)
    rows = tshark_fields(path, FIELDS)
    assert assert_matches_tshark(path, rows) == (7 + 5, 0)  # TCP/UDP frames of both interfaces
    # what tshark saw, so that the comparison above is not vacuous
    assert [(r[5], r[6]) for r in rows[:3]] == [("", ""), ("", "10"), ("100", "20")]
    assert rows[5][12] == "fd00::10" and rows[5][15] == "50000"


@pytest.mark.parametrize("compress", [False, True])
def test_written_pcap_with_snaplen_matches_tshark(tmp_path: Path, compress: bool) -> None:
    packets = [(T0 + i * 999_999_999, f) for i, f in enumerate(sample_frames() * 2)]
    packets += [(T0 + 10**10, raw_ipv4_udp(0))]
    path = tmp_path / "snap.pcap"
    pw.write_pcap(path, packets[:-1], nanosecond=True, snaplen=80)
    if compress:
        path.write_bytes(gzip.compress(path.read_bytes()))
    assert assert_matches_tshark(path, tshark_fields(path, FIELDS)) == (12, 0)
    raw = tmp_path / "raw.pcap"
    pw.write_pcap(raw, packets[-1:], linktype=LINKTYPE_RAW)
    assert assert_matches_tshark(raw, tshark_fields(raw, FIELDS)) == (1, 0)


_ADDR = bytes.fromhex("001d9cc7b0010000")
LINK_HEADS = {
    LINKTYPE_LINUX_SLL: struct.pack("!HHH8sH", 0, 1, 6, _ADDR, 0x0800),
    LINKTYPE_LINUX_SLL2: struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, _ADDR),
    LINKTYPE_NULL: struct.pack("<I", 2),
    LINKTYPE_LOOP: struct.pack(">I", 2),
    LINKTYPE_RAW: b"",
    LINKTYPE_IPV4: b"",
}


@pytest.mark.parametrize("linktype", list(LINK_HEADS))
def test_written_link_types_match_tshark(tmp_path: Path, linktype: int) -> None:
    path = tmp_path / "link.pcap"
    frames = [(T0 + i, LINK_HEADS[linktype] + raw_ipv4_udp(i)) for i in range(4)]
    pw.write_pcap(path, frames, linktype)
    assert assert_matches_tshark(path, tshark_fields(path, FIELDS)) == (4, 0)


def test_written_checksums_are_valid(tmp_path: Path) -> None:
    path = tmp_path / "sum.pcap"
    pw.write_pcap(path, [(T0, f) for f in sample_frames()])
    checks = ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status"]
    options = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"]
    options += ["-o", "udp.check_checksum:TRUE"]
    statuses = {s for row in tshark_fields(path, checks, *options) for s in row if s}
    assert statuses == {"1"}  # 1 is "Good"; 0 would be "Bad"


@pytest.fixture(scope="session")
def corpus_rows() -> dict[Path, Future[list[list[str]]]]:
    """tshark's fields for every corpus capture, run in parallel as soon as one is needed."""
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
    jobs = {p: pool.submit(tshark_fields, p, FIELDS) for p in CORPUS_FILES}
    pool.shutdown(wait=False)
    return jobs


@pytest.mark.shared
@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus is not present")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_corpus_matches_tshark(
    path: Path, corpus_rows: dict[Path, Future[list[list[str]]]]
) -> None:
    rows = corpus_rows[path].result()
    assert rows, "tshark read no frames"
    with_ports = sum(
        1 for r in rows if r[FIELDS.index("tcp.srcport")] or r[FIELDS.index("udp.srcport")]
    )
    compared, excused = assert_matches_tshark(path, rows)
    assert compared + excused == with_ports
    assert excused <= max(1, with_ports // 100), "too few frames compared"
