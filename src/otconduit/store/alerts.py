"""Alerts as stored, read side: the one filter that the CLI, the console and the SIEM
export build their WHERE clause from, and the reads around one alert (evidence, decoded
records, history). Rows come back as the table holds them; turning them into what a
listing shows (severity labels, names, ISO times) is the caller's business."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from otconduit.store.sqlite import Store

# Orders a listing may ask for. The console offers these names; the default puts what
# needs a person first: critical before info, then the newest.
SORTS = {
    "severity": "severity DESC, last_seen DESC, id DESC",
    "newest": "last_seen DESC, id DESC",
    "oldest": "first_seen, id",
    "count": "count DESC, severity DESC, last_seen DESC, id DESC",
    "rule": "rule, severity DESC, last_seen DESC, id DESC",
    "id": "id",
}
# Export order (the change cursor); not offered to the console.
_ORDERS = {**SORTS, "change": "change_seq"}


@dataclass(slots=True)
class AlertFilter:
    """What a listing narrows alerts by; every field is matched in SQL."""

    min_severity: int | None = None  # 0 info .. 4 critical
    rule: str | None = None
    status: str | None = None
    ip: str | None = None  # source or destination, one address (networks: the caller)
    technique: str | None = None  # ATT&CK for ICS id, any case
    protocol: str | None = None
    category: str | None = None
    since_change: int | None = None  # changed after this change number


def where(flt: AlertFilter) -> tuple[str, list[Any]]:
    """`` WHERE ...`` (or ``""``) and its parameters."""
    cond: list[str] = []
    params: list[Any] = []
    if flt.min_severity is not None:
        cond.append("severity >= ?")
        params.append(int(flt.min_severity))
    for column, value in (("rule", flt.rule), ("status", flt.status)):
        if value:
            cond.append(f"{column} = ?")
            params.append(value)
    if flt.ip:
        cond.append("(src_ip = ? OR dst_ip = ?)")
        params += [flt.ip, flt.ip]
    if flt.technique:
        cond.append("EXISTS (SELECT 1 FROM json_each(techniques) WHERE value = ?)")
        params.append(flt.technique.upper())
    for column, value in (("protocol", flt.protocol), ("category", flt.category)):
        if value:
            cond.append(f"{column} = ?")
            params.append(value)
    if flt.since_change is not None:
        cond.append("change_seq > ?")
        params.append(flt.since_change)
    return (" WHERE " + " AND ".join(cond)) if cond else "", params


def select(
    store: Store,
    flt: AlertFilter | None = None,
    *,
    sort: str = "oldest",
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Whole alert rows matching ``flt`` in the order ``sort`` names (a key of
    :data:`SORTS`, or ``change``)."""
    cond, params = where(flt or AlertFilter())
    sql = f"SELECT * FROM alerts{cond} ORDER BY {_ORDERS[sort]}"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [int(limit), int(offset)]
    return list(store.query(sql, params))


def count(store: Store, flt: AlertFilter | None = None) -> int:
    cond, params = where(flt or AlertFilter())
    (n,) = store.conn.execute(f"SELECT count(*) FROM alerts{cond}", params).fetchone()
    return int(n)


def row(store: Store, alert_id: int) -> dict[str, Any] | None:
    rows = list(store.query("SELECT * FROM alerts WHERE id = ?", (alert_id,)))
    return rows[0] if rows else None


def exists(store: Store, alert_id: int) -> bool:
    found = store.conn.execute("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return found is not None


# Packet time, then the evidence's own content: rows of one time (the same exchange seen in
# two captures, or operations of one packet) come out alike from SQLite, which would give
# them in insertion order, and PostgreSQL, whose sort does not keep any.
_EVIDENCE_ORDER = "ts, capture_sha256, frames, record"


def evidence_frames(
    store: Store, alert_id: int, *, oldest_first: bool = False
) -> list[tuple[str, str, str]]:
    """(capture key, capture path, frames as JSON) of each evidence row (in packet time
    order with ``oldest_first``, else as stored)."""
    order = f" ORDER BY {_EVIDENCE_ORDER}" if oldest_first else ""
    return [
        (str(sha), str(path), str(frames))
        for sha, path, frames in store.conn.execute(
            "SELECT capture_sha256, capture_path, frames FROM alert_evidence "
            f"WHERE alert_id = ?{order}",
            (alert_id,),
        )
    ]


def records(store: Store, alert_id: int, limit: int | None = None) -> list[str]:
    """The decoded operations (or a detector's detail) an alert keeps, as JSON, oldest
    first."""
    sql = (
        "SELECT record FROM alert_evidence WHERE alert_id = ? AND record IS NOT NULL "
        f"ORDER BY {_EVIDENCE_ORDER}"
    )
    params: list[Any] = [alert_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [str(r) for (r,) in store.conn.execute(sql, params)]


def history(store: Store, alert_id: int) -> list[dict[str, Any]]:
    """Every status change of the alert, in order."""
    return list(
        store.query(
            'SELECT at, "user", from_status, to_status, comment FROM alert_history '
            "WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        )
    )


def counts(store: Store) -> list[tuple[int, str, int]]:
    """(severity, status, how many) for every pair present."""
    return [
        (int(sev), str(status), int(n))
        for sev, status, n in store.conn.execute(
            "SELECT severity, status, count(*) FROM alerts GROUP BY severity, status"
        )
    ]


def change_counter(store: Store) -> int:
    """The store's alert change counter (bumped by every alert change)."""
    (n,) = store.conn.execute("SELECT n FROM alert_changes").fetchone()
    return int(n)


def last_change(store: Store) -> int:
    """The newest change number an alert carries (0 without alerts)."""
    row_ = store.conn.execute("SELECT max(change_seq) FROM alerts").fetchone()
    return int(row_[0] or 0)


def with_records_about(store: Store, hosts: Iterable[str], since_change: int | None) -> list[int]:
    """Ids of alerts changed after ``since_change`` (all when None) that keep decoded
    records and name one of ``hosts`` as source or destination."""
    hosts = sorted(hosts)
    marks = ", ".join("?" * len(hosts))
    rows = store.conn.execute(
        f"SELECT DISTINCT a.id FROM alerts a JOIN alert_evidence e ON e.alert_id = a.id "
        f"WHERE e.record IS NOT NULL AND (a.dst_ip IN ({marks}) OR a.src_ip IN ({marks})) "
        "AND a.change_seq > ? ORDER BY a.id",
        [*hosts, *hosts, -1 if since_change is None else since_change],
    ).fetchall()
    return [int(r[0]) for r in rows]


def raised_after(
    store: Store, after_id: int, min_severity: int
) -> list[tuple[int, int, str, str | None, str | None, int, str | None]]:
    """(id, severity, rule, src, dst, first_seen, detected_at) of alerts newer than
    ``after_id`` of at least ``min_severity`` (what a live demo prints as they come)."""
    return [
        tuple(r)
        for r in store.conn.execute(
            "SELECT id, severity, rule, src_ip, dst_ip, first_seen, detected_at FROM alerts "
            "WHERE id > ? AND severity >= ? ORDER BY id",
            (after_id, min_severity),
        )
    ]


def sources_of_concern(
    store: Store, min_severity: int, rules: Iterable[str]
) -> list[dict[str, Any]]:
    """Alerts with a source that are at least ``min_severity`` or raised by one of
    ``rules``, by id (what a proposed policy must not trust)."""
    rules = list(rules)
    marks = ", ".join("?" * len(rules))
    return list(
        store.query(
            "SELECT id, rule, category, severity, src_ip, dst_ip FROM alerts "
            f"WHERE src_ip IS NOT NULL AND (severity >= ? OR rule IN ({marks})) ORDER BY id",
            (min_severity, *rules),
        )
    )


def newest(store: Store, limit: int) -> list[dict[str, Any]]:
    """The alerts whose events happened last (packet time), newest first."""
    return list(
        store.query(
            "SELECT id, title, severity, status, src_ip, dst_ip, first_seen, last_seen, "
            "updated_at FROM alerts ORDER BY last_seen DESC, id DESC LIMIT ?",
            (limit,),
        )
    )


def for_incidents(store: Store) -> list[dict[str, Any]]:
    """Every alert, closed ones too, with what an incident timeline shows."""
    return list(
        store.query(
            "SELECT id, rule, title, severity, status, src_ip, dst_ip, protocol, operation, "
            "first_seen, last_seen, count FROM alerts"
        )
    )


def first_responses(store: Store) -> list[dict[str, Any]]:
    """id, when raised (``detected_at``, else ``created_at`` for older rows) and the time
    of the first status change, of every alert someone has changed."""
    return list(
        store.query(
            "SELECT a.id, coalesce(a.detected_at, a.created_at) AS raised, min(h.at) AS first "
            "FROM alerts a JOIN alert_history h ON h.alert_id = a.id GROUP BY a.id"
        )
    )
