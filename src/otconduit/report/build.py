"""Put the report together: read the facts, work out exposure, vulnerabilities, risk and
production, and gather each section. ``build_report`` is what ``conduit report`` and the
tests call; it only reads the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otconduit.policy import Policy
from otconduit.report import gather, roadmap
from otconduit.report.attackmap import attack_heatmap
from otconduit.report.exposure import idmz_kpi, observed_contacts, zone_exposure
from otconduit.report.facts import Window, collect
from otconduit.report.model import Report
from otconduit.report.netmap import network_map
from otconduit.report.production import production_evidence
from otconduit.report.remediation import ranked
from otconduit.report.risk import asset_risks
from otconduit.store import Store, views


def _incidents(store: Store, f: Any) -> list[dict[str, Any]]:
    """Incidents as the console numbers them (read-only: one never numbered here is a
    draft), those active in the window."""
    from otconduit.console import incidents as inc

    items = inc.incidents(store, f.zoning)
    items = inc.with_numbers(items, inc.known_numbers(store))
    shown = inc.present(items, inc.states(store), include_closed=True)
    return [i for i in shown if f.window.holds_iso(i["first_seen"], i["last_seen"])]


def _paths(policy: Policy | None) -> list[Any]:
    if policy is None:
        return []
    from otconduit.policy.paths import attack_paths
    from otconduit.policy.spec import PolicySpecError, spec_from_policy

    try:
        return attack_paths(spec_from_policy(policy))
    except PolicySpecError:
        return []  # a policy the path graph cannot take (checked when it is loaded)


def _period(f: Any) -> str:
    w = f.window
    if not w.bounded:
        return "everything stored"

    def when(ns: int | None, open_end: str) -> str:
        text = views.iso(ns)
        return text[:19].replace("T", " ") + " UTC" if text else open_end

    return f"{when(w.start_ns, 'the start')} to {when(w.end_ns, 'the end')}"


def build_report(
    store: Store,
    *,
    db: Path,
    policy: Policy | None = None,
    policy_path: Path | None = None,
    gateway: Any | None = None,
    gateway_path: Path | None = None,
    historian: Path | None = None,
    window: Window | None = None,
) -> Report:
    """The whole report from a read-only store and the optional policy and gateway."""
    f = collect(store, policy, gateway, window or Window(), db)
    netmap = network_map(f)
    zones = zone_exposure(f)
    kpi = idmz_kpi(f)
    contacts = observed_contacts(f)
    critical = {a["ip"] for a in f.assets if a["level"] is not None and a["level"] <= 1}
    vulns = ranked(store, gather.observed_exposure(kpi, contacts), critical)
    risk = asset_risks(store, policy, {a["ip"] for a in f.assets})
    prod = production_evidence(gateway, historian, f.window.start_ns, f.window.end_ns)
    incidents = _incidents(store, f)
    problems = sum(int(r["count"]) for r in views.problem_summary(store))
    paths = _paths(policy)
    cov = attack_heatmap(a["techniques"] for a in f.alerts)

    sections = {
        "govern": gather.govern(f),
        "identify": gather.identify(f, netmap, vulns, risk, paths, contacts),
        "protect": gather.protect(f, zones),
        "detect": gather.detect(f, problems, cov),
        "respond": gather.respond(store, f, incidents),
        "recover": gather.recover(f, incidents, prod),
    }
    sev = [a["severity"] for a in f.alerts]
    firmware = sum(1 for a in f.assets if a["firmware"])
    data: dict[str, Any] = {
        "assets": len(f.assets),
        "scan_targets": len(f.scan_targets),
        "violations": len(f.violations),
        "violation_occurrences": sum(int(v["count"] or 0) for v in f.violations),
        "bypasses": sum(1 for v in f.violations if v["rule"] == "bypasses-idmz"),
        "alerts": len(f.alerts),
        "critical_alerts": sev.count("critical"),
        "high_alerts": sev.count("high"),
        "incidents": len(incidents),
        "zones_with_gaps": zones.with_gaps,
        "direct_contacts": sum(1 for c in contacts if c.answered),
        "priority1": sum(1 for r in vulns.rows if r["priority"] == 1),
        "vulnerability_rows": len(vulns.rows),
        "firmware_known": firmware,
        "coverage": f"{cov.covered} of {cov.techniques}",
        "idmz_share": kpi.share,
        "idmz_counts": kpi.counts if kpi.available else {},
        "netmap": {
            "mode": netmap.mode,
            "dots": netmap.dots,
            "boxes": netmap.boxes,
            "violation_lines": netmap.violation_lines,
        },
        "production": prod.available,
        "risk": risk.available,
        "attack_paths": len(paths),
    }
    data["glance"] = {
        "govern": f"{len(policy.zones)} zones, {len(policy.conduits)} conduits"
        if policy
        else "no policy given",
        "identify": f"{len(f.assets):,} assets, firmware known for {firmware:,}; "
        f"{data['vulnerability_rows']:,} vulnerability matches; {len(paths)} attack path(s)",
        "protect": f"{len(f.violations):,} violations, "
        f"{data['zones_with_gaps']} zone(s) with SL gaps",
        "detect": f"{data['coverage']} techniques covered; {len(f.alerts):,} alerts",
        "respond": f"{len(incidents):,} incidents, "
        f"{sum(1 for a in f.alerts if a['status'] != 'open'):,} alerts handled",
        "recover": f"evidence kept for {sum(1 for a in f.alerts if a['evidence']):,} alerts",
    }
    scope = [
        ("Plant", policy.plant if policy else "(no policy given)"),
        ("Database", store.label),  # a URL without its password
        ("Period", _period(f)),
        ("Policy", str(policy_path) if policy_path else "none"),
        ("Gateway", f"{gateway.name} ({gateway_path})" if gateway is not None else "none"),
        ("Generated", f.generated_at),
    ]
    report = Report(
        title="OT security assessment",
        plant=policy.plant if policy else db.stem,
        scope=scope,
        summary=roadmap.summary(f, kpi, sections, data),
        sections=list(sections.values()),
        kpis=roadmap.kpis(f, kpi, prod),
        appendix=roadmap.appendix(f),
        generated_at=f.generated_at,
        data=data,
    )
    report.number_figures()
    return report
