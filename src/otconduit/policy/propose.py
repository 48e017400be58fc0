"""Propose a zones-and-conduits policy from what a store has observed.

A starting point for the review, not a verdict: zones are the /24 (IPv6: /64) subnets
assets were seen in, each level is guessed from the roles found there, and each conduit
allows exactly the industrial conversations and operation classes that were observed.
Every guess carries a YAML comment saying why, so a reviewer can overrule it.
"""

from __future__ import annotations

import ipaddress
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from otconduit.store import Store, views

# Role (from otconduit.inventory.roles) -> Purdue level it suggests.
ROLE_LEVELS: dict[str, float] = {
    "plc": 1,
    "gateway": 1,
    "rtu": 1,
    "io": 1,
    "hmi_scada": 2,
    "engineering_workstation": 2,
    "scada_historian": 3,
}
# Application protocols that are plant-floor traffic; anything else is IT.
INDUSTRIAL = {"modbus", "s7comm", "dnp3", "enip", "opcua", "bacnet", "iec104", "profinet"}
UNROLED_SERVER_LEVEL = 1.0  # serves an industrial protocol: a controller of some kind
UNROLED_CLIENT_LEVEL = 2.0  # polls controllers: supervisory
IT_LEVEL = 4.0


class ProposalError(ValueError):
    """Nothing observed to build a policy from."""


@dataclass
class _Zone:
    network: str
    name: str
    ips: set[str] = field(default_factory=set)
    vlans: set[int] = field(default_factory=set)
    roles: dict[str, set[str]] = field(default_factory=dict)  # ip -> roles
    served: set[str] = field(default_factory=set)  # ips serving an industrial protocol
    polled: set[str] = field(default_factory=set)  # ips polling an industrial protocol

    def level(self) -> tuple[float, str]:
        """Lowest (most critical) level any member suggests, and why."""
        votes: list[tuple[float, str]] = []
        for ip in sorted(self.ips, key=_ip_key):
            roles = self.roles.get(ip, set())
            if roles:
                lvl = min(ROLE_LEVELS.get(r, IT_LEVEL) for r in roles)
                votes.append((lvl, f"{ip} is {'/'.join(sorted(roles))}"))
            elif ip in self.served:
                votes.append((UNROLED_SERVER_LEVEL, f"{ip} serves an industrial protocol"))
            elif ip in self.polled:
                votes.append((UNROLED_CLIENT_LEVEL, f"{ip} polls industrial devices"))
        if not votes:
            return IT_LEVEL, "no industrial role or protocol seen: assumed business network"
        lvl = min(v[0] for v in votes)
        why = "; ".join(v[1] for v in votes if v[0] == lvl)
        mixed = len({v[0] for v in votes}) > 1
        if mixed:
            why += " (mixed levels in one subnet: flat network, level of its most critical asset)"
        return lvl, why


def _ip_key(ip: str) -> tuple[int, int]:
    a = ipaddress.ip_address(ip)
    return a.version, int(a)


def _unicast(ip: str | None) -> bool:
    if not ip:
        return False
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if a.is_multicast or a.is_unspecified:
        return False
    return not (a.version == 4 and (a == ipaddress.IPv4Address("255.255.255.255")))


def _subnet(ip: str) -> str:
    a = ipaddress.ip_address(ip)
    return str(ipaddress.ip_network(f"{ip}/{24 if a.version == 4 else 64}", strict=False))


def _zone_name(net: str) -> str:
    n = ipaddress.ip_network(net)
    if n.version == 4:
        return "net-" + "-".join(str(n.network_address).split(".")[:3])
    return "net6-" + str(n.network_address).rstrip(":").replace(":", "-")


def _host_name(ip: str, roles: set[str]) -> str:
    role = min(roles, key=lambda r: (ROLE_LEVELS.get(r, IT_LEVEL), r)) if roles else "host"
    return f"{role.replace('_', '-')}-{ip.replace('.', '-').replace(':', '-')}"


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def _operations(store: Store) -> dict[tuple[str, str, str, int], set[str]]:
    """Observed operation classes per (protocol, client, server, server port)."""
    convs = {
        (c["protocol"], c["client_ip"], c["server_ip"], c["server_port"])
        for c in views.conversations(store)
    }
    ops: dict[tuple[str, str, str, int], set[str]] = defaultdict(set)
    for o in views.operations(store):
        p = o["protocol"]
        fwd = (p, o["src_ip"], o["dst_ip"], o["dst_port"])
        key = fwd if fwd in convs else (p, o["dst_ip"], o["src_ip"], o["src_port"])
        if o["operation"] != "session":  # always allowed with the protocol
            ops[key].add(o["operation"])
    return ops


def propose_policy(store: Store, plant: str = "proposed") -> str:
    """A policy YAML (loadable by ``load_policy``) describing the observed plant."""
    assets = views.assets(store)
    convs = views.conversations(store)
    zones: dict[str, _Zone] = {}

    def zone_for(ip: str) -> _Zone:
        net = _subnet(ip)
        z = zones.setdefault(net, _Zone(net, _zone_name(net)))
        z.ips.add(ip)
        return z

    roles: dict[str, set[str]] = {}
    for a in assets:
        if not _unicast(a["ip"]):
            continue
        z = zone_for(a["ip"])
        roles[a["ip"]] = set(a["roles"])
        z.roles[a["ip"]] = set(a["roles"])
        if a["vlan"] is not None:
            z.vlans.add(a["vlan"])
    industrial = []
    skipped_it = skipped_bcast = 0
    for c in convs:
        if not (_unicast(c["client_ip"]) and _unicast(c["server_ip"])):
            skipped_bcast += 1
            continue
        if c["protocol"] not in INDUSTRIAL:
            skipped_it += 1
            continue
        industrial.append(c)
        zone_for(c["client_ip"]).polled.add(c["client_ip"])
        zs = zone_for(c["server_ip"])
        zs.served.add(c["server_ip"])
        if c["vlan"] is not None:
            zs.vlans.add(c["vlan"])

    if not zones:
        raise ProposalError("no unicast assets in the database: analyze a capture first")
    ops = _operations(store)
    by_ip_zone = {ip: z for z in zones.values() for ip in z.ips}
    names = {ip: _host_name(ip, roles.get(ip, set())) for ip in by_ip_zone}

    lines = [
        f"# Policy PROPOSED by `conduit policy init` from {len(assets)} observed assets and",
        f"# {len(convs)} conversations. Review every guess (the comments say why) before use.",
        f"# Not proposed: {skipped_it} non-industrial and {skipped_bcast} broadcast/multicast",
        "# conversations; add conduits for them by hand if they are legitimate.",
        "",
        "version: 1",
        f"plant: {_q(plant)}",
        "timezone: UTC",
        "default: deny",
        "",
        "hosts:",
    ]
    for ip in sorted(names, key=_ip_key):
        why = "/".join(sorted(roles.get(ip, set()))) or "no role inferred"
        lines.append(f"  {names[ip]}: {_q(ip)}  # {why}")
    lines += ["", "zones:"]
    ordered = sorted(zones.values(), key=lambda z: _ip_key(str(ipaddress.ip_network(z.network)[0])))
    for z in ordered:
        lvl, why = z.level()
        vlans = ", ".join(str(v) for v in sorted(z.vlans))
        desc = f"Subnet {z.network}" + (f", VLAN {vlans}" if vlans else "")
        lines += [
            f"  - name: {z.name}",
            f"    # level guessed: {why}",
            f"    level: {lvl:g}",
            f"    description: {_q(desc)}",
            f"    members: [{z.network}]",
        ]
        if len(z.vlans) > 1:
            lines.append(f"    # seen on several VLANs ({vlans}): consider splitting the zone")
    lines += ["", "conduits:" + ("" if industrial else " []")]

    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in industrial:
        key = (by_ip_zone[c["client_ip"]].name, by_ip_zone[c["server_ip"]].name)
        grouped[key].append(c)
    for (src, dst), items in sorted(grouped.items()):
        name = f"{src}-internal" if src == dst else f"{src}-to-{dst}"
        clients = sorted({c["client_ip"] for c in items}, key=_ip_key)
        servers = sorted({c["server_ip"] for c in items}, key=_ip_key)
        lines += [
            f"  - name: {name}",
            f"    # observed: {len(items)} industrial conversation(s) {src} -> {dst}",
            f"    from: {src}",
            f"    to: {dst}",
            f"    from_hosts: [{', '.join(names[ip] for ip in clients)}]",
            f"    to_hosts: [{', '.join(names[ip] for ip in servers)}]",
            "    protocols:",
        ]
        per_proto: dict[str, tuple[set[int], set[str]]] = defaultdict(lambda: (set(), set()))
        for c in items:
            ports, classes = per_proto[c["protocol"]]
            ports.add(c["server_port"])
            conv = (c["protocol"], c["client_ip"], c["server_ip"], c["server_port"])
            classes |= ops.get(conv, set())
        for proto, (ports, classes) in sorted(per_proto.items()):
            plist = ", ".join(str(p) for p in sorted(ports))
            olist = ", ".join(sorted(classes))
            if not classes:
                lines.append("      # no operations decoded: only session set-up is allowed")
            else:
                lines.append(f"      # operation classes observed: {olist}")
            lines.append(f"      {proto}: {{ports: [{plist}], operations: [{olist}]}}")
    return "\n".join(lines) + "\n"
