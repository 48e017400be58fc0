"""Assets for the console: paged, searched and sorted in SQL so ten thousand rows stay
fast, each page row in the same shape as ``conduit assets -f json``
(:func:`otconduit.store.views.assets`), plus zone and level."""

from __future__ import annotations

import ipaddress
import sqlite3
from dataclasses import dataclass
from typing import Any

from otconduit.console.errors import ApiError
from otconduit.console.zoning import Zoning
from otconduit.inventory.identity import summarize
from otconduit.risk import attach as attach_risk
from otconduit.store import Store
from otconduit.store.views import CONFIRMED_SQL, confirmed_hosts, iso

SORTS = {
    "ip": "ip_key(b.ip), b.vlan",
    "mac": "b.mac IS NULL, b.mac, ip_key(b.ip)",
    "vendor": "vendor IS NULL, lower(vendor), ip_key(b.ip)",
    "first_seen": "b.first_seen, ip_key(b.ip)",
    "last_seen": "b.last_seen, ip_key(b.ip)",
    "packets": "b.packets, ip_key(b.ip)",
}


def ip_key(ip: str | None) -> bytes:
    """Numeric order for addresses (10.0.0.9 before 10.0.0.10), IPv4 before IPv6."""
    try:
        a = ipaddress.ip_address(ip or "")
    except ValueError:
        return b"\xff" + (ip or "").encode()
    return bytes([a.version]) + a.packed


def register(conn: sqlite3.Connection) -> None:
    conn.create_function("ip_key", 1, ip_key, deterministic=True)


_BASE = (
    "SELECT a.id, a.ip, a.vlan, a.mac, min(s.first_seen) AS first_seen, "
    "max(s.last_seen) AS last_seen, coalesce(sum(s.packets_sent), 0) AS sent, "
    "coalesce(sum(s.packets_received), 0) AS received, "
    "coalesce(sum(s.packets_sent), 0) + coalesce(sum(s.packets_received), 0) AS packets "
    "FROM assets a LEFT JOIN asset_sightings s ON s.asset_id = a.id GROUP BY a.id"
)
_VENDOR = (
    "coalesce((SELECT value FROM asset_attributes WHERE asset_id = b.id AND kind = 'identity' "
    "AND name = 'vendor' ORDER BY confidence DESC, value LIMIT 1), "
    "(SELECT value FROM asset_attributes WHERE asset_id = b.id AND kind = 'identity' "
    "AND name = 'mac_vendor' ORDER BY confidence DESC, value LIMIT 1))"
)


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


_CONFIRMED = f"(b.ip, b.vlan) IN ({CONFIRMED_SQL})"


def _where(aq: AssetQuery) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if not aq.all:
        where.append(_CONFIRMED)
    if aq.q:
        like = "%" + aq.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            "(b.ip LIKE ? ESCAPE '\\' OR b.mac LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM "
            "asset_attributes x WHERE x.asset_id = b.id AND (x.value LIKE ? ESCAPE '\\' OR "
            "(x.kind != 'identity' AND x.name LIKE ? ESCAPE '\\'))))"
        )
        params += [like, like, like, like]
    if aq.role:
        where.append(
            "EXISTS (SELECT 1 FROM asset_attributes x WHERE x.asset_id = b.id "
            "AND x.kind = 'role' AND x.name = ?)"
        )
        params.append(aq.role)
    if aq.protocol:
        where.append(
            "EXISTS (SELECT 1 FROM asset_attributes x WHERE x.asset_id = b.id "
            "AND x.kind = 'protocol' AND x.name = ?)"
        )
        params.append(aq.protocol)
    return (" WHERE " + " AND ".join(where)) if where else "", params


def _details(store: Store, base: list[dict[str, Any]], zoning: Zoning) -> list[dict[str, Any]]:
    """Base rows -> the views.assets() shape, attributes loaded only for these ids."""
    real = confirmed_hosts(store) if base else set()
    by_id: dict[int, dict[str, Any]] = {}
    for r in base:
        by_id[r["id"]] = {
            "id": r["id"],
            "ip": r["ip"],
            "mac": r["mac"],
            "vlan": None if r["vlan"] == -1 else r["vlan"],
            "vendor": None,
            "mac_vendor": None,
            "roles": [],
            "protocols": [],
            "identity": {},
            "identity_claims": [],
            "first_seen": iso(r["first_seen"]),
            "last_seen": iso(r["last_seen"]),
            "packets_sent": r["sent"] or 0,
            "packets_received": r["received"] or 0,
            "confirmed": (r["ip"], r["vlan"]) in real,
        }
    if by_id:
        marks = ",".join("?" * len(by_id))
        attrs = store.query(
            "SELECT asset_id, kind, name, value, source, max(confidence) AS confidence "
            f"FROM asset_attributes WHERE asset_id IN ({marks}) "
            "GROUP BY asset_id, kind, name, value, source "
            "ORDER BY confidence DESC, name, value",
            list(by_id),
        )
        for a in attrs:
            rec = by_id[a["asset_id"]]
            if a["kind"] == "activity":
                continue
            if a["kind"] == "role":
                if a["name"] not in rec["roles"]:
                    rec["roles"].append(a["name"])
            elif a["kind"] == "protocol":
                label = f"{a['name']}/{a['value']}"
                if label not in rec["protocols"]:
                    rec["protocols"].append(label)
            else:
                claim = {
                    "attribute": a["name"],
                    "value": a["value"],
                    "source": a["source"],
                    "confidence": a["confidence"],
                }
                rec["identity_claims"].append(claim)
                rec["identity"].setdefault(a["name"], claim)
                if a["name"] == "mac_vendor" and rec["mac_vendor"] is None:
                    rec["mac_vendor"] = a["value"]
    out = []
    for r in base:
        rec = by_id[r["id"]]
        vendor = rec["identity"].get("vendor")
        rec["vendor"] = vendor["value"] if vendor else rec["mac_vendor"]
        rec["protocols"].sort()
        summarize(rec)
        rec.update(zoning.place(rec["ip"], rec["mac"], rec["vlan"], rec["roles"]).to_dict())
        out.append(rec)
    attach_risk(store, out, zoning.policy)  # the page's rows only: ``risk`` for the HTML
    return out


def list_assets(store: Store, zoning: Zoning, aq: AssetQuery) -> tuple[int, list[dict[str, Any]]]:
    """(total matching, one page of assets)."""
    if aq.sort not in SORTS:
        raise ApiError(422, f"sort must be one of {', '.join(SORTS)}")
    register(store.conn)
    where, params = _where(aq)
    order = SORTS[aq.sort]
    if aq.desc:
        order = ", ".join(f"{part.strip()} DESC" for part in order.split(","))
    sql = f"SELECT b.*, {_VENDOR} AS vendor FROM ({_BASE}) b{where} ORDER BY {order}"
    if aq.zone is not None or aq.level is not None:
        # Zones come from the policy file, not the database: place every candidate, then page.
        rows = list(store.query(sql, params))
        roles_of: dict[int, list[str]] = {}
        if aq.level is not None:
            for aid, name in store.conn.execute(
                "SELECT DISTINCT asset_id, name FROM asset_attributes WHERE kind = 'role'"
            ):
                roles_of.setdefault(aid, []).append(name)
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
    count_sql = (
        f"SELECT count(*) FROM ({_BASE}) b{where}" if where else "SELECT count(*) FROM assets"
    )
    (total,) = store.conn.execute(count_sql, params).fetchone()
    page = list(store.query(f"{sql} LIMIT ? OFFSET ?", [*params, aq.limit, aq.offset]))
    return int(total), _details(store, page, zoning)


def get_asset(store: Store, zoning: Zoning, ip: str, vlan: int | None = None) -> dict[str, Any]:
    """One asset by address (the untagged one, or the lowest VLAN, unless ``vlan`` given)."""
    sql = (
        "SELECT a.id, a.ip, a.vlan, a.mac, min(s.first_seen) AS first_seen, "
        "max(s.last_seen) AS last_seen, sum(s.packets_sent) AS sent, "
        "sum(s.packets_received) AS received FROM assets a "
        "LEFT JOIN asset_sightings s ON s.asset_id = a.id WHERE a.ip = ?"
    )
    params: list[Any] = [ip]
    if vlan is not None:
        sql += " AND a.vlan = ?"
        params.append(vlan)
    sql += " GROUP BY a.id ORDER BY a.vlan LIMIT 1"
    rows = list(store.query(sql, params))
    if not rows:
        raise ApiError(404, f"no asset with address {ip}")
    return _details(store, rows, zoning)[0]


def count_assets(store: Store) -> int:
    return int(store.conn.execute("SELECT count(*) FROM assets").fetchone()[0])


def count_unconfirmed(store: Store) -> int:
    """Hosts only ever seen as scan targets (listings leave them out by default)."""
    sql = f"SELECT count(*) FROM assets b WHERE NOT {_CONFIRMED}"
    return int(store.conn.execute(sql).fetchone()[0])
