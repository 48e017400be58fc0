"""Propose a zones-and-conduits policy from what a store has observed.

A starting point for the review, not a verdict: zones are the /24 (IPv6: /64) subnets
assets were seen in, each level is guessed from the roles found there, and each conduit
allows exactly the industrial conversations and operation classes that were observed.
Every guess carries a YAML comment saying why, so a reviewer can overrule it.

Observed is not legitimate: traffic that raised an alert of medium severity or more, or
that came from a scanner (a recon alert, or a source probing hosts that never answered),
gets no conduit, lends its host no role name and casts no vote on a zone's level. And no
proposal lets an IT zone (level >= 4) program, flash or control levels 0-1.
"""

from __future__ import annotations

import ipaddress
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from otconduit.protocols import registry
from otconduit.store import Store, views
from otconduit.store import alerts as stored_alerts
from otconduit.store import assets as stored_assets

# Role (from otconduit.inventory.roles) -> Purdue level it suggests.
ROLE_LEVELS: dict[str, float] = {
    "plc": 1,
    "gateway": 1,
    "rtu": 1,
    "io": 1,
    "meter": 1,
    "hmi_scada": 2,
    "engineering_workstation": 2,
    "scada_historian": 3,
}
# Application protocols that are plant-floor traffic; anything else is IT.
# Conversation protocols that are industrial: the registered ones, and those not decoded
# yet that other tools (or a later Conduit) may have named.
_UNDECODED = {"bacnet", "iec104", "profinet"}
INDUSTRIAL = {s.name for s in registry.default_protocols()} | _UNDECODED
UNROLED_SERVER_LEVEL = 1.0  # serves an industrial protocol: a controller of some kind
UNROLED_CLIENT_LEVEL = 2.0  # polls controllers: supervisory
IT_LEVEL = 4.0
MEDIUM = 2  # alerts.severity: 0 info .. 4 critical
SCANS = ("port-sweep", "function-code-scan", "address-sweep")  # alert rules: a scanner
SCANNER_MIN_TARGETS = 10  # probing this many hosts that never answered makes a scanner
NEVER_FROM_IT = frozenset({"program", "firmware", "control"})  # to levels 0-1


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

    def level(
        self, suspect: dict[str, str] | None = None, evidence: dict[str, str] | None = None
    ) -> tuple[float, str]:
        """Lowest (most critical) level any member suggests, and why. ``suspect`` hosts
        (alerted traffic, scanners) cast no vote; ``evidence`` says why a role was given."""
        votes: list[tuple[float, str]] = []
        suspect = suspect or {}
        evidence = evidence or {}
        for ip in sorted(self.ips, key=_ip_key):
            if ip in suspect:
                continue
            roles = self.roles.get(ip, set())
            if roles:
                lvl = min(ROLE_LEVELS.get(r, IT_LEVEL) for r in roles)
                why = f" ({evidence[ip]})" if ip in evidence else ""
                votes.append((lvl, f"{ip} is {'/'.join(sorted(roles))}{why}"))
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


def _suspects(store: Store) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Sources whose traffic must not become a conduit: {ip: why} for every destination
    (scanners, alerts with no single target), {(src, dst): why} for one pair."""
    by_src: dict[str, str] = {}
    by_pair: dict[tuple[str, str], str] = {}
    sev_name = {0: "info", 1: "low", 2: "medium", 3: "high", 4: "critical"}
    for r in stored_alerts.sources_of_concern(store, MEDIUM, SCANS):
        why = f"alert #{r['id']} {r['rule']} ({sev_name.get(r['severity'], r['severity'])})"
        if r["rule"] in SCANS or r["dst_ip"] is None:
            by_src.setdefault(r["src_ip"], why)
        else:
            by_pair.setdefault((r["src_ip"], r["dst_ip"]), why)
    real = {ip for ip, _ in views.confirmed_hosts(store)}
    probed: dict[str, set[str]] = defaultdict(set)
    for c in views.conversations(store):
        if c["server_ip"] not in real:
            probed[c["client_ip"]].add(c["server_ip"])
    for src, targets in probed.items():
        if len(targets) >= SCANNER_MIN_TARGETS:
            by_src.setdefault(src, f"probed {len(targets)} hosts that never answered (scanner)")
    return by_src, by_pair


def _role_evidence(store: Store) -> dict[str, str]:
    """The behaviour behind each host's inferred roles, for the level comments."""
    out: dict[str, list[str]] = defaultdict(list)
    for r in stored_assets.role_evidence(store):
        out[r["ip"]].append(f"{r['name']}: {r['evidence']}")
    return {ip: "; ".join(items) for ip, items in out.items()}


def propose_policy(store: Store, plant: str = "proposed") -> str:
    """A policy YAML (loadable by ``load_policy``) describing the observed plant."""
    assets = [a for a in views.assets(store) if a["confirmed"]]
    convs = views.conversations(store)
    suspect, suspect_pairs = _suspects(store)
    evidence = _role_evidence(store)
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
    refused: dict[str, list[str]] = defaultdict(list)  # why -> conversations not proposed
    real = {a["ip"] for a in assets}
    for c in convs:
        if not (_unicast(c["client_ip"]) and _unicast(c["server_ip"])):
            skipped_bcast += 1
            continue
        if c["server_ip"] not in real:
            continue  # a probe of an address that never answered: nothing to allow
        why = suspect.get(c["client_ip"]) or suspect_pairs.get((c["client_ip"], c["server_ip"]))
        if why:
            refused[why].append(
                f"{c['client_ip']} -> {c['server_ip']} {c['protocol']}/{c['server_port']}"
            )
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
    # A suspect's roles come from what it did in the alerted traffic: no role name.
    names = {
        ip: _host_name(ip, set() if ip in suspect else roles.get(ip, set())) for ip in by_ip_zone
    }

    lines = [
        f"# Policy PROPOSED by `conduit policy init` from {len(assets)} observed assets and",
        f"# {len(convs)} conversations. Review every guess (the comments say why) before use.",
        f"# Not proposed: {skipped_it} non-industrial and {skipped_bcast} broadcast/multicast",
        "# conversations; add conduits for them by hand if they are legitimate.",
    ]
    if refused:
        total = sum(len(v) for v in refused.values())
        lines.append(
            f"# Not proposed: {total} conversation(s) whose traffic raised alerts (medium or"
        )
        lines.append("# more) or came from a scanner; investigate before allowing any of them:")
        for why, listed in sorted(refused.items()):
            shown = ", ".join(listed[:4]) + (
                f" (+{len(listed) - 4} more)" if len(listed) > 4 else ""
            )
            lines.append(f"#   {why}: {shown}")
    lines += [
        "",
        "version: 1",
        f"plant: {_q(plant)}",
        "timezone: UTC",
        "default: deny",
        "",
        "hosts:",
    ]
    for ip in sorted(names, key=_ip_key):
        if ip in suspect:
            why = f"SUSPECT, {suspect[ip]}: no role name given"
        else:
            why = "/".join(sorted(roles.get(ip, set()))) or "no role inferred"
        lines.append(f"  {names[ip]}: {_q(ip)}  # {why}")
    lines += ["", "zones:"]
    ordered = sorted(zones.values(), key=lambda z: _ip_key(str(ipaddress.ip_network(z.network)[0])))
    levels = {z.name: z.level(suspect, evidence)[0] for z in ordered}
    for z in ordered:
        lvl, why = z.level(suspect, evidence)
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
        src_level = levels[src]
        dst_level = levels[dst]
        for proto, (ports, classes) in sorted(per_proto.items()):
            plist = ", ".join(str(p) for p in sorted(ports))
            if src_level >= IT_LEVEL and dst_level <= 1 and classes & NEVER_FROM_IT:
                dropped = ", ".join(sorted(classes & NEVER_FROM_IT))
                lines.append(
                    f"      # NOT allowed although observed: {dropped} from an IT zone "
                    f"(level {src_level:g}) to level {dst_level:g}"
                )
                classes = classes - NEVER_FROM_IT
            olist = ", ".join(sorted(classes))
            if not classes:
                lines.append("      # no operations decoded: only session set-up is allowed")
            else:
                lines.append(f"      # operation classes observed: {olist}")
            lines.append(f"      {proto}: {{ports: [{plist}], operations: [{olist}]}}")
    return "\n".join(lines) + "\n"
