"""Per-packet decoding of link, network and transport headers."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from otconduit.capture import pcapwriter as pw
from otconduit.capture.decode import DecodeProblem, decode_block, decode_frame
from otconduit.capture.packet import (
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    TCP_ACK,
    TCP_PSH,
    Packet,
)
from otconduit.capture.reader import open_capture

from .conftest import MAC_A, MAC_B, MODBUS_READ, T0, ipv6_ext_tcp, raw_ipv4_udp, tcp_frame


def _decode(data: bytes, linktype: int = LINKTYPE_ETHERNET) -> Packet:
    pkt = decode_frame(data, linktype, 1, T0, len(data))
    assert isinstance(pkt, Packet), pkt
    return pkt


def test_ethernet_ipv4_tcp() -> None:
    frame = tcp_frame(3)
    pkt = _decode(frame)
    assert (pkt.frame, pkt.ts_ns, pkt.caplen, pkt.wirelen) == (1, T0, len(frame), len(frame))
    assert (pkt.src_mac, pkt.dst_mac) == (MAC_A, MAC_B)
    assert (pkt.ethertype, pkt.ip_version, pkt.ip_proto) == (0x0800, 4, IPPROTO_TCP)
    assert (pkt.src_ip, pkt.dst_ip, pkt.sport, pkt.dport) == (
        "192.168.1.10",
        "192.168.1.20",
        40003,
        502,
    )
    assert (pkt.tcp_seq, pkt.tcp_ack, pkt.tcp_flags) == (1003, 7, TCP_PSH | TCP_ACK)
    assert pkt.ip_id == 3 and pkt.ip_len == 20 + 20 + len(MODBUS_READ)
    assert pkt.payload == MODBUS_READ
    assert not pkt.l4_truncated and pkt.problem is None and pkt.vlans == ()


def test_memoryview_input_matches_bytes() -> None:
    frame = tcp_frame(1)
    assert decode_frame(memoryview(frame), 1, 1, T0, len(frame)) == _decode(frame)


@pytest.mark.parametrize("tpids", [(0x8100,), (0x88A8, 0x8100), (0x9100, 0x8100), (0x8100,) * 3])
def test_vlan_stacks(tpids: tuple[int, ...]) -> None:
    inner = tcp_frame(0)
    tags = b"".join(struct.pack("!HH", tpid, 0xE000 | (100 + i)) for i, tpid in enumerate(tpids))
    frame = inner[:12] + tags + inner[12:]
    pkt = _decode(frame)
    assert pkt.vlans == tuple(100 + i for i in range(len(tpids)))  # priority bits dropped
    assert pkt.vlan == 100 + len(tpids) - 1
    assert (pkt.sport, pkt.dport, pkt.payload) == (40000, 502, MODBUS_READ)


def test_qinq_builder_and_truncated_tag() -> None:
    pkt = _decode(tcp_frame(0, vlans=(300, 42)))
    assert pkt.vlans == (300, 42) and pkt.dport == 502
    cut = tcp_frame(0, vlans=(300, 42))[:20]  # the inner tag lacks its EtherType
    pkt = _decode(cut)
    assert pkt.vlans == (300,) and pkt.problem == "vlan: truncated tag"


def test_ethernet_padding_is_trimmed() -> None:
    frame = pw.build_udp_ipv4_frame(MAC_A, MAC_B, "10.0.0.1", "10.0.0.2", 47808, 47808, b"hi")
    pkt = _decode(frame + b"\0" * (60 - len(frame)))
    assert pkt.payload == b"hi" and pkt.caplen == 60 and not pkt.l4_truncated
    tcp = tcp_frame(0, payload=b"")
    pkt = _decode(tcp + b"\xaa" * 6)
    assert pkt.payload == b"" and pkt.problem is None


def test_ipv4_options() -> None:
    seg = pw.tcp_segment("10.0.0.1", "10.0.0.2", 1234, 102, 5, 6, TCP_ACK, b"s7")
    for words in (1, 10):  # IHL 6 and the maximum 15
        options = bytes([1] * (4 * words - 1)) + b"\0"  # NOPs and end of list
        packet = pw.ipv4("10.0.0.1", "10.0.0.2", IPPROTO_TCP, seg, options=options)
        pkt = _decode(pw.ethernet(MAC_A, MAC_B, 0x0800, packet))
        assert (pkt.sport, pkt.dport, pkt.payload) == (1234, 102, b"s7")
        assert pkt.ip_len == 20 + 4 * words + 22


def test_snaplen_truncation() -> None:
    frame = tcp_frame(0, payload=b"A" * 200)
    pkt = _decode(frame[:100])
    assert pkt.l4_truncated and pkt.problem is None
    assert pkt.payload == b"A" * 46 and pkt.dport == 502 and pkt.ip_len == 240
    pkt = _decode(frame[:46])  # cut inside the TCP header: what is there is kept
    assert pkt.l4_truncated and pkt.problem is None
    assert (pkt.sport, pkt.dport, pkt.tcp_seq, pkt.payload) == (40000, 502, 1000, b"")
    pkt = _decode(frame[:30])  # cut inside the IP header
    assert isinstance(pkt, Packet) and pkt.ip_version == 0
    assert pkt.problem == "ipv4: truncated header: 16 bytes"


def test_zero_total_length_is_segmentation_offload() -> None:
    frame = bytearray(tcp_frame(0, payload=b"B" * 3000))
    frame[16:18] = b"\0\0"
    pkt = _decode(bytes(frame))
    assert pkt.payload == b"B" * 3000 and pkt.problem is None


@pytest.mark.parametrize("version", [1, 2])
def test_linux_cooked(version: int) -> None:
    packet = raw_ipv4_udp(2)
    addr = bytes.fromhex(MAC_A.replace(":", "")) + b"\0\0"
    if version == 1:
        head = struct.pack("!HHH8sH", 0, 1, 6, addr, 0x0800)
        linktype = LINKTYPE_LINUX_SLL
    else:
        head = struct.pack("!HHIHBB8s", 0x0800, 0, 3, 1, 4, 6, addr)
        linktype = LINKTYPE_LINUX_SLL2
    pkt = _decode(head + packet, linktype)
    assert (pkt.src_mac, pkt.dst_mac, pkt.ethertype) == (MAC_A, None, 0x0800)
    assert (pkt.src_ip, pkt.sport, pkt.dport) == ("172.16.0.1", 1002, 20000)
    assert pkt.payload == b"raw" * 3
    problem = decode_frame(head[:10], linktype, 5, T0, 10)
    assert isinstance(problem, DecodeProblem) and problem.frame == 5
    assert problem.reason == "runt frame: 10 bytes"


def test_linux_cooked_llc_and_vlan() -> None:
    addr = bytes.fromhex(MAC_B.replace(":", "")) + b"\0\0"
    llc = bytes.fromhex("424203000000") + bytes(30)
    pkt = _decode(struct.pack("!HHH8sH", 0, 1, 6, addr, 0x0004) + llc, LINKTYPE_LINUX_SLL)
    assert (pkt.ethertype, pkt.payload, pkt.src_mac) == (0, llc, MAC_B)  # ETH_P_802_2: no length
    tagged = struct.pack("!HH", 12, 0x0800) + raw_ipv4_udp(1)
    pkt = _decode(struct.pack("!HHH8sH", 4, 1, 6, addr, 0x8100) + tagged, LINKTYPE_LINUX_SLL)
    assert (pkt.vlans, pkt.ethertype, pkt.dport) == ((12,), 0x0800, 20000)


@pytest.mark.parametrize(
    ("linktype", "head", "version"),
    [
        (LINKTYPE_NULL, struct.pack("<I", 2), 4),
        (LINKTYPE_NULL, struct.pack(">I", 2), 4),  # written on a big-endian host
        (LINKTYPE_NULL, struct.pack("<I", 30), 6),
        (LINKTYPE_NULL, struct.pack("<I", 24), 6),
        (LINKTYPE_LOOP, struct.pack(">I", 2), 4),
        (LINKTYPE_LOOP, struct.pack(">I", 28), 6),
        (LINKTYPE_RAW, b"", 4),
        (LINKTYPE_RAW, b"", 6),
        (12, b"", 4),
        (LINKTYPE_IPV4, b"", 4),
        (LINKTYPE_IPV6, b"", 6),
    ],
)
def test_loopback_and_raw(linktype: int, head: bytes, version: int) -> None:
    packet = raw_ipv4_udp(0) if version == 4 else ipv6_ext_tcp()
    pkt = _decode(head + packet, linktype)
    assert pkt.ip_version == version and pkt.src_mac is None and pkt.problem is None
    assert pkt.dport == (20000 if version == 4 else 50000)


@pytest.mark.parametrize(
    ("linktype", "data", "layer", "reason"),
    [
        (LINKTYPE_ETHERNET, b"\x01" * 13, "ethernet", "runt frame: 13 bytes"),
        (LINKTYPE_NULL, struct.pack("<I", 7) + bytes(20), "null", "address family 7 is not IP"),
        (LINKTYPE_RAW, b"\x50" + bytes(30), "raw", "IP version 5"),
        (LINKTYPE_RAW, b"", "raw", "IP version 0"),
        (LINKTYPE_IPV4, b"\x60" + bytes(50), "raw", "IP version 6 on link type 228"),
        (LINKTYPE_RAW, b"\x45" + bytes(10), "ipv4", "truncated header: 11 bytes"),
        (147, b"anything", "link", "unsupported link type 147"),
    ],
)
def test_undecodable(linktype: int, data: bytes, layer: str, reason: str) -> None:
    assert decode_frame(data, linktype, 9, T0, len(data)) == DecodeProblem(9, layer, reason)


def test_ipv6_extension_headers() -> None:
    pkt = _decode(pw.ethernet(MAC_A, MAC_B, pw.ETHERTYPE_IPV6, ipv6_ext_tcp()))
    assert (pkt.ethertype, pkt.ip_version, pkt.ip_proto) == (0x86DD, 6, IPPROTO_TCP)
    assert (pkt.src_ip, pkt.dst_ip) == ("fd00::10", "fd00::20")
    assert (pkt.sport, pkt.dport, pkt.payload) == (2404, 50000, b"hello")
    assert pkt.ip_len == 40 + 24 + 25


def test_ipv6_fragment_and_atomic_fragment() -> None:
    udp = pw.udp_datagram("fe80::1", "ff02::1", 47808, 47808, b"q" * 24)
    for field, frag_off, more in ((0x0001, 0, True), (0x0010, 16, False)):
        frag = struct.pack("!BBHI", IPPROTO_UDP, 0, field, 0xDEADBEEF)
        pkt = _decode(pw.ipv6("fe80::1", "ff02::1", 44, frag + udp), LINKTYPE_RAW)
        assert (pkt.frag_offset, pkt.more_fragments, pkt.ip_id) == (frag_off, more, 0xDEADBEEF)
        assert pkt.ip_proto == IPPROTO_UDP and pkt.payload == udp and pkt.dport == 0
    atomic = struct.pack("!BBHI", IPPROTO_UDP, 0, 0, 1)  # RFC 6946: a whole datagram
    pkt = _decode(pw.ipv6("fe80::1", "ff02::1", 44, atomic + udp), LINKTYPE_RAW)
    assert pkt.dport == 47808 and pkt.payload == b"q" * 24 and not pkt.more_fragments


def test_ipv6_no_next_header() -> None:
    pkt = _decode(pw.ipv6("::1", "::2", 59, b""), LINKTYPE_RAW)
    assert pkt.ip_proto == 59 and pkt.payload == b"" and pkt.problem is None


def test_ipv4_fragment_fields() -> None:
    udp = pw.udp_datagram("10.0.0.1", "10.0.0.2", 1, 2, b"d" * 32)
    first = pw.ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP, udp[:24], ip_id=77, frag=0x2000)
    pkt = _decode(first, LINKTYPE_RAW)
    assert (pkt.ip_id, pkt.more_fragments, pkt.frag_offset) == (77, True, 0)
    assert pkt.payload == udp[:24] and pkt.sport == 0  # transport waits for reassembly
    last = pw.ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP, udp[24:], ip_id=77, frag=3)
    pkt = _decode(last, LINKTYPE_RAW)
    assert (pkt.more_fragments, pkt.frag_offset, pkt.payload) == (False, 24, udp[24:])


def test_icmp_and_icmpv6() -> None:
    echo = bytes([8, 0, 0, 0, 0, 1, 0, 2]) + b"ping"
    pkt = _decode(pw.ipv4("10.0.0.1", "10.0.0.2", IPPROTO_ICMP, echo), LINKTYPE_RAW)
    assert (pkt.icmp_type, pkt.icmp_code, pkt.payload) == (8, 0, b"ping")
    unreach = bytes([1, 4, 0, 0, 0, 0, 0, 0])
    pkt = _decode(pw.ipv6("fe80::1", "fe80::2", IPPROTO_ICMPV6, unreach), LINKTYPE_RAW)
    assert (pkt.ip_proto, pkt.icmp_type, pkt.icmp_code) == (IPPROTO_ICMPV6, 1, 4)


def test_non_ip_frames_keep_link_fields() -> None:
    dcp = bytes.fromhex("fefe05000400000300800004ffff0000")  # PROFINET DCP identify
    pkt = _decode(pw.ethernet(MAC_A, "01:0e:cf:00:00:00", 0x8892, dcp, vlans=(5,)))
    assert (pkt.ethertype, pkt.ip_version, pkt.vlans, pkt.payload) == (0x8892, 0, (5,), dcp)
    assert pkt.dst_mac == "01:0e:cf:00:00:00"
    llc = bytes.fromhex("424203000000") + bytes(40)  # spanning tree BPDU over 802.2 LLC
    frame = bytes.fromhex("0180c2000000") + bytes.fromhex(MAC_B.replace(":", ""))
    pkt = _decode(frame + struct.pack("!H", 38) + llc)
    assert pkt.ethertype == 0 and pkt.payload == llc[:38] and pkt.ip_version == 0


@pytest.mark.parametrize(
    ("offset", "value", "problem"),
    [
        (14, 0x43, "ipv4: header length 12 < 20"),
        (14, 0x65, "ipv4: version 6 in an IPv4 header"),
        (46, 0x30, "tcp: data offset 3 < 5"),
        (46, 0xF0, "tcp: header length 60 > 32"),
    ],
)
def test_malformed_headers_keep_what_decoded(offset: int, value: int, problem: str) -> None:
    frame = bytearray(tcp_frame(0))
    frame[offset] = value
    pkt = _decode(bytes(frame))
    assert pkt.problem == problem
    assert pkt.src_mac == MAC_A  # the link layer is still there


def test_udp_length_problems() -> None:
    udp = bytearray(pw.udp_datagram("10.0.0.1", "10.0.0.2", 5, 6, b"abcd"))
    udp[4:6] = struct.pack("!H", 200)
    pkt = _decode(pw.ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP, bytes(udp)), LINKTYPE_RAW)
    assert pkt.problem == "udp: length 200 > IP payload 12" and pkt.payload == b"abcd"
    udp[4:6] = struct.pack("!H", 3)
    pkt = _decode(pw.ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP, bytes(udp)), LINKTYPE_RAW)
    assert pkt.problem == "udp: length 3 < 8" and pkt.dport == 6


def test_decode_block_numbers_frames(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    frames = [tcp_frame(i) for i in range(50)]
    pw.write_pcap(path, [(T0 + i, f) for i, f in enumerate(frames)])
    got = [p for block in open_capture(path, 256) for p in decode_block(block)]
    assert [p.frame for p in got] == list(range(1, 51))
    assert all(isinstance(p, Packet) and p.sport == 40000 + i for i, p in enumerate(got))
