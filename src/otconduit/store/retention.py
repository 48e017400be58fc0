"""Retention of operations: drop what is older than a number of days.

Operations are the bulk of a store (a busy plant writes gigabytes a week); assets,
conversations, alerts and their evidence are small and stay. The cut is at a UTC
midnight (``now - keep``, rounded down to the day) so that both backends remove exactly
the same chunks: on PostgreSQL whole day partitions are dropped (no row-by-row delete,
no bloat); on SQLite the chunks starting before the cut are deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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
