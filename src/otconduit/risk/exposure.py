"""How exposed an asset is, as the policy allows it: the shortest conduit path from an IT
zone (the same graph as ``conduit policy paths``), the conduits that let anyone change
its program, firmware or process, and cleartext control protocols reaching it from other
zones (observed conversations)."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable

import networkx as nx

from otconduit.model import OpClass
from otconduit.policy.check import CLEARTEXT_CONTROL
from otconduit.policy.model import IDMZ_LEVEL, Policy, Zone
from otconduit.policy.paths import IT_LEVEL, MEMBER, build_graph, host_node, zone_node
from otconduit.policy.spec import spec_from_policy
from otconduit.risk.factors import Grant
from otconduit.store.risk import Served

DANGEROUS = (OpClass.FIRMWARE, OpClass.PROGRAM, OpClass.CONTROL, OpClass.WRITE)
NO_ZONE = "(no zone)"


class PolicyExposure:
    """Per-policy facts computed once (the graph and the paths from IT), asked per asset."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.graph = build_graph(spec_from_policy(policy))
        starts = [
            n
            for n, d in self.graph.nodes(data=True)
            if d.get("level") is not None and d["level"] >= IT_LEVEL
        ]
        self._paths: dict[str, list[str]] = (
            nx.multi_source_dijkstra_path(self.graph, starts) if starts else {}
        )

    def zone_of(self, ip: str, mac: str | None = None, vlan: int | None = None) -> Zone | None:
        return self.policy.zone_of(ip, mac, vlan)

    def it_path(self, ip: str, zone: Zone | None) -> tuple[list[str] | None, bool]:
        """(shortest path from an IT zone as hop labels, whether it passes the IDMZ), or
        (None, False) when no allowed conduit leads there."""
        name = self.policy.host_name(ip)
        candidates = [host_node(name)] if name else [host_node(ip)]
        if name is None and zone is not None:
            candidates.append(zone_node(zone.name))  # a whole-zone conduit reaches it
        best: list[str] | None = None
        for node in candidates:
            path = self._paths.get(node)
            if path and len(path) > 1 and (best is None or len(path) < len(best)):
                best = path
        if best is None:
            return None, False
        via_idmz = any(self.graph.nodes[n].get("level") == IDMZ_LEVEL for n in best[1:-1])
        return self._labels(best), via_idmz

    def _labels(self, path: list[str]) -> list[str]:
        """``zone:enterprise`` -> ``enterprise``, ``host:mes`` -> ``mes``, each hop with the
        conduit(s) that allow it."""
        out = [path[0].split(":", 1)[1]]
        for a, b in itertools.pairwise(path):
            conduits = [c for c in self.graph.edges[a, b]["conduits"] if c != MEMBER]
            label = b.split(":", 1)[1]
            out.append(f"{label} [{'/'.join(conduits)}]" if conduits else label)
        return out

    def grants(self, ip: str, zone: Zone | None) -> list[Grant]:
        """Conduits into the asset's zone admitting it that allow a dangerous class."""
        if zone is None:
            return []
        out = []
        for c in self.policy.conduits:
            if c.to != zone.name or not _admits(self.policy, c.to_hosts, ip):
                continue
            allowed = {
                op for rule in c.protocols.values() for op in DANGEROUS if rule.allows_operation(op)
            }
            if allowed:
                ops = tuple(op.value for op in DANGEROUS if op in allowed)
                out.append(Grant(c.name, c.from_, ops, c.window))
        return out

    def crossings(self, zone: Zone | None, served: Iterable[Served]) -> dict[str, set[str]]:
        """Cleartext control protocols it serves to clients in other zones (or none)."""
        out: dict[str, set[str]] = {}
        for s in served:
            if s.protocol not in CLEARTEXT_CONTROL:
                continue
            cz = self.policy.zone_of(s.client_ip)
            if zone is not None and cz is not None and cz.name == zone.name:
                continue
            out.setdefault(s.protocol, set()).add(cz.name if cz is not None else NO_ZONE)
        return out


def _admits(policy: Policy, entries: list[str], ip: str) -> bool:
    """A conduit's host list (empty = the whole zone) holds ``ip``."""
    if not entries:
        return True
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for e in entries:
        try:
            net = ipaddress.ip_network(policy.hosts.get(e, e), strict=False)
        except ValueError:
            continue
        if addr.version == net.version and addr in net:
            return True
    return False


__all__ = ["NO_ZONE", "PolicyExposure"]
