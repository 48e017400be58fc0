"""Conversations as stored: the one filter the CLI and the console build their WHERE
clause from, the aggregate over every capture (``conduit conversations -f json``), and
the client -> server pairs the network map draws."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from otconduit.store.match import iso, names
from otconduit.store.sqlite import Store

# Orders the console offers, and the CLI's: ties in time in the conversation's own
# terms, not in insertion order (which depends on which path decoded it first).
SORTS = {
    "first_seen": "first_seen, c.id",
    "last_seen": "last_seen DESC, c.id",
    "packets": "(p1 + p2) DESC, c.id",
    "client": "c.client_ip, c.server_ip, c.server_port",
    "server": "c.server_ip, c.server_port, c.client_ip",
}
_ORDERS = {
    **SORTS,
    "stored": "first_seen, c.client_ip, c.server_ip, c.server_port, c.protocol, c.transport, "
    "c.vlan, c.id",
}


@dataclass(slots=True)
class ConversationFilter:
    ip: str | None = None  # either end: one address or a CIDR network (networks: after SQL)
    protocol: str | tuple[str, ...] | None = None
    port: int | None = None
    start_ns: int | None = None  # active at or after
    end_ns: int | None = None  # active before
    peer: str | None = None  # with ip: only conversations between ip and peer


def _ends(flt: ConversationFilter) -> tuple[list[str], list[Any]]:
    """Conditions on the conversation itself (``c``)."""
    cond: list[str] = []
    params: list[Any] = []
    for end in (flt.ip, flt.peer):
        if end:
            cond.append("(c.client_ip = ? OR c.server_ip = ?)")
            params += [end, end]
    protos = names(flt.protocol)
    if protos:
        cond.append(f"c.protocol IN ({', '.join('?' * len(protos))})")
        params += protos
    if flt.port is not None:
        cond.append("c.server_port = ?")
        params.append(flt.port)
    return cond, params


def _times(flt: ConversationFilter) -> tuple[list[str], list[Any]]:
    """Conditions on one capture's statistics (``s``): only captures active in range."""
    cond: list[str] = []
    params: list[Any] = []
    if flt.start_ns is not None:
        cond.append("s.last_seen >= ?")
        params.append(flt.start_ns)
    if flt.end_ns is not None:
        cond.append("s.first_seen < ?")
        params.append(flt.end_ns)
    return cond, params


def where(flt: ConversationFilter) -> tuple[str, list[Any]]:
    """`` WHERE ...`` over ``c`` and ``s`` (or ``""``) and its parameters. ``ip`` and
    ``peer`` are matched as one address each; a listing that accepts networks clears
    them and matches networks itself."""
    ends, p1 = _ends(flt)
    times, p2 = _times(flt)
    cond = ends + times
    return (" WHERE " + " AND ".join(cond)) if cond else "", p1 + p2


def rows(
    store: Store,
    flt: ConversationFilter | None = None,
    *,
    sort: str = "stored",
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Conversations summed over the captures that match, as records (``id`` first,
    then the ``conduit conversations -f json`` keys) in the order ``sort`` names."""
    cond, params = where(flt or ConversationFilter())
    sql = (
        "SELECT c.id, c.transport, c.client_ip, c.server_ip, c.server_port, c.vlan, c.protocol, "
        "sum(s.connections) AS connections, sum(s.packets_c2s) AS p1, sum(s.packets_s2c) AS p2, "
        "sum(s.bytes_c2s) AS b1, sum(s.bytes_s2c) AS b2, min(s.first_seen) AS first_seen, "
        "max(s.last_seen) AS last_seen, json_group_array(s.functions) AS functions "
        f"FROM conversations c JOIN conversation_stats s ON s.conversation_id = c.id{cond} "
        f"GROUP BY c.id ORDER BY {_ORDERS[sort]}"
    )
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [int(limit), int(offset)]
    return [_record(r) for r in store.query(sql, params)]


def _record(r: dict[str, Any]) -> dict[str, Any]:
    funcs: dict[str, int] = {}
    for blob in json.loads(r["functions"]):
        for k, v in json.loads(blob or "{}").items():
            funcs[k] = funcs.get(k, 0) + v
    return {
        "id": r["id"],
        "transport": r["transport"],
        "client_ip": r["client_ip"],
        "server_ip": r["server_ip"],
        "server_port": r["server_port"],
        "vlan": None if r["vlan"] == -1 else r["vlan"],
        "protocol": r["protocol"],
        "connections": r["connections"],
        "packets_c2s": r["p1"],
        "packets_s2c": r["p2"],
        "bytes_c2s": r["b1"],
        "bytes_s2c": r["b2"],
        "first_seen": iso(r["first_seen"]),
        "last_seen": iso(r["last_seen"]),
        "functions": dict(sorted(funcs.items())),
    }


def count(store: Store, flt: ConversationFilter | None = None) -> int:
    """Conversations with statistics in a capture (active in range, when given) that
    match ``flt``."""
    flt = flt or ConversationFilter()
    ends, p1 = _ends(flt)
    times, p2 = _times(flt)
    active = " AND ".join(["s.conversation_id = c.id", *times])
    sql = (
        "SELECT count(*) FROM conversations c WHERE EXISTS "
        f"(SELECT 1 FROM conversation_stats s WHERE {active})" + "".join(f" AND {c}" for c in ends)
    )
    (n,) = store.conn.execute(sql, p2 + p1).fetchone()
    return int(n)


def edges(store: Store) -> list[dict[str, Any]]:
    """Client -> server pairs per protocol: client_ip, server_ip, protocol, ports (comma
    separated), conversations and packets."""
    return list(
        store.query(
            "SELECT c.client_ip, c.server_ip, c.protocol, "
            "group_concat(DISTINCT c.server_port) AS ports, count(DISTINCT c.id) AS conversations, "
            "sum(s.packets_c2s + s.packets_s2c) AS packets "
            "FROM conversations c JOIN conversation_stats s ON s.conversation_id = c.id "
            "GROUP BY c.client_ip, c.server_ip, c.protocol"
        )
    )


def violated_rules(
    store: Store, clients: Iterable[str], policy: str | None
) -> dict[tuple[str, str], list[str]]:
    """Rules stored violated per (client, server) for these clients (of ``policy`` when
    given); violations without one destination (sweeps) are left out."""
    ips = sorted(set(clients))
    out: dict[tuple[str, str], list[str]] = {}
    if not ips:
        return out
    marks = ",".join("?" * len(ips))
    sql = f"SELECT DISTINCT src_ip, dst_ip, rule FROM violations WHERE src_ip IN ({marks})"
    params: list[Any] = list(ips)
    if policy:
        sql += " AND policy = ?"
        params.append(policy)
    for src, dst, rule in store.conn.execute(sql, params):
        if dst is not None:
            out.setdefault((src, dst), []).append(rule)
    return out
