"""Zone and Purdue level of assets, from the policy the console was started with.

Same rule as ``conduit assets --policy`` (:func:`otconduit.policy.check.asset_levels`):
the zone's level where a zone holds the asset (``policy``), else a level inferred from
its roles (``inferred``), else ``unknown``. Without a policy every level is inferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otconduit.policy import Policy, Zone
from otconduit.policy.check import ROLE_LEVELS
from otconduit.policy.zoneindex import ZoneIndex

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
