"""The operation chunks' index (every chunk with its conversation and time range, no
data) and the reading of one chunk's data: what pages through operations newest first
without loading chunks it will not show."""

from __future__ import annotations

from dataclasses import dataclass

from otconduit.store.sqlite import Store


@dataclass(frozen=True, slots=True)
class ChunkRef:
    id: int
    conversation: int
    first_ts: int
    last_ts: int
    count: int
    protocol: str
    client_ip: str
    server_ip: str
    server_port: int
    capture: str


def chunk_index(store: Store) -> list[ChunkRef]:
    """Every chunk without its data, newest ``last_ts`` first (a few MB for a hundred
    thousand chunks: cheap to keep, and it spares each page two scans of ``op_chunks``)."""
    rows = store.conn.execute(
        "SELECT k.id, k.conversation_id, k.first_ts, k.last_ts, k.count, v.protocol, "
        "v.client_ip, v.server_ip, v.server_port, c.path FROM op_chunks k "
        "JOIN conversations v ON v.id = k.conversation_id "
        "JOIN captures c ON c.id = k.capture_id ORDER BY k.last_ts DESC, k.id DESC"
    ).fetchall()
    return [ChunkRef(*r) for r in rows]


def chunk_data(store: Store, chunk_id: int) -> bytes | None:
    """One chunk's packed operations; None when it is gone (its capture re-analysed)."""
    row = store.conn.execute("SELECT data FROM op_chunks WHERE id = ?", (chunk_id,)).fetchone()
    if row is None:
        return None
    blob: bytes = row[0]
    return blob
