"""The decoded packet record shared by the per-packet path and the reassembler.

The bulk (numba) path never builds these; it works on numpy arrays. The per-packet
path builds one for every packet the bulk path could not take.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Link-layer header types (tcpdump.org LINKTYPE_* values).
LINKTYPE_NULL = 0  # BSD loopback, host byte order AF value
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4 or IPv6, version nibble decides
LINKTYPE_LOOP = 108  # OpenBSD loopback, network byte order AF value
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10


@dataclass(slots=True)
class Packet:
    """One frame decoded down to its transport payload.

    Addresses are in canonical text form (``ipaddress`` compressed form for IPv6,
    lower-case colon-separated MAC). ``l4_truncated`` is true when the capture's
    snap length cut the frame short of what the IP header announced: the payload
    holds what was captured and decoders go as far as it lets them.

    ``payload`` is the transport payload for TCP and UDP (for ICMP, what follows its
    8-byte header); the IP payload for other protocols and for fragments
    (``more_fragments`` or ``frag_offset``: the transport header is parsed once
    :class:`~otconduit.capture.ipfrag.Defragmenter` has the whole datagram); and the
    bytes after the EtherType for non-IP frames (``ip_version`` 0). ``problem`` is set
    when a header was malformed: the fields before it are filled, the rest keep their
    defaults.
    """

    frame: int
    ts_ns: int
    caplen: int
    wirelen: int
    linktype: int
    src_mac: str | None = None
    dst_mac: str | None = None
    vlans: tuple[int, ...] = ()
    ip_version: int = 0
    src_ip: str = ""
    dst_ip: str = ""
    ip_proto: int = 0
    ip_len: int = 0
    sport: int = 0
    dport: int = 0
    tcp_seq: int = 0
    tcp_ack: int = 0
    tcp_flags: int = 0
    icmp_type: int = -1
    icmp_code: int = -1
    payload: bytes = b""
    l4_truncated: bool = False
    frames: tuple[int, ...] = field(default=())  # all frames of a reassembled IP datagram
    ethertype: int = 0  # innermost EtherType (0 for 802.3/LLC length-framed frames)
    ip_id: int = 0  # IPv4 identification, or the IPv6 fragment header's identification
    frag_offset: int = 0  # fragment offset in bytes
    more_fragments: bool = False
    problem: str | None = None  # why decoding stopped early, e.g. "tcp: data offset 3 < 5"

    @property
    def vlan(self) -> int | None:
        """Innermost VLAN id, the one a zone is usually drawn on."""
        return self.vlans[-1] if self.vlans else None
