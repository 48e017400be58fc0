"""Alerts and policy violations for the console: paged lists with filters, and the
alert page's extras (ATT&CK names and links, the runbook, the decoded operations)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from otconduit.console.errors import ApiError
from otconduit.detect.alerts import AlertError, get_alert
from otconduit.detect.attack import attack_table
from otconduit.detect.rules import RULES, Severity
from otconduit.detect.runbooks import runbooks
from otconduit.store import Store
from otconduit.store import alerts as stored
from otconduit.store import violations as stored_violations
from otconduit.store.views import asset_name, iso

SEVERITIES = tuple(s.label for s in Severity)
ALERT_SORTS = tuple(stored.SORTS)
DEFAULT_SORT = "severity"  # what needs a person first: critical before info, then newest


@dataclass(slots=True)
class AlertQuery:
    severity: str | None = None  # minimum
    rule: str | None = None
    status: str | None = None
    asset: str | None = None  # source or destination address
    technique: str | None = None
    protocol: str | None = None
    category: str | None = None
    sort: str = DEFAULT_SORT
    offset: int = 0
    limit: int = 50


def technique_refs(ids: list[str]) -> list[dict[str, Any]]:
    table = attack_table()
    out = []
    for tid in ids:
        t = table.techniques.get(tid)
        out.append(
            {
                "id": tid,
                "name": t.name if t else tid,
                "url": t.url if t else f"https://attack.mitre.org/techniques/{tid}/",
                "tactics": [table.tactic_name(x) for x in t.tactics] if t else [],
            }
        )
    return out


def _summary_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "rule": r["rule"],
        "title": r["title"],
        "category": r["category"],
        "severity": Severity(r["severity"]).label,
        "status": r["status"],
        "techniques": json.loads(r["techniques"]),
        "src_ip": r["src_ip"],
        "dst_ip": r["dst_ip"],
        "protocol": r["protocol"],
        "operation": r["operation"],
        "summary": r["summary"],
        "count": r["count"],
        "first_seen": iso(r["first_seen"]),
        "last_seen": iso(r["last_seen"]),
        "updated_at": r["updated_at"],
    }


def list_alerts(store: Store, aq: AlertQuery) -> tuple[int, list[dict[str, Any]]]:
    sev = None
    if aq.severity:
        try:
            sev = int(Severity.parse(aq.severity))
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
    if aq.sort not in ALERT_SORTS:
        raise ApiError(422, f"sort must be one of {', '.join(ALERT_SORTS)}")
    flt = stored.AlertFilter(
        min_severity=sev,
        rule=aq.rule,
        status=aq.status,
        ip=aq.asset,
        technique=aq.technique,
        protocol=aq.protocol,
        category=aq.category,
    )
    total = stored.count(store, flt)
    rows = stored.select(store, flt, sort=aq.sort, limit=aq.limit, offset=aq.offset)
    return total, [_named(store, _summary_row(r)) for r in rows]


def _named(store: Store, row: dict[str, Any]) -> dict[str, Any]:
    """The row with the names the store holds for its endpoints."""
    row["src_name"] = asset_name(store, row.get("src_ip"))
    row["dst_name"] = asset_name(store, row.get("dst_ip"))
    return row


def alert_detail(store: Store, alert_id: int) -> dict[str, Any]:
    """The alert with evidence, decoded operations, ATT&CK references, runbook, history."""
    try:
        a = get_alert(store, alert_id)
    except AlertError as exc:
        raise ApiError(404, str(exc)) from None
    a["technique_refs"] = technique_refs(a["techniques"])
    rb = runbooks().get(a["category"])
    a["runbook"] = rb.to_dict() if rb else None
    rule = RULES.get(a["rule"])
    a["rule_description"] = rule.description if rule else None
    records = a.pop("records")
    # Evidence records are decoded operations, or a detector's own detail (scans, ...).
    a["operations"] = [r for r in records if "function" in r and "src_ip" in r]
    a["findings"] = [r for r in records if not ("function" in r and "src_ip" in r)]
    a["has_evidence"] = any(e["frames"] for e in a["evidence"])
    return a


def alert_counts(store: Store) -> dict[str, Any]:
    by_sev = {s: 0 for s in SEVERITIES}
    by_status = {"open": 0, "acknowledged": 0, "closed": 0}
    for sev, status, n in stored.counts(store):
        by_status[status] = by_status.get(status, 0) + n
        if status != "closed":
            by_sev[Severity(sev).label] += n
    return {"not_closed_by_severity": by_sev, "by_status": by_status}


# -- violations ---------------------------------------------------------------------


@dataclass(slots=True)
class ViolationQuery:
    policy: str | None = None
    rule: str | None = None
    asset: str | None = None
    zone: str | None = None
    offset: int = 0
    limit: int = 50


def list_violations(store: Store, vq: ViolationQuery) -> tuple[int, list[dict[str, Any]]]:
    flt = stored_violations.ViolationFilter(
        policy=vq.policy, rule=vq.rule, ip=vq.asset, zone=vq.zone
    )
    total, rows = stored_violations.page(store, flt, limit=vq.limit, offset=vq.offset)
    return total, [_named(store, r) for r in rows]


def violation_counts(store: Store, policy: str | None) -> dict[str, int]:
    return stored_violations.counts_by_rule(store, policy)
