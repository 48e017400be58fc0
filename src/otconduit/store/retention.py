"""Retention of operations: drop what is older than a number of days.

Operations are the bulk of a store (a busy plant writes gigabytes a week); assets,
conversations, alerts and their evidence are small and stay. The cut is at a UTC
midnight (``now - keep``, rounded down to the day) so that both backends remove exactly
the same chunks: on PostgreSQL whole day partitions are dropped (no row-by-row delete,
no bloat); on SQLite the chunks starting before the cut are deleted.

A hub's database grows the same way with its per-minute summaries and the ids of the
messages it applied: :func:`prune_hub` cuts both (message ids never younger than the
sites may still replay).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from otconduit.store import partitions
from otconduit.store.backend import PgConnection
from otconduit.store.partitions import DAY_NS
from otconduit.store.sqlite import Store


@dataclass(frozen=True, slots=True)
class Pruned:
    cutoff_ns: int  # chunks whose first operation is before this were removed
    chunks: int
    operations: int
    partitions: list[str]  # PostgreSQL partitions dropped (empty on SQLite)


def cutoff(keep_ns: int, now_ns: int) -> int:
    """The UTC midnight at or before ``now_ns - keep_ns``."""
    return ((now_ns - keep_ns) // DAY_NS) * DAY_NS


def prune_operations(store: Store, keep_ns: int, now_ns: int | None = None) -> Pruned:
    """Remove operations older than ``keep_ns`` before ``now_ns`` (default: the clock)."""
    if keep_ns < DAY_NS:
        raise ValueError("keep at least one day of operations")
    cut = cutoff(keep_ns, time.time_ns() if now_ns is None else now_ns)
    with store.transaction():
        chunks, operations = store.conn.execute(
            "SELECT count(*), coalesce(sum(count), 0) FROM op_chunks WHERE first_ts < ?", (cut,)
        ).fetchone()
        dropped: list[str] = []
        if isinstance(store.conn, PgConnection):
            dropped = [p.name for p in partitions.drop_before(store.conn, cut)]
            store.forget_partitions()
        # On PostgreSQL this finds nothing left (partitions are whole days, the cut is a
        # midnight) unless a partition of another shape was attached by hand.
        store.conn.execute("DELETE FROM op_chunks WHERE first_ts < ?", (cut,))
    return Pruned(cut, int(chunks), int(operations), dropped)


# A site's uplink keeps an undelivered message for 7 days (the buffer's max_age) and may
# send it again until then: a hub forgets a message id only after that, plus a day, so
# that a late replay is still recognised and dropped, whatever --keep says.
MESSAGE_IDS_KEPT_NS = 8 * DAY_NS


@dataclass(frozen=True, slots=True)
class HubPruned:
    minutes: int  # per-minute operation summaries removed
    message_ids: int  # applied message ids forgotten (older than MESSAGE_IDS_KEPT_NS too)


def prune_hub(store: Store, keep_ns: int, now_ns: int | None = None) -> HubPruned:
    """On a hub's database: the per-minute operation summaries older than the same cut
    as :func:`prune_operations`, and applied message ids older than that cut and than
    :data:`MESSAGE_IDS_KEPT_NS`. The sites' counters (messages, missing) stay as they
    are; assets, conversations, alerts and violations are state and stay."""
    if keep_ns < DAY_NS:
        raise ValueError("keep at least one day of operations")
    now = time.time_ns() if now_ns is None else now_ns
    cut = cutoff(keep_ns, now)
    ids_cut = min(cut, now - MESSAGE_IDS_KEPT_NS)
    ids_before = datetime.fromtimestamp(ids_cut / 1e9, UTC).isoformat(timespec="milliseconds")
    with store.transaction():
        c = store.conn
        (minutes,) = c.execute(
            "SELECT count(*) FROM hub_op_minutes WHERE minute < ?", (cut // 1_000_000_000,)
        ).fetchone()
        c.execute("DELETE FROM hub_op_minutes WHERE minute < ?", (cut // 1_000_000_000,))
        # received_at is written as ISO 8601 UTC with milliseconds and a Z: it sorts as text
        before = ids_before.replace("+00:00", "Z")
        (ids,) = c.execute(
            "SELECT count(*) FROM hub_messages WHERE received_at < ?", (before,)
        ).fetchone()
        c.execute("DELETE FROM hub_messages WHERE received_at < ?", (before,))
    return HubPruned(int(minutes), int(ids))
