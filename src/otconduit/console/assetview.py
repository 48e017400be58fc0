"""One asset with its lists (conversations, alerts, violations, operations), each paged
on its own: a scanner's page once listed every host it touched and grew to metres of
scrolling. Every list shows ``SECTION`` rows and says how many there are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otconduit.console.alertsview import AlertQuery, ViolationQuery, list_alerts, list_violations
from otconduit.console.assets import get_asset
from otconduit.console.context import Console
from otconduit.console.conversations import ConversationQuery, list_conversations
from otconduit.console.incidents import select
from otconduit.console.ops import OpQuery, page_operations

SECTION = 25  # rows per list on the asset page
INCIDENTS = 20


@dataclass(slots=True)
class Sections:
    """Where each list of the asset page starts (offsets; a cursor for operations)."""

    conversations: int = 0
    alerts: int = 0
    violations: int = 0
    operations: str | None = None
    limit: int = SECTION


def asset_detail(ctx: Console, ip: str, at: Sections | None = None) -> dict[str, Any]:
    """The asset and one page of each of its lists, with totals and offsets."""
    at = at or Sections()
    store = ctx.stores.reader()
    asset = get_asset(store, ctx.zoning, ip)
    cq = ConversationQuery(ip=ip, sort="packets", offset=at.conversations, limit=at.limit)
    ctotal, convs = list_conversations(store, cq, ctx.zoning.plant)
    aq = AlertQuery(asset=ip, sort="severity", offset=at.alerts, limit=at.limit)
    atotal, alerts = list_alerts(store, aq)
    vq = ViolationQuery(policy=ctx.zoning.plant, asset=ip, offset=at.violations, limit=at.limit)
    vtotal, vios = list_violations(store, vq)
    oq = OpQuery(ip=ip, cursor=at.operations, limit=at.limit)
    every = ctx.incidents(store, ctx.settings.incident_window, False)
    return {
        "asset": asset,
        "conversations": convs,
        "conversations_total": ctotal,
        "conversations_offset": at.conversations,
        "operations": page_operations(store, oq, ctx.chunk_index(store)),
        "alerts": alerts,
        "alerts_total": atotal,
        "alerts_offset": at.alerts,
        "violations": vios,
        "violations_total": vtotal,
        "violations_offset": at.violations,
        "limit": at.limit,
        "tags": ctx.production.device_tags(ip),
        "incidents": select(every, asset=ip)[:INCIDENTS],
    }
