"""Assets for the console: paged, searched and sorted in SQL so ten thousand rows stay
fast, each page row in the same shape as ``conduit assets -f json``
(:func:`otconduit.store.views.assets`), plus zone and level."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otconduit.console.errors import ApiError
from otconduit.console.zoning import Zoning
from otconduit.risk import attach as attach_risk
from otconduit.store import Store
from otconduit.store import assets as stored
from otconduit.store.assets import SORTS, AssetFilter, ip_key

__all__ = ["SORTS", "AssetQuery", "count_unconfirmed", "get_asset", "ip_key", "list_assets"]


@dataclass(slots=True)
class AssetQuery:
    q: str | None = None  # text in ip, mac, vendor, or any identity/role/protocol value
    role: str | None = None
    protocol: str | None = None
    zone: str | None = None
    level: float | None = None
    sort: str = "ip"
    desc: bool = False
    offset: int = 0
    limit: int = 50
    all: bool = False  # also hosts only ever seen as scan targets

    def filter(self) -> AssetFilter:
        """What the store can match (zones and levels come from the policy file)."""
        return AssetFilter(
            role=self.role or None,
            protocol=self.protocol or None,
            confirmed_only=not self.all,
            text=self.q or None,
        )


def _details(store: Store, base: list[dict[str, Any]], zoning: Zoning) -> list[dict[str, Any]]:
    """Base rows -> the views.assets() shape (attributes loaded only for these ids), plus
    zone, level and risk."""
    out = stored.records(store, base)
    for rec in out:
        rec.update(zoning.place(rec["ip"], rec["mac"], rec["vlan"], rec["roles"]).to_dict())
    attach_risk(store, out, zoning.policy)  # the page's rows only: ``risk`` for the HTML
    return out


def list_assets(store: Store, zoning: Zoning, aq: AssetQuery) -> tuple[int, list[dict[str, Any]]]:
    """(total matching, one page of assets)."""
    if aq.sort not in SORTS:
        raise ApiError(422, f"sort must be one of {', '.join(SORTS)}")
    flt = aq.filter()
    if aq.zone is not None or aq.level is not None:
        # Zones come from the policy file, not the database: place every candidate, then page.
        rows = stored.rows(store, flt, sort=aq.sort, desc=aq.desc)
        roles_of = stored.roles_by_asset(store) if aq.level is not None else {}
        placed = []
        for r in rows:
            vlan = None if r["vlan"] == -1 else r["vlan"]
            roles = roles_of.get(r["id"])
            p = zoning.place(r["ip"], r["mac"], vlan, roles)
            if aq.zone is not None and p.zone != aq.zone:
                continue
            if aq.level is not None and p.level != aq.level:
                continue
            placed.append(r)
        return len(placed), _details(store, placed[aq.offset : aq.offset + aq.limit], zoning)
    total = stored.count(store, flt)
    page = stored.rows(store, flt, sort=aq.sort, desc=aq.desc, limit=aq.limit, offset=aq.offset)
    return total, _details(store, page, zoning)


def get_asset(store: Store, zoning: Zoning, ip: str, vlan: int | None = None) -> dict[str, Any]:
    """One asset by address (the untagged one, or the lowest VLAN, unless ``vlan`` given)."""
    row = stored.by_address(store, ip, vlan)
    if row is None:
        raise ApiError(404, f"no asset with address {ip}")
    return _details(store, [row], zoning)[0]


def count_assets(store: Store) -> int:
    return stored.count(store)


def count_unconfirmed(store: Store) -> int:
    """Hosts only ever seen as scan targets (listings leave them out by default)."""
    return stored.count_unconfirmed(store)
