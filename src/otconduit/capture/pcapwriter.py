"""A tiny pcap / pcapng writer and frame builders, for tests, the lab and evidence export.

Frames are built with valid IPv4 and TCP/UDP checksums so that tshark and other tools take
them as real traffic. Layouts cite draft-ietf-opsawg-pcap / -pcapng and the IP RFCs.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from otconduit.capture.packet import IPPROTO_TCP, IPPROTO_UDP, LINKTYPE_ETHERNET

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_TPID_CTAG = 0x8100  # IEEE 802.1Q customer tag
_TPID_STAG = 0x88A8  # IEEE 802.1ad service tag, the outer tags of a QinQ stack


def write_pcap(
    path: str | Path,
    packets: Iterable[tuple[int, bytes]],
    linktype: int = LINKTYPE_ETHERNET,
    nanosecond: bool = False,
    snaplen: int = 65535,
    big_endian: bool = False,
) -> int:
    """Write ``(ts_ns, frame)`` pairs as a pcap file; frames longer than snaplen are cut.

    Returns the number of packets written.
    """
    e = ">" if big_endian else "<"
    # File header (pcap §4): magic, version 2.4, two reserved words, SnapLen, LinkType.
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    count = 0
    with open(path, "wb") as f:
        f.write(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        for ts_ns, frame in packets:
            sec, frac = divmod(ts_ns, 1_000_000_000)
            if not nanosecond:
                frac //= 1000
            data = frame[:snaplen]
            # Record header (pcap §5): ts seconds, ts fraction, captured and original length.
            f.write(struct.pack(e + "IIII", sec, frac, len(data), len(frame)) + data)
            count += 1
    return count


@dataclass(frozen=True, slots=True)
class Interface:
    """A pcapng interface (IDB, pcapng §4.2)."""

    linktype: int = LINKTYPE_ETHERNET
    tsresol: int = 6  # if_tsresol: units of 10**-n s, or 2**-(n & 0x7f) s with the high bit
    snaplen: int = 0  # 0 means no limit
    tsoffset: int = 0  # if_tsoffset, seconds added to every timestamp

    def units(self, ts_ns: int) -> int:
        """A nanosecond timestamp in this interface's units (minus its offset)."""
        ts_ns -= self.tsoffset * 1_000_000_000
        if self.tsresol & 0x80:
            return (ts_ns << (self.tsresol & 0x7F)) // 1_000_000_000
        if self.tsresol <= 9:
            return ts_ns // 10 ** (9 - self.tsresol)
        return ts_ns * 10 ** (self.tsresol - 9)


def pcapng_block(btype: int, body: bytes, big_endian: bool = False) -> bytes:
    """One block (pcapng §3.1): type, total length, body padded to 32 bits, total length."""
    e = ">" if big_endian else "<"
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(e + "II", btype, length) + body + struct.pack(e + "I", length)


def pcapng_shb(big_endian: bool = False) -> bytes:
    """Section Header Block (pcapng §4.1): byte-order magic, version 1.0, unknown length."""
    e = ">" if big_endian else "<"
    return pcapng_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), big_endian)


def pcapng_idb(iface: Interface, big_endian: bool = False) -> bytes:
    """Interface Description Block (pcapng §4.2) with if_tsresol and if_tsoffset options."""
    e = ">" if big_endian else "<"
    body = struct.pack(e + "HHI", iface.linktype, 0, iface.snaplen)
    if iface.tsresol != 6:
        body += struct.pack(e + "HHB3x", 9, 1, iface.tsresol)
    if iface.tsoffset:
        body += struct.pack(e + "HHq", 14, 8, iface.tsoffset)
    if len(body) > 8:
        body += struct.pack(e + "HH", 0, 0)  # opt_endofopt
    return pcapng_block(1, body, big_endian)


def pcapng_epb(
    iface_id: int, units: int, data: bytes, wirelen: int | None = None, big_endian: bool = False
) -> bytes:
    """Enhanced Packet Block (pcapng §4.3); ``units`` is the timestamp in interface units."""
    e = ">" if big_endian else "<"
    origlen = len(data) if wirelen is None else wirelen
    head = struct.pack(e + "5I", iface_id, units >> 32, units & 0xFFFFFFFF, len(data), origlen)
    return pcapng_block(6, head + data, big_endian)


def pcapng_spb(data: bytes, wirelen: int | None = None, big_endian: bool = False) -> bytes:
    """Simple Packet Block (pcapng §4.4): original length, then data, for interface 0."""
    e = ">" if big_endian else "<"
    origlen = len(data) if wirelen is None else wirelen
    return pcapng_block(3, struct.pack(e + "I", origlen) + data, big_endian)


def pcapng_opb(
    iface_id: int, units: int, data: bytes, wirelen: int | None = None, big_endian: bool = False
) -> bytes:
    """Obsolete Packet Block (pcapng Appendix A): as an EPB with a 16-bit interface id."""
    e = ">" if big_endian else "<"
    origlen = len(data) if wirelen is None else wirelen
    head = struct.pack(e + "HH4I", iface_id, 0, units >> 32, units & 0xFFFFFFFF, len(data), origlen)
    return pcapng_block(2, head + data, big_endian)


def write_pcapng(
    path: str | Path,
    packets: Iterable[tuple[int, bytes] | tuple[int, bytes, int]],
    interfaces: Sequence[Interface] = (Interface(),),
    big_endian: bool = False,
) -> int:
    """Write ``(ts_ns, frame)`` or ``(ts_ns, frame, interface index)`` as a pcapng file.

    One section; the interfaces are described up front. Returns the number of packets.
    """
    count = 0
    with open(path, "wb") as f:
        f.write(pcapng_shb(big_endian))
        for iface in interfaces:
            f.write(pcapng_idb(iface, big_endian))
        for item in packets:
            ts_ns, frame = item[0], item[1]
            idx = item[2] if len(item) > 2 else 0
            iface = interfaces[idx]
            data = frame[: iface.snaplen] if iface.snaplen else frame
            f.write(pcapng_epb(idx, iface.units(ts_ns), data, len(frame), big_endian))
            count += 1
    return count


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(src_ip: str, dst_ip: str, proto: int, length: int) -> bytes:
    """The TCP/UDP checksum pseudo-header: RFC 793 §3.1 for IPv4, RFC 8200 §8.1 for IPv6."""
    src, dst = ipaddress.ip_address(src_ip).packed, ipaddress.ip_address(dst_ip).packed
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!I3xB", length, proto)


def tcp_segment(
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
    window: int = 65535,
) -> bytes:
    """A TCP header without options plus payload, checksummed for the given addresses."""
    # TCP header (RFC 9293 §3.1): ports, seq, ack, data offset/flags, window, checksum, urgent.
    head = struct.pack(
        "!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, window, 0, 0
    )
    seg = head + payload
    csum = _checksum(_pseudo_header(src_ip, dst_ip, IPPROTO_TCP, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def udp_datagram(src_ip: str, dst_ip: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    """A UDP header (RFC 768) plus payload, checksummed for the given addresses."""
    length = 8 + len(payload)
    dgram = struct.pack("!HHHH", sport, dport, length, 0) + payload
    csum = _checksum(_pseudo_header(src_ip, dst_ip, IPPROTO_UDP, length) + dgram) or 0xFFFF
    return dgram[:6] + struct.pack("!H", csum) + dgram[8:]


def ipv4(
    src_ip: str,
    dst_ip: str,
    proto: int,
    payload: bytes,
    ip_id: int = 0,
    ttl: int = 64,
    frag: int = 0,
    options: bytes = b"",
) -> bytes:
    """An IPv4 packet (RFC 791 §3.1); ``frag`` is the raw flags/fragment-offset field."""
    options += b"\0" * (-len(options) % 4)
    ihl = 5 + len(options) // 4
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        ihl * 4 + len(payload),
        ip_id,
        frag,
        ttl,
        proto,
        0,
        ipaddress.IPv4Address(src_ip).packed,
        ipaddress.IPv4Address(dst_ip).packed,
    )
    head += options
    return head[:10] + struct.pack("!H", _checksum(head)) + head[12:] + payload


def ipv6(src_ip: str, dst_ip: str, next_header: int, payload: bytes, hop_limit: int = 64) -> bytes:
    """An IPv6 packet (RFC 8200 §3); ``payload`` includes any extension headers."""
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), next_header, hop_limit)
        + ipaddress.IPv6Address(src_ip).packed
        + ipaddress.IPv6Address(dst_ip).packed
        + payload
    )


def ethernet(
    src_mac: str, dst_mac: str, ethertype: int, payload: bytes, vlans: Sequence[int] = ()
) -> bytes:
    """An Ethernet II frame; ``vlans`` outer to inner, outer tags 802.1ad, the inner 802.1Q."""
    head = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
    for i, vid in enumerate(vlans):
        tpid = _TPID_CTAG if i == len(vlans) - 1 else _TPID_STAG
        head += struct.pack("!HH", tpid, vid & 0xFFF)
    return head + struct.pack("!H", ethertype) + payload


def build_tcp_ipv4_frame(
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
    vlans: Sequence[int] = (),
    ip_id: int = 0,
) -> bytes:
    """An Ethernet/IPv4/TCP frame with valid checksums."""
    seg = tcp_segment(src_ip, dst_ip, sport, dport, seq, ack, flags, payload)
    packet = ipv4(src_ip, dst_ip, IPPROTO_TCP, seg, ip_id=ip_id)
    return ethernet(src_mac, dst_mac, ETHERTYPE_IPV4, packet, vlans)


def build_udp_ipv4_frame(
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    payload: bytes = b"",
    vlans: Sequence[int] = (),
    ip_id: int = 0,
) -> bytes:
    """An Ethernet/IPv4/UDP frame with valid checksums."""
    dgram = udp_datagram(src_ip, dst_ip, sport, dport, payload)
    packet = ipv4(src_ip, dst_ip, IPPROTO_UDP, dgram, ip_id=ip_id)
    return ethernet(src_mac, dst_mac, ETHERTYPE_IPV4, packet, vlans)
