"""Exposure of the control levels, as observed: IEC 62443 target security level per zone
against what the traffic shows, attack paths from IT to levels 0-1, and the roadmap's
KPI -- how much of the critical process sends its data to IT only through the IDMZ's
read-only gateway.

A passive monitor can show that a requirement is *not* met (a cleartext program
download into an SL-T 3 cell is there in the capture); it can never show that one is.
So every zone's verdict reads "gaps observed" or "no gap observed", never "compliant".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from otconduit.console.zoning import LEVEL_NAMES
from otconduit.policy.check import CLEARTEXT_CONTROL, SL_PROTECTED
from otconduit.report.facts import NO_SECURITY, OPCUA, Facts

IT_LEVEL = 4.0
IDMZ_LEVEL = 3.5
CONTROL_LEVEL = 1.0
ENGINEERING = ("program", "firmware")
READ_ONLY = frozenset({"read", "session", "identity"})
OPCUA_PORT = 4840
BOUNDARY_RULES = frozenset(
    {
        "no-conduit",
        "bypasses-idmz",
        "protocol-not-allowed",
        "operation-not-allowed",
        "outside-window",
    }
)

# What each observation speaks to (IEC 62443-3-3 system requirements) and from which
# target security level the requirement asks for it.
SR_SEGMENTATION = ("SR 5.1 / SR 5.2", 1, "traffic across the zone boundary that no conduit allows")
SR_INTEGRITY = ("SR 3.1 RE 1", 3, "cleartext control protocol between SL-T 3 zones")
SR_DEVICE_AUTH = ("SR 1.2", 2, "program or firmware changes over an unauthenticated protocol")
SR_OPCUA = ("SR 3.1 / SR 4.1", 2, "OPC UA read without message security (gateway config)")
SR_OPCUA_SEEN = ("SR 3.1 / SR 4.1", 2, "OPC UA secure channels opened without message security")


@dataclass(slots=True)
class Gap:
    requirement: str
    from_sl: int
    what: str
    count: int
    gap: bool  # the zone's SL-T asks for the requirement
    detail: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ZoneExposure:
    name: str
    level: float
    level_name: str
    sl_t: int | None
    owner: str | None
    criticality: str | None
    assets: int
    conversations: int
    violations: int
    gaps: list[Gap]
    opcua_undecoded: int  # OPC UA conversations into the zone whose security is not decoded

    @property
    def gap_count(self) -> int:
        return sum(1 for g in self.gaps if g.gap)

    @property
    def verdict(self) -> str:
        if self.sl_t is None:
            return "SL-T not set"
        n = self.gap_count
        return "no gap observed" if n == 0 else f"{n} gap{'s' if n > 1 else ''} observed"


def _real(c: dict[str, Any]) -> bool:
    """A data flow, not a probe: both sides sent packets, and an undecoded TCP port
    answered with more than a handshake or a reset (at most two header-only packets a
    connection is what a port scan gets back; the same test as the policy check's)."""
    if not c["packets_c2s"] or not c["packets_s2c"]:
        return False
    if c["protocol"] != "unknown" or c["transport"] != "tcp":
        return True
    answers = c["packets_s2c"] or 0
    return not (
        answers <= 2 * max(1, c["connections"] or 0) and (c["bytes_s2c"] or 0) <= 64 * answers
    )


def _opcua_devices(gateway: Any) -> list[tuple[str, str]]:
    """(device, host) of the gateway's OPC UA devices read without message security."""
    out = []
    for d in getattr(gateway, "devices", []) or []:
        if d.protocol != "opcua":
            continue
        sec = d.security
        if sec.policy == "None" or sec.mode == "None":
            host = d.host or _host_of(d.endpoint or "")
            out.append((d.name, host))
    return out


def _host_of(endpoint: str) -> str:
    """The host of ``opc.tcp://host:port/path``."""
    rest = endpoint.split("://", 1)[-1]
    host = rest.split("/", 1)[0]
    return host.rsplit(":", 1)[0].strip("[]") if ":" in host else host


@dataclass(slots=True)
class ZoneReport:
    zones: list[ZoneExposure] = field(default_factory=list)
    crossings: list[str] = field(default_factory=list)  # cleartext control, SL-T 3 to 3
    engineering: list[str] = field(default_factory=list)  # program/firmware over cleartext
    opcua_undecoded: int = 0  # OPC UA conversations whose security is not decoded
    opcua_unsecured: list[str] = field(default_factory=list)  # channels opened with None
    opcua_secured: int = 0  # decoded conversations whose channels all had message security
    opcua_unknown: int = 0  # decoded, but no channel opened in the capture

    @property
    def with_gaps(self) -> int:
        return sum(1 for z in self.zones if z.gap_count)


def zone_exposure(f: Facts) -> ZoneReport:
    """One row per policy zone (its SL-T and what was observed against it), and the
    conversations behind the observations, each once."""
    rep = ZoneReport()
    if f.policy is None:
        return rep
    assets = Counter(a["zone"] for a in f.assets if a["zone"])
    convs: Counter[str] = Counter()
    crossings: dict[str, list[str]] = {}
    engineering: dict[str, list[str]] = {}
    unsecured: dict[str, list[str]] = {}
    opcua: Counter[str] = Counter()
    sl = {z.name: z.sl_t for z in f.policy.zones}
    for c in f.conversations:
        sz, _, _ = f.place(c["client_ip"])
        dz, _, _ = f.place(c["server_ip"])
        for zn in {sz, dz} - {None}:
            convs[str(zn)] += 1
        proto = c["protocol"]
        if c["server_port"] == OPCUA_PORT and proto == "unknown" and _real(c):
            rep.opcua_undecoded += 1
            if dz is not None:
                opcua[dz] += 1
        if proto == OPCUA and _real(c):
            key = (c["client_ip"], c["server_ip"])
            modes = f.opcua_modes.get(key, set()) | f.opcua_modes.get(key[::-1], set())
            if NO_SECURITY in modes:
                line = f"{c['client_ip']} -> {c['server_ip']} opcua: security mode None"
                rep.opcua_unsecured.append(line)
                if dz is not None:
                    unsecured.setdefault(dz, []).append(line)
            elif modes:
                rep.opcua_secured += 1
            else:
                rep.opcua_unknown += 1
        if proto not in CLEARTEXT_CONTROL:
            continue
        if (
            sz is not None
            and dz is not None
            and sz != dz
            and (sl.get(sz) or 0) >= SL_PROTECTED
            and (sl.get(dz) or 0) >= SL_PROTECTED
        ):
            line = f"{c['client_ip']} ({sz}) -> {c['server_ip']} ({dz}) {proto}"
            rep.crossings.append(line)
            for zn in (sz, dz):
                crossings.setdefault(zn, []).append(line)
        eng = {k: c["classes"][k] for k in ENGINEERING if c["classes"].get(k)}
        if eng and dz is not None:
            what = ", ".join(f"{k} x{n}" for k, n in eng.items())
            line = f"{c['client_ip']} -> {c['server_ip']} {proto}: {what}"
            rep.engineering.append(line)
            engineering.setdefault(dz, []).append(line)
    boundary: dict[str, list[str]] = {}
    for v in f.violations:
        if v["rule"] not in BOUNDARY_RULES:
            continue
        line = f"{v['rule']}: {v['src_ip']} -> {v['dst_ip'] or 'sweep'} ({v['protocol'] or ''})"
        for z in {v["src_zone"], v["dst_zone"]} - {None}:
            boundary.setdefault(str(z), []).append(line)
    opc_devices: dict[str, list[str]] = {}
    for name, host in _opcua_devices(f.gateway):
        z, _, _ = f.place(host)
        if z is not None:
            opc_devices.setdefault(z, []).append(f"{name} ({host})")

    for z in f.policy.zones:
        sl_t = z.sl_t
        gaps = []
        for (req, from_sl, what), found in (
            (SR_SEGMENTATION, boundary.get(z.name, [])),
            (SR_INTEGRITY, crossings.get(z.name, [])),
            (SR_DEVICE_AUTH, engineering.get(z.name, [])),
            (SR_OPCUA, opc_devices.get(z.name, [])),
            (SR_OPCUA_SEEN, unsecured.get(z.name, [])),
        ):
            if found:
                asks = sl_t is not None and sl_t >= from_sl
                gaps.append(Gap(req, from_sl, what, len(found), asks, sorted(found)[:8]))
        rep.zones.append(
            ZoneExposure(
                name=z.name,
                level=z.level,
                level_name=LEVEL_NAMES.get(z.level, f"level {z.level:g}"),
                sl_t=sl_t,
                owner=z.owner,
                criticality=z.criticality,
                assets=assets.get(z.name, 0),
                conversations=convs.get(z.name, 0),
                violations=sum(1 for v in f.violations if z.name in (v["src_zone"], v["dst_zone"])),
                gaps=gaps,
                opcua_undecoded=opcua.get(z.name, 0),
            )
        )
    return rep


# -- the IDMZ KPI ---------------------------------------------------------------------

PATHS = ("direct", "bypass", "idmz-other", "idmz-read-only", "contained")
PATH_TEXT = {
    "direct": "talks directly with IT (level 4-5)",
    "bypass": "talks with a level 2-3 host that talks directly with IT",
    "idmz-other": "reaches the IDMZ, but not only by reads",
    "idmz-read-only": "reaches IT only through the IDMZ, read-only",
    "contained": "no traffic towards the IDMZ or IT observed",
}


@dataclass(slots=True)
class CriticalAsset:
    ip: str
    name: str | None
    zone: str | None
    level: float | None
    path: str
    via: list[str]  # the peers that decided the path
    gateway: bool  # every IDMZ peer is the configured read-only gateway


@dataclass(slots=True)
class IdmzKpi:
    available: bool
    reason: str | None = None
    assets: list[CriticalAsset] = field(default_factory=list)
    zones: list[dict[str, Any]] = field(default_factory=list)
    gateway_host: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(a.path for a in self.assets)
        return {p: c.get(p, 0) for p in PATHS}

    @property
    def reaching_it(self) -> int:
        c = self.counts
        return c["direct"] + c["bypass"] + c["idmz-other"] + c["idmz-read-only"]

    @property
    def share(self) -> float | None:
        """Critical assets whose data reaches IT only through the IDMZ, read-only, of
        those whose data reaches IT at all."""
        n = self.reaching_it
        return self.counts["idmz-read-only"] / n if n else None

    @property
    def zone_share(self) -> float | None:
        reach = [z for z in self.zones if z["status"] != "contained"]
        return (
            sum(1 for z in reach if z["status"] == "idmz-read-only") / len(reach) if reach else None
        )


def idmz_kpi(f: Facts) -> IdmzKpi:
    """Classify every level 0-1 asset by how its data reaches IT (see ``PATH_TEXT``),
    from the conversations in which both sides spoke."""
    if f.policy is None:
        return IdmzKpi(
            False,
            "needs --policy: the IT zones (level 4-5) and the IDMZ come "
            "from the zones-and-conduits policy",
        )
    gw = getattr(f.gateway, "source_address", None) if f.gateway is not None else None
    peers: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for c in f.conversations:
        if not _real(c):
            continue
        peers.setdefault(c["client_ip"], []).append((c["server_ip"], c))
        peers.setdefault(c["server_ip"], []).append((c["client_ip"], c))

    def level(ip: str) -> float | None:
        return f.place(ip)[1]

    def is_it(ip: str) -> bool:
        lv = level(ip)
        return lv is not None and lv >= IT_LEVEL

    bridges = {
        ip
        for ip, ps in peers.items()
        if (lv := level(ip)) is not None and 2.0 <= lv <= 3.0 and any(is_it(p) for p, _ in ps)
    }
    out = IdmzKpi(True, gateway_host=gw)
    for a in f.assets:
        lv = a["level"]
        if lv is None or lv > CONTROL_LEVEL:
            continue
        ps = peers.get(a["ip"], [])
        it = sorted({p for p, _ in ps if is_it(p)})
        via_bridge = sorted({p for p, _ in ps if p in bridges and p != a["ip"]})
        idmz = [(p, c) for p, c in ps if level(p) == IDMZ_LEVEL]
        gateway = False
        if it:
            path, via = "direct", it
        elif via_bridge:
            path, via = "bypass", via_bridge
        elif idmz:
            ro = all(
                c["protocol"] != "unknown" and c["classes"] and set(c["classes"]) <= READ_ONLY
                for _, c in idmz
            )
            path = "idmz-read-only" if ro else "idmz-other"
            via = sorted({p for p, _ in idmz})
            gateway = gw is not None and via == [gw]
        else:
            path, via = "contained", []
        out.assets.append(CriticalAsset(a["ip"], a["name"], a["zone"], lv, path, via, gateway))
    by_zone: dict[str, list[CriticalAsset]] = {}
    for ca in out.assets:
        if ca.zone is not None:
            by_zone.setdefault(ca.zone, []).append(ca)
    for z in f.policy.zones:
        if z.level > CONTROL_LEVEL:
            continue
        members = by_zone.get(z.name, [])
        kinds = {m.path for m in members}
        worst = next((p for p in PATHS if p in kinds), "contained")
        out.zones.append(
            {
                "name": z.name,
                "level": z.level,
                "assets": len(members),
                "status": worst,
                "paths": Counter(m.path for m in members),
            }
        )
    return out


# -- attack paths -----------------------------------------------------------------------


@dataclass(slots=True)
class ObservedContact:
    src: str
    src_zone: str | None
    dst: str
    dst_name: str | None
    dst_zone: str | None
    protocol: str
    port: int
    answered: bool
    classes: dict[str, int]


def observed_contacts(f: Facts) -> list[ObservedContact]:
    """Conversations from IT (level 4-5) straight to a level 0-1 address: the attack
    path that exists whatever the policy says."""
    names = {a["ip"]: a["name"] for a in f.assets}
    out = []
    for c in f.conversations:
        sz, sl, _ = f.place(c["client_ip"])
        dz, dl, _ = f.place(c["server_ip"])
        if sl is None or dl is None or sl < IT_LEVEL or dl > CONTROL_LEVEL:
            continue
        if c["server_ip"] not in names and not _real(c):
            continue  # a probe of an address that is no asset: counted with the sweeps
        out.append(
            ObservedContact(
                c["client_ip"],
                sz,
                c["server_ip"],
                names.get(c["server_ip"]),
                dz,
                c["protocol"],
                c["server_port"],
                _real(c),
                dict(c["classes"]),
            )
        )
    out.sort(key=lambda o: (not o.answered, -sum(o.classes.values()), o.src, o.dst))
    return out
