"""Zone and Purdue level of assets, from the policy the console was started with.

Same rule as ``conduit assets --policy`` (:func:`otconduit.policy.check.asset_levels`):
the zone's level where a zone holds the asset (``policy``), else a level inferred from
its roles (``inferred``), else ``unknown``. Without a policy every level is inferred.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from otconduit.policy import Policy, Zone
from otconduit.policy.check import ROLE_LEVELS
from otconduit.policy.model import _norm_mac

MEMO_MAX = 200_000  # addresses remembered per policy

LEVEL_NAMES = {
    0.0: "Process (field devices)",
    1.0: "Basic control",
    2.0: "Supervisory control",
    3.0: "Site operations",
    3.5: "Industrial DMZ",
    4.0: "Enterprise",
    5.0: "Enterprise (internet-facing)",
}


@dataclass(frozen=True, slots=True)
class Placement:
    zone: str | None
    level: float | None
    level_source: str  # policy | inferred | unknown

    def to_dict(self) -> dict[str, Any]:
        return {"zone": self.zone, "level": self.level, "level_source": self.level_source}


class ZoneIndex:
    """``Policy.zone_of`` with the same answers, fast enough for ten thousand assets per
    request: each zone's networks as integers, the address parsed once, results
    remembered. (``zone_of`` parses the address again for every zone: about 0.5 ms per
    asset with 40 zones.) ``tests/console/test_zoning.py`` holds the two equal."""

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
        m = _norm_mac(mac) if mac else None
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


class Zoning:
    """Places assets using an optional policy."""

    def __init__(self, policy: Policy | None) -> None:
        self.policy = policy
        self._index = ZoneIndex(policy) if policy is not None else None

    @property
    def plant(self) -> str | None:
        return self.policy.plant if self.policy else None

    def zone(self, ip: str, mac: str | None = None, vlan: int | None = None) -> Zone | None:
        return self._index.zone_of(ip, mac, vlan) if self._index else None

    def place(
        self,
        ip: str,
        mac: str | None = None,
        vlan: int | None = None,
        roles: list[str] | None = None,
    ) -> Placement:
        z = self.zone(ip, mac, vlan)
        if z is not None:
            return Placement(z.name, z.level, "policy")
        levels = [ROLE_LEVELS[r] for r in roles or [] if r in ROLE_LEVELS]
        if levels:
            return Placement(None, min(levels), "inferred")
        return Placement(None, None, "unknown")

    def zones(self) -> list[dict[str, Any]]:
        if self.policy is None:
            return []
        return [
            {
                "name": z.name,
                "level": z.level,
                "level_name": LEVEL_NAMES.get(z.level, str(z.level)),
                "description": z.description,
                "sl_t": z.sl_t,
                "owner": z.owner,
            }
            for z in self.policy.zones
        ]
