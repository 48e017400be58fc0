"""Plain, frozen view of a policy that the compilers and analyses work on.

The compilers (nftables, attack paths) need only names, addresses and ports, so they take
this small representation instead of the pydantic model: they stay testable on plain
data, and :func:`spec_from_policy` adapts whatever the loader returns (read by attribute
or key, so the model may grow fields freely).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time as dt_time
from pathlib import Path
from typing import Any


class PolicySpecError(ValueError):
    """The policy cannot be turned into rules (unknown host, zone or protocol)."""


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    name: str
    level: float
    members: tuple[str, ...]  # CIDRs or single addresses, as normalised strings
    # MAC and VLAN members: meaningful to the passive monitor, invisible to a routed
    # firewall (MACs are rewritten at each hop), so compilers report them, not match them.
    other_members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    protocol: str
    ports: tuple[int, ...]  # empty: the protocol's well-known ports
    operations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConduitSpec:
    name: str
    src_zone: str
    dst_zone: str
    src_hosts: tuple[str, ...]  # host names; empty means the whole zone
    dst_hosts: tuple[str, ...]
    services: tuple[ServiceSpec, ...]
    window: str | None = None
    transports: tuple[str, ...] | None = None  # None: whatever each protocol uses


@dataclass(frozen=True, slots=True)
class WindowSpec:
    name: str
    weekdays: tuple[str, ...]  # lower-case full day names
    start: str  # HH:MM[:SS]; end <= start crosses midnight
    end: str


@dataclass(frozen=True, slots=True)
class PolicySpec:
    plant: str
    hosts: Mapping[str, str]  # name -> address
    zones: tuple[ZoneSpec, ...]
    conduits: tuple[ConduitSpec, ...]
    windows: tuple[WindowSpec, ...] = ()
    timezone: str = "UTC"

    def zone(self, name: str) -> ZoneSpec:
        for z in self.zones:
            if z.name == name:
                return z
        raise PolicySpecError(f"unknown zone {name!r}")

    def address(self, host: str) -> str:
        """A host name, address or CIDR → normalised address/CIDR string."""
        value = self.hosts.get(host, host)
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise PolicySpecError(f"unknown host {host!r}") from None
        return str(net.network_address) if net.num_addresses == 1 else str(net)

    def zone_of(self, address: str) -> str | None:
        """The first zone whose members contain ``address`` (policy order)."""
        ip = ipaddress.ip_address(address)
        for z in self.zones:
            for m in z.members:
                if ip in ipaddress.ip_network(m, strict=False):
                    return z.name
        return None


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """Field by attribute (pydantic model) or key (raw YAML mapping)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _first(obj: Any, *names: str) -> Any:
    for n in names:
        v = _get(obj, n)
        if v is not None:
            return v
    return None


def _text(v: Any) -> str:
    """Enum members and plain values alike → their string value."""
    return str(getattr(v, "value", v))


def _time(v: Any) -> str:
    """``datetime.time`` or text → HH:MM, with seconds only when they matter."""
    if isinstance(v, dt_time):
        return v.strftime("%H:%M:%S" if v.second else "%H:%M")
    if isinstance(v, int):  # YAML 1.1 reads unquoted 02:00 as sexagesimal minutes
        return f"{v // 60:02d}:{v % 60:02d}"
    return str(v)


def _members(z: Any, hosts: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split zone members into IP networks and the rest (MAC / VLAN members)."""
    nets: list[str] = []
    other: list[str] = []
    for m in _get(z, "members") or []:
        vlan = _get(m, "vlan") if not isinstance(m, str) else None
        if vlan is not None:
            other.append(f"vlan {vlan}")
            continue
        text = hosts.get(str(m), str(m))
        try:
            nets.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            other.append(text)
    return tuple(nets), tuple(other)


def _services(protocols: Any) -> tuple[ServiceSpec, ...]:
    if isinstance(protocols, Mapping):
        items = list(protocols.items())
    else:  # a list of rule objects that carry their own protocol name
        items = [(_first(p, "protocol", "name"), p) for p in protocols or []]
    out = []
    for proto, rule in items:
        ports = tuple(sorted({int(p) for p in (_get(rule, "ports") or [])}))
        ops = tuple(_text(o) for o in (_get(rule, "operations") or []))
        out.append(ServiceSpec(_text(proto).lower(), ports, ops))
    return tuple(sorted(out, key=lambda s: s.protocol))


def spec_from_policy(policy: Any) -> PolicySpec:
    """Adapt the loader's ``Policy`` (or the raw YAML mapping) to a :class:`PolicySpec`."""
    raw_hosts = _get(policy, "hosts") or {}
    if isinstance(raw_hosts, Mapping):
        hosts = {str(k): str(_first(v, "address", "ip") or v) for k, v in raw_hosts.items()}
    else:
        hosts = {str(_get(h, "name")): str(_first(h, "address", "ip")) for h in raw_hosts}
    zones = tuple(
        ZoneSpec(str(_get(z, "name")), float(_get(z, "level", 0)), *_members(z, hosts))
        for z in _get(policy, "zones") or []
    )
    conduits = []
    for c in _get(policy, "conduits") or []:
        window = _get(c, "window")
        transports = _get(c, "transports")
        conduits.append(
            ConduitSpec(
                name=str(_get(c, "name")),
                src_zone=str(_first(c, "from_zone", "from_", "source", "from")),
                dst_zone=str(_first(c, "to_zone", "to", "destination")),
                src_hosts=tuple(str(h) for h in (_get(c, "from_hosts") or [])),
                dst_hosts=tuple(str(h) for h in (_get(c, "to_hosts") or [])),
                services=_services(_get(c, "protocols") or {}),
                window=None if window is None else str(window),
                transports=None if transports is None else tuple(str(t) for t in transports),
            )
        )
    windows = []
    for w in _get(policy, "maintenance_windows") or []:
        days = _get(w, "weekday") or []
        days = [days] if isinstance(days, str) else days
        windows.append(
            WindowSpec(
                str(_get(w, "name")),
                tuple(str(d).lower() for d in days),
                _time(_get(w, "start", "")),
                _time(_get(w, "end", "")),
            )
        )
    spec = PolicySpec(
        plant=str(_get(policy, "plant") or "plant"),
        hosts=hosts,
        zones=zones,
        conduits=tuple(conduits),
        windows=tuple(windows),
        timezone=str(_get(policy, "timezone") or "UTC"),
    )
    _check(spec)
    return spec


def _check(spec: PolicySpec) -> None:
    names = {z.name for z in spec.zones}
    for c in spec.conduits:
        for zname in (c.src_zone, c.dst_zone):
            if zname not in names:
                raise PolicySpecError(f"conduit {c.name!r}: unknown zone {zname!r}")
        for h in (*c.src_hosts, *c.dst_hosts):
            spec.address(h)


def load_spec(path: Path) -> PolicySpec:
    """Load and validate a policy file with the project loader, then adapt it.

    Raises ``PolicyError`` (invalid file) or :class:`PolicySpecError` (not compilable).
    """
    from otconduit.policy.load import load_policy

    return spec_from_policy(load_policy(path))
