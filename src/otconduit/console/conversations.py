"""Conversations for the console: the ``conduit conversations -f json`` shape
(:func:`otconduit.store.views.conversations`), paged in SQL, with the policy verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otconduit.console.errors import ApiError
from otconduit.store import Store
from otconduit.store import conversations as stored
from otconduit.store.conversations import SORTS

__all__ = ["SORTS", "ConversationQuery", "list_conversations"]


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
    flt = stored.ConversationFilter(
        ip=cq.ip or None, protocol=cq.protocol or None, port=cq.port, peer=cq.peer or None
    )
    total = stored.count(store, flt)
    out = stored.rows(store, flt, sort=cq.sort, limit=cq.limit, offset=cq.offset)
    vio = stored.violated_rules(store, (r["client_ip"] for r in out), policy)
    for r in out:
        rules = sorted(vio.get((r["client_ip"], r["server_ip"]), []))
        r["violations"] = rules
        r["verdict"] = "violation" if rules else ("allowed" if policy else "unchecked")
    return total, out
