"""NetBIOS over TCP/IP (RFC 1001/1002): the name service (UDP 137) and the datagram
service (UDP 138) with the browser announcements Windows and Samba hosts broadcast.

Name service: the DNS message format (:func:`.dns.parse_message` in NBNS mode) with
first-level encoded names (RFC 1001 §14.1: 16 bytes, each nibble + ``A``); a name's
last byte is its suffix (``<00>`` workstation, ``<20>`` file server service, ``<1C>``
domain controllers, ``<1B>`` domain master browser, ``<1D>``/``<1E>`` browsers).
Claims: from registrations and refreshes (the address in the record), positive query
answers and node status answers (the names a host lists for itself, its MAC):

- ``hostname`` for unique ``<00>``/``<20>`` names; ``workgroup`` for group ``<00>``
  and ``<1E>`` names; ``role = domain_controller`` for ``<1C>`` group members and the
  ``<1B>`` owner.

Datagram service: the header (RFC 1002 §4.4) with source and destination names, then
for browser traffic an SMB Transaction to ``\\MAILSLOT\\BROWSE`` or ``\\MAILSLOT\\LANMAN``
carrying a browser frame (MS-BRWS §2.2): host and local master announcements give the
``hostname``, the OS version (major.minor, as Windows reports it: ``os``), the server
type bits (``domain_controller``); domain announcements give the ``workgroup`` and the
master browser's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.base import SERVER_TO_CLIENT
from otconduit.protocols.it import dns
from otconduit.protocols.it._base import DatagramDecoder
from otconduit.protocols.it._wire import Reader, WireError, ipv4, mac, text, usable_ip
from otconduit.protocols.it.claims import (
    DOMAIN_CONTROLLER,
    HOSTNAME,
    OS,
    ROLE,
    SRC_BROWSER,
    SRC_NETBIOS,
    WORKGROUP,
    ClaimSet,
)
from otconduit.protocols.it.hints import windows_version

NS_PORT: Final = 137
DGM_PORT: Final = 138
TYPE_NB: Final = 0x20
TYPE_NBSTAT: Final = 0x21
GROUP: Final = 0x8000  # NB_FLAGS G bit

OP_QUERY: Final = 0
OP_REGISTRATION: Final = 5
OP_RELEASE: Final = 6
OP_WACK: Final = 7
OP_REFRESH: Final = 8
OP_REFRESH_ALT: Final = 9
OP_MULTIHOMED: Final = 15
_REGISTERING: Final = frozenset({OP_REGISTRATION, OP_REFRESH, OP_REFRESH_ALT, OP_MULTIHOMED})

# Server type bits of a browser announcement (MS-BRWS §2.2.1.1 / MS-RAP SV_TYPE_*).
SV_TYPE_WORKSTATION: Final = 0x00000001
SV_TYPE_SERVER: Final = 0x00000002
SV_TYPE_DOMAIN_CTRL: Final = 0x00000008
SV_TYPE_DOMAIN_BAKCTRL: Final = 0x00000010

BROWSER_COMMANDS: Final = {
    0x01: "Host Announcement",
    0x02: "Announcement Request",
    0x08: "Election Request",
    0x09: "Get Backup List Request",
    0x0A: "Get Backup List Response",
    0x0B: "Become Backup Browser",
    0x0C: "Domain/Workgroup Announcement",
    0x0D: "Master Announcement",
    0x0E: "Reset Browser State Announcement",
    0x0F: "Local Master Announcement",
}
_ANNOUNCEMENTS: Final = frozenset({0x01, 0x0C, 0x0F})


@dataclass(frozen=True, slots=True)
class NetbiosName:
    name: bytes  # the 15 name bytes, trailing spaces removed
    suffix: int
    scope: str = ""

    @property
    def text(self) -> str:
        """The name as people write it (no suffix), non-printable bytes as ``<xx>``."""
        return "".join(chr(b) if 0x20 <= b < 0x7F else f"<{b:02x}>" for b in self.name)

    def __str__(self) -> str:
        scope = f".{self.scope}" if self.scope else ""
        return f"{self.text}<{self.suffix:02x}>{scope}"


def decode_name(encoded: str) -> NetbiosName:
    """A first-level encoded name (``EKEHEP…`` plus an optional ``.scope``)."""
    first, _, scope = encoded.partition(".")
    if len(first) != 32:
        raise WireError(f"encoded NetBIOS name of {len(first)} characters")
    raw = bytearray()
    for i in range(0, 32, 2):
        hi, lo = ord(first[i]) - 0x41, ord(first[i + 1]) - 0x41
        if not (0 <= hi < 16 and 0 <= lo < 16):
            raise WireError(f"NetBIOS name character outside A-P: {first[i : i + 2]!r}")
        raw.append((hi << 4) | lo)
    return NetbiosName(bytes(raw[:15]).rstrip(b" "), raw[15], scope)


@dataclass(frozen=True, slots=True)
class NameEntry:
    """One NetBIOS name with its flags and (name service) address."""

    name: NetbiosName
    flags: int
    address: str | None = None

    @property
    def group(self) -> bool:
        return bool(self.flags & GROUP)


@dataclass(frozen=True, slots=True)
class NameServiceMessage:
    message: dns.Message
    questions: tuple[NetbiosName, ...]
    entries: tuple[NameEntry, ...]  # NB records (one per address) and NBSTAT names
    unit_id: str | None  # MAC of a node status answer

    @property
    def opcode(self) -> int:
        return self.message.opcode

    @property
    def response(self) -> bool:
        return self.message.response


def parse_name_service(data: bytes) -> NameServiceMessage:
    """Decode one NBNS message (RFC 1002 §4.2)."""
    msg = dns.parse_message(data, netbios=True)
    questions = tuple(decode_name(q.name) for q in msg.questions)
    entries: list[NameEntry] = []
    unit: str | None = None
    for rec in msg.records:
        if rec.rtype == TYPE_NB and rec.raw:
            name = decode_name(rec.name)
            if len(rec.raw) % 6:
                raise WireError(f"NB record data of {len(rec.raw)} bytes")
            for i in range(0, len(rec.raw), 6):
                flags = int.from_bytes(rec.raw[i : i + 2], "big")
                entries.append(NameEntry(name, flags, ipv4(rec.raw[i + 2 : i + 6])))
        elif rec.rtype == TYPE_NBSTAT and rec.section == dns.SECTION_ANSWER and msg.response:
            r = Reader(rec.raw)
            for _ in range(r.u8("name count")):
                raw = r.take(16, "node name")
                flags = r.u16("name flags")
                entries.append(NameEntry(NetbiosName(raw[:15].rstrip(b" "), raw[15]), flags))
            if r.left >= 6:
                unit = mac(r.take(6))
    return NameServiceMessage(msg, questions, tuple(entries), unit)


def _name_claims(
    claims: ClaimSet, entry: NameEntry, ip: str, hw: str, how: str, conf: float, ts_ns: int
) -> None:
    name, suffix = entry.name.text.strip(), entry.name.suffix
    if not name or not (usable_ip(ip) or hw):
        return
    evidence = f"NetBIOS {how}: {entry.name}{' group' if entry.group else ''}"
    if not entry.group and suffix in (0x00, 0x20):
        claims.add(
            ip=ip,
            mac=hw,
            attribute=HOSTNAME,
            value=name,
            source=SRC_NETBIOS,
            confidence=conf,
            ts_ns=ts_ns,
            evidence=evidence,
        )
    elif entry.group and suffix in (0x00, 0x1E):
        claims.add(
            ip=ip,
            mac=hw,
            attribute=WORKGROUP,
            value=name,
            source=SRC_NETBIOS,
            confidence=conf,
            ts_ns=ts_ns,
            evidence=evidence,
        )
    elif (entry.group and suffix == 0x1C) or (not entry.group and suffix == 0x1B):
        claims.add(
            ip=ip,
            mac=hw,
            attribute=ROLE,
            value=DOMAIN_CONTROLLER,
            source=SRC_NETBIOS,
            confidence=0.7,
            ts_ns=ts_ns,
            evidence=evidence,
        )


class NameServiceDecoder(DatagramDecoder):
    """One UDP flow of the NetBIOS name service (port 137)."""

    protocol = "netbios-ns"

    def _datagram(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        m = parse_name_service(data)
        ep = self.endpoints
        sender = ep.server_ip if direction == SERVER_TO_CLIENT else ep.client_ip
        if not m.response and m.opcode in _REGISTERING:
            for e in m.entries:
                if e.address:
                    _name_claims(self.claims, e, e.address, "", "registration", 0.85, ts_ns)
        elif m.response and m.message.rcode == 0 and m.opcode == OP_QUERY:
            for e in m.entries:
                if e.address:
                    _name_claims(self.claims, e, e.address, "", "query answer", 0.7, ts_ns)
                else:  # node status: the names the sender holds
                    hw = m.unit_id if m.unit_id and m.unit_id != "00:00:00:00:00:00" else ""
                    _name_claims(self.claims, e, sender, hw, "node status", 0.9, ts_ns)


# -- datagram service -----------------------------------------------------------------
DGM_DIRECT_UNIQUE: Final = 0x10
DGM_DIRECT_GROUP: Final = 0x11
DGM_BROADCAST: Final = 0x12


@dataclass(frozen=True, slots=True)
class BrowserFrame:
    command: int
    server: str = ""  # host name; the workgroup in a domain announcement
    os_major: int = 0  # browser config version in a domain announcement
    os_minor: int = 0
    server_type: int = 0
    comment: str = ""  # the master browser's name in a domain announcement


@dataclass(frozen=True, slots=True)
class Datagram:
    msg_type: int
    source_ip: str
    source_name: NetbiosName | None
    destination_name: NetbiosName | None
    mailslot: str = ""
    browser: BrowserFrame | None = None


def _dgm_name(data: bytes, pos: int) -> tuple[NetbiosName, int]:
    name, after = dns.read_name(data, pos)
    return decode_name(name), after


def _browser(data: bytes) -> BrowserFrame:
    r = Reader(data)
    cmd = r.u8("browser command")
    if cmd not in _ANNOUNCEMENTS:
        return BrowserFrame(cmd)
    r.skip(5, "announcement header")  # update count, periodicity
    server = text(r.take(16, "server name").split(b"\x00", 1)[0], "latin-1")
    major, minor = r.u8(), r.u8()
    stype = r.u32le("server type")
    r.skip(4, "browser version and signature")
    rest = r.take(r.left)
    comment = text(rest.split(b"\x00", 1)[0], "latin-1")
    return BrowserFrame(cmd, server, major, minor, stype, comment)


def _smb_mailslot(data: bytes) -> tuple[str, bytes]:
    """The mailslot name and data of an SMB Transaction request (MS-CIFS 2.2.4.33)."""
    r = Reader(data)
    if r.take(4, "SMB signature") != b"\xffSMB":
        raise WireError("datagram user data is not SMB")
    command = r.u8()
    if command != 0x25:
        raise WireError(f"SMB command 0x{command:02x} in a datagram")
    r.pos = 32
    wct = r.u8("word count")
    if wct < 14:
        raise WireError(f"transaction word count {wct}")
    words = Reader(data, r.pos, r.pos + 2 * wct)
    words.need(2 * wct, "transaction words")
    words.skip(22)  # totals, maxima, flags, timeout, reserved, parameter count/offset
    data_count, data_offset = words.u16le(), words.u16le()
    setup = words.u8()
    r.pos += 2 * wct
    r.skip(2, "byte count")
    if setup > wct - 14:
        raise WireError(f"setup count {setup} exceeds the word count {wct}")
    name = text(data[r.pos :].split(b"\x00", 1)[0], "latin-1")
    body = Reader(data, data_offset, data_offset + data_count)
    return name, body.take(data_count, "transaction data")


def parse_datagram(data: bytes) -> Datagram:
    """Decode one NetBIOS datagram (RFC 1002 §4.4) and its browser frame if any."""
    r = Reader(data)
    msg_type = r.u8("message type")
    r.skip(3)  # flags, datagram id
    source_ip = ipv4(r.take(4, "source address"))
    r.skip(2)  # source port
    if msg_type not in (DGM_DIRECT_UNIQUE, DGM_DIRECT_GROUP, DGM_BROADCAST):
        return Datagram(msg_type, source_ip, None, None)
    length, _offset = r.u16("datagram length"), r.u16()
    end = r.pos + length
    if end > len(data):
        raise WireError(f"datagram length {length} beyond the {len(data)} bytes")
    src, pos = _dgm_name(data[:end], r.pos)
    dst, pos = _dgm_name(data[:end], pos)
    payload = data[pos:end]
    if not payload.startswith(b"\xffSMB"):
        return Datagram(msg_type, source_ip, src, dst)
    mailslot, body = _smb_mailslot(payload)
    browser = None
    if mailslot.upper() in ("\\MAILSLOT\\BROWSE", "\\MAILSLOT\\LANMAN") and body:
        browser = _browser(body)
    return Datagram(msg_type, source_ip, src, dst, mailslot, browser)


class DatagramServiceDecoder(DatagramDecoder):
    """One UDP flow of the NetBIOS datagram service (port 138)."""

    protocol = "netbios-dgm"

    def _datagram(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        d = parse_datagram(data)
        ip = d.source_ip
        if not usable_ip(ip) or d.browser is None:
            return
        b = d.browser
        c = self.claims
        label = BROWSER_COMMANDS.get(b.command, f"command 0x{b.command:02x}")
        if d.source_name is not None and d.source_name.suffix in (0x00, 0x20):
            c.add(
                ip=ip,
                attribute=HOSTNAME,
                value=d.source_name.text.strip(),
                source=SRC_BROWSER,
                confidence=0.8,
                ts_ns=ts_ns,
                evidence=f"NetBIOS datagram from {d.source_name} ({label})",
            )
        if d.destination_name is not None and d.destination_name.suffix in (0x1D, 0x1E):
            c.add(
                ip=ip,
                attribute=WORKGROUP,
                value=d.destination_name.text.strip(),
                source=SRC_BROWSER,
                confidence=0.7,
                ts_ns=ts_ns,
                evidence=f"browser datagram to {d.destination_name} ({label})",
            )
        if b.command == 0x0C:  # domain announcement: server is the workgroup
            c.add(
                ip=ip,
                attribute=WORKGROUP,
                value=b.server,
                source=SRC_BROWSER,
                confidence=0.8,
                ts_ns=ts_ns,
                evidence=f"{label} of {b.server} by master browser {b.comment}",
            )
            c.add(
                ip=ip,
                attribute=HOSTNAME,
                value=b.comment,
                source=SRC_BROWSER,
                confidence=0.8,
                ts_ns=ts_ns,
                evidence=f"{label}: master browser of {b.server}",
            )
            return
        if b.command not in _ANNOUNCEMENTS:
            return
        evidence = (
            f"{label}: {b.server}, OS version {b.os_major}.{b.os_minor}, "
            f"server type 0x{b.server_type:08x}" + (f", comment {b.comment!r}" if b.comment else "")
        )
        c.add(
            ip=ip,
            attribute=HOSTNAME,
            value=b.server,
            source=SRC_BROWSER,
            confidence=0.85,
            ts_ns=ts_ns,
            evidence=evidence,
        )
        os_name = windows_version(b.os_major, b.os_minor)
        if "samba" in b.comment.lower():
            os_name = "Unix (Samba)"
        if os_name:
            c.add(
                ip=ip,
                attribute=OS,
                value=os_name,
                source=SRC_BROWSER,
                confidence=0.5,
                ts_ns=ts_ns,
                evidence=evidence,
            )
        if b.server_type & (SV_TYPE_DOMAIN_CTRL | SV_TYPE_DOMAIN_BAKCTRL):
            c.add(
                ip=ip,
                attribute=ROLE,
                value=DOMAIN_CONTROLLER,
                source=SRC_BROWSER,
                confidence=0.8,
                ts_ns=ts_ns,
                evidence=evidence,
            )


def netbios_ns_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """NBNS: a DNS-format message whose names are all first-level encoded."""
    for data in (client, server):
        if data:
            try:
                m = parse_name_service(data)
            except WireError:
                return False
            return bool(m.questions or m.entries) or None
    return None


def netbios_dgm_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """NetBIOS datagram service: a datagram header with encoded names."""
    for data in (client, server):
        if data:
            try:
                d = parse_datagram(data)
            except WireError:
                return False
            return d.source_name is not None or on_known_port
    return None
