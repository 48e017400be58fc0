"""Where each SIEM sink's export stands: the highest alert change already sent."""

from __future__ import annotations

from otconduit.store.backend import database_errors
from otconduit.store.sqlite import Store, StoreError


def cursor(store: Store, sink: str) -> int:
    """The highest alert change number already exported to ``sink`` (0: none yet)."""
    row = store.conn.execute(
        "SELECT last_change FROM export_cursors WHERE sink = ?", (sink,)
    ).fetchone()
    return int(row[0]) if row else 0


def advance(store: Store, sink: str, change: int, now: str) -> int:
    """Move ``sink``'s cursor to ``change`` -- never backwards, so a concurrent export to
    the same sink cannot undo a newer one -- and return where it now stands. Raises
    :class:`StoreError` (with the database's own words) when it cannot be written."""
    try:
        with store.transaction():
            store.conn.execute(
                "INSERT INTO export_cursors (sink, last_change, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (sink) DO UPDATE SET "
                "last_change = max(export_cursors.last_change, excluded.last_change), "
                "updated_at = excluded.updated_at",
                (sink, change, now),
            )
            stands = cursor(store, sink)
    except database_errors() as exc:
        raise StoreError(str(exc)) from exc
    return stands
