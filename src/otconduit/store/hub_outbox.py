"""The edge side of the uplink in the site's own store: message sequence, outbox,
cursors and digests, and the reads the uplink collects changes with.

One rule keeps delivery at least once across ``kill -9``: the messages a collection
builds, the cursors and digests they advance and the next sequence number are written
in one transaction (:func:`commit`); the outbox rows are removed only once the
store-and-forward buffer holds the messages on disk or the broker confirmed them
(:func:`release`). A restart queues whatever the outbox still holds again (the hub
drops the copies it already applied by message id)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from otconduit.store.sqlite import Store


def next_seq(store: Store, site: str) -> int:
    row = store.conn.execute("SELECT next_seq FROM uplink_state WHERE site = ?", (site,)).fetchone()
    return int(row[0]) if row else 1


def cursor(store: Store, site: str, name: str) -> int:
    row = store.conn.execute(
        "SELECT value FROM uplink_cursors WHERE site = ? AND name = ?", (site, name)
    ).fetchone()
    return int(row[0]) if row else 0


def digests(store: Store, site: str, kind: str) -> dict[str, str]:
    return {
        k: d
        for k, d in store.conn.execute(
            "SELECT key, digest FROM uplink_digests WHERE site = ? AND kind = ?", (site, kind)
        )
    }


def outbox(store: Store, site: str) -> list[tuple[int, str, str]]:
    """``(seq, kind, body)`` of every message not yet safe in the buffer, oldest first."""
    return [
        (int(s), k, b)
        for s, k, b in store.conn.execute(
            "SELECT seq, kind, body FROM uplink_outbox WHERE site = ? ORDER BY seq", (site,)
        )
    ]


def outbox_count(store: Store, site: str) -> int:
    (n,) = store.conn.execute(
        "SELECT count(*) FROM uplink_outbox WHERE site = ?", (site,)
    ).fetchone()
    return int(n)


def commit(
    store: Store,
    site: str,
    messages: Sequence[tuple[int, str, str]],
    cursors: dict[str, int],
    changed: Sequence[tuple[str, str, str]],
) -> None:
    """Record built messages, the cursors and digests ``(kind, key, digest)`` they
    advance, and the next sequence, atomically."""
    if not messages:
        return
    with store.transaction():
        c = store.conn
        c.executemany(
            "INSERT INTO uplink_outbox (site, seq, kind, body) VALUES (?, ?, ?, ?)",
            [(site, s, k, b) for s, k, b in messages],
        )
        c.execute(
            "INSERT INTO uplink_state (site, next_seq) VALUES (?, ?) "
            "ON CONFLICT (site) DO UPDATE SET next_seq = excluded.next_seq",
            (site, messages[-1][0] + 1),
        )
        c.executemany(
            "INSERT INTO uplink_cursors (site, name, value) VALUES (?, ?, ?) "
            "ON CONFLICT (site, name) DO UPDATE SET value = excluded.value",
            [(site, n, v) for n, v in cursors.items()],
        )
        c.executemany(
            "INSERT INTO uplink_digests (site, kind, key, digest) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (site, kind, key) DO UPDATE SET digest = excluded.digest",
            [(site, k, key, d) for k, key, d in changed],
        )


def release(store: Store, site: str, upto_seq: int) -> None:
    """Messages up to ``upto_seq`` are safe in the buffer's disk tier (or delivered)."""
    with store.transaction():
        store.conn.execute(
            "DELETE FROM uplink_outbox WHERE site = ? AND seq <= ?", (site, upto_seq)
        )


# -- what the uplink reads ------------------------------------------------------------


def conversation_totals(store: Store) -> Iterator[dict[str, Any]]:
    """Every conversation summed over its captures (a sensor's live capture included)."""
    return store.query(
        "SELECT c.transport, c.client_ip, c.server_ip, c.server_port, c.vlan, c.protocol, "
        "sum(s.connections) AS connections, sum(s.packets_c2s + s.packets_s2c) AS packets, "
        "sum(s.bytes_c2s + s.bytes_s2c) AS bytes, min(s.first_seen) AS first_seen, "
        "max(s.last_seen) AS last_seen FROM conversations c "
        "JOIN conversation_stats s ON s.conversation_id = c.id GROUP BY c.id"
    )


def conversation_functions(store: Store) -> Iterator[tuple[int, str]]:
    """``(conversation id, functions JSON)`` per capture, for summing."""
    return iter(
        store.conn.execute(
            "SELECT conversation_id, functions FROM conversation_stats "
            "WHERE functions IS NOT NULL ORDER BY conversation_id"
        ).fetchall()
    )


def alerts_changed_after(store: Store, change: int, limit: int) -> list[dict[str, Any]]:
    return list(
        store.query(
            "SELECT id AS alert_id, rule, title, category, severity, techniques, src_ip, dst_ip, "
            "protocol, operation, summary, first_seen, last_seen, count, status, change_seq "
            "FROM alerts WHERE change_seq > ? ORDER BY change_seq LIMIT ?",
            (change, limit),
        )
    )


def violation_rows(store: Store) -> list[dict[str, Any]]:
    """Violations summed per natural key (re-checking a policy replaces its rows)."""
    return list(
        store.query(
            "SELECT policy, rule, coalesce(src_ip, '') AS src_ip, coalesce(dst_ip, '') AS dst_ip, "
            "coalesce(protocol, '') AS protocol, coalesce(operation, '') AS operation, "
            "min(reason) AS reason, sum(count) AS count, min(first_seen) AS first_seen, "
            "max(last_seen) AS last_seen FROM violations "
            "GROUP BY policy, rule, coalesce(src_ip, ''), coalesce(dst_ip, ''), "
            "coalesce(protocol, ''), coalesce(operation, '')"
        )
    )


def stable_chunks_after(store: Store, chunk_id: int, limit: int) -> list[tuple[int, int, int, int]]:
    """Operation chunks after ``chunk_id`` that will not change any more, in id order,
    stopping at the first that still may (a sensor's chunks past its last checkpoint are
    deleted when it restarts; a capture being analysed is not finished):
    ``(id, conversation_id, first_ts, last_ts)``."""
    rows = store.conn.execute(
        "SELECT o.id, o.conversation_id, o.first_ts, o.last_ts, "
        "(c.status != 'running' OR EXISTS (SELECT 1 FROM sensors s "
        "WHERE s.capture_id = o.capture_id AND o.id <= s.last_chunk)) AS stable "
        "FROM op_chunks o JOIN captures c ON c.id = o.capture_id "
        "WHERE o.id > ? ORDER BY o.id LIMIT ?",
        (chunk_id, limit),
    ).fetchall()
    out = []
    for r in rows:
        if not r[4]:
            break
        out.append((int(r[0]), int(r[1]), int(r[2]), int(r[3])))
    return out


def chunk_data(
    store: Store, conversation_id: int, lo_ns: int, hi_ns: int, max_id: int
) -> list[bytes]:
    """The operation chunks of one conversation up to ``max_id`` that hold operations
    in ``[lo_ns, hi_ns)``."""
    return [
        bytes(d)
        for (d,) in store.conn.execute(
            "SELECT data FROM op_chunks WHERE conversation_id = ? AND id <= ? "
            "AND first_ts < ? AND last_ts >= ?",
            (conversation_id, max_id, hi_ns, lo_ns),
        )
    ]


def conversation_key(store: Store, conversation_id: int) -> tuple[Any, ...]:
    """``(transport, client_ip, server_ip, server_port, vlan, protocol)``."""
    return tuple(
        store.conn.execute(
            "SELECT transport, client_ip, server_ip, server_port, vlan, protocol "
            "FROM conversations WHERE id = ?",
            (conversation_id,),
        ).fetchone()
    )


def state_fingerprint(store: Store) -> tuple[Any, ...]:
    """Changes when assets, conversations or violations may have: an analysis, a sensor's
    checkpoint, a policy check or names set from a policy (a few indexed look-ups)."""
    from otconduit.store.counts import fingerprint

    row = store.conn.execute(
        "SELECT (SELECT max(updated_at) FROM sensors), (SELECT count(*) FROM asset_attributes), "
        "(SELECT count(*) FROM assets)"
    ).fetchone()
    return (*fingerprint(store), *row)


def sensor_health(store: Store) -> list[dict[str, Any]]:
    return list(store.query("SELECT name, state, health FROM sensors ORDER BY id"))


def totals(store: Store) -> dict[str, int]:
    """What a site's own store holds, in the units the hub counts (for tests and checks)."""
    c = store.conn
    (assets,) = c.execute("SELECT count(*) FROM assets").fetchone()
    (convs,) = c.execute(
        "SELECT count(DISTINCT conversation_id) FROM conversation_stats"
    ).fetchone()
    (alerts,) = c.execute("SELECT count(*) FROM alerts").fetchone()
    (ops,) = c.execute("SELECT coalesce(sum(count), 0) FROM op_chunks").fetchone()
    (viol,) = c.execute(
        "SELECT count(*) FROM (SELECT 1 FROM violations GROUP BY policy, rule, "
        "coalesce(src_ip, ''), coalesce(dst_ip, ''), coalesce(protocol, ''), "
        "coalesce(operation, ''))"
    ).fetchone()
    return {
        "assets": int(assets),
        "conversations": int(convs),
        "alerts": int(alerts),
        "operations": int(ops),
        "violations": int(viol),
    }
