"""DNS messages (RFC 1035 §4), and the mDNS (RFC 6762, UDP 5353) and LLMNR (RFC 4795,
UDP 5355) messages that share the format, to host names.

:func:`parse_message` decodes the header, questions and resource records of one message
(name compression followed with a hop bound and the 255-octet name limit); A, AAAA,
CNAME, PTR, NS and SRV data are decoded, other record data kept raw.
:class:`DnsDecoder` is a :class:`~otconduit.protocols.base.ConnectionDecoder` for a UDP
flow (one message per datagram) and :class:`DnsTcpDecoder` for DNS over TCP (two-byte
length prefix, RFC 1035 §4.2.2). What they claim:

- ``hostname`` for every address an answer gives a name (A/AAAA owner names, and the
  CNAME aliases that led to them), and for every address a reverse PTR names;
- for mDNS and LLMNR the answers come from the named host itself (higher confidence);
- ``role = dns_server`` for the server that answers on port 53.

Queries claim nothing: asking for a name says nothing about the asker.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from otconduit.protocols.base import SERVER_TO_CLIENT, Endpoints
from otconduit.protocols.it._base import DatagramDecoder, StreamDecoder
from otconduit.protocols.it._wire import Reader, WireError, ipv4, ipv6, usable_ip
from otconduit.protocols.it.claims import (
    DNS_SERVER,
    HOSTNAME,
    ROLE,
    SRC_DNS,
    SRC_LLMNR,
    SRC_MDNS,
    ClaimSet,
)

DNS_PORT: Final = 53
MDNS_PORT: Final = 5353
LLMNR_PORT: Final = 5355

TYPE_A: Final = 1
TYPE_NS: Final = 2
TYPE_CNAME: Final = 5
TYPE_PTR: Final = 12
TYPE_AAAA: Final = 28
TYPE_SRV: Final = 33
TYPE_OPT: Final = 41
_NAME_TYPES: Final = frozenset({TYPE_NS, TYPE_CNAME, TYPE_PTR})

MAX_NAME: Final = 255  # octets of a name on the wire (RFC 1035 §3.1)
MAX_HOPS: Final = 64  # compression pointers followed for one name
MAX_RECORDS: Final = 512  # questions + records decoded from one message
HEADER: Final = 12

SECTION_ANSWER: Final = 0
SECTION_AUTHORITY: Final = 1
SECTION_ADDITIONAL: Final = 2


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    qtype: int
    qclass: int  # mDNS: top bit asks for a unicast response


@dataclass(frozen=True, slots=True)
class Record:
    section: int  # SECTION_ANSWER / _AUTHORITY / _ADDITIONAL
    name: str
    rtype: int
    rclass: int  # mDNS: top bit is cache-flush
    ttl: int
    data: str | None  # address text (A/AAAA), target name (CNAME/PTR/NS/SRV), else None
    raw: bytes  # the record data as sent


@dataclass(frozen=True, slots=True)
class Message:
    ident: int
    flags: int
    questions: tuple[Question, ...]
    records: tuple[Record, ...]

    @property
    def response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    def answers(self) -> tuple[Record, ...]:
        return tuple(r for r in self.records if r.section == SECTION_ANSWER)


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    """The name at ``pos`` and the offset just after it in the message (after the first
    pointer when compressed). Labels are joined with ``.``; the root is ``""``."""
    labels: list[str] = []
    wire = 0
    hops = 0
    end: int | None = None
    n = len(data)
    while True:
        if pos >= n:
            raise WireError(f"name runs past the message end at {pos}")
        length = data[pos]
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= n:
                raise WireError("truncated compression pointer")
            hops += 1
            if hops > MAX_HOPS:
                raise WireError("name compression loop")
            if end is None:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            continue
        if kind:
            raise WireError(f"label type 0x{kind:02x} at {pos}")
        if length == 0:
            return ".".join(labels), (pos + 1 if end is None else end)
        if pos + 1 + length > n:
            raise WireError(f"label of {length} bytes runs past the message end")
        wire += length + 1
        if wire > MAX_NAME:
            raise WireError(f"name longer than {MAX_NAME} octets")
        labels.append(data[pos + 1 : pos + 1 + length].decode("utf-8", "backslashreplace"))
        pos += 1 + length


def _rdata(data: bytes, rtype: int, start: int, length: int, netbios: bool) -> str | None:
    if netbios:  # NBNS (RFC 1002): NB and NBSTAT data are decoded by .netbios
        return None
    raw = data[start : start + length]
    if rtype == TYPE_A:
        return ipv4(raw) if length == 4 else _bad(f"A record of {length} bytes")
    if rtype == TYPE_AAAA:
        return ipv6(raw) if length == 16 else _bad(f"AAAA record of {length} bytes")
    if rtype in _NAME_TYPES or rtype == TYPE_SRV:
        at = start + 6 if rtype == TYPE_SRV else start
        if at >= start + length:
            raise WireError(f"type {rtype} record data of {length} bytes")
        name, after = read_name(data, at)
        if after > start + length:
            raise WireError(f"type {rtype} name runs past its record data")
        return name
    return None


def _bad(reason: str) -> str:
    raise WireError(reason)


def parse_message(data: bytes, *, netbios: bool = False) -> Message:
    """Decode one DNS-format message (``netbios``: NBNS, whose type 0x20/0x21 data
    differ from DNS's)."""
    r = Reader(data)
    r.need(HEADER, "header")
    ident, flags = r.u16(), r.u16()
    qd, an, ns, ar = r.u16(), r.u16(), r.u16(), r.u16()
    if qd + an + ns + ar > MAX_RECORDS:
        raise WireError(f"{qd + an + ns + ar} records announced (limit {MAX_RECORDS})")
    questions: list[Question] = []
    for _ in range(qd):
        name, r.pos = read_name(data, r.pos)
        questions.append(Question(name, r.u16("qtype"), r.u16("qclass")))
    records: list[Record] = []
    for section, count in ((SECTION_ANSWER, an), (SECTION_AUTHORITY, ns), (SECTION_ADDITIONAL, ar)):
        for _ in range(count):
            name, r.pos = read_name(data, r.pos)
            rtype, rclass, ttl, length = r.u16("type"), r.u16("class"), r.u32("ttl"), r.u16()
            r.need(length, "record data")
            value = None if rtype == TYPE_OPT else _rdata(data, rtype, r.pos, length, netbios)
            records.append(
                Record(section, name, rtype, rclass, ttl, value, data[r.pos : r.pos + length])
            )
            r.pos += length
    return Message(ident, flags, tuple(questions), tuple(records))


def reverse_address(name: str) -> str | None:
    """The address a reverse-lookup name stands for (``4.3.2.1.in-addr.arpa`` ->
    ``1.2.3.4``, nibbles under ``ip6.arpa``), None for any other name."""
    low = name.lower().rstrip(".")
    try:
        if low.endswith(".in-addr.arpa"):
            parts = low[: -len(".in-addr.arpa")].split(".")
            if len(parts) == 4:
                return str(ipaddress.IPv4Address(".".join(reversed(parts))))
        elif low.endswith(".ip6.arpa"):
            nibbles = low[: -len(".ip6.arpa")].split(".")
            if len(nibbles) == 32 and all(len(x) == 1 for x in nibbles):
                return str(ipaddress.IPv6Address(int("".join(reversed(nibbles)), 16)))
    except ValueError:
        return None
    return None


def source_for_port(port: int) -> str:
    """Claim source of a DNS-format flow by its server port."""
    return {MDNS_PORT: SRC_MDNS, LLMNR_PORT: SRC_LLMNR}.get(port, SRC_DNS)


def message_claims(
    claims: ClaimSet,
    endpoints: Endpoints,
    direction: int,
    msg: Message,
    ts_ns: int,
    source: str = SRC_DNS,
) -> None:
    """What one message of a flow says about hosts (see the module docstring)."""
    if source == SRC_DNS and direction == SERVER_TO_CLIENT and msg.response:
        server = endpoints.server_ip
        if usable_ip(server):
            claims.add(
                ip=server,
                attribute=ROLE,
                value=DNS_SERVER,
                source=SRC_DNS,
                confidence=0.8,
                ts_ns=ts_ns,
                evidence=f"answers DNS queries on port {endpoints.server_port}",
            )
    if not msg.response or msg.rcode != 0 or msg.opcode != 0:
        return
    own = source != SRC_DNS  # mDNS / LLMNR: the host answers for itself
    confidence = 0.8 if own else 0.6
    aliases: dict[str, str] = {}  # CNAME target -> alias (lower case)
    for rec in msg.records:
        if rec.rtype == TYPE_CNAME and rec.data:
            aliases.setdefault(rec.data.lower(), rec.name)
    for rec in msg.records:
        if rec.data is None or (rec.section != SECTION_ANSWER and not own):
            continue
        if rec.rtype in (TYPE_A, TYPE_AAAA) and usable_ip(rec.data) and rec.name:
            claims.add(
                ip=rec.data,
                attribute=HOSTNAME,
                value=rec.name,
                source=source,
                confidence=confidence,
                ts_ns=ts_ns,
                evidence=f"{source} answer: {rec.name} has address {rec.data}",
            )
            name, seen = rec.name.lower(), 0
            while name in aliases and seen < 8:  # walk the CNAME chain back
                alias = aliases[name]
                claims.add(
                    ip=rec.data,
                    attribute=HOSTNAME,
                    value=alias,
                    source=source,
                    confidence=confidence - 0.1,
                    ts_ns=ts_ns,
                    evidence=f"{source} answer: {alias} is an alias of {rec.name}",
                )
                name, seen = alias.lower(), seen + 1
        elif rec.rtype == TYPE_PTR and rec.data:
            ip = reverse_address(rec.name)
            if ip is not None and usable_ip(ip):
                claims.add(
                    ip=ip,
                    attribute=HOSTNAME,
                    value=rec.data,
                    source=source,
                    confidence=confidence + 0.1,
                    ts_ns=ts_ns,
                    evidence=f"{source} answer: {rec.name} points to {rec.data}",
                )


class DnsDecoder(DatagramDecoder):
    """One UDP flow of DNS, mDNS or LLMNR (``source``: ``dns``, ``mdns`` or ``llmnr``;
    by default it follows the server port)."""

    protocol = "dns"

    def __init__(self, endpoints: Endpoints, source: str | None = None) -> None:
        super().__init__(endpoints)
        self.protocol = source or source_for_port(endpoints.server_port)

    def _datagram(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        msg = parse_message(data)
        message_claims(self.claims, self.endpoints, direction, msg, ts_ns, self.protocol)


class DnsTcpDecoder(StreamDecoder):
    """DNS (or LLMNR) over TCP: messages behind a two-byte length, both directions."""

    protocol = "dns"
    limit = 65537

    def __init__(self, endpoints: Endpoints, source: str | None = None) -> None:
        super().__init__(endpoints)
        self.protocol = source or source_for_port(endpoints.server_port)
        self.message_count = 0

    def _parse(self, direction: int, buf: bytearray, frame: int, ts_ns: int) -> int:
        pos = 0
        while len(buf) - pos >= 2:
            length = (buf[pos] << 8) | buf[pos + 1]
            if len(buf) - pos - 2 < length:
                break
            msg = parse_message(bytes(buf[pos + 2 : pos + 2 + length]))
            self.message_count += 1
            message_claims(self.claims, self.endpoints, direction, msg, ts_ns, self.protocol)
            pos += 2 + length
        return pos


def _netbios_question(q: Question) -> bool:
    first = q.name.split(".", 1)[0]
    return q.qtype in (0x20, 0x21) and len(first) == 32 and all("A" <= c <= "P" for c in first)


def dns_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """A DNS flow: the first datagram parses as a DNS message with at most a few
    questions (UDP; TCP adds the two-byte length)."""
    for data in (client, server):
        if not data:
            continue
        try:
            msg = parse_message(data)
        except WireError:
            if len(data) >= 2 and ((data[0] << 8) | data[1]) == len(data) - 2:
                try:
                    msg = parse_message(data[2:])
                except WireError:
                    return False
            else:
                return False
        if len(msg.questions) > 8 or msg.opcode not in (0, 1, 2, 4, 5):
            return False
        if msg.questions and all(_netbios_question(q) for q in msg.questions):
            return False  # the NetBIOS name service shares the format
        return True if on_known_port or msg.questions else None
    return None
