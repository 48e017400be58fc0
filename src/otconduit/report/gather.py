"""The evidence Conduit holds for each NIST CSF 2.0 function, one function each.

Each takes the facts read from the store (:mod:`.facts`) and returns a
:class:`~otconduit.report.model.Section`: key figures, findings worded for a reader who
will not open the console, figures and tables, and -- as important for an auditor --
what a passive monitor cannot evidence for that function at all.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime
from typing import Any

from otconduit.console.zoning import LEVEL_NAMES
from otconduit.detect.rules import RULES, Severity
from otconduit.detect.runbooks import runbooks
from otconduit.report import charts
from otconduit.report.attackmap import Coverage
from otconduit.report.exposure import IdmzKpi, ObservedContact, ZoneReport
from otconduit.report.facts import Facts
from otconduit.report.model import (
    DASH,
    Figure,
    Finding,
    Findings,
    Heading,
    Metric,
    Metrics,
    Para,
    Section,
    Table,
    cell,
)
from otconduit.report.netmap import NetMap
from otconduit.report.remediation import PRIORITY_TEXT, VulnEvidence
from otconduit.report.risk import RiskEvidence
from otconduit.store import Store
from otconduit.store.alerts import first_responses
from otconduit.store.views import iso

SEVERITIES = ("critical", "high", "medium", "low", "info")
TOP = 25


def share(n: int, d: int) -> str:
    return f"{n:,} of {d:,} ({100 * n / d:.0f} %)" if d else f"{n:,} of 0"


def ratio(label: str, n: int, d: int, note: str = "", tone: str = "") -> Metric:
    """A key figure that is a share: the percentage, with the counts beneath it."""
    counts = f"{n:,} of {d:,}" + (f"; {note}" if note else "")
    return Metric(label, f"{100 * n / d:.0f} %" if d else DASH, counts, tone)


def level_text(level: float | None) -> str:
    if level is None:
        return "unknown"
    return "3.5 (IDMZ)" if level == 3.5 else f"{level:g}"


def who(ip: str | None, name: str | None = None) -> str:
    if ip is None:
        return DASH
    return f"{name} ({ip})" if name else ip


def _day(ts: str | None) -> str:
    return (ts or "")[:19].replace("T", " ") or DASH


# -- Govern ------------------------------------------------------------------------------


def govern(f: Facts) -> Section:
    """GV: the policy that sets zones, owners and target levels, and what the evidence
    covers."""
    s = Section(
        "govern",
        "Govern",
        "GV",
        "Is there a segmentation policy with owners and target security levels, and what "
        "does the evidence in this report cover?",
        "GV.OC, GV.RR, GV.PO",
    )
    pol = f.policy
    if pol is None:
        s.add(
            Findings(
                [
                    Finding(
                        "No zones-and-conduits policy was given (--policy): zones, owners, "
                        "target security levels and allowed conduits cannot be evidenced, "
                        "and Purdue levels are inferred from device roles only.",
                        "warn",
                    )
                ]
            )
        )
    else:
        zones = pol.zones
        owned = [z for z in zones if z.owner]
        with_sl = [z for z in zones if z.sl_t is not None]
        placed = [a for a in f.assets if a["zone"] is not None]
        idmz = [z for z in zones if z.is_idmz]
        s.add(
            Metrics(
                [
                    Metric("Zones", f"{len(zones)}", f"policy '{pol.plant}'"),
                    Metric(
                        "Conduits",
                        f"{len(pol.conduits)}",
                        f"{len(pol.maintenance_windows)} maintenance window(s)",
                    ),
                    ratio("Zones with an owner", len(owned), len(zones)),
                    ratio("Zones with SL-T", len(with_sl), len(zones)),
                    ratio(
                        "Assets placed in a zone",
                        len(placed),
                        len(f.assets),
                        tone="good" if len(placed) == len(f.assets) else "warn",
                    ),
                ]
            )
        )
        found = []
        if not idmz:
            found.append(
                Finding(
                    "The policy has no IDMZ zone (level 3.5): IT and OT meet "
                    "without a demilitarised zone between them.",
                    "bad",
                )
            )
        else:
            found.append(
                Finding(f"The policy has an IDMZ: {', '.join(z.name for z in idmz)}.", "good")
            )
        if len(owned) < len(zones):
            names = ", ".join(z.name for z in zones if not z.owner)
            found.append(Finding(f"Zones without an owner: {names}.", "warn"))
        if len(with_sl) < len(zones):
            names = ", ".join(z.name for z in zones if z.sl_t is None)
            found.append(Finding(f"Zones without a target security level (sl_t): {names}.", "warn"))
        if len(placed) < len(f.assets):
            found.append(
                Finding(
                    f"{len(f.assets) - len(placed):,} asset(s) are in no zone: the policy does "
                    "not cover everything on the network.",
                    "warn",
                )
            )
        kinds = Counter(z.owner_kind or "unstated" for z in zones)
        found.append(
            Finding(
                "Zone ownership: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + "."
            )
        )
        s.add(Findings(found))
        per_zone = Counter(a["zone"] for a in placed)
        s.add(
            Table(
                "Zones of the policy (IEC 62443-3-2)",
                ["zone", "level", "SL-T", "criticality", "owner", "assets"],
                [
                    [
                        cell(z.name),
                        cell(level_text(z.level)),
                        cell(z.sl_t),
                        cell(z.criticality),
                        cell(z.owner),
                        cell(per_zone.get(z.name, 0)),
                    ]
                    for z in zones
                ],
            )
        )
    caps = f.captures
    first = min((c["first_ts"] for c in caps if c["first_ts"]), default=None)
    last = max((c["last_ts"] for c in caps if c["last_ts"]), default=None)
    s.add(Heading("Evidence this report rests on"))
    s.add(
        Metrics(
            [
                Metric(
                    "Captures analysed",
                    f"{len(caps):,}",
                    f"{sum(c['packets'] or 0 for c in caps):,} packets",
                ),
                Metric("Traffic from", _day(iso(first))),
                Metric("Traffic to", _day(iso(last))),
                Metric(
                    "Live sensors",
                    f"{len(f.sensors)}",
                    ", ".join(f"{x['name']} ({x['state']})" for x in f.sensors)[:80],
                ),
            ]
        )
    )
    rows = [
        [
            cell(str(c["path"]).rsplit("/", 1)[-1]),
            cell(c["status"]),
            cell(c["packets"]),
            cell(_day(iso(c["first_ts"]))),
            cell(_day(iso(c["last_ts"]))),
        ]
        for c in caps[:TOP]
    ]
    s.add(
        Table(
            "Captures",
            ["capture", "status", "packets", "first packet", "last packet"],
            rows,
            note=f"{len(caps) - TOP} more not shown" if len(caps) > TOP else "",
        )
    )
    s.blind = [
        "Cybersecurity strategy, risk appetite, supplier agreements and who approved the "
        "policy are documents and decisions, not traffic: they are not evidenced here."
    ]
    return s


# -- Identify ----------------------------------------------------------------------------


def _identity(a: dict[str, Any]) -> tuple[bool, bool, bool, bool]:
    """(vendor stated by the device, vendor from the MAC's OUI only, model, firmware)."""
    v = a["identity"].get("vendor")
    stated = v is not None and v.get("source") != "oui"
    oui = not stated and bool(a["vendor"] or a["mac_vendor"])
    return stated, oui, bool(a["model"]), bool(a["firmware"])


def identify(
    f: Facts,
    netmap: NetMap,
    vulns: VulnEvidence,
    risk: RiskEvidence,
    paths: list[Any],
    contacts: list[ObservedContact],
) -> Section:
    """ID: the inventory and how well each device is known, the map, known
    vulnerabilities, risk and attack paths."""
    s = Section(
        "identify",
        "Identify",
        "ID",
        "What is on the control network, how well is each device known, and what could "
        "an attacker reach?",
        "ID.AM-01, ID.AM-02, ID.AM-03, ID.RA-01, ID.RA-04, ID.RA-05",
    )
    n = len(f.assets)
    ids = [_identity(a) for a in f.assets]
    stated = sum(1 for i in ids if i[0])
    oui = sum(1 for i in ids if i[1])
    model = sum(1 for i in ids if i[2])
    firmware = sum(1 for i in ids if i[3])
    levelled = sum(1 for a in f.assets if a["level"] is not None)
    s.add(
        Metrics(
            [
                Metric("Assets", f"{n:,}", "confirmed: they sent or answered traffic"),
                Metric(
                    "Scan targets",
                    f"{len(f.scan_targets):,}",
                    "addresses only ever probed, not counted as assets",
                ),
                ratio("Vendor stated by the device", stated, n, f"{oui:,} more by MAC OUI only"),
                ratio("Model known", model, n),
                ratio(
                    "Firmware known",
                    firmware,
                    n,
                    tone="good" if n and firmware / n >= 0.8 else "warn",
                ),
                ratio("Purdue level known", levelled, n),
            ]
        )
    )
    green, amber, grey = "#059669", "#f59e0b", "#d1d5db"
    coverage = charts.stacked_bars(
        [
            (
                "vendor",
                [
                    ("stated by device", stated, green),
                    ("MAC OUI only", oui, amber),
                    ("unknown", n - stated - oui, grey),
                ],
            ),
            ("model", [("stated by device", model, green), ("unknown", n - model, grey)]),
            ("firmware", [("stated by device", firmware, green), ("unknown", n - firmware, grey)]),
            (
                "zone",
                [
                    ("stated by device", 0, green),
                    ("in a policy zone", sum(1 for a in f.assets if a["zone"]), "#2563eb"),
                    ("unknown", sum(1 for a in f.assets if not a["zone"]), grey),
                ],
            ),
        ],
        title="Identity coverage",
    )
    s.add(
        Figure(
            "Identity coverage of the inventory",
            coverage,
            "How many assets stated their vendor, model and firmware themselves "
            "(Modbus 43/14, S7 SZL, CIP identity, ...), against those known only by "
            "their network card's manufacturer or not at all.",
        )
    )
    s.add(
        Figure(
            "Network map by Purdue level",
            netmap.svg,
            "Zones of the policy by Purdue level, assets as dots (blue: control, "
            "teal: supervisory, grey: other), grey lines: zones that talked, red "
            "lines: stored policy violations.",
            wide=netmap.mode != "labelled",
        )
    )
    by_level: dict[float | None, list[dict[str, Any]]] = {}
    for a in f.assets:
        by_level.setdefault(a["level"], []).append(a)
    rows = []
    for lv in sorted(by_level, key=lambda v: -1 if v is None else v, reverse=True):
        members = by_level[lv]
        roles = Counter(r for a in members for r in a["roles"])
        rows.append(
            [
                cell(level_text(lv)),
                cell(LEVEL_NAMES.get(lv, "") if lv is not None else "roles gave no level"),
                cell(len(members)),
                cell(sum(1 for a in members if _identity(a)[0])),
                cell(sum(1 for a in members if a["model"])),
                cell(sum(1 for a in members if a["firmware"])),
                cell(", ".join(f"{r} {k}" for r, k in roles.most_common(4))),
            ]
        )
    s.add(
        Table(
            "Inventory by Purdue level",
            ["level", "", "assets", "vendor stated", "model", "firmware", "roles"],
            rows,
            note="Level from the policy's zone where one holds the asset, else from its "
            "roles (PLC, I/O, meter: 1; HMI, engineering, historian: 2).",
        )
    )

    s.add(Heading("Known vulnerabilities (CSAF advisories)"))
    if vulns.advisories == 0:
        s.add(
            Para(
                "No advisories are imported, so no device was checked against them "
                "(`conduit advisories import` or `conduit advisories sync`).",
                "warn",
            )
        )
    else:
        prio = Counter(r["priority"] for r in vulns.rows)
        s.add(
            Metrics(
                [
                    Metric("Advisories imported", f"{vulns.advisories:,}"),
                    Metric(
                        "Assets affected",
                        f"{vulns.affected_assets:,}",
                        tone="bad" if vulns.affected_assets else "good",
                    ),
                    Metric(
                        "Fix first (priority 1)",
                        f"{prio.get(1, 0):,}",
                        tone="bad" if prio.get(1) else "",
                    ),
                    Metric(
                        "Firmware to confirm", f"{prio.get(4, 0):,}", "version_unknown candidates"
                    ),
                    Metric("Fixed versions seen", f"{vulns.fixed:,}"),
                    Metric(
                        "Identities matching nothing",
                        f"{vulns.unmatched:,}",
                        f"{vulns.no_identity:,} assets state no product",
                    ),
                ]
            )
        )
        tone = {1: "bad", 2: "warn", 3: "", 4: "muted"}
        rows = [
            [
                cell(f"{r['priority']} {PRIORITY_TEXT[r['priority']]}", tone[r["priority"]]),
                cell(who(r["ip"], r["name"])),
                cell(r["advisory"]),
                cell(", ".join(r["cves"][:3]) + (" …" if len(r["cves"]) > 3 else "")),
                cell(r["cvss"]),
                cell(r["status"]),
                cell(r["why"]),
                cell(charts.clip(r["remediation"] or "", 160)),
            ]
            for r in vulns.rows[:TOP]
        ]
        s.add(
            Table(
                "Remediation priority",
                ["priority", "asset", "advisory", "CVEs", "CVSS", "status", "why", "remediation"],
                rows,
                note=f"{len(vulns.rows) - TOP:,} more rows: `conduit vulns`"
                if len(vulns.rows) > TOP
                else "",
            )
        )

    s.add(Heading("Risk per asset"))
    if not risk.available:
        s.add(Para(f"Not part of this report: {risk.reason}.", "muted"))
    else:
        rating_tone = {"critical": "bad", "high": "bad", "medium": "warn", "low": "good"}
        s.add(
            Metrics(
                [
                    Metric(
                        f"Rated {k}",
                        f"{risk.ratings.get(k, 0):,}",
                        "assets",
                        tone=rating_tone[k] if risk.ratings.get(k) else "",
                    )
                    for k in ("critical", "high", "medium", "low")
                ]
            )
        )
        s.add(
            Table(
                "Highest-risk assets (conduit risk)",
                ["asset", "zone", "score", "rating", "reasons"],
                [
                    [
                        cell(who(r["ip"], r["name"])),
                        cell(r["zone"]),
                        cell(r["score"]),
                        cell(r["rating"], rating_tone.get(str(r["rating"]), "")),
                        cell("; ".join(r["reasons"])),
                    ]
                    for r in risk.rows
                ],
                note="Not scored: " + "; ".join(risk.missing) if risk.missing else "",
            )
        )

    s.add(Heading("Attack paths from IT to levels 0-1"))
    if f.policy is None:
        s.add(Para("The policy's attack paths need --policy.", "muted"))
    else:
        s.add(
            Para(
                f"{len(paths)} level 0-1 target(s) can be reached from an IT zone through the "
                "conduits the policy allows (shortest path each); a path through the IDMZ is "
                "the design, a path around it is a finding.",
                "bad" if any("idmz" not in " ".join(p.zones).lower() for p in paths) else "info",
            )
        )
        if paths:
            s.add(
                Table(
                    "Allowed paths (policy)",
                    ["from zone", "target", "target zone", "zones", "conduits"],
                    [
                        [
                            cell(p.source_zone),
                            cell(p.target),
                            cell(p.target_zone),
                            cell(" → ".join(p.zones)),
                            cell(" → ".join(p.conduits)),
                        ]
                        for p in paths[:TOP]
                    ],
                    note=f"{len(paths) - TOP} more: `conduit policy paths`"
                    if len(paths) > TOP
                    else "",
                )
            )
    answered = [c for c in contacts if c.answered]
    s.add(
        Para(
            f"Observed: {len(answered):,} conversation(s) in which a level 0-1 device answered "
            f"an IT host (level 4-5) directly, and {len(contacts) - len(answered):,} unanswered "
            "attempt(s).",
            "bad" if answered else "good",
        )
    )
    if contacts:
        s.add(
            Table(
                "IT hosts that reached level 0-1 directly",
                ["IT host", "zone", "device", "zone", "protocol", "answered", "operations"],
                [
                    [
                        cell(c.src),
                        cell(c.src_zone),
                        cell(who(c.dst, c.dst_name)),
                        cell(c.dst_zone),
                        cell(f"{c.protocol}/{c.port}"),
                        cell(c.answered, "bad" if c.answered else ""),
                        cell(", ".join(f"{k} {v}" for k, v in sorted(c.classes.items()))),
                    ]
                    for c in contacts[:TOP]
                ],
            )
        )
    s.blind = [
        "Devices that never talk while Conduit listens (a spare PLC, a serial-only drive) "
        "are not in the inventory; quiet devices only state their model and firmware when "
        "asked (`conduit probe` is planned)."
    ]
    return s


# -- Protect -----------------------------------------------------------------------------


def protect(f: Facts, exposure: ZoneReport) -> Section:
    """PR: zones and conduits against the traffic, and each zone's target security level
    against what was observed."""
    s = Section(
        "protect",
        "Protect",
        "PR",
        "Does the traffic stay inside the conduits, and does each zone get the protection "
        "its target security level asks for?",
        "PR.AA-01, PR.AA-05, PR.DS-02, PR.IR-01, PR.PS-01",
    )
    vios = f.violations
    rules = Counter(v["rule"] for v in vios)
    occurrences = sum(int(v["count"] or 0) for v in vios)
    zones = exposure.zones
    gaps = [z for z in zones if z.gap_count]
    eng, clear = len(exposure.engineering), len(exposure.crossings)
    s.add(
        Metrics(
            [
                Metric(
                    "Policy violations",
                    f"{len(vios):,}",
                    f"{occurrences:,} occurrences",
                    tone="bad" if vios else "good",
                ),
                Metric(
                    "Bypassing the IDMZ",
                    f"{rules.get('bypasses-idmz', 0):,}",
                    tone="bad" if rules.get("bypasses-idmz") else "good",
                ),
                ratio("Zones with SL gaps", len(gaps), len(zones), tone="bad" if gaps else ""),
                Metric("Cleartext control across SL-T ≥ 3", f"{clear:,}", "conversations"),
                Metric(
                    "Unauthenticated engineering", f"{eng:,}", "program/firmware over cleartext"
                ),
            ]
        )
    )
    if f.policy is not None and not vios and f.plant not in f.violation_policies:
        s.add(
            Para(
                f"No violations are stored for policy '{f.plant}': check the traffic with "
                "`conduit violations --policy FILE` (or analyse with --policy) first.",
                "warn",
            )
        )
    if vios:
        order = [r for r in RULE_ORDER if rules.get(r)] + sorted(set(rules) - set(RULE_ORDER))
        s.add(
            Figure(
                "Policy violations by rule",
                charts.hbar_chart(
                    [(r, rules[r], "#dc2626") for r in order], title="Violations by rule"
                ),
                "Stored violations (one row per rule, endpoints, protocol and operation; "
                "a sweep of unanswering hosts is one row).",
            )
        )
        ranked = sorted(vios, key=lambda v: (RULE_RANK.get(v["rule"], 99), -int(v["count"] or 0)))
        s.add(
            Table(
                "Violations (most serious rule first)",
                ["rule", "source", "destination", "protocol", "operation", "count", "reason"],
                [
                    [
                        cell(
                            v["rule"],
                            "bad" if v["rule"] in BAD_RULES else "",
                        ),
                        cell(f"{v['src_ip']} ({v['src_zone'] or 'no zone'})"),
                        cell(
                            f"{v['dst_ip'] or str(v.get('targets') or '') + ' hosts'} "
                            f"({v['dst_zone'] or 'no zone'})"
                        ),
                        cell(v["protocol"]),
                        cell(v["operation"]),
                        cell(int(v["count"] or 0)),
                        cell(charts.clip(v["reason"] or "", 140)),
                    ]
                    for v in ranked[:TOP]
                ],
                note=f"{len(vios) - TOP:,} more: `conduit violations`" if len(vios) > TOP else "",
            )
        )
    s.add(Heading("IEC 62443 target security level per zone, against what was observed"))
    if not zones:
        s.add(Para("Needs --policy: zones and their SL-T come from it.", "muted"))
    else:
        rows = []
        for z in zones:
            seen = (
                "; ".join(
                    f"{g.requirement}: {g.what} ({g.count})"
                    + ("" if g.gap else f" - asked from SL {g.from_sl}")
                    for g in z.gaps
                )
                or "nothing against it"
            )
            if z.opcua_undecoded:
                seen += f"; OPC UA: {z.opcua_undecoded} conversation(s), security not decoded"
            tone = "bad" if z.gap_count else "muted" if z.sl_t is None else "good"
            rows.append(
                [
                    cell(z.name),
                    cell(level_text(z.level)),
                    cell(z.sl_t),
                    cell(z.assets),
                    cell(z.violations),
                    cell(seen),
                    cell(z.verdict, tone),
                ]
            )
        s.add(
            Table(
                "Zones: SL-T against observations",
                ["zone", "level", "SL-T", "assets", "violations", "observed", "verdict"],
                rows,
                note="IEC 62443-3-3 system requirements: SR 5.1/5.2 segmentation and zone "
                "boundary protection (SL 1), SR 1.2 device authentication (SL 2), SR 3.1 "
                "RE 1 cryptographic integrity (SL 3). A passive monitor can show a gap, "
                "never the absence of one.",
            )
        )
        details = [
            (z.name, g) for z in zones for g in z.gaps if g.requirement in ("SR 1.2", "SR 3.1 RE 1")
        ]
        if details:
            s.add(
                Table(
                    "What was seen",
                    ["zone", "requirement", "conversations"],
                    [[cell(n), cell(g.requirement), cell("; ".join(g.detail))] for n, g in details],
                )
            )
    s.add(Heading("OPC UA message security"))
    x = exposure
    decoded = len(x.opcua_unsecured) + x.opcua_secured + x.opcua_unknown
    if decoded:
        s.add(
            Para(
                f"{decoded} decoded OPC UA conversation(s): {len(x.opcua_unsecured)} opened a "
                f"secure channel without message security (mode None), {x.opcua_secured} "
                f"signed or encrypted, {x.opcua_unknown} opened no channel in the capture.",
                "bad" if x.opcua_unsecured else "good",
            )
        )
        if x.opcua_unsecured:
            s.add(
                Table(
                    "OPC UA without message security",
                    ["conversation"],
                    [[cell(line)] for line in x.opcua_unsecured[:TOP]],
                )
            )
    if x.opcua_undecoded or not decoded:
        s.add(
            Para(
                f"{x.opcua_undecoded} conversation(s) on OPC UA's port 4840 were not decoded: "
                "whether they use message security cannot be told from this store. The "
                "gateway's own OPC UA reads are judged from its config.",
                "muted",
            )
        )
    s.blind = [
        "Host hardening, patch state, accounts and passwords on devices are not visible in "
        "industrial traffic."
    ]
    return s


RULE_ORDER = (
    "bypasses-idmz",
    "cleartext-control-crossing",
    "insecure-opcua-crossing",
    "no-conduit",
    "operation-not-allowed",
    "protocol-not-allowed",
    "outside-window",
    "asset-in-no-zone",
)
RULE_RANK = {r: i for i, r in enumerate(RULE_ORDER)}
# Violations that are a gap whatever the traffic did (shown in red).
BAD_RULES = frozenset({"bypasses-idmz", "cleartext-control-crossing", "insecure-opcua-crossing"})


# -- Detect ------------------------------------------------------------------------------


def detect(f: Facts, problems: int, cov: Coverage) -> Section:
    """DE: what the rules can see (ATT&CK for ICS coverage, ``cov``) and what they
    raised."""
    s = Section(
        "detect",
        "Detect",
        "DE",
        "Which adversary techniques would be noticed, and what was noticed in the period?",
        "DE.CM-01, DE.CM-09, DE.AE-02, DE.AE-03, DE.AE-04",
    )
    sev = Counter(a["severity"] for a in f.alerts)
    open_ = sum(1 for a in f.alerts if a["status"] == "open")
    s.add(
        Metrics(
            [
                ratio(
                    "ATT&CK for ICS techniques covered",
                    cov.covered,
                    cov.techniques,
                    f"{len(RULES)} rules; MITRE table of {cov.modified}",
                ),
                Metric("Techniques seen in alerts", f"{cov.alerted}"),
                Metric(
                    "Alerts",
                    f"{len(f.alerts):,}",
                    f"{sum(a['count'] for a in f.alerts):,} occurrences",
                ),
                Metric(
                    "Critical and high",
                    f"{sev.get('critical', 0) + sev.get('high', 0):,}",
                    tone="bad" if sev.get("critical") else "warn" if sev.get("high") else "good",
                ),
                Metric("Still open", f"{open_:,}"),
                Metric(
                    "Undecodable data", f"{problems:,}", "malformed or unreadable PDUs and packets"
                ),
            ]
        )
    )
    s.add(
        Figure(
            "Alerts by severity",
            charts.hbar_chart(
                [(k, sev.get(k, 0), charts.SEVERITY_COLOURS[k]) for k in SEVERITIES],
                title="Alerts by severity",
            ),
            "Severity weighs each finding by its OT context (zone, conduit, maintenance window).",
        )
    )
    ranked = sorted(
        f.alerts, key=lambda a: (-int(Severity.parse(a["severity"])), -a["count"], a["id"])
    )
    s.add(
        Table(
            "Most severe alerts",
            [
                "id",
                "severity",
                "alert",
                "source → destination",
                "count",
                "first seen",
                "status",
                "ATT&CK",
            ],
            [
                [
                    cell(a["id"]),
                    cell(a["severity"], "bad" if a["severity"] in ("critical", "high") else ""),
                    cell(charts.clip(a["summary"] or a["title"], 110)),
                    cell(f"{who(a['src_ip'], a['src_name'])} → {who(a['dst_ip'], a['dst_name'])}"),
                    cell(a["count"]),
                    cell(_day(a["first_seen"])),
                    cell(a["status"]),
                    cell(", ".join(a["techniques"])),
                ]
                for a in ranked[:TOP]
            ],
            note=f"{len(ranked) - TOP:,} more: `conduit alerts`" if len(ranked) > TOP else "",
        )
    )
    by_rule = Counter(a["rule"] for a in f.alerts)
    s.add(
        Table(
            "Alerts by rule",
            ["rule", "category", "alerts", "occurrences"],
            [
                [
                    cell(r),
                    cell(RULES[r].category if r in RULES else ""),
                    cell(n),
                    cell(sum(a["count"] for a in f.alerts if a["rule"] == r)),
                ]
                for r, n in by_rule.most_common()
            ],
        )
    )
    s.add(
        Figure(
            "Detection coverage: ATT&CK for ICS matrix",
            cov.svg,
            "Tactics as columns; grey: no rule evidences the technique; blue: covered, "
            "not raised in the period; orange to red: named by alerts (count in "
            "brackets).",
            wide=True,
        )
    )
    s.blind = [
        "Encrypted sessions (TLS, OPC UA SignAndEncrypt, S7comm-plus integrity) and traffic "
        "on links the sensor does not mirror are not inspected."
    ]
    s.add(
        Para(
            f"{len(f.captures):,} capture(s) and {len(f.sensors)} sensor(s) feed detection.",
            "muted",
        )
    )
    return s


# -- Respond -----------------------------------------------------------------------------


def _ack_minutes(store: Store, ids: set[int]) -> list[float]:
    """Minutes from an alert being raised to its first change (acknowledged or closed)."""
    out = []
    for r in first_responses(store):
        if r["id"] not in ids:
            continue
        try:
            t0 = datetime.fromisoformat(r["raised"].replace("Z", "+00:00"))
            t1 = datetime.fromisoformat(r["first"].replace("Z", "+00:00"))
        except (AttributeError, ValueError):
            continue
        out.append(max(0.0, (t1 - t0).total_seconds() / 60))
    return out


def respond(store: Store, f: Facts, incidents: list[dict[str, Any]]) -> Section:
    """RS: incidents, how alerts were handled, and the runbooks at hand."""
    s = Section(
        "respond",
        "Respond",
        "RS",
        "Are alerts turned into incidents, owned and worked, with a plan for IT and OT?",
        "RS.MA-01, RS.MA-02, RS.MA-03, RS.AN-03, RS.CO-02",
    )
    status = Counter(a["status"] for a in f.alerts)
    inc_status = Counter(i.get("status") or "not yet numbered" for i in incidents)
    ack = _ack_minutes(store, {a["id"] for a in f.alerts})
    s.add(
        Metrics(
            [
                Metric(
                    "Incidents",
                    f"{len(incidents):,}",
                    "alerts on the same devices, chained in time",
                ),
                Metric(
                    "Incidents not resolved",
                    f"{sum(1 for i in incidents if i.get('status') != 'resolved'):,}",
                ),
                Metric("Alerts acknowledged", f"{status.get('acknowledged', 0):,}"),
                Metric("Alerts closed", f"{status.get('closed', 0):,}"),
                Metric(
                    "Alerts still open",
                    f"{status.get('open', 0):,}",
                    tone="warn" if status.get("open") else "good",
                ),
                Metric(
                    "Median time to first action",
                    f"{statistics.median(ack):.0f} min" if ack else DASH,
                    f"over {len(ack)} alert(s) handled",
                ),
            ]
        )
    )
    if incidents:
        ranked = sorted(
            incidents,
            key=lambda i: (
                -int(Severity.parse(i["severity"])),
                -i["alerts"],
                i["first_seen"] or "",
            ),
        )
        s.add(
            Table(
                "Incidents (most severe first)",
                [
                    "incident",
                    "severity",
                    "first seen",
                    "last seen",
                    "devices",
                    "alerts",
                    "status",
                    "owner",
                ],
                [
                    [
                        cell(i["id"]),
                        cell(i["severity"], "bad" if i["severity"] in ("critical", "high") else ""),
                        cell(_day(i["first_seen"])),
                        cell(_day(i["last_seen"])),
                        cell(charts.clip(", ".join(i["assets"] + i["machines"]), 80)),
                        cell(i["alerts"]),
                        cell(i.get("status") or DASH),
                        cell(i.get("owner")),
                    ]
                    for i in ranked[:TOP]
                ],
                note="Numbered incidents keep the number the console gave them; draft-N ones were "
                "never opened in the console."
                + (f" {len(ranked) - TOP:,} more in the console." if len(ranked) > TOP else ""),
            )
        )
        s.add(
            Para(
                "Incident status: "
                + ", ".join(f"{k}: {n}" for k, n in sorted(inc_status.items()))
                + "."
            )
        )
    fired = Counter(a["category"] for a in f.alerts)
    s.add(
        Table(
            "Runbooks (joint IT/OT response, one per alert category)",
            ["category", "runbook", "who to involve", "alerts in period"],
            [
                [
                    cell(rb.category),
                    cell(rb.title),
                    cell(", ".join(rb.involve)),
                    cell(fired.get(rb.category, 0)),
                ]
                for rb in runbooks().values()
            ],
            note="Every alert carries its category's runbook (`conduit alert show ID`): IT steps, "
            "OT steps and what not to do on a live process.",
        )
    )
    s.blind = [
        "Whether the people named in the runbooks were reached, and what they decided, is "
        "kept outside Conduit (shift log, ticketing)."
    ]
    return s


# -- Recover -----------------------------------------------------------------------------


def recover(f: Facts, incidents: list[dict[str, Any]], production: Any) -> Section:
    """RC: what Conduit can show about getting back to normal."""
    s = Section(
        "recover",
        "Recover",
        "RC",
        "After an event: is the evidence kept, are incidents closed, and how did production "
        "come back?",
        "RC.RP-01, RC.RP-03, RC.RP-05",
    )
    with_evidence = sum(1 for a in f.alerts if a["evidence"])
    resolved = sum(1 for i in incidents if i.get("status") == "resolved")
    items = [
        ratio(
            "Alerts with packet evidence kept",
            with_evidence,
            len(f.alerts),
            "`conduit evidence ID` cuts the packets",
        ),
        ratio("Incidents resolved", resolved, len(incidents)),
    ]
    if production is not None and production.available and production.machines:
        down = sum(r["down_time_s"] or 0 for r in production.machines)
        unknown = sum(r["unknown_time_s"] or 0 for r in production.machines)
        items.append(Metric("Unplanned down time", f"{down / 3600:,.1f} h", "all machines, period"))
        items.append(
            Metric("Time without machine data", f"{unknown / 3600:,.1f} h", "never counted as down")
        )
    s.add(Metrics(items))
    s.add(
        Para(
            "The runbooks' OT steps end each response with the checks before restarting "
            "production (program compared with the last known-good version, process in a "
            "safe state); the down time trend is in the roadmap KPIs below.",
            "muted",
        )
    )
    s.blind = [
        "Backups of controller programs and configurations, restore tests and recovery "
        "time objectives are outside a network monitor's view."
    ]
    return s


def observed_exposure(kpi: IdmzKpi, contacts: list[ObservedContact]) -> set[str]:
    """Addresses reached from IT: answered direct contacts, and level 0-1 devices whose
    data leaves by a direct or bypassing path."""
    out = {c.dst for c in contacts if c.answered}
    out |= {a.ip for a in kpi.assets if a.path in ("direct", "bypass")}
    return out
