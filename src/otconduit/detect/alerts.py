"""Alerts in the store: aggregation of findings, idempotent per capture, lifecycle.

An alert is keyed by (rule, source, destination). A finding joins the newest alert of
its key that is not closed when their time spans come within ``dedup_window`` of each
other; otherwise it opens a new alert. What each capture contributed is kept in
``alert_sources`` so re-detecting a capture first withdraws its old contribution: counts
never double, and acknowledged/closed alerts keep their state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from otconduit.detect.findings import Finding
from otconduit.detect.rules import RULES, Severity
from otconduit.store import alert_writes as aw
from otconduit.store import alerts as stored
from otconduit.store.alert_writes import Key, withdraw_capture
from otconduit.store.sqlite import Store
from otconduit.store.views import asset_name, iso

STATUSES = ("open", "acknowledged", "closed")
TRANSITIONS = {
    "open": {"acknowledged", "closed"},
    "acknowledged": {"closed", "open"},
    "closed": {"open"},
}
MAX_EVIDENCE_ROWS = 50  # evidence records kept per alert and capture


class AlertError(Exception):
    """A user error about alerts (unknown id, illegal transition); one line."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(slots=True)
class StoreReport:
    findings: int = 0
    suppressed: int = 0
    new_alerts: int = 0
    updated_alerts: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)


def _merge_target(
    store: Store, f: Finding, window_ns: int, prior: dict[Key, list[int]]
) -> tuple[int, int] | None:
    """The alert a finding joins (an earlier detection of the same capture's, so a
    closed alert stays closed when its capture is re-analysed), or None."""
    key = (f.rule, f.src_ip, f.dst_ip)
    return aw.merge_target(store, key, f.first_ts, f.last_ts, window_ns, prior.get(key, []))


def _summary(f: Finding) -> str:
    rule = RULES[f.rule]
    parts = [rule.title]
    if f.operation:
        parts.append(f"({f.protocol} {f.operation})" if f.protocol else f"({f.operation})")
    ends = " -> ".join(x for x in (f.src_ip, f.dst_ip) if x)
    if ends:
        parts.append(ends)
    text = " ".join(parts)
    return f"{text}: {f.note}" if f.note else text


def store_findings(
    store: Store, sha256: str, capture_path: str, findings: list[Finding], window_s: float
) -> StoreReport:
    """Aggregate severity-resolved findings of one capture into alerts (one transaction)."""
    rep = StoreReport(findings=len(findings))
    window_ns = int(window_s * 1e9)
    with store.transaction():
        prior = withdraw_capture(store, sha256)
        seen: set[int] = set()
        reset: set[int] = set()  # alerts emptied by the withdrawal, refilled now
        seq = aw.next_change(store)
        for f in sorted(findings, key=lambda x: (x.first_ts, x.rule)):
            sev = f.severity if f.severity is not None else RULES[f.rule].severity
            rep.by_severity[sev.label] = rep.by_severity.get(sev.label, 0) + f.count
            target = _merge_target(store, f, window_ns, prior)
            now = _now()
            if target is not None and target[0] not in seen:
                seen.add(target[0])
                if aw.event_count(store, target[0]) <= 0:
                    reset.add(target[0])
            if target is None:
                rule = RULES[f.rule]
                alert_id = aw.insert(
                    store,
                    aw.NewAlert(
                        rule=f.rule,
                        title=rule.title,
                        category=rule.category,
                        severity=int(sev),
                        techniques=list(rule.techniques),
                        src_ip=f.src_ip,
                        dst_ip=f.dst_ip,
                        protocol=f.protocol,
                        operation=f.operation,
                        summary=_summary(f),
                        context=f.context,
                        first_seen=f.first_ts,
                        last_seen=f.last_ts,
                        count=f.count,
                        now=now,
                        change=seq,
                        detected_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                    ),
                )
                rep.new_alerts += 1
            else:
                alert_id, old_sev = target
                aw.grow(
                    store,
                    alert_id,
                    count=f.count,
                    first_ts=f.first_ts,
                    last_ts=f.last_ts,
                    severity=int(sev),
                    now=now,
                    change=seq,
                )
                # The worse finding's summary explains the alert; an alert whose only
                # capture is being re-detected takes the new finding's word.
                if int(sev) > old_sev or alert_id in reset:
                    reset.discard(alert_id)  # only the first finding refills it
                    aw.restate(store, alert_id, _summary(f), f.context, f.operation)
                rep.updated_alerts += 1
            seq = aw.next_change(store)
            aw.add_source(store, alert_id, sha256, f.count, f.first_ts, f.last_ts)
            kept = aw.evidence_kept(store, alert_id, sha256)
            for e in f.evidence[: max(0, MAX_EVIDENCE_ROWS - kept)]:
                aw.add_evidence(store, alert_id, sha256, capture_path, e.frames, e.ts, e.record)
        # Alerts only this capture had fed, that it no longer raises.
        aw.drop_emptied(store)
    return rep


# -- reading ----------------------------------------------------------------------


@dataclass(slots=True)
class AlertFilter:
    severity: str | None = None  # minimum
    rule: str | None = None
    status: str | None = None
    ip: str | None = None
    technique: str | None = None
    protocol: str | None = None
    since_change: int | None = None
    limit: int | None = None


def _evidence(store: Store, alert_id: int) -> list[dict[str, Any]]:
    by_capture: dict[str, list[int]] = {}
    for _, path, frames in stored.evidence_frames(store, alert_id, oldest_first=True):
        acc = by_capture.setdefault(path, [])
        for fr in json.loads(frames):
            if fr not in acc:
                acc.append(fr)
    return [{"capture": p, "frames": sorted(fr)} for p, fr in by_capture.items()]


def _utc_z(text: str) -> str:
    """A stored wall-clock time as ISO 8601 UTC with a ``Z``."""
    return text.replace("+00:00", "Z")


def _row(store: Store, r: dict[str, Any]) -> dict[str, Any]:
    context = json.loads(r["context"] or "{}")
    process = context.pop("process", [])  # see set_process: shown as its own key
    return {
        "id": r["id"],
        "ts": iso(r["first_seen"]),
        "first_seen": iso(r["first_seen"]),
        "last_seen": iso(r["last_seen"]),
        "detected_at": _utc_z(r.get("detected_at") or r["created_at"]),
        "count": r["count"],
        "rule": r["rule"],
        "title": r["title"],
        "category": r["category"],
        "severity": Severity(r["severity"]).label,
        "techniques": json.loads(r["techniques"]),
        "src_ip": r["src_ip"],
        "dst_ip": r["dst_ip"],
        "src_name": asset_name(store, r["src_ip"]),
        "dst_name": asset_name(store, r["dst_ip"]),
        "protocol": r["protocol"],
        "operation": r["operation"],
        "summary": r["summary"],
        "context": context,
        "process": process,
        "status": r["status"],
        "evidence": _evidence(store, r["id"]),
        "updated_at": r["updated_at"],
        "change": r["change_seq"],
    }


def list_alerts(store: Store, flt: AlertFilter | None = None) -> list[dict[str, Any]]:
    flt = flt or AlertFilter()
    sql_flt = stored.AlertFilter(
        min_severity=int(Severity.parse(flt.severity)) if flt.severity else None,
        rule=flt.rule,
        status=flt.status,
        ip=flt.ip,
        technique=flt.technique,
        protocol=flt.protocol,
        since_change=flt.since_change,
    )
    sort = "oldest" if flt.since_change is None else "change"
    rows = stored.select(store, sql_flt, sort=sort, limit=flt.limit or None)
    return [_row(store, r) for r in rows]


def get_alert(store: Store, alert_id: int) -> dict[str, Any]:
    found = stored.row(store, alert_id)
    if found is None:
        raise AlertError(f"no alert with id {alert_id}: list them with `conduit alerts`")
    out = _row(store, found)
    out["records"] = [json.loads(r) for r in stored.records(store, alert_id, limit=20)]
    out["history"] = stored.history(store, alert_id)
    return out


def set_process(store: Store, alert_id: int, process: list[dict[str, Any]]) -> bool:
    """Keep what the alert's writes did to the plant's tags (``process`` of its JSON,
    see :mod:`otconduit.process`). Only a change is written, as a change of the alert
    (a SIEM export sends the enriched alert again). True when it changed."""
    with store.transaction():
        context = aw.context(store, alert_id)
        if context is None or context.get("process", []) == process:
            return False
        if process:
            context["process"] = process
        else:
            context.pop("process", None)
        aw.set_context(store, alert_id, context, now=_now(), change=aw.next_change(store))
    return True


def set_status(store: Store, alert_id: int, status: str, user: str, comment: str = "") -> None:
    """Move an alert through its lifecycle; every change is kept in alert_history."""
    if status not in STATUSES:
        raise AlertError(f"unknown status {status!r}: use {', '.join(STATUSES)}")
    with store.transaction():
        old = aw.status(store, alert_id)
        if old is None:
            raise AlertError(f"no alert with id {alert_id}: list them with `conduit alerts`")
        if status not in TRANSITIONS[old]:
            raise AlertError(f"alert {alert_id} is {old}; it cannot become {status}")
        aw.record_status(
            store,
            alert_id,
            old,
            status,
            user=user,
            comment=comment or None,
            now=_now(),
            change=aw.next_change(store),
        )
