"""Alerts as stored, write side: the statements that aggregate findings into alerts and
move alerts through their lifecycle. Each runs inside the caller's transaction
(:meth:`Store.transaction`); what to merge, what to say and which transitions are legal
is decided in :mod:`otconduit.detect.alerts`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from otconduit.store.sqlite import Store

Key = tuple[str, str | None, str | None]  # rule, source, destination


def next_change(store: Store) -> int:
    """The next change number (monotonic, never reused: ``max(change_seq) + 1`` would
    reuse numbers after deletes)."""
    row = store.conn.execute("UPDATE alert_changes SET n = n + 1 RETURNING n").fetchone()
    return int(row[0])


def withdraw_capture(store: Store, sha256: str) -> dict[Key, list[int]]:
    """Take back what an earlier detection of this capture added. Returns the alerts it
    had contributed to, by key, so the same findings can go back to the same alerts."""
    c = store.conn
    prior: dict[Key, list[int]] = {}
    for alert_id, n, rule, src, dst in c.execute(
        "SELECT s.alert_id, s.count, a.rule, a.src_ip, a.dst_ip FROM alert_sources s "
        "JOIN alerts a ON a.id = s.alert_id WHERE s.capture_sha256 = ?",
        (sha256,),
    ).fetchall():
        c.execute("UPDATE alerts SET count = count - ? WHERE id = ?", (n, alert_id))
        prior.setdefault((rule, src, dst), []).append(alert_id)
    c.execute("DELETE FROM alert_sources WHERE capture_sha256 = ?", (sha256,))
    c.execute("DELETE FROM alert_evidence WHERE capture_sha256 = ?", (sha256,))
    return prior


def merge_target(
    store: Store, key: Key, first_ts: int, last_ts: int, window_ns: int, prior: list[int]
) -> tuple[int, int] | None:
    """(id, severity) of the alert a finding of ``key`` spanning ``first_ts..last_ts``
    joins: first one of ``prior`` (emptied by a withdrawal, or within the window), else
    the newest alert of the key not closed within ``window_ns``; None for a new alert."""
    for alert_id in prior:
        row = store.conn.execute(
            "SELECT id, severity FROM alerts WHERE id = ? AND (count <= 0 OR "
            "(last_seen + ? >= ? AND first_seen - ? <= ?))",
            (alert_id, window_ns, first_ts, window_ns, last_ts),
        ).fetchone()
        if row is not None:
            return int(row[0]), int(row[1])
    rule, src, dst = key
    row = store.conn.execute(
        "SELECT id, severity FROM alerts WHERE rule = ? AND src_ip IS NOT DISTINCT FROM ? "
        "AND dst_ip IS NOT DISTINCT FROM ? "
        "AND status != 'closed' AND last_seen + ? >= ? AND first_seen - ? <= ? "
        "ORDER BY last_seen DESC LIMIT 1",
        (rule, src, dst, window_ns, first_ts, window_ns, last_ts),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else None


def event_count(store: Store, alert_id: int) -> int:
    (n,) = store.conn.execute("SELECT count FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return int(n)


@dataclass(slots=True)
class NewAlert:
    rule: str
    title: str
    category: str
    severity: int
    techniques: list[str]
    src_ip: str | None
    dst_ip: str | None
    protocol: str | None
    operation: str | None
    summary: str
    context: dict[str, Any]
    first_seen: int
    last_seen: int
    count: int
    now: str  # created_at and updated_at
    change: int
    detected_at: str  # wall clock, milliseconds


def insert(store: Store, a: NewAlert) -> int:
    """A new open alert; returns its id."""
    cur = store.conn.execute(
        "INSERT INTO alerts (rule, title, category, severity, techniques, src_ip, "
        "dst_ip, protocol, operation, summary, context, first_seen, last_seen, "
        "count, status, created_at, updated_at, change_seq, detected_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?) RETURNING id",
        (
            a.rule,
            a.title,
            a.category,
            a.severity,
            json.dumps(a.techniques),
            a.src_ip,
            a.dst_ip,
            a.protocol,
            a.operation,
            a.summary,
            json.dumps(a.context, default=str),
            a.first_seen,
            a.last_seen,
            a.count,
            a.now,
            a.now,
            a.change,
            a.detected_at,
        ),
    )
    (alert_id,) = cur.fetchone()
    return int(alert_id)


def grow(
    store: Store,
    alert_id: int,
    *,
    count: int,
    first_ts: int,
    last_ts: int,
    severity: int,
    now: str,
    change: int,
) -> None:
    """Add a finding's events to an alert; an emptied alert (count <= 0) takes the
    finding's times and severity instead of widening its old ones."""
    store.conn.execute(
        "UPDATE alerts SET count = max(count, 0) + ?, "
        "first_seen = CASE WHEN count <= 0 THEN ? ELSE min(first_seen, ?) END, "
        "last_seen = CASE WHEN count <= 0 THEN ? ELSE max(last_seen, ?) END, "
        "severity = CASE WHEN count <= 0 THEN ? ELSE max(severity, ?) END, "
        "updated_at = ?, change_seq = ? WHERE id = ?",
        (count, first_ts, first_ts, last_ts, last_ts, severity, severity, now, change, alert_id),
    )


def restate(
    store: Store, alert_id: int, summary: str, context: dict[str, Any], operation: str | None
) -> None:
    """Let another finding explain the alert."""
    store.conn.execute(
        "UPDATE alerts SET summary = ?, context = ?, operation = ? WHERE id = ?",
        (summary, json.dumps(context, default=str), operation, alert_id),
    )


def add_source(
    store: Store, alert_id: int, sha256: str, count: int, first_ts: int, last_ts: int
) -> None:
    """Record what this capture contributed (so re-detecting it can take it back)."""
    store.conn.execute(
        "INSERT INTO alert_sources (alert_id, capture_sha256, count, first_seen, "
        "last_seen) VALUES (?, ?, ?, ?, ?) ON CONFLICT (alert_id, capture_sha256) "
        "DO UPDATE SET count = alert_sources.count + excluded.count, "
        "first_seen = min(alert_sources.first_seen, excluded.first_seen), "
        "last_seen = max(alert_sources.last_seen, excluded.last_seen)",
        (alert_id, sha256, count, first_ts, last_ts),
    )


def evidence_kept(store: Store, alert_id: int, sha256: str) -> int:
    """Evidence rows the alert already keeps from this capture."""
    (n,) = store.conn.execute(
        "SELECT count(*) FROM alert_evidence WHERE alert_id = ? AND capture_sha256 = ?",
        (alert_id, sha256),
    ).fetchone()
    return int(n)


def add_evidence(
    store: Store,
    alert_id: int,
    sha256: str,
    capture_path: str,
    frames: list[int],
    ts: int | None,
    record: dict[str, Any] | None,
) -> None:
    store.conn.execute(
        "INSERT INTO alert_evidence VALUES (?, ?, ?, ?, ?, ?)",
        (
            alert_id,
            sha256,
            capture_path,
            json.dumps(frames),
            ts,
            json.dumps(record, default=str) if record else None,
        ),
    )


def drop_emptied(store: Store) -> None:
    """Open alerts nothing feeds any more (their only capture no longer raises them)."""
    store.conn.execute("DELETE FROM alerts WHERE count <= 0 AND status = 'open'")


def status(store: Store, alert_id: int) -> str | None:
    row = store.conn.execute("SELECT status FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return None if row is None else str(row[0])


def record_status(
    store: Store,
    alert_id: int,
    old: str,
    new: str,
    *,
    user: str,
    comment: str | None,
    now: str,
    change: int,
) -> None:
    """Set the status and keep the change in ``alert_history``."""
    c = store.conn
    c.execute(
        "UPDATE alerts SET status = ?, updated_at = ?, change_seq = ? WHERE id = ?",
        (new, now, change, alert_id),
    )
    c.execute(
        'INSERT INTO alert_history (alert_id, at, "user", from_status, to_status, comment) '
        "VALUES (?, ?, ?, ?, ?, ?)",
        (alert_id, now, user, old, new, comment),
    )


def context(store: Store, alert_id: int) -> dict[str, Any] | None:
    """The alert's stored context, or None without such an alert."""
    row = store.conn.execute("SELECT context FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        return None
    out: dict[str, Any] = json.loads(row[0] or "{}")
    return out


def set_context(
    store: Store, alert_id: int, value: dict[str, Any], *, now: str, change: int
) -> None:
    store.conn.execute(
        "UPDATE alerts SET context = ?, updated_at = ?, change_seq = ? WHERE id = ?",
        (json.dumps(value, default=str), now, change, alert_id),
    )
