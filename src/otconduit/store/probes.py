"""Identity claims from ``conduit probe`` in the store: source ``probe``, no capture. A
new probe of a device over a protocol replaces what the previous one over that protocol
said (a firmware update shows at once); passive claims are never touched."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from otconduit.store.sqlite import Store

SOURCE = "probe"
CONFIDENCE = 0.9  # the device's own answer to a direct question


def _evidence_prefix(protocol: str) -> str:
    return f"probe {protocol} "


def _asset(store: Store, ip: str) -> int:
    """The asset with this address (untagged, else its lowest VLAN), created untagged."""
    row = store.conn.execute(
        "SELECT id FROM assets WHERE ip = ? ORDER BY vlan = -1 DESC, vlan LIMIT 1", (ip,)
    ).fetchone()
    if row is not None:
        return int(row[0])
    return store.asset_id(ip, -1, None)


def record(
    store: Store,
    ip: str,
    protocol: str,
    port: int,
    claims: Sequence[tuple[str, str]],
    ts_ns: int,
) -> int:
    """Store one answered probe: its identity claims and the protocol the device serves.
    Returns the asset id."""
    when = datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat(timespec="seconds")
    evidence = f"{_evidence_prefix(protocol)}{ip}:{port} {when}"
    c = store.conn
    c.execute("BEGIN IMMEDIATE")
    try:
        asset_id = _asset(store, ip)
        c.execute(
            "DELETE FROM asset_attributes WHERE asset_id = ? AND source = ? AND capture_id "
            "IS NULL AND substr(evidence, 1, ?) = ?",
            (asset_id, SOURCE, len(_evidence_prefix(protocol)), _evidence_prefix(protocol)),
        )
        rows = [("identity", attr, value) for attr, value in claims]
        rows.append(("protocol", protocol, "server"))
        c.executemany(
            "INSERT INTO asset_attributes (asset_id, capture_id, kind, name, value, "
            "source, confidence, evidence, first_seen, last_seen) "
            "VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [
                (asset_id, kind, name, value, SOURCE, CONFIDENCE, evidence, ts_ns, ts_ns)
                for kind, name, value in rows
            ],
        )
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return asset_id


__all__ = ["SOURCE", "record"]
