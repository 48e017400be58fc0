"""Learnt baselines, stored by name as JSON (the shape is
:class:`otconduit.detect.baseline.Baseline`'s)."""

from __future__ import annotations

from dataclasses import dataclass

from otconduit.store.sqlite import Store


@dataclass(frozen=True, slots=True)
class StoredBaseline:
    captures: str  # JSON list of capture sha256
    until_ts: int | None
    data: str  # JSON


def save(store: Store, name: str, now: str, captures: str, until_ts: int | None, data: str) -> None:
    """Write (or replace) the baseline ``name``."""
    with store.transaction():
        store.conn.execute(
            "INSERT INTO baselines (name, created_at, captures, until_ts, data) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "created_at = excluded.created_at, captures = excluded.captures, "
            "until_ts = excluded.until_ts, data = excluded.data",
            (name, now, captures, until_ts, data),
        )


def load(store: Store, name: str) -> StoredBaseline | None:
    row = store.conn.execute(
        "SELECT captures, until_ts, data FROM baselines WHERE name = ?", (name,)
    ).fetchone()
    return StoredBaseline(*row) if row else None
