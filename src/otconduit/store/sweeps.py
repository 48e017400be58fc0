"""Conversation groups that may be scans, grouped in SQL: a scan of a million addresses
is a million conversations, and only the groups that reach a threshold come back.

Both read the conversations of capture ``capture_id`` (with capture ``also`` added in:
a sensor's connections still open) first seen at ``since_ns`` or later that opened a
connection or sent something."""

from __future__ import annotations

from collections.abc import Collection

from otconduit.store.sqlite import Store

_BASE = (
    "WITH s AS (SELECT conversation_id, sum(connections) AS connections, "
    "sum(packets_s2c) AS packets_s2c, min(first_seen) AS first_seen, "
    "max(last_seen) AS last_seen FROM conversation_stats WHERE capture_id IN (?, ?) "
    "GROUP BY conversation_id HAVING min(first_seen) >= ? "
    "AND (sum(connections) > 0 OR sum(packets_c2s) > 0)) "
)
_JOIN = "FROM s JOIN conversations v ON v.id = s.conversation_id "

# (client, server, first, last, ports, ports unanswered, "p1,p2,...")
Vertical = tuple[str, str, int, int, int, int, str]
# (client, port, first, last, hosts, hosts without a protocol answer, "ip1,ip2,...")
Horizontal = tuple[str, int, int, int, int, int, str]


def _head(capture_id: int, also: int | None, since_ns: int) -> tuple[int, int, int]:
    return (capture_id, also if also is not None else capture_id, since_ns)


def vertical(
    store: Store, capture_id: int, also: int | None, since_ns: int, min_ports: int
) -> list[Vertical]:
    """Client and server pairs over at least ``min_ports`` distinct server ports."""
    return [
        (src, dst, int(first), int(last), int(n), int(unanswered), str(ports))
        for src, dst, first, last, n, unanswered, ports in store.conn.execute(
            _BASE + "SELECT v.client_ip, v.server_ip, min(s.first_seen), max(s.last_seen), "
            "count(DISTINCT v.server_port), sum(CASE WHEN s.packets_s2c = 0 THEN 1 ELSE 0 END), "
            "group_concat(DISTINCT v.server_port) "
            + _JOIN
            + "GROUP BY v.client_ip, v.server_ip HAVING count(DISTINCT v.server_port) >= ?",
            (*_head(capture_id, also, since_ns), min_ports),
        )
    ]


def horizontal(
    store: Store,
    capture_id: int,
    also: int | None,
    since_ns: int,
    ports: Collection[int],
    min_hosts: int,
) -> list[Horizontal]:
    """Client and port pairs, for ``ports``, where at least ``min_hosts`` servers gave no
    answer or none the decoder recognised (a master polling many PLCs gets answers)."""
    marks = ",".join("?" * len(ports))
    return [
        (src, int(port), int(first), int(last), int(n), int(probed), str(hosts))
        for src, port, first, last, n, probed, hosts in store.conn.execute(
            _BASE + "SELECT v.client_ip, v.server_port, min(s.first_seen), max(s.last_seen), "
            "count(DISTINCT v.server_ip), count(DISTINCT CASE WHEN s.packets_s2c = 0 "
            "OR v.protocol = 'unknown' THEN v.server_ip END), group_concat(DISTINCT v.server_ip) "
            + _JOIN
            + f"WHERE v.server_port IN ({marks}) GROUP BY v.client_ip, v.server_port "
            "HAVING count(DISTINCT CASE WHEN s.packets_s2c = 0 OR v.protocol = 'unknown' "
            "THEN v.server_ip END) >= ?",
            (*_head(capture_id, also, since_ns), *ports, min_hosts),
        )
    ]
