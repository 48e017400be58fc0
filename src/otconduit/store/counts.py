"""Cheap whole-store figures: what the console's overview counts, and a fingerprint that
changes whenever something the console caches may have changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otconduit.store.sqlite import Store

_CAPTURES = (
    "(SELECT count(*) FROM captures), (SELECT coalesce(max(id), 0) FROM captures), "
    "(SELECT group_concat(status) FROM (SELECT status FROM captures ORDER BY id) AS c)"
)


def fingerprint(store: Store, *, alerts: bool = True) -> tuple[Any, ...]:
    """Changes whenever analysis, detection, a policy check or (with ``alerts``) an
    alert change commits (a few indexed look-ups). Results that do not depend on alerts
    pass ``alerts=False`` so that acknowledging an alert does not throw them away."""
    if not alerts:
        return tuple(store.conn.execute(f"SELECT {_CAPTURES}").fetchone())
    row = store.conn.execute(
        f"SELECT {_CAPTURES}, (SELECT n FROM alert_changes), "
        "(SELECT count(*) FROM violations), (SELECT coalesce(max(id), 0) FROM violations)"
    ).fetchone()
    return tuple(row)


@dataclass(frozen=True, slots=True)
class Totals:
    conversations: int
    operations: int
    captures: int  # analysed (not running)
    last_analysed: str | None  # when the newest analysis finished


def totals(store: Store) -> Totals:
    c = store.conn
    (conversations,) = c.execute("SELECT count(*) FROM conversations").fetchone()
    (operations,) = c.execute("SELECT coalesce(sum(count), 0) FROM op_chunks").fetchone()
    n, last = c.execute(
        "SELECT count(*), max(finished_at) FROM captures WHERE status != 'running'"
    ).fetchone()
    return Totals(int(conversations), int(operations), int(n), last)
