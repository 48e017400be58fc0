"""Per-capture reads for detection: which captures are finished, their times, and what
each one saw (sightings, conversations, decode problems)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otconduit.store.sqlite import Store


@dataclass(frozen=True, slots=True)
class CaptureInfo:
    id: int
    sha256: str
    path: str
    status: str  # running | complete | partial
    first_ts: int | None
    last_ts: int | None


_COLUMNS = "id, sha256, path, status, first_ts, last_ts"


def info(store: Store, capture_id: int) -> CaptureInfo | None:
    row = store.conn.execute(
        f"SELECT {_COLUMNS} FROM captures WHERE id = ?", (capture_id,)
    ).fetchone()
    return CaptureInfo(*row) if row else None


def finished(store: Store) -> list[CaptureInfo]:
    """Captures whose analysis ended (complete or partial), by first packet time."""
    return [
        CaptureInfo(*r)
        for r in store.conn.execute(
            f"SELECT {_COLUMNS} FROM captures WHERE status != 'running' ORDER BY first_ts"
        )
    ]


def ids_by_path(store: Store) -> dict[str, int]:
    """Capture id per recorded path (a path analysed twice: the later id)."""
    return {str(r[1]): int(r[0]) for r in store.conn.execute("SELECT id, path FROM captures")}


def learned_assets(store: Store, capture_id: int, until_ts: int | None) -> list[str]:
    """Addresses the capture saw first at or before ``until_ts`` (any time when None)."""
    return [
        str(r["ip"])
        for r in store.query(
            "SELECT a.ip FROM asset_sightings s JOIN assets a ON a.id = s.asset_id "
            "WHERE s.capture_id = ? AND (? IS NULL OR s.first_seen <= ?)",
            (capture_id, until_ts, until_ts),
        )
    ]


def learned_conversations(
    store: Store, capture_id: int, until_ts: int | None
) -> list[dict[str, Any]]:
    """transport, client_ip, server_ip, server_port and protocol of the conversations
    the capture saw first at or before ``until_ts`` (any time when None)."""
    return list(
        store.query(
            "SELECT v.transport, v.client_ip, v.server_ip, v.server_port, v.protocol "
            "FROM conversation_stats s JOIN conversations v ON v.id = s.conversation_id "
            "WHERE s.capture_id = ? AND (? IS NULL OR s.first_seen <= ?)",
            (capture_id, until_ts, until_ts),
        )
    )


def sightings(store: Store, capture_id: int) -> list[dict[str, Any]]:
    """ip, first_seen, last_seen and packets_sent of every asset the capture saw."""
    return list(
        store.query(
            "SELECT a.ip, s.first_seen, s.last_seen, s.packets_sent FROM asset_sightings s "
            "JOIN assets a ON a.id = s.asset_id WHERE s.capture_id = ?",
            (capture_id,),
        )
    )


def conversation_stats(store: Store, capture_id: int) -> list[dict[str, Any]]:
    """Each conversation the capture saw, with its times and connection count there."""
    return list(
        store.query(
            "SELECT v.transport, v.client_ip, v.server_ip, v.server_port, v.protocol, "
            "s.first_seen, s.last_seen, s.connections FROM conversation_stats s "
            "JOIN conversations v ON v.id = s.conversation_id WHERE s.capture_id = ?",
            (capture_id,),
        )
    )


def problems(store: Store, capture_id: int) -> list[dict[str, Any]]:
    """Decode problems the capture recorded, by frame."""
    return list(
        store.query(
            "SELECT frame, layer, protocol, reason, src_ip, dst_ip FROM problems "
            "WHERE capture_id = ? ORDER BY frame",
            (capture_id,),
        )
    )
