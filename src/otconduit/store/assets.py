"""Assets as stored: the one filter the CLI and the console build their WHERE clause
from, paged and sorted listings, and the record shape both show (``conduit assets -f
json``: merged identity, roles and protocols across captures)."""

from __future__ import annotations

import ipaddress
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from otconduit.inventory.identity import NAME_FROM, summarize
from otconduit.store.match import iso, names
from otconduit.store.sqlite import Store

# Hosts that showed they exist: they opened a conversation, or served one a decoder
# understood (or any UDP answer), or answered a connection with application bytes, or
# stated an identity (a MAC's OUI states nothing), or the plant's policy names them.
CONFIRMED_SQL = (
    "SELECT c.client_ip AS ip, c.vlan AS vlan FROM conversations c "
    "WHERE EXISTS (SELECT 1 FROM conversation_stats s WHERE s.conversation_id = c.id) "
    "UNION SELECT c.server_ip, c.vlan FROM conversations c "
    "JOIN conversation_stats s ON s.conversation_id = c.id "
    "WHERE s.packets_s2c > 0 AND (c.protocol != 'unknown' OR c.transport = 'udp') "
    "UNION SELECT a.ip, a.vlan FROM assets a JOIN asset_attributes t ON t.asset_id = a.id "
    "WHERE t.kind IN ('activity', 'role', 'protocol') "
    "OR (t.kind = 'identity' AND t.source != 'oui')"
)
_CONFIRMED = f"(b.ip, b.vlan) IN ({CONFIRMED_SQL})"

# One row per asset with its sightings summed; listings select from it as ``b``.
_SUMS = (
    "SELECT a.id, a.ip, a.vlan, a.mac, min(s.first_seen) AS first_seen, "
    "max(s.last_seen) AS last_seen, coalesce(sum(s.packets_sent), 0) AS sent, "
    "coalesce(sum(s.packets_received), 0) AS received, "
    "coalesce(sum(s.packets_sent), 0) + coalesce(sum(s.packets_received), 0) AS packets "
    "FROM assets a LEFT JOIN asset_sightings s ON s.asset_id = a.id"
)
_BASE = f"{_SUMS} GROUP BY a.id"
# The vendor an asset shows: its best vendor claim, else its MAC's vendor.
_VENDOR = (
    "coalesce((SELECT value FROM asset_attributes WHERE asset_id = b.id AND kind = 'identity' "
    "AND name = 'vendor' ORDER BY confidence DESC, value LIMIT 1), "
    "(SELECT value FROM asset_attributes WHERE asset_id = b.id AND kind = 'identity' "
    "AND name = 'mac_vendor' ORDER BY confidence DESC, value LIMIT 1))"
)
# Orders the console offers (addresses in numeric order), and the CLI's text order.
SORTS = {
    "ip": "ip_key(b.ip), b.vlan",
    "mac": "b.mac IS NULL, b.mac, ip_key(b.ip)",
    "vendor": "vendor IS NULL, lower(vendor), ip_key(b.ip)",
    "first_seen": "b.first_seen, ip_key(b.ip)",
    "last_seen": "b.last_seen, ip_key(b.ip)",
    "packets": "b.packets, ip_key(b.ip)",
}
_ORDERS = {**SORTS, "text": "b.ip, b.vlan"}


def ip_key(ip: str | None) -> bytes:
    """Numeric order for addresses (10.0.0.9 before 10.0.0.10), IPv4 before IPv6."""
    try:
        a = ipaddress.ip_address(ip or "")
    except ValueError:
        return b"\xff" + (ip or "").encode()
    return bytes([a.version]) + a.packed


def register(conn: sqlite3.Connection) -> None:
    """Make ``ip_key`` callable from SQL on this connection."""
    conn.create_function("ip_key", 1, ip_key, deterministic=True)


@dataclass(slots=True)
class AssetFilter:
    ip: str | None = None  # one address or a CIDR network (networks: matched after SQL)
    role: str | None = None
    protocol: str | tuple[str, ...] | None = None  # stored names (one or several)
    vendor: str | None = None  # part of the shown vendor, any case (matched after SQL)
    # Scan targets are not assets until they show they are there: listings leave them out.
    confirmed_only: bool = False
    text: str | None = None  # in ip, mac, or any identity value, role or protocol


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def where(flt: AssetFilter) -> tuple[str, list[Any]]:
    """`` WHERE ...`` over ``b`` (or ``""``) and its parameters. ``ip`` is matched as
    one address; a listing that accepts networks clears it and matches them itself."""
    cond: list[str] = []
    params: list[Any] = []
    if flt.confirmed_only:
        cond.append(_CONFIRMED)
    if flt.text:
        like = _like(flt.text)
        cond.append(
            "(b.ip LIKE ? ESCAPE '\\' OR b.mac LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM "
            "asset_attributes x WHERE x.asset_id = b.id AND (x.value LIKE ? ESCAPE '\\' OR "
            "(x.kind != 'identity' AND x.name LIKE ? ESCAPE '\\'))))"
        )
        params += [like, like, like, like]
    if flt.role:
        cond.append(
            "EXISTS (SELECT 1 FROM asset_attributes x WHERE x.asset_id = b.id "
            "AND x.kind = 'role' AND x.name = ?)"
        )
        params.append(flt.role)
    protos = names(flt.protocol)
    if protos:
        cond.append(
            "EXISTS (SELECT 1 FROM asset_attributes x WHERE x.asset_id = b.id "
            f"AND x.kind = 'protocol' AND x.name IN ({', '.join('?' * len(protos))}))"
        )
        params += protos
    if flt.ip:
        cond.append("b.ip = ?")
        params.append(flt.ip)
    return (" WHERE " + " AND ".join(cond)) if cond else "", params


def rows(
    store: Store,
    flt: AssetFilter | None = None,
    *,
    sort: str = "text",
    desc: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Base rows (id, ip, vlan, mac, first_seen, last_seen, sent, received, packets)
    matching ``flt`` in the order ``sort`` names (a key of :data:`SORTS`, or ``text``)."""
    if isinstance(store.conn, sqlite3.Connection):  # PostgreSQL: ip_key() is in the schema
        register(store.conn)
    cond, params = where(flt or AssetFilter())
    order = _ORDERS[sort]
    if desc:
        order = ", ".join(f"{part.strip()} DESC" for part in order.split(","))
    vendor = f", {_VENDOR} AS vendor" if sort == "vendor" else ""
    sql = f"SELECT b.*{vendor} FROM ({_BASE}) b{cond} ORDER BY {order}"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [int(limit), int(offset)]
    return list(store.query(sql, params))


def count(store: Store, flt: AssetFilter | None = None) -> int:
    cond, params = where(flt or AssetFilter())
    sql = f"SELECT count(*) FROM ({_BASE}) b{cond}" if cond else "SELECT count(*) FROM assets"
    return int(store.conn.execute(sql, params).fetchone()[0])


def count_unconfirmed(store: Store) -> int:
    """Hosts only ever seen as scan targets (listings leave them out by default)."""
    sql = f"SELECT count(*) FROM assets b WHERE NOT {_CONFIRMED}"
    return int(store.conn.execute(sql).fetchone()[0])


def by_address(store: Store, ip: str, vlan: int | None = None) -> dict[str, Any] | None:
    """The base row of the asset with this address: the untagged one, or the lowest
    VLAN, unless ``vlan`` is given."""
    sql = f"{_SUMS} WHERE a.ip = ?"
    params: list[Any] = [ip]
    if vlan is not None:
        sql += " AND a.vlan = ?"
        params.append(vlan)
    found = list(store.query(sql + " GROUP BY a.id ORDER BY a.vlan LIMIT 1", params))
    return found[0] if found else None


def confirmed_hosts(store: Store) -> set[tuple[str, int]]:
    """(ip, vlan) of every host the traffic shows is really there (``CONFIRMED_SQL``)."""
    return {(r["ip"], r["vlan"]) for r in store.query(CONFIRMED_SQL)}


# The name the asset list shows (``identity.NAME_FROM``, in that order of preference).
_NAME_RANK = " ".join(f"WHEN '{n}' THEN {i}" for i, n in enumerate(NAME_FROM))
_NAME_SQL = (
    "SELECT t.value FROM assets a JOIN asset_attributes t ON t.asset_id = a.id "
    f"WHERE a.ip = ? AND t.kind = 'identity' AND t.name IN ({', '.join('?' * len(NAME_FROM))}) "
    f"ORDER BY CASE t.name {_NAME_RANK} END, t.confidence DESC, t.value LIMIT 1"
)


def asset_name(store: Store, ip: str | None) -> str | None:
    """The best name the store holds for an address (policy host name, gateway device
    name, else the host name the network uses for it), or None."""
    if not ip:
        return None
    row = store.conn.execute(_NAME_SQL, (ip, *NAME_FROM)).fetchone()
    return str(row[0]) if row else None


def _attributes(store: Store, ids: list[int] | None) -> list[dict[str, Any]]:
    """Attribute claims, best first: of ``ids``, or of every asset (a whole listing:
    one query rather than a parameter per asset)."""
    if ids is None:
        return list(
            store.query(
                "SELECT asset_id, kind, name, value, source, max(confidence) AS confidence, "
                "min(evidence) AS evidence FROM asset_attributes "
                "GROUP BY asset_id, kind, name, value, source "
                "ORDER BY confidence DESC, name, value"
            )
        )
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    return list(
        store.query(
            "SELECT asset_id, kind, name, value, source, max(confidence) AS confidence "
            f"FROM asset_attributes WHERE asset_id IN ({marks}) "
            "GROUP BY asset_id, kind, name, value, source "
            "ORDER BY confidence DESC, name, value",
            ids,
        )
    )


def records(
    store: Store, base: list[dict[str, Any]], *, every_attribute: bool = False
) -> list[dict[str, Any]]:
    """Base rows -> asset records (``id`` first, then the ``conduit assets -f json``
    keys), in the order given. ``every_attribute``: read the attributes of all assets
    at once (a whole listing) instead of those of ``base`` only."""
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
    for a in _attributes(store, None if every_attribute else list(by_id)) if by_id else []:
        rec = by_id.get(a["asset_id"])
        if rec is None or a["kind"] == "activity":
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
            # Claims arrive best-first: the first per attribute is the one we show.
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
        out.append(rec)
    return out


def roles_by_asset(store: Store) -> dict[int, list[str]]:
    """Role names per asset id, by name."""
    out: dict[int, list[str]] = defaultdict(list)
    for aid, name in store.conn.execute(
        "SELECT DISTINCT asset_id, name FROM asset_attributes WHERE kind = 'role' ORDER BY name"
    ):
        out[aid].append(name)
    return out


def labels(store: Store) -> dict[int, str]:
    """What to call each asset on a map: its product name or model, else a vendor it
    stated (a MAC's OUI states nothing)."""
    out: dict[int, str] = {}
    for aid, value in store.conn.execute(
        "SELECT asset_id, value FROM asset_attributes WHERE kind = 'identity' AND (name IN "
        "('product_name', 'model') OR (name = 'vendor' AND source != 'oui')) "
        "ORDER BY name = 'vendor', confidence DESC"
    ):
        out.setdefault(aid, value)
    return out


def addresses(store: Store) -> list[tuple[int, str, str | None, int]]:
    """(id, ip, mac, vlan) of every asset."""
    return [
        (int(aid), str(ip), mac, int(vlan))
        for aid, ip, mac, vlan in store.conn.execute("SELECT id, ip, mac, vlan FROM assets")
    ]


def role_evidence(store: Store) -> list[dict[str, Any]]:
    """ip, role name and the behaviour behind it, per host and role."""
    return list(
        store.query(
            "SELECT a.ip, t.name, t.evidence FROM asset_attributes t JOIN assets a "
            "ON a.id = t.asset_id WHERE t.kind = 'role' AND t.evidence IS NOT NULL "
            "GROUP BY a.ip, t.name ORDER BY a.ip, t.name"
        )
    )


def set_policy_names(store: Store, plant: str, hosts: dict[str, str]) -> int:
    """Replace the host names taken from a policy (``{name: ip}``) with these, as
    identity claims of source ``policy``; returns how many assets got one."""
    found = [
        (asset_id, name)
        for name, ip in hosts.items()
        for (asset_id,) in store.conn.execute("SELECT id FROM assets WHERE ip = ?", (ip,))
    ]
    with store.transaction():
        store.conn.execute(
            "DELETE FROM asset_attributes WHERE kind = 'identity' AND name = 'name' "
            "AND source = 'policy'"
        )
        store.conn.executemany(
            "INSERT INTO asset_attributes (asset_id, capture_id, kind, name, value, "
            "source, confidence, evidence) VALUES (?, NULL, 'identity', 'name', ?, 'policy', "
            "0.95, ?) ON CONFLICT DO NOTHING",
            [(aid, name, f"host name in policy {plant}") for aid, name in found],
        )
    return len(found)
