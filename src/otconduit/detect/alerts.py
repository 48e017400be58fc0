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


def _next_seq(store: Store) -> int:
    """The next change number (monotonic, never reused; call inside a transaction)."""
    row = store.conn.execute("UPDATE alert_changes SET n = n + 1 RETURNING n").fetchone()
    return int(row[0])


Key = tuple[str, str | None, str | None]


def withdraw_capture(store: Store, sha256: str) -> dict[Key, list[int]]:
    """Take back what an earlier detection of this capture added (inside a transaction).
    Returns the alerts it had contributed to, by key, so the same findings go back to
    the same alerts (a closed alert stays closed when its capture is re-analysed)."""
    c = store.conn
    prior: dict[Key, list[int]] = {}
    for alert_id, count, rule, src, dst in c.execute(
        "SELECT s.alert_id, s.count, a.rule, a.src_ip, a.dst_ip FROM alert_sources s "
        "JOIN alerts a ON a.id = s.alert_id WHERE s.capture_sha256 = ?",
        (sha256,),
    ).fetchall():
        c.execute("UPDATE alerts SET count = count - ? WHERE id = ?", (count, alert_id))
        prior.setdefault((rule, src, dst), []).append(alert_id)
    c.execute("DELETE FROM alert_sources WHERE capture_sha256 = ?", (sha256,))
    c.execute("DELETE FROM alert_evidence WHERE capture_sha256 = ?", (sha256,))
    return prior


def _merge_target(
    store: Store, f: Finding, window_ns: int, prior: dict[Key, list[int]]
) -> tuple[int, int] | None:
    for alert_id in prior.get((f.rule, f.src_ip, f.dst_ip), []):
        row = store.conn.execute(
            "SELECT id, severity FROM alerts WHERE id = ? AND (count <= 0 OR "
            "(last_seen + ? >= ? AND first_seen - ? <= ?))",
            (alert_id, window_ns, f.first_ts, window_ns, f.last_ts),
        ).fetchone()
        if row is not None:
            return int(row[0]), int(row[1])
    row = store.conn.execute(
        "SELECT id, severity FROM alerts WHERE rule = ? AND src_ip IS ? AND dst_ip IS ? "
        "AND status != 'closed' AND last_seen + ? >= ? AND first_seen - ? <= ? "
        "ORDER BY last_seen DESC LIMIT 1",
        (f.rule, f.src_ip, f.dst_ip, window_ns, f.first_ts, window_ns, f.last_ts),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else None


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
    c = store.conn
    c.execute("BEGIN IMMEDIATE")
    try:
        prior = withdraw_capture(store, sha256)
        seen: set[int] = set()
        reset: set[int] = set()  # alerts emptied by the withdrawal, refilled now
        seq = _next_seq(store)
        for f in sorted(findings, key=lambda x: (x.first_ts, x.rule)):
            sev = f.severity if f.severity is not None else RULES[f.rule].severity
            rep.by_severity[sev.label] = rep.by_severity.get(sev.label, 0) + f.count
            target = _merge_target(store, f, window_ns, prior)
            now = _now()
            if target is not None and target[0] not in seen:
                seen.add(target[0])
                (cnt,) = c.execute("SELECT count FROM alerts WHERE id = ?", (target[0],)).fetchone()
                if cnt <= 0:
                    reset.add(target[0])
            if target is None:
                rule = RULES[f.rule]
                cur = c.execute(
                    "INSERT INTO alerts (rule, title, category, severity, techniques, src_ip, "
                    "dst_ip, protocol, operation, summary, context, first_seen, last_seen, "
                    "count, status, created_at, updated_at, change_seq, detected_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)",
                    (
                        f.rule,
                        rule.title,
                        rule.category,
                        int(sev),
                        json.dumps(list(rule.techniques)),
                        f.src_ip,
                        f.dst_ip,
                        f.protocol,
                        f.operation,
                        _summary(f),
                        json.dumps(f.context, default=str),
                        f.first_ts,
                        f.last_ts,
                        f.count,
                        now,
                        now,
                        seq,
                        datetime.now(UTC).isoformat(timespec="milliseconds"),
                    ),
                )
                assert cur.lastrowid is not None
                alert_id = cur.lastrowid
                rep.new_alerts += 1
            else:
                alert_id, old_sev = target
                c.execute(
                    "UPDATE alerts SET count = max(count, 0) + ?, "
                    "first_seen = CASE WHEN count <= 0 THEN ? ELSE min(first_seen, ?) END, "
                    "last_seen = CASE WHEN count <= 0 THEN ? ELSE max(last_seen, ?) END, "
                    "severity = CASE WHEN count <= 0 THEN ? ELSE max(severity, ?) END, "
                    "updated_at = ?, change_seq = ? WHERE id = ?",
                    (
                        f.count,
                        f.first_ts,
                        f.first_ts,
                        f.last_ts,
                        f.last_ts,
                        int(sev),
                        int(sev),
                        now,
                        seq,
                        alert_id,
                    ),
                )
                # The worse finding's summary explains the alert; an alert whose only
                # capture is being re-detected takes the new finding's word.
                if int(sev) > old_sev or alert_id in reset:
                    reset.discard(alert_id)  # only the first finding refills it
                    c.execute(
                        "UPDATE alerts SET summary = ?, context = ?, operation = ? WHERE id = ?",
                        (_summary(f), json.dumps(f.context, default=str), f.operation, alert_id),
                    )
                rep.updated_alerts += 1
            seq = _next_seq(store)
            c.execute(
                "INSERT INTO alert_sources (alert_id, capture_sha256, count, first_seen, "
                "last_seen) VALUES (?, ?, ?, ?, ?) ON CONFLICT (alert_id, capture_sha256) "
                "DO UPDATE SET count = count + excluded.count, "
                "first_seen = min(first_seen, excluded.first_seen), "
                "last_seen = max(last_seen, excluded.last_seen)",
                (alert_id, sha256, f.count, f.first_ts, f.last_ts),
            )
            (kept,) = c.execute(
                "SELECT count(*) FROM alert_evidence WHERE alert_id = ? AND capture_sha256 = ?",
                (alert_id, sha256),
            ).fetchone()
            for e in f.evidence[: max(0, MAX_EVIDENCE_ROWS - kept)]:
                c.execute(
                    "INSERT INTO alert_evidence VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        alert_id,
                        sha256,
                        capture_path,
                        json.dumps(e.frames),
                        e.ts,
                        json.dumps(e.record, default=str) if e.record else None,
                    ),
                )
        # Alerts only this capture had fed, that it no longer raises.
        c.execute("DELETE FROM alerts WHERE count <= 0 AND status = 'open'")
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
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
    for path, frames in store.conn.execute(
        "SELECT capture_path, frames FROM alert_evidence WHERE alert_id = ? ORDER BY ts",
        (alert_id,),
    ):
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
    where: list[str] = []
    params: list[Any] = []
    if flt.severity:
        where.append("severity >= ?")
        params.append(int(Severity.parse(flt.severity)))
    if flt.rule:
        where.append("rule = ?")
        params.append(flt.rule)
    if flt.status:
        where.append("status = ?")
        params.append(flt.status)
    if flt.ip:
        where.append("(src_ip = ? OR dst_ip = ?)")
        params += [flt.ip, flt.ip]
    if flt.technique:
        where.append("EXISTS (SELECT 1 FROM json_each(techniques) WHERE value = ?)")
        params.append(flt.technique.upper())
    if flt.protocol:
        where.append("protocol = ?")
        params.append(flt.protocol)
    if flt.since_change is not None:
        where.append("change_seq > ?")
        params.append(flt.since_change)
    sql = "SELECT * FROM alerts" + (f" WHERE {' AND '.join(where)}" if where else "")
    sql += " ORDER BY first_seen, id" if flt.since_change is None else " ORDER BY change_seq"
    if flt.limit:
        sql += f" LIMIT {int(flt.limit)}"
    return [_row(store, r) for r in store.query(sql, params)]


def get_alert(store: Store, alert_id: int) -> dict[str, Any]:
    rows = list(store.query("SELECT * FROM alerts WHERE id = ?", (alert_id,)))
    if not rows:
        raise AlertError(f"no alert with id {alert_id}: list them with `conduit alerts`")
    out = _row(store, rows[0])
    out["records"] = [
        json.loads(r["record"])
        for r in store.query(
            "SELECT record FROM alert_evidence WHERE alert_id = ? AND record IS NOT NULL "
            "ORDER BY ts LIMIT 20",
            (alert_id,),
        )
    ]
    out["history"] = list(
        store.query(
            "SELECT at, user, from_status, to_status, comment FROM alert_history "
            "WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        )
    )
    return out


def set_process(store: Store, alert_id: int, process: list[dict[str, Any]]) -> bool:
    """Keep what the alert's writes did to the plant's tags (``process`` of its JSON,
    see :mod:`otconduit.process`). Only a change is written, as a change of the alert
    (a SIEM export sends the enriched alert again). True when it changed."""
    c = store.conn
    c.execute("BEGIN IMMEDIATE")
    try:
        row = c.execute("SELECT context FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        context = json.loads(row[0] or "{}") if row is not None else None
        if context is None or context.get("process", []) == process:
            c.execute("ROLLBACK")
            return False
        if process:
            context["process"] = process
        else:
            context.pop("process", None)
        c.execute(
            "UPDATE alerts SET context = ?, updated_at = ?, change_seq = ? WHERE id = ?",
            (json.dumps(context, default=str), _now(), _next_seq(store), alert_id),
        )
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return True


def set_status(store: Store, alert_id: int, status: str, user: str, comment: str = "") -> None:
    """Move an alert through its lifecycle; every change is kept in alert_history."""
    if status not in STATUSES:
        raise AlertError(f"unknown status {status!r}: use {', '.join(STATUSES)}")
    c = store.conn
    c.execute("BEGIN IMMEDIATE")
    try:
        row = c.execute("SELECT status FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        if row is None:
            raise AlertError(f"no alert with id {alert_id}: list them with `conduit alerts`")
        old = row[0]
        if status not in TRANSITIONS[old]:
            raise AlertError(f"alert {alert_id} is {old}; it cannot become {status}")
        now = _now()
        c.execute(
            "UPDATE alerts SET status = ?, updated_at = ?, change_seq = ? WHERE id = ?",
            (status, now, _next_seq(store), alert_id),
        )
        c.execute(
            "INSERT INTO alert_history (alert_id, at, user, from_status, to_status, comment) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (alert_id, now, user, old, status, comment or None),
        )
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
