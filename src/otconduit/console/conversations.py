"""Conversations for the console: the ``conduit conversations -f json`` shape
(:func:`otconduit.store.views.conversations`), paged in SQL, with the policy verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from otconduit.console.errors import ApiError
from otconduit.store import Store
from otconduit.store.views import iso

SORTS = {
    "first_seen": "first_seen, c.id",
    "last_seen": "last_seen DESC, c.id",
    "packets": "(p1 + p2) DESC, c.id",
    "client": "c.client_ip, c.server_ip, c.server_port",
    "server": "c.server_ip, c.server_port, c.client_ip",
}


@dataclass(slots=True)
class ConversationQuery:
    ip: str | None = None
    protocol: str | None = None
    peer: str | None = None  # with ip: only conversations between ip and peer
    port: int | None = None
    sort: str = "first_seen"
    offset: int = 0
    limit: int = 50


def list_conversations(
    store: Store, cq: ConversationQuery, policy: str | None = None
) -> tuple[int, list[dict[str, Any]]]:
    if cq.sort not in SORTS:
        raise ApiError(422, f"sort must be one of {', '.join(SORTS)}")
    where: list[str] = []
    params: list[Any] = []
    if cq.ip:
        where.append("(c.client_ip = ? OR c.server_ip = ?)")
        params += [cq.ip, cq.ip]
    if cq.peer:
        where.append("(c.client_ip = ? OR c.server_ip = ?)")
        params += [cq.peer, cq.peer]
    if cq.protocol:
        where.append("c.protocol = ?")
        params.append(cq.protocol)
    if cq.port is not None:
        where.append("c.server_port = ?")
        params.append(cq.port)
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    (total,) = store.conn.execute(
        "SELECT count(*) FROM conversations c WHERE EXISTS (SELECT 1 FROM conversation_stats "
        "s WHERE s.conversation_id = c.id)" + (" AND " + " AND ".join(where) if where else ""),
        params,
    ).fetchone()
    sql = (
        "SELECT c.id, c.transport, c.client_ip, c.server_ip, c.server_port, c.vlan, c.protocol, "
        "sum(s.connections) AS connections, sum(s.packets_c2s) AS p1, sum(s.packets_s2c) AS p2, "
        "sum(s.bytes_c2s) AS b1, sum(s.bytes_s2c) AS b2, min(s.first_seen) AS first_seen, "
        "max(s.last_seen) AS last_seen, json_group_array(s.functions) AS functions "
        f"FROM conversations c JOIN conversation_stats s ON s.conversation_id = c.id{cond} "
        f"GROUP BY c.id ORDER BY {SORTS[cq.sort]} LIMIT ? OFFSET ?"
    )
    rows = list(store.query(sql, [*params, cq.limit, cq.offset]))
    vio: dict[tuple[str, str], list[str]] = {}
    if rows:
        ips = sorted({r["client_ip"] for r in rows})
        marks = ",".join("?" * len(ips))
        vsql = f"SELECT DISTINCT src_ip, dst_ip, rule FROM violations WHERE src_ip IN ({marks})"
        vparams: list[Any] = list(ips)
        if policy:
            vsql += " AND policy = ?"
            vparams.append(policy)
        for src, dst, rule in store.conn.execute(vsql, vparams):
            if dst is not None:
                vio.setdefault((src, dst), []).append(rule)
    out = []
    for r in rows:
        funcs: dict[str, int] = {}
        for blob in json.loads(r["functions"]):
            for k, v in json.loads(blob or "{}").items():
                funcs[k] = funcs.get(k, 0) + v
        rules = sorted(vio.get((r["client_ip"], r["server_ip"]), []))
        out.append(
            {
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
                "violations": rules,
                "verdict": "violation" if rules else ("allowed" if policy else "unchecked"),
            }
        )
    return int(total), out
