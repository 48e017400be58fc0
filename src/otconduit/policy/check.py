"""Evaluate what a store saw against a zones-and-conduits policy.

Public API: ``evaluate(store, policy) -> list[Violation]``, ``store_violations(store,
policy, violations)``, ``evaluate_and_store(store, policy)`` (what ``conduit analyze
--policy`` calls), ``asset_levels(store, policy) -> {ip: (level, source)}``.

Rules (a conversation is client -> server; a conduit ``from`` zone holds clients):

* ``no-conduit`` -- (default deny) a conversation between two zones, or with an endpoint
  in no zone, that no conduit admits. Inside one zone traffic is free UNLESS some conduit
  runs from that zone to itself: then intra-zone traffic must match one of those conduits.
* ``protocol-not-allowed`` -- a conduit admits both hosts but lists neither the decoded
  protocol nor (for undecoded ``unknown`` conversations) the server port.
* ``operation-not-allowed`` -- an operation class no admitting conduit's rule allows
  (``session`` is always allowed where the protocol is).
* ``outside-window`` -- the class is allowed only on conduits with a maintenance window
  and the operation's timestamp (in the policy timezone) lies outside it.
* ``bypasses-idmz`` -- traffic between level >= 4 and level <= 3 with neither end in the
  IDMZ (3.5), whether or not a conduit allows it.
* ``cleartext-control-crossing`` -- modbus, dnp3, s7comm or enip between two different
  zones that BOTH have SL-T >= 3 (the conduit joins SL-3 zones, so IEC 62443 SL 3 needs
  its traffic protected; one SL-3 end and a lower-SL end is judged by the other rules).
* ``insecure-opcua-crossing`` -- an OPC UA conversation between two different zones whose
  sessions show no protection: a secure channel opened with SecurityPolicy None (or mode
  None), an anonymous ActivateSession, or a user name whose password travels
  unencrypted. Anyone on the path can read and inject its writes and method calls, and
  the server cannot tell who the client is (IEC 62443-3-3 SR 1.1/1.2 identification and
  authentication, SR 3.1 integrity, SR 4.1 confidentiality). ``conduit`` names the
  conduits that admit the conversation (detection: informational when one does).
* ``asset-in-no-zone`` -- an asset no zone member covers.

Rows with the same rule, endpoints, protocol and operation are aggregated (count,
first/last seen, evidence = capture + frame of the first occurrence). Conversations with
hosts only ever seen as scan targets (see ``views.confirmed_hosts``) are a sweep: one row
per (source, rule, protocol) with the number of targets, not one row per target.

Layer-2 conversations (PROFINET, GOOSE: ``transport`` ``ethernet``) have MAC addresses
for endpoints (:class:`_Places`). A MAC is placed by a zone listing it, else by the zone
of the IP asset(s) carrying it (a PROFINET device's RT frames go to the MAC of the IP
device it is), else by its VLAN member; it exists when its device does. A group address
(multicast/broadcast: GOOSE 01:0c:cd:..., DCP 01:0e:cf:...) is no host: it is never a
sweep target nor "in no zone"; unless a zone lists it, frames to it stay in the sender's
zone (a layer-2 group does not leave its segment; the capture does not show who
subscribes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from otconduit.inventory.macs import is_group_mac, norm_mac
from otconduit.policy.model import Conduit, Policy, ProtocolRule, Zone
from otconduit.protocols import registry
from otconduit.protocols.opcua import danger as opcua_danger
from otconduit.store import Store, views
from otconduit.store import assets as stored_assets
from otconduit.store import violations as stored_violations
from otconduit.store.views import OpGroup, iso

CLEARTEXT_CONTROL = registry.cleartext_control()
SL_PROTECTED = 3
ROLE_LEVELS = {
    "plc": 1.0,
    "gateway": 1.0,
    "meter": 1.0,
    "io": 1.0,
    "hmi_scada": 2.0,
    "engineering_workstation": 2.0,
    "scada_historian": 2.0,
}
RULE_ORDER = (
    "bypasses-idmz",
    "no-conduit",
    "protocol-not-allowed",
    "operation-not-allowed",
    "outside-window",
    "cleartext-control-crossing",
    "insecure-opcua-crossing",
    "asset-in-no-zone",
)
ConvKey = tuple[str, str, int, str]  # client, server, server port, protocol
OPCUA = "opcua"


@dataclass(slots=True)
class Violation:
    """One aggregated finding; ``to_dict`` is the JSON/CSV contract (keys only added)."""

    rule: str
    src_ip: str | None
    dst_ip: str | None
    src_zone: str | None
    dst_zone: str | None
    protocol: str | None
    operation: str | None
    conduit: str | None
    reason: str
    count: int = 0
    first_seen: str | None = None
    last_seen: str | None = None
    capture: str | None = None
    frame: int | None = None
    targets: int = 1  # hosts it covers: > 1 for a sweep's row (dst_ip is then None)

    @property
    def ts(self) -> str | None:
        return self.first_seen

    @property
    def evidence(self) -> str | None:
        if self.capture is None:
            return None
        return self.capture if self.frame is None else f"{self.capture}#{self.frame}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {"ts": self.ts, **d, "evidence": self.evidence}


@dataclass(slots=True)
class _Conv:
    key: ConvKey
    row: dict[str, Any]
    src_zone: Zone | None
    dst_zone: Zone | None
    addrs: tuple[str, str] | None = None  # client, server for conduit host lists (IPs)
    rules: list[tuple[Conduit, ProtocolRule]] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    capture: str | None = None
    frame: int | None = None


class _Findings:
    """Aggregates violations by (rule, src, dst, protocol, operation)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str | None, ...], Violation] = {}

    def add(self, v: Violation, first: str | None, last: str | None, count: int = 1) -> None:
        key = (v.rule, v.src_ip, v.dst_ip, v.protocol, v.operation)
        cur = self.rows.get(key)
        if cur is None:
            v.count, v.first_seen, v.last_seen = count, first, last
            self.rows[key] = v
            return
        cur.count += count
        if first and (cur.first_seen is None or first < cur.first_seen):
            cur.first_seen, cur.capture, cur.frame = first, v.capture, v.frame
        if last and (cur.last_seen is None or last > cur.last_seen):
            cur.last_seen = last

    def sorted(self) -> list[Violation]:
        order = {r: i for i, r in enumerate(RULE_ORDER)}
        return sorted(
            self.rows.values(),
            key=lambda v: (order.get(v.rule, 99), v.first_seen or "", v.src_ip or ""),
        )


def _name(z: Zone | None) -> str | None:
    return z.name if z else None


def _bypasses_idmz(a: Zone | None, b: Zone | None) -> bool:
    if a is None or b is None or a.is_idmz or b.is_idmz:
        return False
    return (a.level >= 4 and b.level <= 3) or (b.level >= 4 and a.level <= 3)


def _macs(asset_rows: list[dict[str, Any]]) -> dict[str, tuple[str | None, int | None]]:
    out: dict[str, tuple[str | None, int | None]] = {}
    for a in asset_rows:
        out.setdefault(a["ip"], (a["mac"], a["vlan"]))
    return out


class _Places:
    """Zones and existence of conversation endpoints, MAC ones included (module doc)."""

    def __init__(self, policy: Policy, asset_rows: list[dict[str, Any]], real: set[str]) -> None:
        self.policy = policy
        self.macs = _macs(asset_rows)
        self.ips_of_mac: dict[str, list[str]] = {}
        for a in asset_rows:
            mac = norm_mac(a["mac"]) if a["mac"] else None
            if mac and a["ip"] != a["mac"]:
                self.ips_of_mac.setdefault(mac, []).append(a["ip"])
        # a MAC exists when the device keyed by it, or an IP asset carrying it, does
        self.real = real | {
            m for m, ips in self.ips_of_mac.items() if any(ip in real for ip in ips)
        }

    def zone(self, endpoint: str, vlan: int | None) -> Zone | None:
        mac = norm_mac(endpoint)
        if mac is None:
            known, _ = self.macs.get(endpoint, (None, None))
            return self.policy.zone_of(endpoint, known, vlan)
        listed = self.policy.zone_of(None, mac, None)
        if listed is not None:
            return listed
        zones = {z.name: z for ip in self.ips_of_mac.get(mac, ()) if (z := self.zone(ip, vlan))}
        if len(zones) == 1:
            return next(iter(zones.values()))
        return self.policy.zone_of(None, None, vlan)

    def address(self, endpoint: str) -> str:
        """The IP address a conduit's host list knows a MAC endpoint by (the one IP asset
        carrying it), else the endpoint itself."""
        ips = self.ips_of_mac.get(norm_mac(endpoint) or "", [])
        return ips[0] if len(ips) == 1 else endpoint


def asset_levels(store: Store, policy: Policy) -> dict[str, tuple[float | None, str]]:
    """Each asset's Purdue level: ``policy`` when a zone places it, else ``inferred``
    from its roles (plc/gateway 1, HMI/engineering/historian 2), else ``unknown``."""
    out: dict[str, tuple[float | None, str]] = {}
    for a in views.assets(store):
        zone = policy.zone_of(a["ip"], a["mac"], a["vlan"])
        if zone is not None:
            out[a["ip"]] = (zone.level, "policy")
            continue
        levels = [ROLE_LEVELS[r] for r in a["roles"] if r in ROLE_LEVELS]
        out.setdefault(a["ip"], (min(levels), "inferred") if levels else (None, "unknown"))
    return out


def _decide(policy: Policy, conv: _Conv) -> list[Violation]:
    """Conversation-level verdicts; fills ``conv.rules`` when operations need checking."""
    r = conv.row
    client, server, port, proto = conv.key
    sz, dz = conv.src_zone, conv.dst_zone

    def mk(rule: str, conduit: str | None, reason: str) -> Violation:
        return Violation(rule, client, server, _name(sz), _name(dz), proto, None, conduit, reason)

    what = f"{proto}/{r['transport']} {port}"
    out: list[Violation] = []
    if _bypasses_idmz(sz, dz):
        assert sz is not None and dz is not None
        out.append(
            mk(
                "bypasses-idmz",
                None,
                f"{sz.name} (level {sz.level:g}) talks {what} directly with "
                f"{dz.name} (level {dz.level:g}) without going through the IDMZ",
            )
        )
    if (
        proto in CLEARTEXT_CONTROL
        and sz is not None
        and dz is not None
        and sz.name != dz.name
        and (sz.sl_t or 0) >= SL_PROTECTED
        and (dz.sl_t or 0) >= SL_PROTECTED
    ):
        out.append(
            mk(
                "cleartext-control-crossing",
                None,
                f"cleartext {proto} crosses from {sz.name} (SL-T {sz.sl_t}) to "
                f"{dz.name} (SL-T {dz.sl_t}): SL 3 needs authenticated, integrity-protected "
                "traffic across the boundary",
            )
        )
    if (
        sz is not None
        and dz is not None
        and sz.name == dz.name
        and not policy.restricts_zone(sz.name)
    ):
        return out  # intra-zone traffic is free unless a conduit restricts the zone
    src, dst = conv.addrs or (client, server)
    cands = policy.conduits_between(src, dst, src_zone=sz, dst_zone=dz)
    if not cands:
        if policy.default == "deny":
            if sz is None or dz is None:
                missing = client if sz is None else server
                why = f"{missing} is in no zone, so no conduit can admit {what}"
            elif sz.name == dz.name:
                why = f"no conduit inside {sz.name} admits {client} -> {server} ({what})"
            else:
                why = f"no conduit from {sz.name} to {dz.name} admits {client} -> {server}"
            out.append(mk("no-conduit", None, why))
        return out
    conv.rules = [(c, rule) for c in cands if (rule := c.rule_for(proto, port, r["transport"]))]
    if not conv.rules:
        names = ", ".join(c.name for c in cands)
        listed = sorted(
            {f"{p} {rl.ports or 'any'}" for c in cands for p, rl in c.protocols.items()}
        )
        why = f"{what} is not allowed on {names} (allowed: {'; '.join(listed)})"
        out.append(mk("protocol-not-allowed", names, why))
    return out


def _opcua_weaknesses(store: Store) -> dict[tuple[str, str, int], Counter[str]]:
    """(client, server, server port) -> what its OPC UA sessions showed unprotected, with
    how often (see :func:`otconduit.protocols.opcua.danger.weaknesses`)."""
    out: dict[tuple[str, str, int], Counter[str]] = {}
    for function in opcua_danger.SESSION_FUNCTIONS:
        flt = views.OperationFilter(protocol=(OPCUA,), function=function)
        for op in views.operations(store, flt):
            found = opcua_danger.weaknesses(op)
            if found and not op["detail"].get("from_server"):
                key = (op["src_ip"], op["dst_ip"], op["dst_port"])
                out.setdefault(key, Counter()).update(found)
    return out


def _insecure_opcua(
    policy: Policy, conv: _Conv, weak: dict[tuple[str, str, int], Counter[str]]
) -> Violation | None:
    client, server, port, proto = conv.key
    sz, dz = conv.src_zone, conv.dst_zone
    seen = weak.get((client, server, port)) if proto == OPCUA else None
    if not seen or sz is None or dz is None or sz.name == dz.name:
        return None
    admitting = [
        c.name
        for c in policy.conduits_between(client, server, src_zone=sz, dst_zone=dz)
        if c.rule_for(proto, port, conv.row["transport"])
    ]
    what = "; ".join(f"{k} x{n}" for k, n in seen.most_common())
    reason = (
        f"OPC UA from {sz.name} (SL-T {sz.sl_t}) to {dz.name} (SL-T {dz.sl_t}) without "
        f"session protection: {what}. Anyone on the path can read and inject its writes "
        "and calls; use Sign or SignAndEncrypt with user authentication across zones"
    )
    return Violation(
        "insecure-opcua-crossing", client, server, sz.name, dz.name, proto, "session",
        ", ".join(admitting) or None, reason,
    )  # fmt: skip


def _allowed_list(rule: ProtocolRule) -> str:
    if rule.operations is not None:
        return ", ".join(rule.operations) or "nothing"
    return "all but " + ", ".join(rule.deny_operations) if rule.deny_operations else "all"


def _check_group(policy: Policy, conv: _Conv, g: OpGroup, found: _Findings) -> None:
    """Judge a group of alike operations against the conduit rules of their conversation."""
    cls = g.operation
    ok = [(c, r) for c, r in conv.rules if r.allows_operation(cls)]
    names = ", ".join(c.name for c, _ in (ok or conv.rules))

    def mk(rule: str, reason: str) -> Violation:
        return Violation(
            rule,
            g.src_ip,
            g.dst_ip,
            _name(conv.src_zone),
            _name(conv.dst_zone),
            g.protocol,
            cls,
            names,
            reason,
            capture=g.capture,
            frame=g.frame,
        )

    if not ok:
        allowed = "; ".join(f"{c.name}: {_allowed_list(r)}" for c, r in conv.rules)
        reason = f"{cls} ({g.function}) is not allowed ({allowed})"
        found.add(mk("operation-not-allowed", reason), iso(g.first_ts), iso(g.last_ts), g.count)
        return
    if any(c.window is None for c, _ in ok):
        return
    windows = sorted({c.window for c, _ in ok if c.window})
    outside = [
        t
        for t in g.ts.tolist()
        if not any(policy.in_window(w, datetime.fromtimestamp(t / 1e9, UTC)) for w in windows)
    ]
    if not outside:
        return
    local = datetime.fromtimestamp(min(outside) / 1e9, UTC).astimezone(policy.tz)
    reason = (
        f"{cls} ({g.function}) is allowed only in {', '.join(windows)}; "
        f"seen {local.strftime('%a %H:%M')} {policy.timezone}"
    )
    found.add(mk("outside-window", reason), iso(min(outside)), iso(max(outside)), len(outside))


def evaluate(store: Store, policy: Policy) -> list[Violation]:
    """Every violation of ``policy`` in the store, aggregated and ordered by rule."""
    found = _Findings()
    asset_rows = views.assets(store)
    for a in asset_rows:
        if not a["confirmed"] or is_group_mac(a["ip"]):
            continue  # a scan target is not an asset to place (its sweep is reported)
        if policy.zone_of(a["ip"], a["mac"], a["vlan"]) is None:
            roles = f" ({', '.join(a['roles'])})" if a["roles"] else ""
            v = Violation(
                rule="asset-in-no-zone",
                src_ip=a["ip"],
                dst_ip=None,
                src_zone=None,
                dst_zone=None,
                protocol=None,
                operation=None,
                conduit=None,
                reason=f"asset {a['ip']}{roles} is not a member of any zone",
            )
            found.add(v, a["first_seen"], a["last_seen"])

    places = _Places(policy, asset_rows, {ip for ip, _ in views.confirmed_hosts(store)})
    convs: dict[ConvKey, _Conv] = {}
    pending: list[tuple[_Conv, list[Violation]]] = []
    conv_rows = views.conversations(store)
    weak = _opcua_weaknesses(store) if any(r["protocol"] == OPCUA for r in conv_rows) else {}
    for r in conv_rows:
        key = (r["client_ip"], r["server_ip"], r["server_port"], r["protocol"])
        if key in convs:  # same endpoints on another VLAN/transport: judged once
            continue
        client, server = r["client_ip"], r["server_ip"]
        sz, dz = places.zone(client, r["vlan"]), places.zone(server, r["vlan"])
        if dz is None and is_group_mac(server):
            dz = sz  # a layer-2 group stays on the sender's segment
        conv = _Conv(key, r, sz, dz, (places.address(client), places.address(server)))
        convs[key] = conv
        vios = _decide(policy, conv)
        insecure = _insecure_opcua(policy, conv, weak)
        if insecure is not None:
            vios.append(insecure)
        pending.append((conv, vios))

    for g in views.operation_groups(store):
        hit = convs.get((g.src_ip, g.dst_ip, g.dst_port, g.protocol)) or (
            convs.get((g.dst_ip, g.src_ip, g.src_port, g.protocol))
        )
        if hit is None:
            continue
        conv = hit
        conv.ops[g.operation] += g.count
        if conv.capture is None:
            conv.capture, conv.frame = g.capture, g.frame
        if conv.rules:
            _check_group(policy, conv, g, found)

    real = places.real
    sweeps = _Sweeps()
    for conv, vios in pending:
        seen = ", ".join(f"{k} x{n}" for k, n in conv.ops.most_common())
        for v in vios:
            if seen:
                v.reason += f"; operations: {seen}"
            v.capture, v.frame = conv.capture, conv.frame
            if _probe(conv, real):
                sweeps.add(v, conv)
                continue
            found.add(
                v, conv.row["first_seen"], conv.row["last_seen"], max(1, conv.row["connections"])
            )
    for v, first, last, count in sweeps.rows():
        found.add(v, first, last, count)
    return found.sorted()


def _probe(conv: _Conv, real: set[str]) -> bool:
    """A probe, not a conversation: towards a host that never showed it exists, or an
    undecoded TCP port that answered with no more than a handshake or a reset (at most
    two packets a connection, none longer than headers)."""
    r = conv.row
    if is_group_mac(r["server_ip"]):
        return False  # a layer-2 group address: never a host that failed to answer
    if r["server_ip"] not in real:
        return True
    if r["protocol"] != "unknown" or r["transport"] != "tcp":
        return False
    answers = r["packets_s2c"] or 0
    return answers <= 2 * max(1, r["connections"]) and (r["bytes_s2c"] or 0) <= 64 * answers


class _Sweeps:
    """Violations towards hosts that never showed they exist, folded per (rule, source,
    protocol): a sweep of 254 addresses is one finding with 254 targets."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str | None, ...], list[tuple[Violation, _Conv]]] = {}

    def add(self, v: Violation, conv: _Conv) -> None:
        self.groups.setdefault((v.rule, v.src_ip, v.protocol), []).append((v, conv))

    def rows(self) -> list[tuple[Violation, str | None, str | None, int]]:
        out = []
        for members in self.groups.values():
            if len(members) == 1:
                v, conv = members[0]
                out.append((v, conv.row["first_seen"], conv.row["last_seen"],
                            max(1, conv.row["connections"])))  # fmt: skip
                continue
            targets = sorted({v.dst_ip for v, _ in members if v.dst_ip})
            zones = {v.dst_zone for v, _ in members}
            ports = sorted({c.key[2] for _, c in members})
            firsts = [c.row["first_seen"] for _, c in members if c.row["first_seen"]]
            lasts = [c.row["last_seen"] for _, c in members if c.row["last_seen"]]
            head, _ = min(members, key=lambda m: m[1].row["first_seen"] or "")
            shown = ", ".join(targets[:5]) + (", …" if len(targets) > 5 else "")
            port_text = ", ".join(map(str, ports[:10])) + (", …" if len(ports) > 10 else "")
            reason = (
                f"sweep: {len(targets)} hosts probed on port {port_text} that never answered "
                f"with application data ({shown}); e.g. {head.reason}"
            )
            row = Violation(
                head.rule, head.src_ip, None, head.src_zone,
                zones.pop() if len(zones) == 1 else None, head.protocol, None, head.conduit,
                reason, capture=head.capture, frame=head.frame, targets=len(targets),
            )  # fmt: skip
            count = sum(max(1, c.row["connections"]) for _, c in members)
            out.append((row, min(firsts, default=None), max(lasts, default=None), count))
        return out


def store_violations(store: Store, policy: Policy, violations: list[Violation]) -> None:
    """Replace this policy's stored violations with ``violations`` in one transaction."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    stored_violations.replace_all(store, policy.plant, violations, now)


def store_host_names(store: Store, policy: Policy) -> int:
    """The policy's host names become the assets' names (source ``policy``), so every
    listing, alert and incident can show them without the policy file at hand."""
    return stored_assets.set_policy_names(store, policy.plant, dict(policy.hosts))


def evaluate_and_store(store: Store, policy: Policy) -> list[Violation]:
    """Evaluate, replace the stored results for this policy, and return them (and name
    the assets the policy names)."""
    found = evaluate(store, policy)
    store_violations(store, policy, found)
    store_host_names(store, policy)
    return found
