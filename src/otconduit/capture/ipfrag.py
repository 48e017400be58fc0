"""IPv4 and IPv6 fragment reassembly, with bounded memory and capture-time timeouts.

Industrial protocols rarely fragment, but when they do (large BACnet or OPC UA datagrams, or
an attacker hiding a payload across fragments) decoders need the whole datagram. Overlapping
data is resolved "first data wins", and overlaps are counted since they are a known evasion.
"""

from __future__ import annotations

import dataclasses
from bisect import insort
from collections import OrderedDict
from dataclasses import dataclass, field

from otconduit.capture.decode import decode_transport
from otconduit.capture.packet import Packet
from otconduit.capture.tcp import uncovered_spans

MAX_DATAGRAMS = 1024  # datagrams in flight; the oldest is dropped beyond this
FRAG_TIMEOUT_NS = 30 * 1_000_000_000  # capture time a datagram may take to complete
MAX_DATAGRAM_LEN = 65535  # largest IP payload a fragment may reach (RFC 791, RFC 8200 §4.5)
# Fragments per datagram: 45 carry 64 KiB at Ethernet's MTU; thousands of tiny ones are an
# evasion or resource attack, and would make each insertion slow.
MAX_FRAGMENTS = 256

# (ip version, source, destination, protocol (IPv4 only), identification): RFC 791 §3.2 and
# RFC 8200 §4.5 say which fields identify the fragments of one datagram.
_Key = tuple[int, str, str, int, int]


@dataclass(slots=True)
class _Datagram:
    first_ts: int
    pieces: list[tuple[int, bytes]] = field(default_factory=list)  # sorted, disjoint
    total: int | None = None  # payload length, known once the last fragment is in
    head: Packet | None = None  # the offset-0 fragment, whose headers the result keeps
    frames: list[int] = field(default_factory=list)


class Defragmenter:
    """Feed every decoded packet; get it back, None while a datagram is incomplete, or the
    reassembled datagram (with its transport header parsed) once its last piece arrives.
    """

    def __init__(
        self, max_datagrams: int = MAX_DATAGRAMS, timeout_ns: int = FRAG_TIMEOUT_NS
    ) -> None:
        self.max_datagrams = max_datagrams
        self.timeout_ns = timeout_ns
        self._flights: OrderedDict[_Key, _Datagram] = OrderedDict()
        self.reassembled = 0
        self.timed_out = 0  # incomplete datagrams dropped by timeout or to make room
        self.overlaps = 0  # fragments that overlapped data already held (duplicates too)
        self.dropped = 0  # fragments that cannot be used: cut by snaplen, too long or too many

    @property
    def in_flight(self) -> int:
        """Incomplete datagrams held."""
        return len(self._flights)

    def feed(self, pkt: Packet) -> Packet | None:
        """``pkt`` itself if it is no fragment, else None or the completed datagram."""
        if not (pkt.more_fragments or pkt.frag_offset):
            return pkt
        self._expire(pkt.ts_ns)
        start = pkt.frag_offset
        end = start + len(pkt.payload)
        if pkt.l4_truncated or end > MAX_DATAGRAM_LEN:
            self.dropped += 1
            return None
        key = (
            pkt.ip_version,
            pkt.src_ip,
            pkt.dst_ip,
            pkt.ip_proto if pkt.ip_version == 4 else 0,
            pkt.ip_id,
        )
        dgram = self._flights.get(key)
        if dgram is None:
            if len(self._flights) >= self.max_datagrams:
                self._flights.popitem(last=False)
                self.timed_out += 1
            dgram = self._flights[key] = _Datagram(pkt.ts_ns)
        dgram.frames.append(pkt.frame)
        if len(dgram.frames) > MAX_FRAGMENTS:
            del self._flights[key]
            self.dropped += len(dgram.frames)
            return None
        if not pkt.more_fragments and dgram.total is None:
            dgram.total = end
        if start == 0 and dgram.head is None:
            dgram.head = pkt
        if dgram.total is not None:
            end = min(end, dgram.total)
        if _insert(dgram.pieces, start, pkt.payload[: max(0, end - start)]):
            self.overlaps += 1
        if dgram.head is None or dgram.total is None:
            return None
        total = dgram.total
        if sum(min(s + len(d), total) - s for s, d in dgram.pieces if s < total) < total:
            return None
        del self._flights[key]
        self.reassembled += 1
        return _rebuild(dgram.head, pkt, dgram)

    def _expire(self, now_ns: int) -> None:
        while self._flights:
            dgram = next(iter(self._flights.values()))
            if now_ns - dgram.first_ts <= self.timeout_ns:
                break
            self._flights.popitem(last=False)
            self.timed_out += 1


def _insert(pieces: list[tuple[int, bytes]], start: int, data: bytes) -> bool:
    """Add the parts of ``data`` at ``start`` not held yet; True if any part was held."""
    if not data:
        return False
    end = start + len(data)
    spans = uncovered_spans(((s, s + len(d)) for s, d in pieces), start, end)
    for s, e in spans:
        insort(pieces, (s, data[s - start : e - start]), key=lambda piece: piece[0])
    return spans != [(start, end)]


def _rebuild(head: Packet, last: Packet, dgram: _Datagram) -> Packet:
    """The head fragment's headers around the whole payload, stamped with the last fragment."""
    total = dgram.total or 0
    payload = b"".join(d for _, d in dgram.pieces)[:total]
    out = dataclasses.replace(
        head,
        frame=last.frame,
        ts_ns=last.ts_ns,
        caplen=last.caplen,
        wirelen=last.wirelen,
        ip_len=head.ip_len - len(head.payload) + total,
        more_fragments=False,
        frag_offset=0,
        frames=tuple(sorted(set(dgram.frames))),
        payload=b"",
    )
    decode_transport(out, head.ip_proto, payload)
    return out
