"""DHCP (RFC 2131 over BOOTP, RFC 951; options RFC 2132, client FQDN RFC 4702) to host
names, addresses and OS hints.

:func:`parse_message` decodes the fixed BOOTP fields and the options (the option
overload of RFC 2132 §9.3 and the split long options of RFC 3396 included).
:class:`DhcpDecoder` (UDP 67/68, one message per datagram) claims, for the client the
message is about (its MAC, and its address when one is known: the address the server
assigns in an ACK, the client's own address, or the one it asks for in a REQUEST):

- ``hostname`` from option 12 and the client FQDN of option 81;
- ``os`` from the vendor class identifier (option 60: ``MSFT 5.0``, ``android-dhcp-13``,
  ``dhcpcd-…:Linux-…``), with the identifier as evidence;
- ``domain`` from option 15 in a server's answer;
- ``ip`` for the MAC in an ACK (the binding);
- ``role = dhcp_server`` for the server that offers or acknowledges (option 54).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from otconduit.protocols.base import Endpoints
from otconduit.protocols.it._base import DatagramDecoder
from otconduit.protocols.it._wire import Reader, WireError, ipv4, mac, text, usable_ip
from otconduit.protocols.it.claims import (
    DHCP_SERVER,
    DOMAIN,
    HOSTNAME,
    IP,
    OS,
    ROLE,
    SRC_DHCP,
)
from otconduit.protocols.it.hints import dhcp_vendor_os

SERVER_PORT: Final = 67
CLIENT_PORT: Final = 68
MAGIC: Final = b"\x63\x82\x53\x63"  # RFC 2131 §3
FIXED: Final = 236  # op .. file

BOOTREQUEST: Final = 1
BOOTREPLY: Final = 2
MESSAGE_TYPES: Final = {
    1: "DISCOVER",
    2: "OFFER",
    3: "REQUEST",
    4: "DECLINE",
    5: "ACK",
    6: "NAK",
    7: "RELEASE",
    8: "INFORM",
}
OPT_PAD, OPT_END = 0, 255
OPT_HOSTNAME: Final = 12
OPT_DOMAIN: Final = 15
OPT_REQUESTED_IP: Final = 50
OPT_OVERLOAD: Final = 52
OPT_MESSAGE_TYPE: Final = 53
OPT_SERVER_ID: Final = 54
OPT_PARAMS: Final = 55
OPT_VENDOR_CLASS: Final = 60
OPT_CLIENT_ID: Final = 61
OPT_FQDN: Final = 81
MAX_OPTIONS: Final = 256


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    op: int
    htype: int
    xid: int
    ciaddr: str
    yiaddr: str
    siaddr: str
    giaddr: str
    chaddr: str  # MAC text when htype 1 / hlen 6, else hex of the hlen bytes
    options: dict[int, bytes] = field(default_factory=dict)  # split options joined
    magic: bool = True  # a BOOTP message without the DHCP cookie has no options

    @property
    def message_type(self) -> int | None:
        v = self.options.get(OPT_MESSAGE_TYPE)
        return v[0] if v and len(v) == 1 else None

    def ip_option(self, code: int) -> str | None:
        v = self.options.get(code)
        return ipv4(v) if v is not None and len(v) == 4 else None

    def text_option(self, code: int) -> str | None:
        v = self.options.get(code)
        return text(v) if v is not None else None

    @property
    def hostname(self) -> str | None:
        return self.text_option(OPT_HOSTNAME)

    @property
    def vendor_class(self) -> str | None:
        return self.text_option(OPT_VENDOR_CLASS)

    @property
    def fqdn(self) -> str | None:
        """The client FQDN of option 81: flags, two result codes, then the name in DNS
        wire format when the E flag is set, else ASCII."""
        v = self.options.get(OPT_FQDN)
        if v is None or len(v) < 3:
            return None
        name = v[3:]
        if v[0] & 0x04:
            return _wire_name(name)
        return text(name)


def _wire_name(raw: bytes) -> str:
    """An uncompressed DNS wire-format name (a trailing root label optional)."""
    labels: list[str] = []
    pos = 0
    while pos < len(raw) and raw[pos]:
        n = raw[pos]
        if n > 63 or pos + 1 + n > len(raw):
            raise WireError("option 81: bad label in the client name")
        labels.append(raw[pos + 1 : pos + 1 + n].decode("utf-8", "backslashreplace"))
        pos += 1 + n
    return ".".join(labels)


def _options(data: bytes, start: int, end: int, out: dict[int, bytes], budget: list[int]) -> None:
    r = Reader(data, start, end)
    while r.left:
        code = r.u8()
        if code == OPT_PAD:
            continue
        if code == OPT_END:
            return
        budget[0] -= 1
        if budget[0] < 0:
            raise WireError(f"more than {MAX_OPTIONS} options")
        length = r.u8("option length")
        value = r.take(length, f"option {code}")
        out[code] = out.get(code, b"") + value  # RFC 3396: split options are joined
    # Options ending without an END option: accepted (many stacks pad instead).


def parse_message(data: bytes) -> DhcpMessage:
    """Decode one BOOTP/DHCP message."""
    r = Reader(data)
    r.need(FIXED, "BOOTP header")
    op, htype, hlen, _hops = r.u8(), r.u8(), r.u8(), r.u8()
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise WireError(f"op {op}")
    if hlen > 16:
        raise WireError(f"hardware address length {hlen}")
    xid = r.u32()
    r.skip(4)  # secs, flags
    ciaddr, yiaddr, siaddr, giaddr = (ipv4(r.take(4)) for _ in range(4))
    hw = r.take(16)[:hlen]
    chaddr = mac(hw) if htype == 1 and hlen == 6 else hw.hex()
    options: dict[int, bytes] = {}
    if len(data) < FIXED + 4 or data[FIXED : FIXED + 4] != MAGIC:
        return DhcpMessage(op, htype, xid, ciaddr, yiaddr, siaddr, giaddr, chaddr, options, False)
    budget = [MAX_OPTIONS]
    _options(data, FIXED + 4, len(data), options, budget)
    overload = options.get(OPT_OVERLOAD, b"\x00")[:1]
    if overload and overload[0] & 1:
        _options(data, 108, 236, options, budget)  # the file field
    if overload and overload[0] & 2:
        _options(data, 44, 108, options, budget)  # the sname field
    return DhcpMessage(op, htype, xid, ciaddr, yiaddr, siaddr, giaddr, chaddr, options)


def client_address(msg: DhcpMessage) -> str:
    """The address the message ties to the client, "" when none: the one the server
    assigns (ACK), the client's own (``ciaddr``), or the one it asks for (REQUEST)."""
    mtype = msg.message_type
    if msg.op == BOOTREPLY:
        return msg.yiaddr if mtype == 5 and usable_ip(msg.yiaddr) else ""
    if usable_ip(msg.ciaddr):
        return msg.ciaddr
    requested = msg.ip_option(OPT_REQUESTED_IP)
    return requested if mtype == 3 and requested and usable_ip(requested) else ""


class DhcpDecoder(DatagramDecoder):
    """One UDP flow of DHCP (client port 68, server port 67)."""

    protocol = "dhcp"

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints)
        self.message_types: dict[int, int] = {}

    def _datagram(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        msg = parse_message(data)
        mtype = msg.message_type or 0
        self.message_types[mtype] = self.message_types.get(mtype, 0) + 1
        ip = client_address(msg)
        hw = msg.chaddr if msg.htype == 1 and len(msg.chaddr) == 17 else ""
        if msg.op == BOOTREPLY and mtype in (2, 5, 6):
            server = msg.ip_option(OPT_SERVER_ID) or self.endpoints.server_ip
            if usable_ip(server):
                self.claims.add(
                    ip=server,
                    attribute=ROLE,
                    value=DHCP_SERVER,
                    source=SRC_DHCP,
                    confidence=0.9,
                    ts_ns=ts_ns,
                    evidence=f"DHCP {MESSAGE_TYPES[mtype]} to {msg.chaddr}",
                )
        if not (ip or hw):
            return
        kind = MESSAGE_TYPES.get(mtype, "BOOTP")
        for name, what in ((msg.hostname, "option 12"), (msg.fqdn, "option 81")):
            if name:
                self.claims.add(
                    ip=ip,
                    mac=hw,
                    attribute=HOSTNAME,
                    value=name.rstrip("."),
                    source=SRC_DHCP,
                    confidence=0.8,
                    ts_ns=ts_ns,
                    evidence=f"DHCP {kind} {what}: {name}",
                )
        vendor = msg.vendor_class if msg.op == BOOTREQUEST else None
        if vendor:
            os_name = dhcp_vendor_os(vendor)
            if os_name:
                self.claims.add(
                    ip=ip,
                    mac=hw,
                    attribute=OS,
                    value=os_name,
                    source=SRC_DHCP,
                    confidence=0.6,
                    ts_ns=ts_ns,
                    evidence=f"DHCP vendor class (option 60): {vendor}",
                )
        if msg.op == BOOTREPLY and mtype == 5 and ip:
            self.claims.add(
                ip=ip,
                mac=hw,
                attribute=IP,
                value=ip,
                source=SRC_DHCP,
                confidence=0.9,
                ts_ns=ts_ns,
                evidence=f"DHCP ACK assigns {ip} to {msg.chaddr}",
            )
            domain = msg.text_option(OPT_DOMAIN)
            if domain:
                self.claims.add(
                    ip=ip,
                    mac=hw,
                    attribute=DOMAIN,
                    value=domain.rstrip("."),
                    source=SRC_DHCP,
                    confidence=0.6,
                    ts_ns=ts_ns,
                    evidence=f"DHCP ACK option 15: {domain}",
                )


def dhcp_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """A DHCP flow: the first datagram is BOOTP with the DHCP magic cookie."""
    for data in (client, server):
        if data:
            try:
                return parse_message(data).magic or None
            except WireError:
                return False
    return None
