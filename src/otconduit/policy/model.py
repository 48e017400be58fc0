"""Zones and conduits (IEC 62443-3-2) as typed, validated pydantic models.

The YAML schema is the one in ``examples/plant-policy.yaml``; this module adds compatible
extensions. Public API (stable; other modules build on it):

* :class:`Policy` -- ``version``, ``plant``, ``timezone``, ``default`` (``deny``/``allow``),
  ``hosts`` (name -> IP), ``zones``, ``maintenance_windows``, ``conduits``.

  - ``zone_of(ip, mac=None, vlan=None) -> Zone | None``: the most specific zone holding the
    address: a MAC member beats a single host, a host beats a longer CIDR prefix, any IP
    match beats a ``vlan: N`` member.
  - ``zone(name) -> Zone``; ``host_ip(name) -> str`` (KeyError if unknown).
  - ``window(name) -> MaintenanceWindow``; ``in_window(name, when) -> bool``.
  - ``conduits_between(src_ip, dst_ip, mac/vlan...) -> list[Conduit]``: conduits whose
    ``from``/``to`` zones hold client and server and whose host lists admit both.
  - ``restricts_zone(name) -> bool``: some conduit runs inside that zone (from == to), so
    intra-zone traffic there must match a conduit; otherwise intra-zone traffic is free.
  - ``tz``: the policy's :class:`zoneinfo.ZoneInfo`.
* :class:`Zone` -- ``name``, ``level`` (0-5, 3.5 = IDMZ), ``description``, ``members`` (CIDR,
  single IP, host name, MAC, or ``{vlan: N}``), ``sl_t`` (0-4), ``owner`` (free text;
  ``owner_kind`` gives IT/OT/shared when recognisable), ``criticality``, ``probe`` (may be
  actively probed by ``conduit probe``);
  ``is_idmz``; ``contains(ip, mac, vlan) -> int | None`` (match specificity).
* :class:`Conduit` -- ``name``, ``from_`` (YAML ``from``), ``to``, ``from_hosts``,
  ``to_hosts`` (host names, IPs or CIDRs; empty = whole zone), ``window``, ``transports``,
  ``protocols`` (name -> :class:`ProtocolRule`); ``rule_for(protocol, port, transport)``,
  ``admits(src_ip, dst_ip)``, ``allows(protocol, port, operation=None, transport=None)``.
* :class:`ProtocolRule` -- ``ports`` (empty = any), ``operations`` (allow-list) or
  ``deny_operations`` (deny-list); ``allows_operation(op)``. ``session`` is implicitly
  allowed wherever the protocol is: connection set-up is a precondition, not an action.
* :class:`MaintenanceWindow` -- ``name``, ``weekday`` (one or a list), ``start``, ``end``
  (``HH:MM``; end <= start crosses midnight); ``contains(local_datetime)``.
* :class:`PolicyError` -- one-line error; ``loc`` is the path into the YAML document.

Devices without IP (PROFINET, GOOSE) are assets keyed by their MAC; a zone holds them by
listing the MAC (or their ``{vlan: N}``).

Protocol names: the protocol registry's aliases (``cip`` and ``eip`` for ``enip``, ``s7``
for ``s7comm``, ``opc-ua`` for ``opcua``, ...).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, time
from functools import cached_property
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from otconduit.inventory.macs import norm_mac
from otconduit.model import OpClass
from otconduit.protocols import registry

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Loc = tuple[str | int, ...]

LEVELS = (0.0, 1.0, 2.0, 3.0, 3.5, 4.0, 5.0)
IDMZ_LEVEL = 3.5
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# The registry's aliases (protocols not registered yet would add theirs here).
PROTOCOL_ALIASES = {**registry.aliases()}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PolicyError(Exception):
    """A policy is invalid; ``str()`` is one line saying where and what to fix."""

    def __init__(self, message: str, loc: Loc = ()) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)


def _check_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError(f"{v!r} is not a valid name (letters, digits, '-', '_', '.')")
    return v


def _parse_net(v: str) -> Network | None:
    try:
        return ipaddress.ip_network(v.strip(), strict=False)
    except ValueError:
        return None


def _parse_op(v: Any) -> OpClass:
    if isinstance(v, str) and v in set(OpClass):
        return OpClass(v)
    allowed = ", ".join(OpClass)
    raise ValueError(f"unknown operation class {v!r}: use one of {allowed}")


def _check_member(m: str) -> str:
    if norm_mac(m) or _parse_net(m):
        return m
    if "/" in m or m.replace(".", "").isdigit() or ":" in m:
        raise ValueError(f"{m!r} is not a valid CIDR, IP or MAC address")
    return _check_name(m)  # otherwise a host name, resolved against `hosts` by Policy


def _sexagesimal_mac(v: Any) -> Any:
    """YAML 1.1 reads an unquoted all-digit MAC (``12:34:12:34:12:40``) as a base-60
    integer, as it reads ``02:00`` (see ``MaintenanceWindow``): give the MAC back."""
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        return v
    head, groups = v, []
    for _ in range(5):
        head, g = divmod(head, 60)
        groups.append(g)
    if not 10 <= head <= 99:
        return v  # not six two-digit groups: left for the member check to refuse
    return ":".join(f"{g:02d}" for g in [head, *reversed(groups)])


Name = Annotated[str, AfterValidator(_check_name)]
OpName = Annotated[OpClass, BeforeValidator(_parse_op)]
Member = Annotated[str, BeforeValidator(_sexagesimal_mac), AfterValidator(_check_member)]


class VlanMember(_Strict):
    """``- vlan: 20`` in a zone's members: everything seen tagged with that VLAN."""

    vlan: int = Field(ge=0, le=4095)


class ProtocolRule(_Strict):
    """What a conduit lets through for one protocol."""

    ports: list[int] = Field(default_factory=list)
    operations: list[OpName] | None = None
    deny_operations: list[OpName] = Field(default_factory=list)

    @field_validator("ports")
    @classmethod
    def _ports(cls, v: list[int]) -> list[int]:
        for p in v:
            if not 0 < p < 65536:
                raise ValueError(f"port {p} is out of range 1-65535")
        return v

    @model_validator(mode="after")
    def _exclusive(self) -> ProtocolRule:
        if self.operations is not None and self.deny_operations:
            raise ValueError("give either 'operations' (allow-list) or 'deny_operations'")
        return self

    def allows_operation(self, op: OpClass | str) -> bool:
        """True if this rule lets ``op`` through (``session`` always passes)."""
        op = OpClass(op)
        if op is OpClass.SESSION:
            return True
        if self.operations is not None:
            return op in self.operations
        return op not in self.deny_operations

    def matches_port(self, port: int | None) -> bool:
        return not self.ports or port is None or port in self.ports


class MaintenanceWindow(_Strict):
    """A weekly window in the policy's timezone; ``end <= start`` crosses midnight."""

    name: Name
    weekday: list[str]
    start: time
    end: time

    @field_validator("weekday", mode="before")
    @classmethod
    def _days(cls, v: Any) -> Any:
        days = [v] if isinstance(v, str) else v
        if not isinstance(days, list):
            return v
        out: list[str] = []
        for d in days:
            if not isinstance(d, str):
                raise ValueError(f"weekday {d!r} must be a day name")
            key = d.strip().lower()
            if key == "daily":
                out.extend(WEEKDAYS)
                continue
            match = [w for w in WEEKDAYS if len(key) >= 3 and w.startswith(key)]
            if not match:
                raise ValueError(f"unknown weekday {d!r}: use monday ... sunday or daily")
            out.append(match[0])
        return out

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, v: Any) -> Any:
        if isinstance(v, int):  # YAML 1.1 reads 02:00 unquoted as sexagesimal minutes
            v = f"{v // 60:02d}:{v % 60:02d}"
        if isinstance(v, str):
            if v.strip() == "24:00":
                return time(23, 59, 59, 999999)
            try:
                return time.fromisoformat(v.strip())
            except ValueError:
                raise ValueError(f"time {v!r} must be HH:MM (24-hour)") from None
        return v

    def contains(self, local: datetime) -> bool:
        """True if the local (policy timezone) datetime falls inside the window."""
        day = WEEKDAYS[local.weekday()]
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return day in self.weekday and self.start <= t < self.end
        prev = WEEKDAYS[(local.weekday() - 1) % 7]
        return (day in self.weekday and t >= self.start) or (prev in self.weekday and t < self.end)


class Zone(_Strict):
    """A group of assets with the same security requirements."""

    name: Name
    level: float
    description: str = ""
    members: list[Member | VlanMember] = Field(default_factory=list)
    sl_t: int | None = Field(default=None, ge=0, le=4)
    owner: str | None = None
    criticality: Literal["low", "medium", "high", "critical"] | None = None
    # `conduit probe` may send read-only identity requests to this zone's hosts.
    probe: bool = False

    _nets: list[Network] = PrivateAttr(default_factory=list)
    _macs: set[str] = PrivateAttr(default_factory=set)
    _vlans: set[int] = PrivateAttr(default_factory=set)
    _names: list[tuple[int, str]] = PrivateAttr(default_factory=list)

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float) or float(v) not in LEVELS:
            raise ValueError(
                f"level {v!r} is not a Purdue level: use 0, 1, 2, 3, 3.5 (IDMZ), 4 or 5"
            )
        return float(v)

    @model_validator(mode="after")
    def _index(self) -> Zone:
        for i, m in enumerate(self.members):
            if isinstance(m, VlanMember):
                self._vlans.add(m.vlan)
            elif mac := norm_mac(m):
                self._macs.add(mac)
            elif (net := _parse_net(m)) is not None:
                self._nets.append(net)
            else:
                self._names.append((i, m))
        return self

    @property
    def is_idmz(self) -> bool:
        return self.level == IDMZ_LEVEL

    @property
    def owner_kind(self) -> str | None:
        """IT, OT or shared when the owner text says so, else None (free text)."""
        if not self.owner:
            return None
        text = self.owner.upper()
        has_it = re.search(r"\bIT\b", text) is not None
        has_ot = re.search(r"\bOT\b", text) is not None
        if "SHARED" in text or (has_it and has_ot):
            return "shared"
        return "IT" if has_it else "OT" if has_ot else None

    def contains(
        self, ip: str | None, mac: str | None = None, vlan: int | None = None
    ) -> int | None:
        """Specificity of the best member matching (higher wins), or None if none does."""
        if mac and (m := norm_mac(mac)) and m in self._macs:
            return 1000
        best: int | None = None
        if ip:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                addr = None
            if addr is not None:
                for net in self._nets:
                    if addr.version == net.version and addr in net:
                        score = 100 + net.prefixlen
                        best = score if best is None else max(best, score)
        if best is None and vlan is not None and vlan in self._vlans:
            best = 1
        return best


def _endpoint_nets(entries: list[str], hosts: dict[str, str]) -> list[Network] | None:
    nets: list[Network] = []
    for e in entries:
        net = _parse_net(hosts[e]) if e in hosts else _parse_net(e)
        if net is None:
            return None
        nets.append(net)
    return nets


class Conduit(_Strict):
    """Permitted communication from one zone (clients) to another (servers)."""

    name: Name
    from_: str = Field(alias="from")
    to: str
    description: str = ""
    from_hosts: list[str] = Field(default_factory=list)
    to_hosts: list[str] = Field(default_factory=list)
    window: str | None = None
    transports: list[Literal["tcp", "udp"]] | None = None
    protocols: dict[str, ProtocolRule] = Field(default_factory=dict)

    _from_nets: list[Network] = PrivateAttr(default_factory=list)
    _to_nets: list[Network] = PrivateAttr(default_factory=list)

    @field_validator("protocols", mode="before")
    @classmethod
    def _aliases(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {PROTOCOL_ALIASES.get(str(k).lower(), str(k).lower()): r for k, r in v.items()}
        return v

    def admits(self, src_ip: str, dst_ip: str) -> bool:
        """True if the host lists (empty = whole zone) admit this client and server."""
        return _in(src_ip, self._from_nets) and _in(dst_ip, self._to_nets)

    def rule_for(
        self, protocol: str, port: int | None = None, transport: str | None = None
    ) -> ProtocolRule | None:
        """The rule for a decoded protocol on a port; an undecoded conversation (protocol
        ``unknown`` or not listed by name) matches any rule that names its port."""
        if (
            self.transports is not None
            and transport is not None
            and (transport not in self.transports)
        ):
            return None
        proto = PROTOCOL_ALIASES.get(protocol, protocol)
        rule = self.protocols.get(proto)
        if rule is not None:
            return rule if rule.matches_port(port) else None
        if proto in ("unknown", "") and port is not None:
            for r in self.protocols.values():
                if port in r.ports:
                    return r
        return None

    def allows(
        self,
        protocol: str,
        port: int | None = None,
        operation: OpClass | str | None = None,
        transport: str | None = None,
    ) -> bool:
        """Protocol/port (and operation, if given) allowed here; ignores hosts and window."""
        rule = self.rule_for(protocol, port, transport)
        if rule is None:
            return False
        return operation is None or rule.allows_operation(operation)


def _in(ip: str, nets: list[Network]) -> bool:
    if not nets:
        return True
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == n.version and addr in n for n in nets)


class Policy(_Strict):
    """A plant's zones, conduits and maintenance windows (default deny)."""

    version: Literal[1] = 1
    plant: str
    timezone: str = "UTC"
    default: Literal["deny", "allow"] = "deny"
    hosts: dict[str, str] = Field(default_factory=dict)
    zones: list[Zone] = Field(min_length=1)
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    conduits: list[Conduit] = Field(default_factory=list)

    _zone_index: Any = PrivateAttr(default=None)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {v!r}: use an IANA name like Europe/Berlin"
            ) from None
        return v

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: dict[str, str]) -> dict[str, str]:
        for name, ip in v.items():
            _check_name(name)
            try:
                ipaddress.ip_address(str(ip).strip())
            except ValueError:
                raise ValueError(f"host {name}: {ip!r} is not an IP address") from None
        return {k: str(ip).strip() for k, ip in v.items()}

    @model_validator(mode="after")
    def _references(self) -> Policy:
        """Cross-references; raises PolicyError with the exact YAML location."""
        seen: dict[str, int] = {}
        for i, z in enumerate(self.zones):
            if z.name in seen:
                raise PolicyError(f"duplicate zone name {z.name!r}", ("zones", i, "name"))
            seen[z.name] = i
            for j, name in z._names:
                if name not in self.hosts:
                    raise PolicyError(
                        f"zone {z.name}: member {name!r} is neither an address nor a host "
                        "named under 'hosts'",
                        ("zones", i, "members", j),
                    )
                z._nets.append(ipaddress.ip_network(self.hosts[name]))
        wins = {w.name for w in self.maintenance_windows}
        names: set[str] = set()
        for i, c in enumerate(self.conduits):
            if c.name in names:
                raise PolicyError(f"duplicate conduit name {c.name!r}", ("conduits", i, "name"))
            names.add(c.name)
            for key, zname in (("from", c.from_), ("to", c.to)):
                if zname not in seen:
                    raise PolicyError(
                        f"conduit {c.name}: unknown zone {zname!r} in '{key}' "
                        f"(zones: {', '.join(seen)})",
                        ("conduits", i, key),
                    )
            if c.window is not None and c.window not in wins:
                raise PolicyError(
                    f"conduit {c.name}: unknown maintenance window {c.window!r}",
                    ("conduits", i, "window"),
                )
            for key, zname, entries in (
                ("from_hosts", c.from_, c.from_hosts),
                ("to_hosts", c.to, c.to_hosts),
            ):
                zone = self.zones[seen[zname]]
                for j, e in enumerate(entries):
                    target = self.hosts.get(e, e)
                    net = _parse_net(target)
                    if net is None:
                        raise PolicyError(
                            f"conduit {c.name}: {e!r} in '{key}' is neither a host named "
                            "under 'hosts' nor an IP/CIDR",
                            ("conduits", i, key, j),
                        )
                    if net.num_addresses == 1 and zone.contains(str(net.network_address)) is None:
                        raise PolicyError(
                            f"conduit {c.name}: {e} ({target}) in '{key}' is not in zone {zname}",
                            ("conduits", i, key, j),
                        )
                nets = _endpoint_nets(entries, self.hosts) or []
                if key == "from_hosts":
                    c._from_nets = nets
                else:
                    c._to_nets = nets
        return self

    # -- lookups ---------------------------------------------------------------------------
    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def zone(self, name: str) -> Zone:
        for z in self.zones:
            if z.name == name:
                return z
        raise KeyError(name)

    def host_ip(self, name: str) -> str:
        """The address of a named host (KeyError if the policy does not name it)."""
        return self.hosts[name]

    def host_name(self, ip: str) -> str | None:
        for name, addr in self.hosts.items():
            if addr == ip:
                return name
        return None

    def zone_of(
        self, ip: str | None, mac: str | None = None, vlan: int | None = None
    ) -> Zone | None:
        """The most specific zone holding this asset, or None if no zone covers it
        (through an index built on first use: assets are placed by the ten thousand)."""
        if self._zone_index is None:
            from otconduit.policy.zoneindex import ZoneIndex

            self._zone_index = ZoneIndex(self)
        return self._zone_index.zone_of(ip, mac, vlan)

    def scan_zone_of(
        self, ip: str | None, mac: str | None = None, vlan: int | None = None
    ) -> Zone | None:
        """``zone_of`` by its definition: every zone asked in turn, the most specific
        match wins (what the index must agree with)."""
        best: tuple[int, Zone] | None = None
        for z in self.zones:
            score = z.contains(ip, mac, vlan)
            if score is not None and (best is None or score > best[0]):
                best = (score, z)
        return best[1] if best else None

    def window(self, name: str) -> MaintenanceWindow:
        for w in self.maintenance_windows:
            if w.name == name:
                return w
        raise KeyError(name)

    def in_window(self, name: str, when: datetime) -> bool:
        """True if the (aware) datetime falls in the named window, in the policy timezone."""
        return self.window(name).contains(when.astimezone(self.tz))

    def restricts_zone(self, name: str) -> bool:
        return any(c.from_ == name and c.to == name for c in self.conduits)

    def conduits_between(
        self,
        src_ip: str,
        dst_ip: str,
        *,
        src_zone: Zone | None = None,
        dst_zone: Zone | None = None,
    ) -> list[Conduit]:
        """Conduits from the client's zone to the server's zone admitting both hosts."""
        sz = src_zone or self.zone_of(src_ip)
        dz = dst_zone or self.zone_of(dst_ip)
        if sz is None or dz is None:
            return []
        return [
            c
            for c in self.conduits
            if c.from_ == sz.name and c.to == dz.name and c.admits(src_ip, dst_ip)
        ]
