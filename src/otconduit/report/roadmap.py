"""The convergence roadmap's KPIs, the executive summary and the appendix.

The KPIs are the figures the roadmap's phases are judged by: how much of the critical
process reaches IT only through the IDMZ's read-only gateway, OEE and down time, and the
energy pilot's figures. The summary picks the few findings management must read from
the sections; the appendix lists the level 0-1 devices and how each figure is counted.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from otconduit.report import charts
from otconduit.report.exposure import PATH_TEXT, PATHS, IdmzKpi
from otconduit.report.facts import Facts
from otconduit.report.gather import level_text, share, who
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
from otconduit.report.production import ProductionEvidence

PATH_COLOURS = {
    "direct": "#991b1b",
    "bypass": "#dc2626",
    "idmz-other": "#f59e0b",
    "idmz-read-only": "#059669",
    "contained": "#9ca3af",
}
APPENDIX_MAX = 300


def kpis(f: Facts, kpi: IdmzKpi, prod: ProductionEvidence) -> Section:
    """The roadmap KPIs section."""
    s = Section(
        "kpis",
        "Roadmap KPIs",
        intro="The figures the convergence roadmap is judged by.",
    )
    s.add(Heading("Critical process data reaching IT only through the IDMZ"))
    if not kpi.available:
        s.add(Para(f"Not measured: {kpi.reason}.", "warn"))
    else:
        c = kpi.counts
        gw = f" (the gateway at {kpi.gateway_host})" if kpi.gateway_host else ""
        s.add(
            Metrics(
                [
                    Metric(
                        "Through the IDMZ only, read-only",
                        charts.pct(kpi.share),
                        f"{c['idmz-read-only']} of {kpi.reaching_it} level 0-1 assets "
                        "whose data reaches IT",
                        tone=_kpi_tone(kpi.share),
                    ),
                    Metric(
                        "Level 0-1 zones through the IDMZ only",
                        charts.pct(kpi.zone_share),
                        f"of {sum(1 for z in kpi.zones if z['status'] != 'contained')} "
                        "zones whose data reaches IT",
                        tone=_kpi_tone(kpi.zone_share),
                    ),
                    Metric(
                        "Direct or bypassing",
                        f"{c['direct'] + c['bypass']}",
                        "level 0-1 assets",
                        tone="bad" if c["direct"] + c["bypass"] else "good",
                    ),
                    Metric("Data not seen leaving OT", f"{c['contained']}", "level 0-1 assets"),
                ]
            )
        )
        s.add(
            Figure(
                "How level 0-1 data reaches IT",
                charts.stacked_bars(
                    [("level 0-1 assets", [(PATH_TEXT[p], c[p], PATH_COLOURS[p]) for p in PATHS])],
                    title="How level 0-1 data reaches IT",
                    width=640,
                    label_width=120,
                ),
                "From the conversations in which both sides spoke: an asset counts as reaching "
                "IT only through the IDMZ when its only peers outside levels 0-3 are IDMZ hosts "
                f"that only read from it{gw}, and no level 2-3 peer of it talks with IT directly.",
            )
        )
        if kpi.zones:
            s.add(
                Table(
                    "Level 0-1 zones",
                    ["zone", "level", "assets", "worst path", "assets by path"],
                    [
                        [
                            cell(z["name"]),
                            cell(level_text(z["level"])),
                            cell(z["assets"]),
                            cell(PATH_TEXT[z["status"]], _path_tone(z["status"])),
                            cell(", ".join(f"{p} {n}" for p, n in sorted(z["paths"].items()))),
                        ]
                        for z in kpi.zones
                    ],
                )
            )
        off = [a for a in kpi.assets if a.path in ("direct", "bypass", "idmz-other")]
        if off:
            s.add(
                Table(
                    "Level 0-1 assets not yet behind the read-only IDMZ path",
                    ["asset", "zone", "path", "because of"],
                    [
                        [
                            cell(who(a.ip, a.name)),
                            cell(a.zone),
                            cell(a.path, _path_tone(a.path)),
                            cell(", ".join(a.via[:6]) + (" …" if len(a.via) > 6 else "")),
                        ]
                        for a in off[:40]
                    ],
                )
            )
    s.add(Heading("OEE and down time"))
    if not prod.available:
        s.add(Para(f"Not part of this report: {prod.reason}.", "muted"))
    else:
        _production(s, prod)
    return s


def _kpi_tone(v: float | None) -> str:
    if v is None:
        return ""
    return "good" if v >= 0.999 else "warn" if v >= 0.8 else "bad"


def _path_tone(path: str) -> str:
    return {"direct": "bad", "bypass": "bad", "idmz-other": "warn", "idmz-read-only": "good"}.get(
        path, "muted"
    )


def _short(ts: str, by: str) -> str:
    """A bucket's start as a label: the date for days, date and hour for shifts."""
    return ts[:10] if by == "day" else ts[5:16].replace("T", " ")


def _production(s: Section, prod: ProductionEvidence) -> None:
    if prod.machines:
        s.add(
            Para(
                f"From the gateway's historian, {prod.period.get('start', '')} to "
                f"{prod.period.get('end', '')} (plant time).",
                "muted",
            )
        )
        s.add(
            Table(
                "OEE per machine (ISO 22400-2)",
                [
                    "line",
                    "machine",
                    "availability",
                    "effectiveness",
                    "quality",
                    "OEE",
                    "down (h)",
                    "no data (h)",
                    "good",
                    "scrap",
                ],
                [
                    [
                        cell(r["line"]),
                        cell(r["machine"]),
                        cell(charts.pct(r["availability"])),
                        cell(charts.pct(r["effectiveness"])),
                        cell(charts.pct(r["quality_rate"])),
                        cell(charts.pct(r["oee"])),
                        cell(round((r["down_time_s"] or 0) / 3600, 2)),
                        cell(round((r["unknown_time_s"] or 0) / 3600, 2)),
                        cell(r["good"]),
                        cell(r["scrap"]),
                    ]
                    for r in prod.machines
                ],
                note="Time without good data from a machine is kept apart, never counted as down.",
            )
        )
        buckets = list(dict.fromkeys(r["start"] for r in prod.trend))
        labels = [_short(b, prod.trend_by) for b in buckets]
        per_machine: dict[str, dict[str, Any]] = defaultdict(dict)
        down: dict[str, float] = defaultdict(float)
        for r in prod.trend:
            per_machine[r["machine"]][r["start"]] = r["oee"]
            down[r["start"]] += (r["down_time_s"] or 0) / 3600
        series = [
            (m, [vals.get(b) for b in buckets], charts.SERIES[i % len(charts.SERIES)])
            for i, (m, vals) in enumerate(sorted(per_machine.items()))
        ]
        if len(buckets) < 2:
            s.add(Para(f"One {prod.trend_by} of data so far: no trend to draw yet.", "muted"))
        else:
            s.add(
                Figure(
                    f"OEE trend per {prod.trend_by}",
                    charts.line_chart(
                        labels, series, title="OEE trend", top=1.0, fmt=lambda v: f"{100 * v:.0f} %"
                    ),
                    "OEE index per machine and period; a gap: no planned busy time or no data.",
                )
            )
            s.add(
                Figure(
                    f"Unplanned down time per {prod.trend_by}",
                    charts.column_chart(
                        labels,
                        [round(down[b], 3) for b in buckets],
                        title="Down time",
                        colour="#dc2626",
                        unit="h",
                    ),
                    "Down time of all machines: known non-producing states inside shifts.",
                )
            )
    s.add(Heading("Energy pilot"))
    e = prod.energy
    if e is None or e.get("totals") is None:
        s.add(Para("No energy model in the gateway config's production section.", "muted"))
        return
    t = e["totals"]
    per = e["period"]
    s.add(
        Para(
            f"{per['start']} to {per['end']} (plant time, {per['timezone']}); CO2e is "
            f"scope 2, {e['scope2']['method']}.",
            "muted",
        )
    )
    s.add(
        Metrics(
            [
                Metric("Energy", f"{t['kwh']:,.3f} kWh", "site total"),
                Metric(
                    "Peak demand", f"{t['peak_kw']:,.2f} kW" if t["peak_kw"] is not None else DASH
                ),
                Metric(
                    "Energy per good part",
                    f"{t['kwh_per_good_part']:,.4f} kWh"
                    if t["kwh_per_good_part"] is not None
                    else DASH,
                ),
                Metric(
                    "CO2e (scope 2)",
                    f"{t['co2e_kg']:,.2f} kg" if t["co2e_kg"] is not None else DASH,
                    e["scope2"]["method"],
                ),
            ]
        )
    )
    s.add(
        Table(
            "Energy per machine",
            ["line", "machine", "kWh", "peak kW", "kWh per good part", "CO2e kg", "source"],
            [
                [
                    cell(r["line"]),
                    cell(r["machine"]),
                    cell(r["kwh"]),
                    cell(r["peak_kw"]),
                    cell(r["kwh_per_good_part"]),
                    cell(r["co2e_kg"]),
                    cell(r["source"]),
                ]
                for r in e["by_machine"]
            ],
        )
    )
    days: dict[str, float] = defaultdict(float)
    for r in e["trend"]:
        days[r["start"][:10]] += r["kwh"] or 0.0
    if len(days) > 1:
        s.add(
            Figure(
                "Energy per day",
                charts.column_chart(
                    list(days),
                    [round(v, 3) for v in days.values()],
                    title="Energy per day",
                    colour="#059669",
                    unit="kWh",
                ),
                "Site energy per plant-local day (meters counted once).",
            )
        )


def summary(
    f: Facts,
    kpi: IdmzKpi,
    sections: dict[str, Section],
    facts: dict[str, Any],
) -> Section:
    """The first page: scope, the figures that matter, and the findings to act on."""
    s = Section("summary", "Summary")
    found: list[Finding] = []
    direct = facts["direct_contacts"]
    if direct:
        found.append(
            Finding(
                f"{direct} conversation(s) in which a level 0-1 device answered an IT "
                "host directly.",
                "bad",
            )
        )
    if facts["bypasses"]:
        found.append(Finding(f"{facts['bypasses']} policy violation(s) bypass the IDMZ.", "bad"))
    if facts["zones_with_gaps"]:
        found.append(
            Finding(
                f"{facts['zones_with_gaps']} zone(s) show gaps against their IEC 62443 "
                "target security level.",
                "bad",
            )
        )
    if facts["critical_alerts"]:
        found.append(Finding(f"{facts['critical_alerts']} critical alert(s) in the period.", "bad"))
    if facts["priority1"]:
        found.append(
            Finding(f"{facts['priority1']} known vulnerability match(es) to fix first.", "bad")
        )
    if facts["violations"]:
        found.append(Finding(f"{facts['violations']} policy violation(s) stored in all.", "warn"))
    n = len(f.assets)
    if n and facts["firmware_known"] / n < 0.5:
        found.append(
            Finding(
                f"Firmware is known for only {share(facts['firmware_known'], n)} assets: "
                "known vulnerabilities cannot be judged for the rest.",
                "warn",
            )
        )
    if f.policy is None:
        found.append(
            Finding(
                "No policy was given: zones, target levels and the IDMZ KPI are not assessed.",
                "warn",
            )
        )
    if not found:
        found.append(
            Finding(
                "No violation, critical alert or exposed level 0-1 device in the period.", "good"
            )
        )
    s.add(
        Metrics(
            [
                Metric("Assets", f"{n:,}", f"{len(f.scan_targets):,} scan target(s) not counted"),
                Metric(
                    "Policy violations",
                    f"{facts['violations']:,}",
                    tone="bad" if facts["violations"] else "good",
                ),
                Metric(
                    "Alerts",
                    f"{len(f.alerts):,}",
                    f"{facts['critical_alerts']} critical, {facts['high_alerts']} high",
                ),
                Metric("Incidents", f"{facts['incidents']:,}"),
                Metric(
                    "IDMZ KPI",
                    charts.pct(kpi.share) if kpi.available else DASH,
                    "level 0-1 data reaching IT only via the read-only IDMZ",
                    tone=_kpi_tone(kpi.share),
                ),
                Metric("ATT&CK techniques covered", facts["coverage"]),
            ]
        )
    )
    s.add(
        Para(
            f"In the period the inventory holds {n:,} assets ({len(f.scan_targets):,} scan "
            f"target(s) not counted); {facts['violations']:,} policy violations are stored "
            f"({facts['violation_occurrences']:,} occurrences); {len(f.alerts):,} alerts were "
            f"raised, {facts['critical_alerts']:,} of them critical, in "
            f"{facts['incidents']:,} incident(s)."
        )
    )
    s.add(Heading("Findings to act on"))
    s.add(Findings(found))
    s.add(Heading("NIST CSF 2.0 at a glance"))
    s.add(
        Table(
            "Evidence per CSF function",
            ["function", "question", "evidence in this report"],
            [
                [cell(f"{x.title} ({x.code})"), cell(x.intro), cell(facts["glance"].get(x.key, ""))]
                for x in sections.values()
            ],
        )
    )
    return s


def appendix(f: Facts) -> Section:
    """Level 0-1 inventory and the definitions behind the figures."""
    s = Section("appendix", "Appendix")
    crit = sorted(
        (a for a in f.assets if a["level"] is not None and a["level"] <= 1),
        key=lambda a: (a["zone"] or "~", a["ip"]),
    )
    s.add(
        Table(
            "Level 0-1 inventory",
            ["address", "name", "zone", "vendor", "model", "firmware", "roles", "last seen"],
            [
                [
                    cell(a["ip"]),
                    cell(a["name"]),
                    cell(a["zone"]),
                    cell(a["vendor"]),
                    cell(a["model"]),
                    cell(a["firmware"]),
                    cell(", ".join(a["roles"])),
                    cell((a["last_seen"] or "")[:19]),
                ]
                for a in crit[:APPENDIX_MAX]
            ],
            note=(f"{len(crit) - APPENDIX_MAX:,} more; " if len(crit) > APPENDIX_MAX else "")
            + "the whole inventory: `conduit assets --policy FILE -f csv`.",
        )
    )
    s.add(Heading("How the figures are counted"))
    s.add(
        Findings(
            [
                Finding(
                    "Assets are hosts that sent traffic of their own, served a conversation a "
                    "decoder understood, or answered with application data; addresses only ever "
                    "probed are scan targets (`conduit assets` lists the same assets)."
                ),
                Finding(
                    "Violations are those stored by the last `conduit violations --policy` or "
                    "`conduit analyze --policy` for this policy; with --from/--to, those active in "
                    "the period."
                ),
                Finding(
                    "Purdue level: the zone's level where the policy places the asset, else "
                    "inferred from its roles."
                ),
                Finding(
                    "IDMZ KPI: for each level 0-1 asset, from the conversations in which both "
                    "sides spoke: direct (it talks with level 4-5), bypass (a level 2-3 peer of it "
                    "talks with level 4-5), IDMZ read-only (its only peers beyond level 3 are IDMZ "
                    "hosts whose operations towards it are reads), IDMZ other, or contained."
                ),
                Finding(
                    "IEC 62443 verdicts list gaps the traffic shows; they are not a certification."
                ),
                Finding(
                    "Remediation priority: 1 affected with CVSS ≥ 9 or reached from IT; 2 affected "
                    "with CVSS ≥ 7 or at level 0-1; 3 other affected; 4 firmware to confirm."
                ),
            ]
        )
    )
    return s
