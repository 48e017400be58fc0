"""Incidents as stored: the numbers the console gave them (``INC-<id>``), their owner
and status, and who changed what. How alerts and machine events group into incidents
is worked out in :mod:`otconduit.console.incidents`; only its results are kept here."""

from __future__ import annotations

from typing import Any

from otconduit.store.sqlite import Store

FIELDS = ("owner", "status")  # what an analyst may change


def numbers(store: Store) -> dict[str, int]:
    """Incident number per key of its first event."""
    return {str(k): int(n) for k, n in store.conn.execute("SELECT key, id FROM incidents")}


def add(store: Store, key: str, first_ts: int, now: str) -> int:
    """Number a new incident (inside the caller's transaction); returns the number."""
    (number,) = store.conn.execute(
        "INSERT INTO incidents (key, first_ts, created_at, updated_at) VALUES (?, ?, ?, ?) "
        "RETURNING id",
        (key, first_ts, now, now),
    ).fetchone()
    return int(number)


def states(store: Store) -> list[dict[str, Any]]:
    """id, owner, status and updated_at of every numbered incident."""
    return list(store.query("SELECT id, owner, status, updated_at FROM incidents"))


def current(store: Store, number: int) -> tuple[str | None, str] | None:
    """(owner, status) of one incident, or None when there is no such number."""
    row = store.conn.execute(
        "SELECT owner, status FROM incidents WHERE id = ?", (number,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def record_change(
    store: Store,
    number: int,
    field: str,
    old: str | None,
    new: str | None,
    *,
    user: str,
    comment: str | None,
    now: str,
) -> None:
    """Set ``field`` (owner or status) and keep the change in ``incident_history``."""
    if field not in FIELDS:
        raise ValueError(field)
    c = store.conn
    c.execute(f"UPDATE incidents SET {field} = ?, updated_at = ? WHERE id = ?", (new, now, number))
    c.execute(
        'INSERT INTO incident_history (incident_id, at, "user", field, old, new, comment) '
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (number, now, user, field, old, new, comment),
    )


def history(store: Store, number: int) -> list[dict[str, Any]]:
    return list(
        store.query(
            'SELECT at, "user", field, old, new, comment FROM incident_history '
            "WHERE incident_id = ? ORDER BY id",
            (number,),
        )
    )
