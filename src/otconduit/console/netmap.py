"""Network map data: assets grouped in zones, zones in Purdue level bands (enterprise at
the top, field devices at the bottom, the IDMZ between), conversations as edges coloured
by the policy's verdict.

Positions are computed here, not in the browser, so the picture is the same every time
and a test can check that level 4 sits above level 1. The page draws them with
Cytoscape.js (``preset`` layout). Above ``max_nodes`` assets the map shows zones as
nodes with aggregated edges; ``zone=NAME`` then opens one zone with its peers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from otconduit.console.assets import ip_key
from otconduit.console.zoning import LEVEL_NAMES, Placement, Zoning
from otconduit.store import Store

VERDICT_RANK = {"violation": 2, "unchecked": 1, "allowed": 0}
IGNORED_RULES = {"asset-in-no-zone"}  # about a node, not about an edge
BAND_HEIGHT = 150
NODE_GAP = 70
ZONE_GAP = 90


@dataclass(slots=True)
class MapAsset:
    ip: str
    label: str
    roles: list[str]
    place: Placement

    @property
    def group(self) -> str:
        """The zone, or an 'unzoned' group per level when no zone holds the asset."""
        if self.place.zone:
            return f"zone:{self.place.zone}"
        lvl = "unknown" if self.place.level is None else _lvl(self.place.level)
        return f"unzoned:{lvl}"


def _lvl(level: float) -> str:
    return str(int(level)) if float(level).is_integer() else str(level)


def map_assets(store: Store, zoning: Zoning) -> list[MapAsset]:
    roles: dict[int, list[str]] = defaultdict(list)
    for aid, name in store.conn.execute(
        "SELECT DISTINCT asset_id, name FROM asset_attributes WHERE kind = 'role' ORDER BY name"
    ):
        roles[aid].append(name)
    names: dict[int, str] = {}
    for aid, value in store.conn.execute(
        "SELECT asset_id, value FROM asset_attributes WHERE kind = 'identity' AND (name IN "
        "('product_name', 'model') OR (name = 'vendor' AND source != 'oui')) "
        "ORDER BY name = 'vendor', confidence DESC"
    ):
        names.setdefault(aid, value)
    seen: dict[str, MapAsset] = {}
    for aid, ip, mac, vlan in store.conn.execute("SELECT id, ip, mac, vlan FROM assets"):
        if ip in seen:
            continue
        r = roles.get(aid, [])
        host = zoning.policy.host_name(ip) if zoning.policy else None
        name = host or names.get(aid)
        label = f"{ip}\n{name}" if name else ip
        seen[ip] = MapAsset(ip, label, r, zoning.place(ip, mac, None if vlan == -1 else vlan, r))
    return sorted(seen.values(), key=lambda a: ip_key(a.ip))


def verdicts(store: Store, zoning: Zoning) -> dict[tuple[str, str], set[str]]:
    sql = "SELECT src_ip, dst_ip, rule FROM violations WHERE src_ip IS NOT NULL"
    params: list[Any] = []
    if zoning.plant:
        sql += " AND policy = ?"
        params.append(zoning.plant)
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for src, dst, rule in store.conn.execute(sql, params):
        if rule not in IGNORED_RULES and dst is not None:
            out[(src, dst)].add(rule)
    return out


def _edges(store: Store) -> list[dict[str, Any]]:
    return list(
        store.query(
            "SELECT c.client_ip, c.server_ip, group_concat(DISTINCT c.protocol) AS protocols, "
            "group_concat(DISTINCT c.server_port) AS ports, count(DISTINCT c.id) AS conversations, "
            "sum(s.packets_c2s + s.packets_s2c) AS packets "
            "FROM conversations c JOIN conversation_stats s ON s.conversation_id = c.id "
            "GROUP BY c.client_ip, c.server_ip"
        )
    )


def _verdict(rules: set[str], zoning: Zoning) -> str:
    if rules:
        return "violation"
    return "allowed" if zoning.policy is not None else "unchecked"


def _level_order(groups: dict[str, list[MapAsset]], zoning: Zoning) -> list[tuple[str, list[str]]]:
    """Bands top to bottom: (level key, groups in it)."""
    zone_level = {f"zone:{z.name}": z.level for z in (zoning.policy.zones if zoning.policy else [])}
    bands: dict[str, list[str]] = defaultdict(list)
    for g, members in groups.items():
        key = _lvl(zone_level[g]) if g in zone_level else g.split(":", 1)[1]
        if members or g in zone_level:
            bands[key].append(g)

    def rank(k: str) -> float:
        return -1.0 if k == "unknown" else float(k)

    return [(k, sorted(bands[k])) for k in sorted(bands, key=rank, reverse=True)]


def _band_node(key: str) -> dict[str, Any]:
    if key == "unknown":
        label = "Level unknown"
    else:
        label = f"Level {key} - {LEVEL_NAMES.get(float(key), '')}".rstrip(" -")
    return {"data": {"id": f"level:{key}", "label": label, "kind": "level", "level": key}}


def build_map(
    store: Store,
    zoning: Zoning,
    *,
    zone: str | None = None,
    max_nodes: int = 400,
    assets: list[MapAsset] | None = None,
) -> dict[str, Any]:
    """``assets``: :func:`map_assets` of the store, when the caller has them cached."""
    if assets is None:
        assets = map_assets(store, zoning)
    by_ip = {a.ip: a for a in assets}
    groups: dict[str, list[MapAsset]] = defaultdict(list)
    for a in assets:
        groups[a.group].append(a)
    for z in zoning.policy.zones if zoning.policy else []:
        groups.setdefault(f"zone:{z.name}", [])
    vio = verdicts(store, zoning)
    edges = _edges(store)
    aggregated = len(assets) > max_nodes and zone is None
    if zone is not None:
        focus = f"zone:{zone}" if not zone.startswith(("zone:", "unzoned:")) else zone
        inside = {a.ip for a in groups.get(focus, [])}
        edges = [e for e in edges if e["client_ip"] in inside or e["server_ip"] in inside]
        keep = inside | {e["client_ip"] for e in edges} | {e["server_ip"] for e in edges}
        if len(keep) > max_nodes:  # a zone too big to draw: its busiest edges first
            edges.sort(key=lambda e: -(e["packets"] or 0))
            edges = edges[: max_nodes * 2]
            keep = inside | {e["client_ip"] for e in edges} | {e["server_ip"] for e in edges}
        groups = defaultdict(list)
        for ip in keep:
            if ip in by_ip:
                groups[by_ip[ip].group].append(by_ip[ip])
    nodes: list[dict[str, Any]] = []
    out_edges: list[dict[str, Any]] = []
    y = 0.0
    bands = _level_order(groups, zoning)
    for key, group_names in bands:
        nodes.append(_band_node(key))
        x = 0.0
        band_rows = 1
        for g in group_names:
            members = sorted(groups[g], key=lambda a: ip_key(a.ip))
            kind, name = g.split(":", 1)
            zone_data: dict[str, Any] = {
                "id": g,
                "label": name if kind == "zone" else f"no zone (level {name})",
                "kind": kind,
                "parent": f"level:{key}",
                "assets": len(members),
            }
            if aggregated:
                zone_data["label"] += f" ({len(members)} assets)"
                nodes.append({"data": zone_data, "position": {"x": x, "y": y}})
                x += 220
                continue
            if not members:  # an empty zone still shows where it sits
                nodes.append({"data": zone_data, "position": {"x": x, "y": y}})
                x += NODE_GAP * 1.6 + ZONE_GAP
                continue
            nodes.append({"data": zone_data})
            cols = max(1, math.ceil(math.sqrt(max(1, len(members)) * 2)))
            for i, a in enumerate(members):
                row, col = divmod(i, cols)
                band_rows = max(band_rows, row + 1)
                nodes.append(
                    {
                        "data": {
                            "id": f"asset:{a.ip}",
                            "label": a.label,
                            "kind": "asset",
                            "ip": a.ip,
                            "parent": g,
                            "roles": a.roles,
                            "level": a.place.level,
                            "level_source": a.place.level_source,
                            "zone": a.place.zone,
                        },
                        "position": {"x": x + col * NODE_GAP * 1.6, "y": y + row * NODE_GAP},
                    }
                )
            x += max(1, min(cols, len(members))) * NODE_GAP * 1.6 + ZONE_GAP
        y += max(BAND_HEIGHT, band_rows * NODE_GAP + 120)
    if aggregated:
        agg: dict[tuple[str, str], dict[str, Any]] = {}
        for e in edges:
            ca, sa = by_ip.get(e["client_ip"]), by_ip.get(e["server_ip"])
            if ca is None or sa is None:
                continue
            key2 = (ca.group, sa.group)
            acc = agg.setdefault(
                key2, {"conversations": 0, "packets": 0, "verdict": "allowed", "rules": set(),
                       "protocols": set()}
            )  # fmt: skip
            rules = vio.get((e["client_ip"], e["server_ip"]), set())
            v = _verdict(rules, zoning)
            if VERDICT_RANK[v] > VERDICT_RANK[acc["verdict"]]:
                acc["verdict"] = v
            acc["rules"] |= rules
            acc["protocols"] |= set((e["protocols"] or "").split(","))
            acc["conversations"] += e["conversations"]
            acc["packets"] += e["packets"] or 0
        for (src, dst), acc in sorted(agg.items()):
            out_edges.append(
                {
                    "data": {
                        "id": f"edge:{src}>{dst}",
                        "source": src,
                        "target": dst,
                        "verdict": acc["verdict"],
                        "rules": sorted(acc["rules"]),
                        "protocols": sorted(p for p in acc["protocols"] if p),
                        "conversations": acc["conversations"],
                        "packets": acc["packets"],
                    }
                }
            )
    else:
        for e in edges:
            if e["client_ip"] not in by_ip or e["server_ip"] not in by_ip:
                continue
            rules = vio.get((e["client_ip"], e["server_ip"]), set())
            out_edges.append(
                {
                    "data": {
                        "id": f"edge:{e['client_ip']}>{e['server_ip']}",
                        "source": f"asset:{e['client_ip']}",
                        "target": f"asset:{e['server_ip']}",
                        "verdict": _verdict(rules, zoning),
                        "rules": sorted(rules),
                        "protocols": sorted(set((e["protocols"] or "").split(","))),
                        "ports": sorted({int(p) for p in str(e["ports"] or "").split(",") if p}),
                        "conversations": e["conversations"],
                        "packets": e["packets"] or 0,
                    }
                }
            )
    return {
        "mode": "zones" if aggregated else "assets",
        "policy": zoning.plant,
        "focus": zone,
        "assets": len(assets),
        "nodes": nodes,
        "edges": out_edges,
    }
