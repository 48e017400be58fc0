"""Per-packet decoding from link layer to transport payload, for frames the bulk path skips.

:func:`decode_frame` never raises: a frame whose link layer cannot be decoded becomes a
:class:`DecodeProblem`; a frame that breaks further in becomes a :class:`Packet` holding what
was decoded, with ``problem`` saying where and why it stopped.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

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
    Packet,
)
from otconduit.capture.reader import RawBlock

# Link types that carry bare IP. DLT_RAW's value on most systems (12) and on OpenBSD (14) are
# not meant for files, but some writers put them there.
_IP_LINKTYPES = frozenset((LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6))
_VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))  # 802.1Q, 802.1ad, pre-standard QinQ
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
# BSD AF_INET6 differs per OS (NetBSD/OpenBSD 24, FreeBSD 28, macOS 30; Linux 10).
_AF_INET6 = frozenset((24, 28, 30, 10))
# IPv6 extension headers walked to reach the upper layer (RFC 8200 §4; AH is RFC 4302).
_V6_HOPOPTS, _V6_ROUTING, _V6_FRAGMENT, _V6_NONEXT, _V6_DSTOPTS, _V6_AH = 0, 43, 44, 59, 60, 51
_V6_EXT = frozenset((_V6_HOPOPTS, _V6_ROUTING, _V6_FRAGMENT, _V6_DSTOPTS, _V6_AH))

_TCP_HEAD = struct.Struct("!HHIIBB")  # ports, seq, ack, data offset, flags (RFC 9293 §3.1)
_PORTS = struct.Struct("!HH")
_U16 = struct.Struct("!H")

_CACHE_MAX = 1 << 16
_ip4_cache: dict[bytes, str] = {}
_ip6_cache: dict[bytes, str] = {}

# (layer, reason) when a header is malformed; None when it decoded
_Err = tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class DecodeProblem:
    """A frame whose link layer could not be decoded at all."""

    frame: int
    layer: str
    reason: str


def _ip4(raw: bytes) -> str:
    """Dotted-quad text of a 4-byte address, cached: OT networks reuse few addresses."""
    text = _ip4_cache.get(raw)
    if text is None:
        if len(_ip4_cache) >= _CACHE_MAX:
            _ip4_cache.clear()
        text = _ip4_cache[raw] = socket.inet_ntoa(raw)
    return text


def _ip6(raw: bytes) -> str:
    """Compressed text of a 16-byte address (``ipaddress`` form), cached."""
    text = _ip6_cache.get(raw)
    if text is None:
        if len(_ip6_cache) >= _CACHE_MAX:
            _ip6_cache.clear()
        text = _ip6_cache[raw] = ipaddress.IPv6Address(raw).compressed
    return text


def decode_frame(
    data: bytes | memoryview, linktype: int, frame: int, ts_ns: int, wirelen: int
) -> Packet | DecodeProblem:
    """Decode one captured frame; never raises."""
    if not isinstance(data, bytes):
        data = bytes(data)
    try:
        return _decode(data, linktype, frame, ts_ns, wirelen)
    except Exception as exc:  # a decoder bug must not stop a capture; tests assert it is rare
        return DecodeProblem(frame, "decode", f"internal error: {type(exc).__name__}: {exc}")


def decode_block(block: RawBlock) -> Iterator[Packet | DecodeProblem]:
    """Decode every packet of a reader block, in order."""
    view = memoryview(block.buf)  # type: ignore[arg-type]
    for i, (off, caplen, wirelen, ts, lt) in enumerate(
        zip(
            block.offsets.tolist(),
            block.caplens.tolist(),
            block.wirelens.tolist(),
            block.ts_ns.tolist(),
            block.linktypes.tolist(),
            strict=True,
        )
    ):
        yield decode_frame(bytes(view[off : off + caplen]), lt, block.first_frame + i, ts, wirelen)


def _decode(data: bytes, lt: int, frame: int, ts_ns: int, wirelen: int) -> Packet | DecodeProblem:
    n = len(data)
    if lt == LINKTYPE_ETHERNET:
        # Ethernet II (IEEE 802.3 §3.1.1): destination, source, EtherType or length.
        if n < 14:
            return DecodeProblem(frame, "ethernet", f"runt frame: {n} bytes")
        pkt = Packet(frame, ts_ns, n, wirelen, lt, data[6:12].hex(":"), data[0:6].hex(":"))
        return _ether_payload(pkt, data, 14, (data[12] << 8) | data[13])
    if lt in _IP_LINKTYPES:
        version = data[0] >> 4 if n else 0
        if (lt == LINKTYPE_IPV4 and version != 4) or (lt == LINKTYPE_IPV6 and version != 6):
            return DecodeProblem(frame, "raw", f"IP version {version} on link type {lt}")
        return _ip_only(Packet(frame, ts_ns, n, wirelen, lt), data, 0, version, "raw")
    if lt in (LINKTYPE_NULL, LINKTYPE_LOOP):
        # BSD loopback: a 4-byte address family, host byte order (NULL) or network (LOOP).
        if n < 4:
            return DecodeProblem(frame, "null", f"runt frame: {n} bytes")
        af = int.from_bytes(data[:4], "big" if lt == LINKTYPE_LOOP else "little")
        if af > 0xFFFF:  # NULL written on a host of the other byte order
            af = int.from_bytes(data[:4], "big")
        version = 4 if af == 2 else 6 if af in _AF_INET6 else 0
        if not version:
            return DecodeProblem(frame, "null", f"address family {af} is not IP")
        return _ip_only(Packet(frame, ts_ns, n, wirelen, lt), data, 4, version, "null")
    if lt == LINKTYPE_LINUX_SLL:
        # SLL (tcpdump.org LINKTYPE_LINUX_SLL): packet type, ARPHRD type, address length,
        # 8 address bytes, protocol type; 16 bytes.
        if n < 16:
            return DecodeProblem(frame, "sll", f"runt frame: {n} bytes")
        alen = (data[4] << 8) | data[5]
        mac = data[6:12].hex(":") if alen == 6 else None
        return _cooked_payload(Packet(frame, ts_ns, n, wirelen, lt, src_mac=mac), data, 16, 14)
    if lt == LINKTYPE_LINUX_SLL2:
        # SLL2 (tcpdump.org LINKTYPE_LINUX_SLL2): protocol type, reserved, interface index,
        # ARPHRD type, packet type, address length, 8 address bytes; 20 bytes.
        if n < 20:
            return DecodeProblem(frame, "sll2", f"runt frame: {n} bytes")
        mac = data[12:18].hex(":") if data[11] == 6 else None
        return _cooked_payload(Packet(frame, ts_ns, n, wirelen, lt, src_mac=mac), data, 20, 0)
    return DecodeProblem(frame, "link", f"unsupported link type {lt}")


def _ip_only(
    pkt: Packet, data: bytes, off: int, version: int, layer: str
) -> Packet | DecodeProblem:
    """IP right after a link header that holds nothing to keep: no IP at all is a problem."""
    if version == 4:
        err = _ipv4(pkt, data, off)
    elif version == 6:
        err = _ipv6(pkt, data, off)
    else:
        return DecodeProblem(pkt.frame, layer, f"IP version {version}")
    if err is not None:
        if not pkt.ip_version:
            return DecodeProblem(pkt.frame, err[0], err[1])
        pkt.problem = f"{err[0]}: {err[1]}"
    return pkt


def _cooked_payload(pkt: Packet, data: bytes, off: int, proto_at: int) -> Packet:
    """After a Linux cooked header: an EtherType, or below 0x600 a Linux protocol number
    (ETH_P_802_3, ETH_P_802_2, ...) for frames that have no EtherType.
    """
    proto = (data[proto_at] << 8) | data[proto_at + 1]
    if proto < 0x600:
        pkt.payload = data[off:]
        return pkt
    return _ether_payload(pkt, data, off, proto)


def _ether_payload(pkt: Packet, data: bytes, off: int, etype: int) -> Packet:
    """Walk VLAN tags and decode what the innermost EtherType announces."""
    n = len(data)
    if etype in _VLAN_TPIDS:
        vlans: list[int] = []
        while etype in _VLAN_TPIDS:
            # 802.1Q tag (IEEE 802.1Q §9.6): TCI (PCP 3, DEI 1, VID 12 bits), then EtherType.
            if off + 4 > n:
                pkt.vlans = tuple(vlans)
                pkt.problem = "vlan: truncated tag"
                return pkt
            vlans.append(((data[off] << 8) | data[off + 1]) & 0xFFF)
            etype = (data[off + 2] << 8) | data[off + 3]
            off += 4
        pkt.vlans = tuple(vlans)
    if etype < 0x600:  # an 802.3 length: LLC follows (IEEE 802.3 §3.2.6)
        pkt.payload = data[off : off + etype]
        return pkt
    pkt.ethertype = etype
    if etype == ETHERTYPE_IPV4:
        err = _ipv4(pkt, data, off)
    elif etype == ETHERTYPE_IPV6:
        err = _ipv6(pkt, data, off)
    else:
        pkt.payload = data[off:]
        return pkt
    if err is not None:
        pkt.problem = f"{err[0]}: {err[1]}"
    return pkt


def _ipv4(pkt: Packet, data: bytes, off: int) -> _Err:
    # IPv4 header (RFC 791 §3.1): version/IHL, TOS, total length, identification,
    # flags/fragment offset, TTL, protocol, checksum, source, destination, options.
    avail = len(data) - off
    if avail < 20:
        return ("ipv4", f"truncated header: {avail} bytes")
    vihl = data[off]
    if vihl >> 4 != 4:
        return ("ipv4", f"version {vihl >> 4} in an IPv4 header")
    pkt.ip_version = 4
    pkt.src_ip = _ip4(data[off + 12 : off + 16])
    pkt.dst_ip = _ip4(data[off + 16 : off + 20])
    pkt.ip_proto = proto = data[off + 9]
    pkt.ip_id = (data[off + 4] << 8) | data[off + 5]
    frag = (data[off + 6] << 8) | data[off + 7]
    pkt.more_fragments = more = bool(frag & 0x2000)
    pkt.frag_offset = fragoff = (frag & 0x1FFF) * 8
    hlen = (vihl & 0x0F) * 4
    total = (data[off + 2] << 8) | data[off + 3]
    if total == 0:  # segmentation offload: the NIC fills the length in later
        total = avail
    pkt.ip_len = total
    if hlen < 20:
        return ("ipv4", f"header length {hlen} < 20")
    if total < hlen:
        return ("ipv4", f"total length {total} < header length {hlen}")
    end = off + total
    if end > len(data):
        pkt.l4_truncated = True
        end = len(data)
        if off + hlen > end:  # the snap length cut into the options
            return None
    start = off + hlen
    if more or fragoff:
        pkt.payload = data[start:end]
        return None
    return _transport(pkt, proto, data, start, end)


def _ipv6(pkt: Packet, data: bytes, off: int) -> _Err:
    # IPv6 header (RFC 8200 §3): version/class/flow label, payload length, next header,
    # hop limit, source, destination; 40 bytes.
    avail = len(data) - off
    if avail < 40:
        return ("ipv6", f"truncated header: {avail} bytes")
    if data[off] >> 4 != 6:
        return ("ipv6", f"version {data[off] >> 4} in an IPv6 header")
    pkt.ip_version = 6
    pkt.src_ip = _ip6(data[off + 8 : off + 24])
    pkt.dst_ip = _ip6(data[off + 24 : off + 40])
    plen = (data[off + 4] << 8) | data[off + 5]
    if plen == 0:  # a jumbogram (RFC 2675) or segmentation offload: take what is there
        plen = avail - 40
    pkt.ip_len = 40 + plen
    end = off + 40 + plen
    if end > len(data):
        pkt.l4_truncated = True
        end = len(data)
    return _ipv6_upper(pkt, data[off + 6], data, off + 40, end)


def _ipv6_upper(pkt: Packet, nh: int, data: bytes, p: int, end: int) -> _Err:
    """Walk extension headers from ``p`` and decode the upper layer, or keep a fragment."""
    while nh in _V6_EXT:
        if p + 8 > end:
            pkt.ip_proto = nh
            return None if pkt.l4_truncated else ("ipv6", f"truncated extension header {nh}")
        if nh == _V6_FRAGMENT:
            # Fragment header (RFC 8200 §4.5): next header, reserved, offset (13 bits) /
            # res / M, identification.
            field = (data[p + 2] << 8) | data[p + 3]
            nh = data[p]
            p += 8
            if field & 0xFFF9:  # offset or M set; an atomic fragment (RFC 6946) is whole
                pkt.ip_proto = nh
                pkt.frag_offset = field & 0xFFF8
                pkt.more_fragments = bool(field & 1)
                pkt.ip_id = int.from_bytes(data[p - 4 : p], "big")
                pkt.payload = data[p:end]
                return None
            continue
        # AH (RFC 4302 §2.2) counts 32-bit words minus 2; the others 8-octet units minus 1.
        hlen = (data[p + 1] + 2) * 4 if nh == _V6_AH else (data[p + 1] + 1) * 8
        if p + hlen > end:
            pkt.ip_proto = nh
            return None if pkt.l4_truncated else ("ipv6", f"truncated extension header {nh}")
        nh = data[p]
        p += hlen
    if nh == _V6_NONEXT:
        pkt.ip_proto = nh
        return None
    return _transport(pkt, nh, data, p, end)


def decode_transport(pkt: Packet, proto: int, data: bytes) -> None:
    """Fill ``pkt``'s transport fields from a whole IP payload, e.g. a reassembled datagram.

    ``pkt`` must be a packet the caller owns (it is changed in place). For IPv6, ``proto``
    may name an extension header; they are walked first.
    """
    pkt.problem = None
    if pkt.ip_version == 6:
        err = _ipv6_upper(pkt, proto, data, 0, len(data))
    else:
        err = _transport(pkt, proto, data, 0, len(data))
    if err is not None:
        pkt.problem = f"{err[0]}: {err[1]}"


def _transport(pkt: Packet, proto: int, data: bytes, start: int, end: int) -> _Err:
    pkt.ip_proto = proto
    avail = end - start
    if proto == IPPROTO_TCP:
        if avail < 20:
            _partial_tcp(pkt, data, start, avail)
            return None if pkt.l4_truncated else ("tcp", f"truncated header: {avail} bytes")
        sport, dport, seq, ack, offb, flags = _TCP_HEAD.unpack_from(data, start)
        pkt.sport, pkt.dport, pkt.tcp_seq, pkt.tcp_ack, pkt.tcp_flags = (
            sport,
            dport,
            seq,
            ack,
            flags,
        )
        hlen = (offb >> 4) * 4
        if hlen < 20:
            return ("tcp", f"data offset {hlen // 4} < 5")
        if hlen > avail:
            return None if pkt.l4_truncated else ("tcp", f"header length {hlen} > {avail}")
        pkt.payload = data[start + hlen : end]
        return None
    if proto == IPPROTO_UDP:
        # UDP header (RFC 768): ports, length, checksum.
        if avail < 8:
            if avail >= 4:
                pkt.sport, pkt.dport = _PORTS.unpack_from(data, start)
            return None if pkt.l4_truncated else ("udp", f"truncated header: {avail} bytes")
        pkt.sport, pkt.dport = _PORTS.unpack_from(data, start)
        ulen = _U16.unpack_from(data, start + 4)[0] or avail  # 0: an IPv6 jumbogram
        pkt.payload = data[start + 8 : start + min(max(ulen, 8), avail)]
        if ulen < 8:
            return ("udp", f"length {ulen} < 8")
        if ulen > avail and not pkt.l4_truncated:
            return ("udp", f"length {ulen} > IP payload {avail}")
        return None
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        # ICMP (RFC 792) / ICMPv6 (RFC 4443 §2.1): type, code, checksum, 4 bytes by type.
        if avail >= 2:
            pkt.icmp_type, pkt.icmp_code = data[start], data[start + 1]
        if avail < 8:
            name = "icmp" if proto == IPPROTO_ICMP else "icmpv6"
            return None if pkt.l4_truncated else (name, f"truncated header: {avail} bytes")
        pkt.payload = data[start + 8 : end]
        return None
    pkt.payload = data[start:end]
    return None


def _partial_tcp(pkt: Packet, data: bytes, start: int, avail: int) -> None:
    """Whatever fields of a cut-short TCP header made it into the capture."""
    if avail >= 4:
        pkt.sport, pkt.dport = _PORTS.unpack_from(data, start)
    if avail >= 8:
        pkt.tcp_seq = int.from_bytes(data[start + 4 : start + 8], "big")
    if avail >= 12:
        pkt.tcp_ack = int.from_bytes(data[start + 8 : start + 12], "big")
    if avail >= 14:
        pkt.tcp_flags = data[start + 13]
