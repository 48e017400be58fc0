"""BACnet/IP virtual link layer (135 Annex J.2) and network layer (135 §6.2).

:func:`parse_bvlc` reads one UDP datagram: the BVLC header (type 0x81, function, length
of the whole BVLL message; when it disagrees with the datagram's size the datagram wins
and the mismatch is a problem) and the function's own fields (BVLC-Result code, BDT/FDT
entries, foreign-device TTL, the original source of a Forwarded-NPDU), leaving the NPDU
of the four NPDU-carrying functions to :func:`parse_npdu`.

:func:`parse_npdu` reads the NPCI: version 1, control octet (bit 7 network layer
message, bit 5 DNET/DLEN/DADR present, bit 3 SNET/SLEN/SADR present, bit 2 expecting
reply, bits 1-0 priority), the addresses, the hop count (when DNET is present) and the
message type (plus a vendor id for proprietary types 0x80-0xFF); the rest is an APDU or
the body of a network layer message.

Either returns a value with a ``problem`` (decoded as far as the bytes allow) or, when
nothing can be made of the bytes, a string saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from otconduit.protocols.bacnet import enums as E

BVLC_HEADER: Final = 4
BIP_ADDRESS: Final = 6  # IPv4 address and UDP port (J.1.2)
MAX_ENTRIES: Final = 64  # BDT/FDT entries kept in detail


def bip_address(raw: bytes) -> str:
    """A B/IP address (4 octets of IPv4 address, 2 of UDP port) as ``a.b.c.d:port``."""
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}:{int.from_bytes(raw[4:6], 'big')}"


@dataclass(frozen=True, slots=True)
class Bvlc:
    """One BVLL message."""

    function: int
    length: int  # the BVLC length field
    npdu: bytes | None = None  # NPDU-carrying functions
    origin: str | None = None  # Forwarded-NPDU: original source B/IP address
    result: int | None = None  # BVLC-Result code
    ttl: int | None = None  # Register-Foreign-Device time-to-live (seconds)
    entries: tuple[str, ...] = ()  # BDT / FDT entries, rendered
    entry_count: int = 0
    address: str | None = None  # Delete-Foreign-Device-Table-Entry
    problem: str | None = None
    # A length field that disagrees with the datagram: reported, but the message is
    # decoded from what UDP delivered (as Wireshark and Zeek do), so what follows keeps
    # its own outcome instead of being called malformed for a framing slip.
    length_note: str | None = None


def _entries(body: bytes, *, fdt: bool) -> tuple[tuple[str, ...], int]:
    """BDT entries (address, broadcast distribution mask) or FDT entries (address, TTL,
    seconds remaining), 10 octets each, rendered; and how many there were."""
    out = []
    count = len(body) // 10
    for i in range(min(count, MAX_ENTRIES)):
        raw = body[i * 10 : (i + 1) * 10]
        addr = bip_address(raw)
        if not fdt:
            out.append(f"{addr}/{raw[6]}.{raw[7]}.{raw[8]}.{raw[9]}")
        else:
            ttl = int.from_bytes(raw[6:8], "big")
            left = int.from_bytes(raw[8:10], "big")
            out.append(f"{addr} ttl={ttl} remaining={left}")
    return tuple(out), count


def parse_bvlc(datagram: bytes) -> Bvlc | str:
    """The BVLL message in ``datagram``, or why there is none."""
    size = len(datagram)
    if size < BVLC_HEADER:
        return f"datagram of {size} octets is shorter than a BVLC header"
    if datagram[0] != E.BVLC_TYPE_IP:
        kind = datagram[0]
        if kind == E.BVLC_TYPE_IPV6:
            return "BVLC type 0x82 (BACnet/IPv6) is not decoded"
        return f"BVLC type 0x{kind:02x} is not 0x81 (BACnet/IP)"
    function = datagram[1]
    length = int.from_bytes(datagram[2:4], "big")
    if length < BVLC_HEADER:
        return f"BVLC length {length} is below the header size"
    problems: list[str] = []
    note = None
    if length != size:
        # The datagram's size is what the UDP layer delivered: decode all of it, as
        # Wireshark and Zeek do, and say the length field is wrong.
        note = f"BVLC length {length} but the datagram has {size} octets"
    body = datagram[BVLC_HEADER:]
    if function in (E.ORIGINAL_UNICAST, E.ORIGINAL_BROADCAST, E.DISTRIBUTE_BROADCAST):
        return Bvlc(function, length, npdu=body, length_note=note)

    def done(**changes: Any) -> Bvlc:
        return Bvlc(
            function, length, problem="; ".join(problems) or None, length_note=note, **changes
        )

    if function == E.BVLC_RESULT:
        if len(body) != 2:
            problems.append(f"BVLC-Result with {len(body)} octets where 2 are due")
        return done(result=int.from_bytes(body[:2], "big") if len(body) >= 2 else None)
    if function in (E.WRITE_BDT, E.READ_BDT_ACK):
        if len(body) % 10:
            problems.append(f"{len(body) % 10} octets after the last BDT entry")
        entries, count = _entries(body, fdt=False)
        return done(entries=entries, entry_count=count)
    if function == E.READ_FDT_ACK:
        if len(body) % 10:
            problems.append(f"{len(body) % 10} octets after the last FDT entry")
        entries, count = _entries(body, fdt=True)
        return done(entries=entries, entry_count=count)
    if function in (E.READ_BDT, E.READ_FDT):
        if body:
            problems.append(f"{len(body)} unexpected octets")
        return done()
    if function == E.REGISTER_FOREIGN_DEVICE:
        if len(body) != 2:
            problems.append(f"Register-Foreign-Device with {len(body)} octets where 2 are due")
        return done(ttl=int.from_bytes(body[:2], "big") if len(body) >= 2 else None)
    if function == E.DELETE_FDT_ENTRY:
        if len(body) != BIP_ADDRESS:
            problems.append(f"FDT entry of {len(body)} octets where 6 are due")
        return done(address=bip_address(body) if len(body) >= BIP_ADDRESS else None)
    if function == E.FORWARDED_NPDU:
        if len(body) < BIP_ADDRESS:
            problems.append("Forwarded-NPDU cut short in its original source address")
            return done()
        return done(origin=bip_address(body[:BIP_ADDRESS]), npdu=body[BIP_ADDRESS:])
    if function != E.SECURE_BVLL:
        problems.append(f"unknown BVLC function 0x{function:02x}")
    return done()


@dataclass(frozen=True, slots=True)
class Npdu:
    """The NPCI of one NPDU and what follows it."""

    control: int
    payload: bytes  # APDU, or the body of a network layer message
    dnet: int | None = None
    dadr: bytes | None = None
    snet: int | None = None
    sadr: bytes | None = None
    hop_count: int | None = None
    message_type: int | None = None  # network layer message type
    vendor_id: int | None = None  # proprietary network layer messages
    problem: str | None = None

    @property
    def is_network_message(self) -> bool:
        return self.message_type is not None

    @property
    def expecting_reply(self) -> bool:
        return bool(self.control & 0x04)

    @property
    def priority(self) -> int:
        return self.control & 0x03

    def addressing(self) -> dict[str, object]:
        """Remote network addresses for an operation's detail (only those present)."""
        out: dict[str, object] = {}
        if self.dnet is not None:
            out["dnet"] = self.dnet
            out["dadr"] = (self.dadr or b"").hex()
            out["hop_count"] = self.hop_count
        if self.snet is not None:
            out["snet"] = self.snet
            out["sadr"] = (self.sadr or b"").hex()
        return out


def parse_npdu(data: bytes) -> Npdu | str:
    """The NPDU in ``data``, or why there is none."""
    if len(data) < 2:
        return f"NPDU of {len(data)} octets is shorter than its header"
    if data[0] != 1:
        return f"NPDU protocol version {data[0]} is not 1"
    control = data[1]
    pos, end = 2, len(data)
    problems = []
    if control & 0x50:
        problems.append(f"reserved NPCI control bits set (0x{control:02x})")
    dnet = dadr = snet = sadr = hop = None
    try:
        if control & 0x20:
            if pos + 3 > end:
                raise IndexError("DNET/DLEN")
            dnet = int.from_bytes(data[pos : pos + 2], "big")
            dlen = data[pos + 2]
            pos += 3
            if pos + dlen > end:
                raise IndexError("DADR")
            dadr = data[pos : pos + dlen]
            pos += dlen
        if control & 0x08:
            if pos + 3 > end:
                raise IndexError("SNET/SLEN")
            snet = int.from_bytes(data[pos : pos + 2], "big")
            slen = data[pos + 2]
            pos += 3
            if slen == 0:
                problems.append("SLEN 0 (a source address cannot be a broadcast)")
            if snet == 0xFFFF:
                problems.append("SNET 65535 (the global broadcast network)")
            if pos + slen > end:
                raise IndexError("SADR")
            sadr = data[pos : pos + slen]
            pos += slen
        if control & 0x20:
            if pos >= end:
                raise IndexError("hop count")
            hop = data[pos]
            pos += 1
        message_type = vendor = None
        if control & 0x80:
            if pos >= end:
                raise IndexError("network layer message type")
            message_type = data[pos]
            pos += 1
            if message_type >= 0x80:
                if pos + 2 > end:
                    raise IndexError("vendor id")
                vendor = int.from_bytes(data[pos : pos + 2], "big")
                pos += 2
    except IndexError as exc:
        return f"NPDU cut short in its {exc.args[0]}"
    if not control & 0x80 and pos >= end:
        problems.append("NPDU without an APDU")
    return Npdu(
        control=control,
        payload=data[pos:],
        dnet=dnet,
        dadr=dadr,
        snet=snet,
        sadr=sadr,
        hop_count=hop,
        message_type=message_type,
        vendor_id=vendor,
        problem="; ".join(problems) or None,
    )


def network_message_detail(npdu: Npdu) -> tuple[dict[str, object], str | None]:
    """What a network layer message (135 §6.4) says, as far as it matters to people:
    the networks named, a rejection's reason, routing table entries; and a problem."""
    body, kind = npdu.payload, npdu.message_type
    detail: dict[str, object] = {}
    problem = None
    if kind in (0x00, 0x01, 0x04, 0x05, 0x09):  # lists of (or one optional) DNET
        if len(body) % 2:
            problem = f"{len(body)} octets do not make a list of 2-octet networks"
        nets = [int.from_bytes(body[i : i + 2], "big") for i in range(0, len(body) - 1, 2)]
        if nets:
            detail["networks"] = nets[:MAX_ENTRIES]
    elif kind == 0x02 and len(body) >= 3:
        detail["networks"] = [int.from_bytes(body[0:2], "big")]
        detail["performance_index"] = body[2]
    elif kind == 0x03:
        if len(body) < 3:
            problem = "Reject-Message-To-Network cut short"
        else:
            detail["reject_reason"] = E.pick(E.REJECT_REASONS_NETWORK, body[0], f"reason-{body[0]}")
            detail["networks"] = [int.from_bytes(body[1:3], "big")]
    elif kind in (0x06, 0x07):
        if not body:
            problem = "routing table message without its port count"
        else:
            ports, pos, entries = body[0], 1, []
            for _ in range(ports):
                if pos + 4 > len(body) or pos + 4 + body[pos + 3] > len(body):
                    problem = "routing table entry cut short"
                    break
                entries.append(int.from_bytes(body[pos : pos + 2], "big"))
                pos += 4 + body[pos + 3]
            detail["routing_entries"] = ports
            if entries:
                detail["networks"] = entries[:MAX_ENTRIES]
    elif kind == 0x08 and len(body) >= 2:
        detail["networks"] = [int.from_bytes(body[0:2], "big")]
    elif kind == 0x13 and len(body) >= 3:
        detail["networks"] = [int.from_bytes(body[0:2], "big")]
        detail["configured"] = bool(body[2])
    if npdu.vendor_id is not None:
        detail["vendor_id"] = npdu.vendor_id
    return detail, problem
