"""LLDP (IEEE 802.1AB, EtherType 0x88CC): what a switch, router, phone or field device
says about itself to its neighbours.

:func:`parse_lldpdu` walks the TLVs (7-bit type, 9-bit length; IEEE 802.1AB-2016
§8.5): chassis id, port id, TTL, port description, system name, system description,
system capabilities, management addresses; organisation-specific TLVs are counted.
:class:`LldpDecoder` takes frames (payload after the EtherType, and the source MAC) and
claims, for the management address when one is stated (else for the MAC alone):

- ``hostname`` from the system name (or, without one, a locally assigned chassis id:
  PROFINET devices put their name of station there);
- ``description`` (system description) and ``os`` when the description states one
  (Cisco IOS, Junos, Linux …);
- ``role`` from the enabled capabilities: bridge -> ``switch``, ``router``,
  WLAN access point -> ``wireless_ap``, telephone -> ``ip_phone``;
- ``ip`` for the MAC (the management address).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.it._base import FrameDecoder
from otconduit.protocols.it._wire import Reader, WireError, ipv4, ipv6, mac, text, usable_ip
from otconduit.protocols.it.claims import (
    DESCRIPTION,
    HOSTNAME,
    IP,
    IP_PHONE,
    OS,
    ROLE,
    ROUTER,
    SRC_LLDP,
    SWITCH,
    WIRELESS_AP,
)
from otconduit.protocols.it.hints import description_os

ETHERTYPE: Final = 0x88CC
TLV_END, TLV_CHASSIS, TLV_PORT, TLV_TTL = 0, 1, 2, 3
TLV_PORT_DESC, TLV_SYS_NAME, TLV_SYS_DESC, TLV_CAPS, TLV_MGMT = 4, 5, 6, 7, 8
TLV_ORG = 127
MAX_TLVS: Final = 128

# System capability bits (802.1AB §8.5.8.1).
CAP_OTHER, CAP_REPEATER, CAP_BRIDGE, CAP_WLAN_AP = 0x01, 0x02, 0x04, 0x08
CAP_ROUTER, CAP_TELEPHONE, CAP_DOCSIS, CAP_STATION = 0x10, 0x20, 0x40, 0x80
CAPABILITY_ROLES: Final = (
    (CAP_BRIDGE, SWITCH),
    (CAP_ROUTER, ROUTER),
    (CAP_WLAN_AP, WIRELESS_AP),
    (CAP_TELEPHONE, IP_PHONE),
)
CHASSIS_MAC, CHASSIS_NETWORK, CHASSIS_LOCAL = 4, 5, 7
PORT_MAC, PORT_NETWORK = 3, 4


@dataclass(frozen=True, slots=True)
class Lldpdu:
    chassis_subtype: int = 0
    chassis_id: bytes = b""
    port_subtype: int = 0
    port_id: bytes = b""
    ttl: int | None = None
    port_description: str | None = None
    system_name: str | None = None
    system_description: str | None = None
    capabilities: int | None = None
    enabled: int | None = None
    management: tuple[str, ...] = ()  # IPv4/IPv6 management addresses, in order
    org_tlvs: int = 0

    @property
    def chassis_text(self) -> str:
        return _id_text(self.chassis_subtype, self.chassis_id, CHASSIS_MAC, CHASSIS_NETWORK)

    @property
    def port_text(self) -> str:
        return _id_text(self.port_subtype, self.port_id, PORT_MAC, PORT_NETWORK)


def _id_text(subtype: int, raw: bytes, mac_subtype: int, net_subtype: int) -> str:
    """A chassis or port id as text: a MAC, an address, or the string it holds."""
    if subtype == mac_subtype and len(raw) == 6:
        return mac(raw)
    if subtype == net_subtype and raw:
        return _address(raw[0], raw[1:]) or raw.hex()
    return text(raw, "utf-8")


def _address(family: int, raw: bytes) -> str | None:
    """An IANA address family number and address: IPv4 (1) and IPv6 (2)."""
    if family == 1 and len(raw) == 4:
        return ipv4(raw)
    if family == 2 and len(raw) == 16:
        return ipv6(raw)
    return None


def parse_lldpdu(payload: bytes) -> Lldpdu:
    """Decode the TLVs of one LLDPDU (the bytes after the EtherType)."""
    r = Reader(payload)
    f: dict[str, object] = {}
    management: list[str] = []
    org = 0
    for _ in range(MAX_TLVS):
        if r.left < 2:
            break  # padding to the minimum frame size, or a missing End TLV
        head = r.u16()
        kind, length = head >> 9, head & 0x1FF
        if kind == TLV_END:
            break
        value = r.take(length, f"TLV {kind}")
        if kind in (TLV_CHASSIS, TLV_PORT):
            if not value:
                raise WireError(f"TLV {kind} without a subtype")
            key = "chassis" if kind == TLV_CHASSIS else "port"
            f[f"{key}_subtype"], f[f"{key}_id"] = value[0], value[1:]
        elif kind == TLV_TTL:
            if length < 2:
                raise WireError(f"TTL TLV of {length} bytes")
            f["ttl"] = int.from_bytes(value[:2], "big")
        elif kind in (TLV_PORT_DESC, TLV_SYS_NAME, TLV_SYS_DESC):
            name = {4: "port_description", 5: "system_name", 6: "system_description"}[kind]
            f[name] = text(value, "utf-8", 1024)
        elif kind == TLV_CAPS:
            if length < 4:
                raise WireError(f"capabilities TLV of {length} bytes")
            f["capabilities"] = int.from_bytes(value[:2], "big")
            f["enabled"] = int.from_bytes(value[2:4], "big")
        elif kind == TLV_MGMT:
            m = Reader(value)
            alen = m.u8("management address length")
            if alen < 1:
                raise WireError("management address length 0")
            raw = m.take(alen, "management address")
            m.skip(5, "interface numbering")
            m.take(m.u8("OID length"), "OID")
            addr = _address(raw[0], raw[1:])
            if addr is not None:
                management.append(addr)
        elif kind == TLV_ORG:
            org += 1
    else:
        raise WireError(f"more than {MAX_TLVS} TLVs")
    return Lldpdu(management=tuple(management), org_tlvs=org, **f)  # type: ignore[arg-type]


class LldpDecoder(FrameDecoder):
    """LLDP frames from any port; claims per sending device."""

    protocol = "lldp"

    def _frame(self, src_mac: str, payload: bytes, frame: int, ts_ns: int) -> None:
        du = parse_lldpdu(payload)
        ip = next((a for a in du.management if usable_ip(a)), "")
        c = self.claims
        where = f"LLDP from {src_mac}"
        name = du.system_name
        if name:
            c.add(
                ip=ip,
                mac=src_mac,
                attribute=HOSTNAME,
                value=name,
                source=SRC_LLDP,
                confidence=0.9,
                ts_ns=ts_ns,
                evidence=f"{where}: system name {name!r}",
            )
        elif du.chassis_subtype == CHASSIS_LOCAL and du.chassis_text:
            c.add(
                ip=ip,
                mac=src_mac,
                attribute=HOSTNAME,
                value=du.chassis_text,
                source=SRC_LLDP,
                confidence=0.6,
                ts_ns=ts_ns,
                evidence=f"{where}: locally assigned chassis id {du.chassis_text!r}",
            )
        desc = du.system_description
        if desc:
            c.add(
                ip=ip,
                mac=src_mac,
                attribute=DESCRIPTION,
                value=desc,
                source=SRC_LLDP,
                confidence=0.9,
                ts_ns=ts_ns,
                evidence=f"{where}: system description",
            )
            os_name = description_os(desc)
            if os_name:
                c.add(
                    ip=ip,
                    mac=src_mac,
                    attribute=OS,
                    value=os_name,
                    source=SRC_LLDP,
                    confidence=0.8,
                    ts_ns=ts_ns,
                    evidence=f"{where}: system description {desc!r}",
                )
        enabled = du.enabled or 0
        for bit, role in CAPABILITY_ROLES:
            if enabled & bit:
                c.add(
                    ip=ip,
                    mac=src_mac,
                    attribute=ROLE,
                    value=role,
                    source=SRC_LLDP,
                    confidence=0.8,
                    ts_ns=ts_ns,
                    evidence=f"{where}: enabled capabilities 0x{enabled:04x}",
                )
        if ip:
            c.add(
                ip=ip,
                mac=src_mac,
                attribute=IP,
                value=ip,
                source=SRC_LLDP,
                confidence=0.8,
                ts_ns=ts_ns,
                evidence=f"{where}: management address {ip}",
            )
