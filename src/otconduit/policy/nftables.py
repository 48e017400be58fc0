"""Compile a zones-and-conduits policy to an nftables ruleset for the IDMZ firewall.

The firewall can only enforce who talks to whom on which port, so each conduit becomes
one accept rule per application protocol (and address family); the allowed *operations*
are written next to the rule as a comment, for the passive monitor to enforce. Output
is deterministic (sorted sets, policy order for rules) so it diffs cleanly in review.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from otconduit.policy.spec import (
    ConduitSpec,
    PolicySpec,
    PolicySpecError,
    ServiceSpec,
    WindowSpec,
)
from otconduit.protocols import registry

TABLE = "conduit"

# Well-known (transport, port) pairs of each application protocol.
# The registered protocols' services come from the registry; the rest are protocols
# Conduit does not decode (yet) but a conduit may still allow.
PROTOCOL_PORTS: dict[str, tuple[tuple[str, int], ...]] = {
    "http": (("tcp", 80), ("tcp", 8080)),
    "https": (("tcp", 443),),
    "mqtt": (("tcp", 1883), ("tcp", 8883)),
    "ssh": (("tcp", 22),),
    "rdp": (("tcp", 3389),),
    "tcp": (),
    "udp": (),
    **registry.service_ports(),
}
# Transports for a protocol on a port that is not one of its well-known ones.
PROTOCOL_TRANSPORTS: dict[str, tuple[str, ...]] = {
    "tcp": ("tcp",),
    "udp": ("udp",),
    **{p: tuple(sorted({t for t, _ in pairs})) for p, pairs in PROTOCOL_PORTS.items() if pairs},
}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Family = str  # "ip" or "ip6", the nft payload keyword


def service_ports(svc: ServiceSpec) -> list[tuple[str, int]]:
    """(transport, port) pairs a service needs, sorted; explicit ports win over defaults."""
    if svc.protocol not in PROTOCOL_TRANSPORTS and svc.protocol not in PROTOCOL_PORTS:
        raise PolicySpecError(f"unknown protocol {svc.protocol!r}: give its ports as tcp/udp")
    known = PROTOCOL_PORTS.get(svc.protocol, ())
    if not svc.ports:
        if not known:
            raise PolicySpecError(f"protocol {svc.protocol!r} needs explicit ports")
        return sorted(known)
    out: set[tuple[str, int]] = set()
    for port in svc.ports:
        if not 0 < port < 65536:
            raise PolicySpecError(f"{svc.protocol}: bad port {port}")
        matched = {(t, p) for t, p in known if p == port}
        out |= matched or {(t, port) for t in PROTOCOL_TRANSPORTS[svc.protocol]}
    return sorted(out)


def set_name(zone: str, family: Family) -> str:
    """nft identifier for a zone's member set (letters, digits and underscores only)."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", zone)
    return f"zone_{base}" + ("_v6" if family == "ip6" else "")


def _family(addr: str) -> Family:
    return "ip6" if ipaddress.ip_network(addr, strict=False).version == 6 else "ip"


def _split(addrs: Iterable[str]) -> dict[Family, list[str]]:
    out: dict[Family, list[str]] = {}
    for a in addrs:
        out.setdefault(_family(a), []).append(a)
    for fam, items in out.items():
        nets = sorted({ipaddress.ip_network(a, strict=False) for a in items})
        out[fam] = [str(n.network_address) if n.num_addresses == 1 else str(n) for n in nets]
    return out


def _quote(text: str) -> str:
    """nft comments are double-quoted and capped at 128 bytes."""
    return '"' + text.replace('"', "'")[:120] + '"'


def _elements(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _ports_match(pairs: list[tuple[str, int]]) -> str:
    transports = {t for t, _ in pairs}
    if len(transports) == 1:
        (t,) = transports
        ports = [str(p) for _, p in pairs]
        return f"{t} dport " + (ports[0] if len(ports) == 1 else _elements(ports))
    return "meta l4proto . th dport " + _elements([f"{t} . {p}" for t, p in pairs])


def _days(days: Iterable[str]) -> str:
    names = [f'"{d.capitalize()}"' for d in sorted(set(days), key=WEEKDAYS.index)]
    return names[0] if len(names) == 1 else _elements(names)


def window_matches(window: WindowSpec) -> list[str]:
    """nft time matches for a weekly window; one crossing midnight needs two rules."""
    for d in window.weekdays:
        if d not in WEEKDAYS:
            raise PolicySpecError(f"window {window.name!r}: bad weekday {d!r}")
    if not window.weekdays:
        raise PolicySpecError(f"window {window.name!r}: no weekday")
    if window.start < window.end:
        return [f'meta day {_days(window.weekdays)} meta hour "{window.start}"-"{window.end}"']
    following = [WEEKDAYS[(WEEKDAYS.index(d) + 1) % 7] for d in window.weekdays]
    return [
        f'meta day {_days(window.weekdays)} meta hour "{window.start}"-"23:59:59"',
        f'meta day {_days(following)} meta hour "00:00"-"{window.end}"',
    ]


class _Compiler:
    def __init__(self, spec: PolicySpec) -> None:
        self.spec = spec
        self.windows = {w.name: w for w in spec.windows}
        self.zone_sets: dict[str, dict[Family, list[str]]] = {
            z.name: _split(z.members) for z in spec.zones
        }
        seen: dict[str, str] = {}
        for z in spec.zones:
            for fam in ("ip", "ip6"):
                name = set_name(z.name, fam)
                if seen.setdefault(name, z.name) != z.name:
                    raise PolicySpecError(f"zones {seen[name]!r} and {z.name!r} clash as {name}")

    def endpoint(self, zone: str, hosts: tuple[str, ...]) -> dict[Family, str]:
        """Per family, the nft expression for one side of a conduit."""
        if not hosts:
            return {f: "@" + set_name(zone, f) for f in self.zone_sets[zone]}
        split = _split(self.spec.address(h) for h in hosts)
        return {f: a[0] if len(a) == 1 else _elements(a) for f, a in split.items()}

    def conduit_rules(self, c: ConduitSpec) -> list[str]:
        src = self.endpoint(c.src_zone, c.src_hosts)
        dst = self.endpoint(c.dst_zone, c.dst_hosts)
        times = [""]
        if c.window:
            if c.window not in self.windows:
                raise PolicySpecError(f"conduit {c.name!r}: unknown window {c.window!r}")
            times = [" " + m for m in window_matches(self.windows[c.window])]
        lines = [f"# conduit {c.name}: {c.src_zone} -> {c.dst_zone}"]
        for svc in c.services:
            ops = ", ".join(svc.operations) if svc.operations else "per policy"
            lines.append(f"# {svc.protocol}: operations {ops} (enforced by the monitor)")
            pairs = service_ports(svc)
            if c.transports is not None:
                pairs = [(t, p) for t, p in pairs if t in c.transports]
            if not pairs:
                lines.append(f"# {svc.protocol}: no port left after 'transports', no rule")
                continue
            match = _ports_match(pairs)
            for fam in ("ip", "ip6"):
                if fam not in src or fam not in dst:
                    continue
                for time in times:
                    lines.append(
                        f"{fam} saddr {src[fam]} {fam} daddr {dst[fam]} {match}{time} "
                        f"counter accept comment {_quote(f'conduit {c.name}')}"
                    )
        return lines

    def sets(self) -> list[str]:
        out: list[str] = []
        for z in self.spec.zones:
            if z.other_members:
                listed = ", ".join(z.other_members)
                out.append(f"# zone {z.name}: members {listed} cannot be matched here")
            for fam, members in sorted(self.zone_sets[z.name].items()):
                kind = "ipv6_addr" if fam == "ip6" else "ipv4_addr"
                out += [
                    f"set {set_name(z.name, fam)} {{",
                    f"    type {kind}",
                    "    flags interval",
                    f"    comment {_quote(f'zone {z.name} (level {z.level:g})')}",
                    f"    elements = {_elements(members)}",
                    "}",
                ]
        return out


def compile_nftables(spec: PolicySpec) -> str:
    """The whole ruleset as an ``nft -f`` script that replaces ``table inet conduit``."""
    comp = _Compiler(spec)
    chain = [
        "type filter hook forward priority filter; policy drop;",
        'ct state established,related counter accept comment "return traffic"',
        'ct state invalid counter drop comment "invalid"',
    ]
    for c in spec.conduits:
        chain += comp.conduit_rules(c)
    chain.append('counter comment "default deny"')
    body = [*comp.sets(), "chain forward {", *("    " + ln for ln in chain), "}"]
    header = [
        "#!/usr/sbin/nft -f",
        f"# Conduit IDMZ firewall for plant {spec.plant}: generated, do not edit.",
        # nft turns `meta hour` into UTC with the loading process's timezone.
        f"# Load with: TZ={spec.timezone} nft -f <this file> (maintenance window times).",
        # Declaring then deleting makes the load idempotent: the old table goes away whole.
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
    ]
    return "\n".join([*header, *("    " + ln for ln in body), "}"]) + "\n"
