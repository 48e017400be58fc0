"""CDP (Cisco Discovery Protocol, 802.3 frames to 01:00:0c:cc:cc:cc with LLC/SNAP, OUI
00:00:0c, protocol id 0x2000): what Cisco (and some other) devices say about
themselves to their neighbours.

:func:`parse_cdp` decodes the header (version, TTL, checksum) and the TLVs (type and
length of two bytes each, the length counting the header) following Cisco's public
description: device id, addresses, port id, capabilities, software version, platform,
native VLAN, duplex, management addresses. :class:`CdpDecoder` takes frames (the 802.2
payload, SNAP header included, or the CDP bytes) and claims, for the first stated IP
address (else for the MAC alone):

- ``hostname`` (device id), ``model`` (platform), ``software_version``, ``os`` when the
  software version names one (``Cisco IOS 12.2(25)SEG4``);
- ``role`` from the capabilities: router, switch (switch or transparent bridge),
  ``ip_phone``; ``ip`` for the MAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.it._base import FrameDecoder
from otconduit.protocols.it._wire import Reader, WireError, ipv4, ipv6, text, usable_ip
from otconduit.protocols.it.claims import (
    HOSTNAME,
    IP,
    IP_PHONE,
    MODEL,
    OS,
    ROLE,
    ROUTER,
    SOFTWARE_VERSION,
    SRC_CDP,
    SWITCH,
)
from otconduit.protocols.it.hints import description_os

SNAP_HEADER: Final = b"\xaa\xaa\x03\x00\x00\x0c\x20\x00"  # LLC SNAP, Cisco OUI, PID 0x2000
MULTICAST: Final = "01:00:0c:cc:cc:cc"
TLV_DEVICE_ID, TLV_ADDRESSES, TLV_PORT_ID, TLV_CAPABILITIES = 0x01, 0x02, 0x03, 0x04
TLV_SOFTWARE, TLV_PLATFORM, TLV_NATIVE_VLAN, TLV_MGMT_ADDRESSES = 0x05, 0x06, 0x0A, 0x16
MAX_TLVS: Final = 128
MAX_ADDRESSES: Final = 64

CAP_ROUTER, CAP_TB_BRIDGE, CAP_SR_BRIDGE, CAP_SWITCH = 0x01, 0x02, 0x04, 0x08
CAP_HOST, CAP_IGMP, CAP_REPEATER, CAP_PHONE = 0x10, 0x20, 0x40, 0x80
CAPABILITY_ROLES: Final = (
    (CAP_ROUTER, ROUTER),
    (CAP_SWITCH | CAP_TB_BRIDGE, SWITCH),
    (CAP_PHONE, IP_PHONE),
)
_NLPID_IP: Final = b"\xcc"
_SNAP_IPV6: Final = b"\xaa\xaa\x03\x00\x00\x00\x86\xdd"


@dataclass(frozen=True, slots=True)
class CdpPacket:
    version: int
    ttl: int
    checksum: int
    device_id: str | None = None
    port_id: str | None = None
    capabilities: int | None = None
    software_version: str | None = None
    platform: str | None = None
    native_vlan: int | None = None
    addresses: tuple[str, ...] = ()
    management_addresses: tuple[str, ...] = ()


def cdp_payload(llc: bytes) -> bytes | None:
    """The CDP bytes of an 802.2 payload carrying the SNAP header of CDP, else None."""
    return llc[len(SNAP_HEADER) :] if llc.startswith(SNAP_HEADER) else None


def _addresses(value: bytes) -> tuple[str, ...]:
    r = Reader(value)
    count = r.u32("address count")
    if count > MAX_ADDRESSES:
        raise WireError(f"{count} addresses")
    out: list[str] = []
    for _ in range(count):
        ptype, plen = r.u8("protocol type"), r.u8("protocol length")
        proto = r.take(plen, "protocol")
        raw = r.take(r.u16("address length"), "address")
        if ptype == 1 and proto == _NLPID_IP and len(raw) == 4:
            out.append(ipv4(raw))
        elif ptype == 2 and proto == _SNAP_IPV6 and len(raw) == 16:
            out.append(ipv6(raw))
    return tuple(out)


def parse_cdp(data: bytes) -> CdpPacket:
    """Decode one CDP packet (after the SNAP header)."""
    r = Reader(data)
    version, ttl, checksum = r.u8("version"), r.u8("ttl"), r.u16("checksum")
    if version not in (1, 2):
        raise WireError(f"CDP version {version}")
    f: dict[str, object] = {}
    for _ in range(MAX_TLVS):
        if r.left == 0:
            break
        kind, length = r.u16("TLV type"), r.u16("TLV length")
        if length < 4:
            raise WireError(f"TLV 0x{kind:04x} of length {length}")
        value = r.take(length - 4, f"TLV 0x{kind:04x}")
        if kind == TLV_DEVICE_ID:
            f["device_id"] = text(value)
        elif kind == TLV_PORT_ID:
            f["port_id"] = text(value)
        elif kind == TLV_SOFTWARE:
            f["software_version"] = text(value, "utf-8", 1024)
        elif kind == TLV_PLATFORM:
            f["platform"] = text(value)
        elif kind == TLV_CAPABILITIES:
            if len(value) != 4:
                raise WireError(f"capabilities of {len(value)} bytes")
            f["capabilities"] = int.from_bytes(value, "big")
        elif kind == TLV_NATIVE_VLAN and len(value) == 2:
            f["native_vlan"] = int.from_bytes(value, "big")
        elif kind == TLV_ADDRESSES:
            f["addresses"] = _addresses(value)
        elif kind == TLV_MGMT_ADDRESSES:
            f["management_addresses"] = _addresses(value)
    else:
        raise WireError(f"more than {MAX_TLVS} TLVs")
    return CdpPacket(version, ttl, checksum, **f)  # type: ignore[arg-type]


class CdpDecoder(FrameDecoder):
    """CDP frames from any port; claims per sending device."""

    protocol = "cdp"

    def _frame(self, src_mac: str, payload: bytes, frame: int, ts_ns: int) -> None:
        body = cdp_payload(payload)
        pkt = parse_cdp(payload if body is None else body)
        ip = next((a for a in (*pkt.management_addresses, *pkt.addresses) if usable_ip(a)), "")
        c = self.claims
        where = f"CDP from {src_mac}"

        def add(attribute: str, value: str | None, confidence: float, evidence: str) -> None:
            if value:
                c.add(
                    ip=ip,
                    mac=src_mac,
                    attribute=attribute,
                    value=value,
                    source=SRC_CDP,
                    confidence=confidence,
                    ts_ns=ts_ns,
                    evidence=f"{where}: {evidence}",
                )

        add(HOSTNAME, pkt.device_id, 0.9, f"device id {pkt.device_id!r}")
        add(MODEL, pkt.platform, 0.8, f"platform {pkt.platform!r}")
        add(SOFTWARE_VERSION, pkt.software_version, 0.9, "software version")
        if pkt.software_version:
            add(OS, description_os(pkt.software_version), 0.9, pkt.software_version)
        caps = pkt.capabilities or 0
        for bits, role in CAPABILITY_ROLES:
            if caps & bits:
                add(ROLE, role, 0.8, f"capabilities 0x{caps:08x}")
        add(IP, ip, 0.8, f"address {ip}")
