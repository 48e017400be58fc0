"""A policy's zones as integer networks: ``Policy.zone_of`` answered for ten thousand
assets in milliseconds. Each zone's networks are kept as integers, an address is parsed
once, and answers are remembered (bounded). ``Policy.scan_zone_of`` is the definition it
must agree with; ``tests/console/test_zoning_map.py`` holds the two equal."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from otconduit.inventory.macs import norm_mac

if TYPE_CHECKING:
    from otconduit.policy.model import Policy, Zone

MEMO_MAX = 200_000  # addresses remembered per policy


class ZoneIndex:
    """The zone of an address, MAC and VLAN by the policy's rule (see module doc)."""

    def __init__(self, policy: Policy) -> None:
        self.zones = list(policy.zones)
        self._nets: list[list[tuple[int, int, int, int]]] = []  # version, net, mask, prefix
        self._macs: list[set[str]] = []
        self._vlans: list[set[int]] = []
        for z in self.zones:
            self._nets.append(
                [(n.version, int(n.network_address), int(n.netmask), n.prefixlen) for n in z._nets]
            )
            self._macs.append(set(z._macs))
            self._vlans.append(set(z._vlans))
        self._memo: dict[tuple[str | None, str | None, int | None], Zone | None] = {}

    def zone_of(
        self, ip: str | None, mac: str | None = None, vlan: int | None = None
    ) -> Zone | None:
        key = (ip, mac, vlan)
        if key in self._memo:
            return self._memo[key]
        m = norm_mac(mac) if mac else None
        addr: tuple[int, int] | None = None
        if ip:
            try:
                a = ipaddress.ip_address(ip)
                addr = (a.version, int(a))
            except ValueError:
                addr = None
        best: tuple[int, Zone] | None = None
        for i, z in enumerate(self.zones):
            score: int | None = None
            if m and m in self._macs[i]:
                score = 1000
            else:
                if addr is not None:
                    for version, net, mask, prefix in self._nets[i]:
                        if version == addr[0] and addr[1] & mask == net:
                            s = 100 + prefix
                            score = s if score is None else max(score, s)
                if score is None and vlan is not None and vlan in self._vlans[i]:
                    score = 1
            if score is not None and (best is None or score > best[0]):
                best = (score, z)
        out = best[1] if best else None
        if len(self._memo) < MEMO_MAX:
            self._memo[key] = out
        return out
