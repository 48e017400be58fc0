"""Attack paths: which level 0-1 assets an attacker in an IT zone can reach via conduits.

Nodes are named hosts (``host:<name>``) and zones (``zone:<name>``, a foothold on some
host of the zone that the policy does not name). A conduit adds an edge from each of its
sources to each of its targets: named hosts, or the whole zone (which also reaches every
named host in it). A named host may use any conduit open to its whole zone, hence an
edge host → its zone. Windowed conduits count: they are open some of the time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx

from otconduit.policy.spec import PolicySpec

IT_LEVEL = 4.0  # level 4 (enterprise) and 5 (internet-facing) are IT
CONTROL_LEVEL = 1.0  # level 0 (process) and 1 (basic control) are what must be protected
MEMBER = "(member of zone)"  # pseudo-conduit on host -> zone edges


@dataclass(frozen=True, slots=True)
class AttackPath:
    source_zone: str
    target: str  # host name, or "zone:<name>" for the zone's unnamed hosts
    target_zone: str
    nodes: list[str]  # hosts/zones along the shortest path, source first
    zones: list[str]  # zones traversed, consecutive duplicates merged
    conduits: list[str]  # conduit used at each hop


def host_node(name: str) -> str:
    return f"host:{name}"


def zone_node(name: str) -> str:
    return f"zone:{name}"


def build_graph(spec: PolicySpec) -> nx.DiGraph:
    """Directed reachability graph; edges carry the conduits (names) that allow them."""
    g = nx.DiGraph()
    host_zone: dict[str, str | None] = {h: spec.zone_of(ip) for h, ip in spec.hosts.items()}
    for z in spec.zones:
        g.add_node(zone_node(z.name), zone=z.name, level=z.level)
    for h, zone in host_zone.items():
        level = spec.zone(zone).level if zone else None
        g.add_node(host_node(h), zone=zone, level=level)
        if zone:
            g.add_edge(host_node(h), zone_node(zone), conduits=[MEMBER])

    def targets(zone: str, hosts: tuple[str, ...]) -> list[str]:
        if hosts:
            return [_endpoint(spec, zone, h, g) for h in hosts]
        named = [host_node(h) for h, z in host_zone.items() if z == zone]
        return [zone_node(zone), *named]

    for c in spec.conduits:
        # Named hosts reach their zone node, so a whole-zone source needs only that node.
        sources = (
            [_endpoint(spec, c.src_zone, h, g) for h in c.src_hosts]
            if c.src_hosts
            else [zone_node(c.src_zone)]
        )
        for s in sources:
            for t in targets(c.dst_zone, c.dst_hosts):
                if s == t:
                    continue
                if g.has_edge(s, t):
                    g.edges[s, t]["conduits"].append(c.name)
                else:
                    g.add_edge(s, t, conduits=[c.name])
    return g


def _endpoint(spec: PolicySpec, zone: str, host: str, g: nx.DiGraph) -> str:
    """Node for a conduit endpoint: a named host, or a literal address/CIDR inside ``zone``."""
    if host in spec.hosts:
        return host_node(host)
    node = host_node(spec.address(host))
    if node not in g:
        g.add_node(node, zone=zone, level=spec.zone(zone).level)
        g.add_edge(node, zone_node(zone), conduits=[MEMBER])
    return node


def _label(node: str) -> str:
    return node.removeprefix("host:")


def attack_paths(spec: PolicySpec) -> list[AttackPath]:
    """For each IT zone, the shortest path to every reachable level 0-1 asset."""
    g = build_graph(spec)
    out: list[AttackPath] = []
    for src in spec.zones:
        if src.level < IT_LEVEL:
            continue
        starts = sorted(n for n, d in g.nodes(data=True) if d.get("zone") == src.name)
        found = nx.multi_source_dijkstra_path(g, starts)
        for node in sorted(found):
            data = g.nodes[node]
            level = data.get("level")
            if level is None or level > CONTROL_LEVEL or node in starts:
                continue
            path = found[node]
            if g.edges[path[-2], node]["conduits"] == [MEMBER]:
                continue  # standing on a named host of the zone is already listed
            zones: list[str] = []
            for n in path:
                z = g.nodes[n].get("zone")
                if z and (not zones or zones[-1] != z):
                    zones.append(z)
            hops = ["/".join(g.edges[a, b]["conduits"]) for a, b in itertools.pairwise(path)]
            out.append(
                AttackPath(
                    source_zone=src.name,
                    target=_label(node),
                    target_zone=str(data["zone"]),
                    nodes=[_label(n) for n in path],
                    zones=zones,
                    conduits=hops,
                )
            )
    return out


def reachable_zones(spec: PolicySpec, source_zone: str) -> set[str]:
    """Zones an attacker starting anywhere in ``source_zone`` can reach (itself excluded)."""
    g = build_graph(spec)
    starts = [n for n, d in g.nodes(data=True) if d.get("zone") == source_zone]
    seen: set[str] = set()
    for s in starts:
        for n in nx.descendants(g, s):
            zone = g.nodes[n].get("zone")
            if zone and zone != source_zone:
                seen.add(zone)
    return seen
