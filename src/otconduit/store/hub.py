"""The hub's SQL: applying one uplink message (one transaction, once per message id),
recording refusals, and the per-site listings the hub's console and CLI show.

Portable between SQLite and PostgreSQL: ``INSERT ... ON CONFLICT``, ``CASE`` instead of
two-argument ``max``, no SQLite-only functions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from otconduit.store.sqlite import Store

_UPSERTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    # kind: (key columns, value columns, extra condition on update)
    "assets": (
        ("ip", "vlan"),
        ("mac", "name", "vendor", "model", "roles", "protocols", "first_seen", "last_seen",
         "packets_sent", "packets_received"),
        "",
    ),
    "conversations": (
        ("transport", "client_ip", "server_ip", "server_port", "vlan", "protocol"),
        ("connections", "packets", "bytes", "first_seen", "last_seen", "functions"),
        "",
    ),
    "alerts": (
        ("alert_id",),
        ("rule", "title", "category", "severity", "techniques", "src_ip", "dst_ip", "protocol",
         "operation", "summary", "first_seen", "last_seen", "count", "status", "change_seq"),
        # a replayed older state of an alert never overwrites a newer one
        " WHERE hub_alerts.change_seq <= excluded.change_seq",
    ),
    "violations": (
        ("policy", "rule", "src_ip", "dst_ip", "protocol", "operation"),
        ("reason", "count", "first_seen", "last_seen"),
        "",
    ),
}  # fmt: skip
# Refused messages: every one counted in hub_reject_totals, the most recent kept in full.
REJECTS_KEPT = 10_000
PRUNE_EVERY = 100  # per site and reason: how often the oldest rows beyond them go

_TABLES = {
    "assets": "hub_assets",
    "conversations": "hub_conversations",
    "alerts": "hub_alerts",
    "violations": "hub_violations",
}
_OP_KEY = ("transport", "client_ip", "server_ip", "server_port", "vlan", "protocol", "minute")


def _upsert_sql(kind: str) -> str:
    keys, values, cond = _UPSERTS[kind]
    cols = ("site", *keys, *values, "updated_at")
    sets = ", ".join(f"{c} = excluded.{c}" for c in (*values, "updated_at"))
    return (
        f"INSERT INTO {_TABLES[kind]} ({', '.join(cols)}) "
        f"VALUES ({', '.join('?' * len(cols))}) "
        f"ON CONFLICT (site, {', '.join(keys)}) DO UPDATE SET {sets}{cond}"
    )


_OP_SQL = (
    f"INSERT INTO hub_op_minutes (site, {', '.join(_OP_KEY)}, operations) "
    f"VALUES ({', '.join('?' * (len(_OP_KEY) + 2))}) "
    f"ON CONFLICT (site, {', '.join(_OP_KEY)}) "
    "DO UPDATE SET operations = excluded.operations"
)


def apply(
    store: Store,
    *,
    site: str,
    seq: int,
    kind: str,
    sent_at: str,
    rows: Sequence[dict[str, Any]],
    received_at: str,
    delay_ms: int | None,
) -> bool:
    """Apply one message in its own transaction (see :func:`apply_in`)."""
    with store.transaction():
        return apply_in(
            store, site=site, seq=seq, kind=kind, sent_at=sent_at, rows=rows,
            received_at=received_at, delay_ms=delay_ms,
        )  # fmt: skip


def apply_in(
    store: Store,
    *,
    site: str,
    seq: int,
    kind: str,
    sent_at: str,
    rows: Sequence[dict[str, Any]],
    received_at: str,
    delay_ms: int | None,
) -> bool:
    """Apply one message inside the caller's transaction; False (and nothing applied
    but the duplicate count) when its id was applied before."""
    c = store.conn
    cur = c.execute(
        "INSERT INTO hub_messages (site, seq, kind, received_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (site, seq) DO NOTHING",
        (site, seq, kind, received_at),
    )
    if cur.rowcount == 0:
        c.execute("UPDATE hub_sites SET duplicates = duplicates + 1 WHERE site = ?", (site,))
        return False
    health = None
    if kind in _UPSERTS:
        keys, values, _ = _UPSERTS[kind]
        c.executemany(
            _upsert_sql(kind),
            [(site, *(r.get(k) for k in (*keys, *values)), received_at) for r in rows],
        )
    elif kind == "op_minutes":
        c.executemany(_OP_SQL, [(site, *(r[k] for k in _OP_KEY), r["operations"]) for r in rows])
    elif kind == "health":
        health = json.dumps(list(rows), sort_keys=True)
    c.execute(
        "INSERT INTO hub_sites (site, first_message_at, last_message_at, last_sent_at, "
        "last_seq, messages, duplicates, delay_ms, health) VALUES (?, ?, ?, ?, ?, 1, 0, ?, ?) "
        "ON CONFLICT (site) DO UPDATE SET last_message_at = excluded.last_message_at, "
        "last_sent_at = excluded.last_sent_at, messages = hub_sites.messages + 1, "
        "last_seq = CASE WHEN excluded.last_seq > hub_sites.last_seq "
        "THEN excluded.last_seq ELSE hub_sites.last_seq END, "
        "delay_ms = excluded.delay_ms, "
        "health = coalesce(excluded.health, hub_sites.health)",
        (site, received_at, received_at, sent_at, seq, delay_ms, health),
    )
    return True


def _clean(text: str) -> str:
    """Refused input quoted in a report: storable whatever it held (NUL, lone surrogates)."""
    return text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")


def reject(
    store: Store, *, at: str, site: str | None, topic: str, reason: str, detail: str
) -> None:
    with store.transaction():
        reject_in(store, at=at, site=site, topic=topic, reason=reason, detail=detail)


def reject_in(
    store: Store, *, at: str, site: str | None, topic: str, reason: str, detail: str
) -> None:
    """Record a refused message inside the caller's transaction: counted for good, its
    row kept among the :data:`REJECTS_KEPT` most recent."""
    where = _clean(site) if site else None
    store.conn.execute(
        "INSERT INTO hub_rejects (at, site, topic, reason, detail) VALUES (?, ?, ?, ?, ?)",
        (at, where, _clean(topic)[:300], reason, _clean(detail)[:500]),
    )
    total = store.conn.execute(
        "INSERT INTO hub_reject_totals (site, reason, count) VALUES (?, ?, 1) "
        "ON CONFLICT (site, reason) DO UPDATE SET count = hub_reject_totals.count + 1 "
        "RETURNING count",
        (where or "", reason),
    ).fetchone()[0]
    if int(total) % PRUNE_EVERY == 0:
        store.conn.execute(
            "DELETE FROM hub_rejects WHERE at < (SELECT at FROM hub_rejects "
            "ORDER BY at DESC LIMIT 1 OFFSET ?)",
            (REJECTS_KEPT,),
        )


def counts(store: Store, site: str | None = None) -> dict[str, int]:
    """What the hub holds (for one site, or all), in the units the sites count."""
    cond, params = (" WHERE site = ?", [site]) if site is not None else ("", [])
    c = store.conn
    out = {}
    for name, sql in (
        ("assets", "SELECT count(*) FROM hub_assets"),
        ("conversations", "SELECT count(*) FROM hub_conversations"),
        ("alerts", "SELECT count(*) FROM hub_alerts"),
        ("operations", "SELECT coalesce(sum(operations), 0) FROM hub_op_minutes"),
        ("violations", "SELECT count(*) FROM hub_violations"),
        ("messages", "SELECT count(*) FROM hub_messages"),
    ):
        out[name] = int(c.execute(sql + cond, params).fetchone()[0])
    return out


def sites(store: Store) -> list[dict[str, Any]]:
    """Per-site overview and health: one row per site that sent anything or was refused."""
    rows = {
        r["site"]: r
        for r in store.query(
            "SELECT site, first_message_at, last_message_at, last_sent_at, last_seq, messages, "
            "duplicates, delay_ms, health FROM hub_sites ORDER BY site"
        )
    }
    per = {
        "assets": "SELECT site, count(*) FROM hub_assets GROUP BY site",
        "conversations": "SELECT site, count(*) FROM hub_conversations GROUP BY site",
        "alerts_open": "SELECT site, count(*) FROM hub_alerts WHERE status = 'open' GROUP BY site",
        "operations": "SELECT site, sum(operations) FROM hub_op_minutes GROUP BY site",
        "violations": "SELECT site, count(*) FROM hub_violations GROUP BY site",
        "refused": "SELECT site, sum(count) FROM hub_reject_totals WHERE site != '' GROUP BY site",
    }
    extra: dict[str, dict[str, int]] = {}
    for name, sql in per.items():
        extra[name] = {s: int(n) for s, n in store.conn.execute(sql)}
    names = sorted(set(rows) | set(extra["refused"]))
    out = []
    for s in names:
        r = dict(rows.get(s) or {"site": s})
        health = json.loads(r.pop("health", None) or "[]")
        r["backlog"] = sum(int(h.get("backlog") or 0) for h in health) if health else None
        r["dropped"] = sum(int(h.get("dropped_uplink") or 0) for h in health) if health else None
        r["drops"] = sum(int(h.get("drops") or 0) for h in health) if health else None
        r["sensors"] = [h.get("sensor") for h in health]
        # ids below the highest applied that never came: late, or lost before the hub's
        # broker session existed (nothing flows back to a site to ask for them again)
        r["missing"] = max(0, int(r.get("last_seq") or 0) - int(r.get("messages") or 0))
        for name in per:
            r[name] = extra[name].get(s, 0)
        out.append(r)
    return out


def rejects(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    return list(
        store.query(
            "SELECT at, site, topic, reason, detail FROM hub_rejects ORDER BY at DESC LIMIT ?",
            (limit,),
        )
    )


def reject_counts(store: Store) -> dict[str, int]:
    return {
        r: int(n)
        for r, n in store.conn.execute(
            "SELECT reason, sum(count) FROM hub_reject_totals GROUP BY reason"
        )
    }


def has_hub_rows(store: Store) -> bool:
    """Whether this database is a hub's (any site has sent anything)."""
    return store.conn.execute("SELECT 1 FROM hub_sites LIMIT 1").fetchone() is not None


def asset_page(store: Store, site: str | None, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    cond, params = _site_filter(site)
    return list(
        store.query(
            "SELECT site, ip, vlan, mac, name, vendor, model, roles, protocols, first_seen, "
            f"last_seen, packets_sent, packets_received FROM hub_assets{cond} "
            "ORDER BY site, ip, vlan LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
    )


def alert_page(store: Store, site: str | None, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    cond, params = _site_filter(site)
    return list(
        store.query(
            "SELECT site, alert_id, rule, title, severity, src_ip, dst_ip, protocol, summary, "
            f"first_seen, last_seen, count, status FROM hub_alerts{cond} "
            "ORDER BY last_seen DESC, site, alert_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
    )


def _site_filter(site: str | None) -> tuple[str, list[str]]:
    """The WHERE clause (and its parameter) keeping one site's rows; every site's when
    ``site`` is None or empty."""
    return (" WHERE site = ?", [site]) if site else ("", [])


def _count(store: Store, table: str, site: str | None) -> int:
    cond, params = _site_filter(site)
    return int(store.conn.execute(f"SELECT count(*) FROM {table}{cond}", params).fetchone()[0])


def asset_count(store: Store, site: str | None) -> int:
    return _count(store, "hub_assets", site)


def alert_count(store: Store, site: str | None) -> int:
    return _count(store, "hub_alerts", site)


def site_names(store: Store) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT site FROM hub_sites ORDER BY site")]


_CONV_KEY = ("transport", "client_ip", "server_ip", "server_port", "vlan", "protocol")
_VIOL_KEY = ("policy", "rule", "src_ip", "dst_ip", "protocol", "operation")


def conversation_page(
    store: Store, site: str | None, limit: int, offset: int = 0, since: int = 0
) -> list[dict[str, Any]]:
    """A page of conversations in primary-key order (paging needs no sort on a large hub),
    each with its operations in total and since ``since`` (unix seconds), counted for the
    page's rows only: two index range scans per row instead of grouping every minute."""
    cond, params = _site_filter(site)
    order = ", ".join(("site", *_CONV_KEY))
    match = " AND ".join(f"m.{k} = p.{k}" for k in ("site", *_CONV_KEY))
    return list(
        store.query(
            "SELECT p.*, "
            f"(SELECT coalesce(sum(m.operations), 0) FROM hub_op_minutes m WHERE {match}) "
            "AS operations, "
            f"(SELECT coalesce(sum(m.operations), 0) FROM hub_op_minutes m WHERE {match} "
            "AND m.minute >= ?) AS operations_recent "
            "FROM (SELECT site, transport, client_ip, server_ip, server_port, vlan, protocol, "
            "connections, packets, bytes, first_seen, last_seen, functions "
            f"FROM hub_conversations{cond} ORDER BY {order} LIMIT ? OFFSET ?) p "
            f"ORDER BY {', '.join(f'p.{k}' for k in ('site', *_CONV_KEY))}",
            [since, *params, limit, offset],
        )
    )


def conversation_count(store: Store, site: str | None) -> int:
    return _count(store, "hub_conversations", site)


def violation_page(
    store: Store, site: str | None, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    """A page of policy violations in primary-key order (site, policy, rule, ...)."""
    cond, params = _site_filter(site)
    return list(
        store.query(
            "SELECT site, policy, rule, src_ip, dst_ip, protocol, operation, reason, count, "
            f"first_seen, last_seen FROM hub_violations{cond} "
            f"ORDER BY {', '.join(('site', *_VIOL_KEY))} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
    )


def violation_count(store: Store, site: str | None) -> int:
    return _count(store, "hub_violations", site)
