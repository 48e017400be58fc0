"""Network map data: assets grouped in zones, zones in Purdue level bands (enterprise at
the top, field devices at the bottom, the IDMZ between), conversations as edges coloured
by the policy's verdict.

Positions are computed here, not in the browser, so the picture is the same every time
and a test can check that level 4 sits above level 1. The page draws them with
Cytoscape.js (``preset`` layout). Above ``max_nodes`` assets the map shows zones as
nodes with aggregated edges; ``zone=NAME`` then opens one zone with its peers.
"""

from __future__ import annotations

import ipaddress
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from otconduit.console.zoning import LEVEL_NAMES, Placement, Zoning
from otconduit.detect.recon import ICS_PORTS
from otconduit.protocols import registry
from otconduit.store import Store
from otconduit.store import assets as stored_assets
from otconduit.store import conversations as stored_conversations
from otconduit.store import violations as stored_violations
from otconduit.store.assets import confirmed_hosts, ip_key

VERDICT_RANK = {"violation": 2, "unchecked": 1, "allowed": 0}
IGNORED_RULES = {"asset-in-no-zone"}  # about a node, not about an edge
BAND_HEIGHT = 150
NODE_GAP = 70
ZONE_GAP = 90
GROUP_MAX = 24  # a zone or level group with more assets is drawn as one node per subnet
# Industrial protocols (the "industrial only" filter): what the decoders and port tables
# call them.
INDUSTRIAL = {*ICS_PORTS.values(), *registry.stored_names(), "iec61850", "mms", "goose", "ethercat"}


@dataclass(slots=True)
class MapAsset:
    ip: str
    label: str
    roles: list[str]
    place: Placement
    confirmed: bool = True  # False: only ever a scan target (left off the map by default)

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
    roles = stored_assets.roles_by_asset(store)
    names = stored_assets.labels(store)
    real = {ip for ip, _ in confirmed_hosts(store)}
    seen: dict[str, MapAsset] = {}
    for aid, ip, mac, vlan in stored_assets.addresses(store):
        if ip in seen:
            continue
        r = roles.get(aid, [])
        host = zoning.policy.host_name(ip) if zoning.policy else None
        name = host or names.get(aid)
        label = f"{ip}\n{name}" if name else ip
        place = zoning.place(ip, mac, None if vlan == -1 else vlan, r)
        seen[ip] = MapAsset(ip, label, r, place, ip in real)
    return sorted(seen.values(), key=lambda a: ip_key(a.ip))


def verdicts(store: Store, zoning: Zoning) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for src, dst, rule in stored_violations.pairs(store, zoning.plant):
        if rule not in IGNORED_RULES and dst is not None:
            out[(src, dst)].add(rule)
    return out


def _edges(store: Store) -> list[dict[str, Any]]:
    """Client -> server pairs per protocol (a filter on protocol then counts only the
    conversations it keeps; :func:`_merge` joins the protocols of one pair again)."""
    return stored_conversations.edges(store)


def _merge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-protocol rows of :func:`_edges` -> one row per (client, server)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["client_ip"], r["server_ip"])
        acc = out.get(key)
        if acc is None:
            out[key] = acc = {"client_ip": key[0], "server_ip": key[1], "protocols": set(),
                              "ports": set(), "conversations": 0, "packets": 0}  # fmt: skip
        acc["protocols"].add(r["protocol"])
        acc["ports"] |= {int(x) for x in str(r["ports"] or "").split(",") if x}
        acc["conversations"] += r["conversations"]
        acc["packets"] += r["packets"] or 0
    return list(out.values())


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


@dataclass(slots=True)
class MapFilter:
    """What the map draws: conversations of one protocol, industrial ones only, or only
    those with a policy violation. A filtered map shows only the assets its edges touch."""

    protocol: str | None = None
    industrial: bool = False
    violations: bool = False

    @property
    def active(self) -> bool:
        return bool(self.protocol or self.industrial or self.violations)

    def keeps(self, protocol: str, rules: set[str]) -> bool:
        if self.protocol and protocol.lower() != self.protocol.lower():
            return False
        if self.industrial and protocol.lower() not in INDUSTRIAL:
            return False
        return not self.violations or bool(rules)

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "industrial": self.industrial,
                "violations": self.violations}  # fmt: skip


def subnet_of(ip: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) an address is in: how a crowded zone is folded."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return "other"
    bits = 24 if a.version == 4 else 64
    return str(ipaddress.ip_network(f"{a}/{bits}", strict=False))


def _in_subnet(ip: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


@dataclass(slots=True)
class _Item:
    """One node inside a group: an asset, or a folded subnet of many."""

    id: str
    data: dict[str, Any]


def _items(group: str, members: list[MapAsset], fold: bool) -> tuple[list[_Item], dict[str, str]]:
    """The group's nodes and, for every member, the node it is drawn as."""
    node_of: dict[str, str] = {}
    if not fold:
        items = []
        for a in members:
            node_of[a.ip] = f"asset:{a.ip}"
            items.append(_Item(f"asset:{a.ip}", {
                "label": a.label, "kind": "asset", "ip": a.ip, "roles": a.roles,
                "level": a.place.level, "level_source": a.place.level_source,
                "zone": a.place.zone}))  # fmt: skip
        return items, node_of
    buckets: dict[str, list[MapAsset]] = defaultdict(list)
    for a in members:
        buckets[subnet_of(a.ip)].append(a)
    items = []
    for cidr in sorted(buckets, key=lambda c: ip_key(c.split("/")[0])):
        inside = buckets[cidr]
        nid = f"subnet:{cidr}@{group}"
        for a in inside:
            node_of[a.ip] = nid
        items.append(_Item(nid, {"label": f"{cidr}\n{len(inside)} assets", "kind": "subnet",
                                 "cidr": cidr, "assets": len(inside)}))  # fmt: skip
    return items, node_of


def _edge_data(
    src: str, dst: str, e: dict[str, Any], rules: set[str], zoning: Zoning
) -> dict[str, Any]:
    return {
        "id": f"edge:{src}>{dst}",
        "source": src,
        "target": dst,
        "verdict": _verdict(rules, zoning),
        "rules": sorted(rules),
        "protocols": sorted(p for p in e["protocols"] if p),
        "ports": sorted(e["ports"]),
        "conversations": e["conversations"],
        "packets": e["packets"],
    }


def _aggregate(
    pairs: list[tuple[str, str, dict[str, Any], set[str]]], zoning: Zoning
) -> list[dict[str, Any]]:
    """Edges between folded nodes (zones, subnets): one per node pair, the worst verdict."""
    agg: dict[tuple[str, str], dict[str, Any]] = {}
    for src, dst, e, rules in pairs:
        acc = agg.setdefault((src, dst), {"protocols": set(), "ports": set(), "rules": set(),
                                          "conversations": 0, "packets": 0})  # fmt: skip
        acc["protocols"] |= e["protocols"]
        acc["ports"] |= e["ports"]
        acc["rules"] |= rules
        acc["conversations"] += e["conversations"]
        acc["packets"] += e["packets"]
    out = []
    for (src, dst), acc in sorted(agg.items()):
        out.append({"data": _edge_data(src, dst, acc, acc["rules"], zoning)})
    return out


def build_map(
    store: Store,
    zoning: Zoning,
    *,
    zone: str | None = None,
    max_nodes: int = 400,
    assets: list[MapAsset] | None = None,
    unconfirmed: bool = False,
    flt: MapFilter | None = None,
    group_max: int = GROUP_MAX,
) -> dict[str, Any]:
    """``assets``: :func:`map_assets` of the store, when the caller has them cached.
    Hosts only ever seen as scan targets are left off unless ``unconfirmed`` (their number
    is in ``hidden_unconfirmed``): one sweep must not bury the plant. A zone (or level
    group) with more than ``group_max`` assets is folded into one node per subnet;
    ``zone=subnet:CIDR`` opens one. ``flt`` keeps some conversations only."""
    flt = flt or MapFilter()
    if assets is None:
        assets = map_assets(store, zoning)
    hidden = 0 if unconfirmed else sum(1 for a in assets if not a.confirmed)
    if not unconfirmed:
        assets = [a for a in assets if a.confirmed]
    vio = verdicts(store, zoning)
    rows = [
        r
        for r in _edges(store)
        if flt.keeps(r["protocol"], vio.get((r["client_ip"], r["server_ip"]), set()))
    ]
    edges = _merge(rows)
    filtered_out = 0
    if flt.active:  # only what the kept conversations touch
        ends = {e["client_ip"] for e in edges} | {e["server_ip"] for e in edges}
        filtered_out = sum(1 for a in assets if a.ip not in ends)
        assets = [a for a in assets if a.ip in ends]
    by_ip = {a.ip: a for a in assets}
    edges = [e for e in edges if e["client_ip"] in by_ip and e["server_ip"] in by_ip]
    groups: dict[str, list[MapAsset]] = defaultdict(list)
    for a in assets:
        groups[a.group].append(a)
    for z in zoning.policy.zones if zoning.policy else []:
        groups.setdefault(f"zone:{z.name}", [])
    aggregated = len(assets) > max_nodes and zone is None
    open_subnet: str | None = None
    if zone is not None:
        if zone.startswith("subnet:"):
            open_subnet = zone.split(":", 1)[1].split("@", 1)[0]
            inside = {a.ip for a in assets if _in_subnet(a.ip, open_subnet)}
        else:
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
    node_of: dict[str, str] = {}
    subnets = 0
    y = 0.0
    for key, group_names in _level_order(groups, zoning):
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
                node_of.update({a.ip: g for a in members})
                x += 220
                continue
            if not members:  # an empty zone still shows where it sits
                nodes.append({"data": zone_data, "position": {"x": x, "y": y}})
                x += NODE_GAP * 1.6 + ZONE_GAP
                continue
            nodes.append({"data": zone_data})
            fold = len(members) > group_max and open_subnet is None
            items, where = _items(g, members, fold)
            node_of.update(where)
            subnets += sum(1 for it in items if it.data["kind"] == "subnet")
            cols = max(1, math.ceil(math.sqrt(max(1, len(items)) * 2)))
            for i, it in enumerate(items):
                row, col = divmod(i, cols)
                band_rows = max(band_rows, row + 1)
                nodes.append({
                    "data": {"id": it.id, "parent": g, **it.data},
                    "position": {"x": x + col * NODE_GAP * 1.6, "y": y + row * NODE_GAP},
                })  # fmt: skip
            x += max(1, min(cols, len(items))) * NODE_GAP * 1.6 + ZONE_GAP
        y += max(BAND_HEIGHT, band_rows * NODE_GAP + 120)
    out_edges: list[dict[str, Any]] = []
    folded: list[tuple[str, str, dict[str, Any], set[str]]] = []
    for e in edges:
        src, dst = node_of.get(e["client_ip"]), node_of.get(e["server_ip"])
        if src is None or dst is None:
            continue
        rules = vio.get((e["client_ip"], e["server_ip"]), set())
        if src.startswith("asset:") and dst.startswith("asset:"):
            out_edges.append({"data": _edge_data(src, dst, e, rules, zoning)})
        else:
            folded.append((src, dst, e, rules))
    out_edges += _aggregate(folded, zoning)
    return {
        "mode": "zones" if aggregated else "assets",
        "policy": zoning.plant,
        "focus": zone,
        "assets": len(assets),
        "hidden_unconfirmed": hidden,
        "filtered_out": filtered_out,
        "subnets": subnets,
        "filters": flt.to_dict(),
        "nodes": nodes,
        "edges": out_edges,
    }
