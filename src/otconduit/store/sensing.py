"""What a sensor (``conduit sense``) keeps in the store, and how it writes it.

A sensor's traffic is one capture that grows. Each checkpoint writes, in one
transaction, what changed since the one before: conversation and host totals are
added (``+=``), connections still open replace the sensor's *live* capture (so a
conversation that has been polled for days shows now, and is not counted twice when its
connection ends), and the cursor says how far into the ring this is true. Operations
are written ahead by the chunk writer; a restart deletes those past the last
checkpoint, so after ``kill -9`` nothing is lost or counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from otconduit.store.sqlite import AssetRecord, ConversationRecord, Store

Problem = tuple[int | None, str, str | None, str, str | None, str | None]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class SensorRow:
    id: int
    name: str
    capture_id: int
    live_capture_id: int
    sha256: str
    ring_dir: str
    cursor: dict[str, Any]
    last_chunk: int
    health: dict[str, Any]
    resumed: bool


@dataclass(slots=True)
class Delta:
    """What one checkpoint adds."""

    packets: int
    first_ts: int | None
    last_ts: int | None
    stats: dict[str, Any]
    folded: list[ConversationRecord] = field(default_factory=list)
    open: list[ConversationRecord] = field(default_factory=list)
    assets: list[AssetRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_counts: dict[tuple[str, str], int] = field(default_factory=dict)


def open_sensor(store: Store, name: str, interface: str | None, ring_dir: str) -> SensorRow:
    """The sensor of this name: created, or resumed where its last checkpoint left it
    (operations written after that checkpoint are deleted; connections that were open
    then are counted as ended there)."""
    c = store.conn
    c.execute("BEGIN IMMEDIATE")
    try:
        row = c.execute(
            "SELECT s.id, s.capture_id, s.live_capture_id, c.sha256, s.cursor, s.last_chunk, "
            "s.health, s.ring_dir FROM sensors s JOIN captures c ON c.id = s.capture_id "
            "WHERE s.name = ?",
            (name,),
        ).fetchone()
        now = now_iso()
        if row is None:
            sha = f"sensor:{name}"
            cap = _new_capture(store, name, sha, now)
            live = _new_capture(store, f"{name} (connections open now)", f"{sha}:live", now)
            (sid,) = c.execute(
                "INSERT INTO sensors (name, capture_id, live_capture_id, interface, ring_dir, "
                "state, started_at, updated_at, cursor, last_chunk, health) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, '{}', 0, '{}') RETURNING id",
                (name, cap, live, interface, ring_dir, now, now),
            ).fetchone()
            out = SensorRow(int(sid), name, cap, live, sha, ring_dir, {}, 0, {}, False)
        else:
            sid, cap, live, sha, cursor, last_chunk, health, old_ring = row
            c.execute("DELETE FROM op_chunks WHERE capture_id = ? AND id > ?", (cap, last_chunk))
            _fold_live(store, cap, live)
            same_ring = old_ring == ring_dir
            c.execute(
                "UPDATE sensors SET state = 'running', started_at = ?, updated_at = ?, "
                "interface = ?, ring_dir = ? WHERE id = ?",
                (now, now, interface, ring_dir, sid),
            )
            c.execute("UPDATE captures SET status = 'running' WHERE id = ?", (cap,))
            out = SensorRow(
                sid, name, cap, live, sha, ring_dir,
                json.loads(cursor or "{}") if same_ring else {},
                last_chunk, json.loads(health or "{}"), True,
            )  # fmt: skip
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return out


def _new_capture(store: Store, path: str, sha: str, now: str) -> int:
    (capture_id,) = store.conn.execute(
        "INSERT INTO captures (path, sha256, size, format, status, started_at) "
        "VALUES (?, ?, 0, 'live', 'running', ?) RETURNING id",
        (path, sha, now),
    ).fetchone()
    return int(capture_id)


def _fold_live(store: Store, cap: int, live: int) -> None:
    """Connections that were open at the last checkpoint, counted as ended there."""
    c = store.conn
    c.execute(
        "INSERT INTO conversation_stats SELECT conversation_id, ?, connections, packets_c2s, "
        "packets_s2c, bytes_c2s, bytes_s2c, first_seen, last_seen, functions "
        "FROM conversation_stats WHERE capture_id = ? AND true "
        "ON CONFLICT (conversation_id, capture_id) DO UPDATE SET " + _ADD_CONVERSATION,
        (cap, live),
    )
    c.execute("DELETE FROM conversation_stats WHERE capture_id = ?", (live,))


_ADD_CONVERSATION = (
    "connections = conversation_stats.connections + excluded.connections, "
    "packets_c2s = conversation_stats.packets_c2s + excluded.packets_c2s, "
    "packets_s2c = conversation_stats.packets_s2c + excluded.packets_s2c, "
    "bytes_c2s = conversation_stats.bytes_c2s + excluded.bytes_c2s, "
    "bytes_s2c = conversation_stats.bytes_s2c + excluded.bytes_s2c, "
    "first_seen = min(conversation_stats.first_seen, excluded.first_seen), "
    "last_seen = max(conversation_stats.last_seen, excluded.last_seen), "
    "functions = coalesce(excluded.functions, conversation_stats.functions)"
)


def checkpoint(
    store: Store, sensor: SensorRow, delta: Delta, cursor: dict[str, Any], health: dict[str, Any]
) -> None:
    """Write one checkpoint (everything in one transaction). The operations it covers
    must already be written."""
    c = store.conn
    c.execute("BEGIN IMMEDIATE")
    try:
        cap, live = sensor.capture_id, sensor.live_capture_id
        _conversations(store, cap, delta.folded, add=True)
        c.execute("DELETE FROM conversation_stats WHERE capture_id = ?", (live,))
        _conversations(store, live, delta.open, add=False)
        _assets(store, cap, delta.assets)
        c.executemany(
            "INSERT INTO problems (capture_id, frame, layer, protocol, reason, src_ip, dst_ip) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(cap, *p) for p in delta.problems],
        )
        c.executemany(
            "INSERT INTO problem_counts VALUES (?, ?, ?, ?) ON CONFLICT (capture_id, layer, "
            "reason) DO UPDATE SET count = problem_counts.count + excluded.count",
            [(cap, layer, reason, n) for (layer, reason), n in delta.problem_counts.items()],
        )
        c.execute(
            "UPDATE captures SET packets = packets + ?, first_ts = coalesce(first_ts, ?), "
            "last_ts = coalesce(?, last_ts), stats = ? WHERE id = ?",
            (delta.packets, delta.first_ts, delta.last_ts, json.dumps(delta.stats), cap),
        )
        (last_chunk,) = c.execute(
            "SELECT coalesce(max(id), 0) FROM op_chunks WHERE capture_id = ?", (cap,)
        ).fetchone()
        c.execute(
            "UPDATE sensors SET cursor = ?, last_chunk = ?, health = ?, updated_at = ? "
            "WHERE id = ?",
            (json.dumps(cursor), last_chunk, json.dumps(health), now_iso(), sensor.id),
        )
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    sensor.last_chunk = last_chunk


def _conversation_ids(
    store: Store, keys: Sequence[tuple[str, str, str, int, int, str]]
) -> list[int]:
    """Ids of conversations (created when new), in a few statements however many: a
    scan's checkpoint can hold a hundred thousand."""
    c = store.conn
    c.executemany(
        "INSERT INTO conversations "
        "(transport, client_ip, server_ip, server_port, vlan, protocol) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        keys,
    )
    c.execute(
        "CREATE TEMP TABLE IF NOT EXISTS conv_keys (k INTEGER PRIMARY KEY, transport TEXT, "
        "client_ip TEXT, server_ip TEXT, server_port INTEGER, vlan INTEGER, protocol TEXT)"
    )
    c.execute("DELETE FROM conv_keys")
    c.executemany(
        "INSERT INTO conv_keys VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i, *k) for i, k in enumerate(keys)],
    )
    ids = [0] * len(keys)
    for k, conv_id in c.execute(
        "SELECT k.k, v.id FROM conv_keys k JOIN conversations v ON v.transport = k.transport "
        "AND v.client_ip = k.client_ip AND v.server_ip = k.server_ip "
        "AND v.server_port = k.server_port AND v.vlan = k.vlan AND v.protocol = k.protocol"
    ):
        ids[k] = conv_id
    c.execute("DELETE FROM conv_keys")
    return ids


def _conversations(
    store: Store, capture_id: int, records: Sequence[ConversationRecord], *, add: bool
) -> None:
    if not records:
        return
    keys = [
        (cv.transport, cv.client_ip, cv.server_ip, cv.server_port, cv.vlan, cv.protocol)
        for cv in records
    ]
    ids = _conversation_ids(store, keys)
    rows = [
        (
            conv_id, capture_id, cv.connections, cv.packets_c2s, cv.packets_s2c,
            cv.bytes_c2s, cv.bytes_s2c, cv.first_seen, cv.last_seen,
            json.dumps(cv.functions, sort_keys=True) if cv.functions else None,
        )
        for conv_id, cv in zip(ids, records, strict=True)
    ]  # fmt: skip
    sql = "INSERT INTO conversation_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    if add:
        sql += " ON CONFLICT (conversation_id, capture_id) DO UPDATE SET " + _ADD_CONVERSATION
    store.conn.executemany(sql, rows)


def _assets(store: Store, capture_id: int, assets: Sequence[AssetRecord]) -> None:
    c = store.conn
    for a in assets:
        asset_id = store.asset_id(a.ip, a.vlan, a.mac)
        c.execute(
            "INSERT INTO asset_sightings VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (asset_id, capture_id) DO UPDATE SET "
            "mac = coalesce(excluded.mac, asset_sightings.mac), "
            "first_seen = min(asset_sightings.first_seen, excluded.first_seen), "
            "last_seen = max(asset_sightings.last_seen, excluded.last_seen), "
            "packets_sent = asset_sightings.packets_sent + excluded.packets_sent, "
            "packets_received = asset_sightings.packets_received + excluded.packets_received",
            (asset_id, capture_id, a.mac, a.first_seen, a.last_seen, a.packets_sent,
             a.packets_received),
        )  # fmt: skip
        # Roles are judged on all behaviour so far: the newest judgement replaces.
        c.execute(
            "DELETE FROM asset_attributes WHERE asset_id = ? AND capture_id = ? AND kind = 'role'",
            (asset_id, capture_id),
        )
        c.executemany(
            "INSERT INTO asset_attributes (asset_id, capture_id, kind, name, value, source, "
            "confidence, evidence, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (asset_id, kind, name, value, source, ifnull(capture_id, 0)) "
            "DO UPDATE SET last_seen = max(asset_attributes.last_seen, excluded.last_seen), "
            "first_seen = min(asset_attributes.first_seen, excluded.first_seen)",
            [
                (asset_id, capture_id, k, n, v, s, conf, ev, a.first_seen, a.last_seen)
                for (k, n, v, s, conf, ev) in a.attributes
            ],
        )


def set_state(
    store: Store, sensor_id: int, state: str, health: dict[str, Any] | None = None
) -> None:
    """Mark a sensor running, stopped or failed (autocommit)."""
    c = store.conn
    if health is None:
        c.execute(
            "UPDATE sensors SET state = ?, updated_at = ? WHERE id = ?",
            (state, now_iso(), sensor_id),
        )
    else:
        c.execute(
            "UPDATE sensors SET state = ?, updated_at = ?, health = ? WHERE id = ?",
            (state, now_iso(), json.dumps(health), sensor_id),
        )


def finish_sensor(store: Store, sensor: SensorRow) -> None:
    """A clean stop: the sensor's capture is complete up to its cursor."""
    c = store.conn
    c.execute(
        "UPDATE captures SET status = 'complete', finished_at = ? WHERE id = ?",
        (now_iso(), sensor.capture_id),
    )


def save_evidence(store: Store, sha256: str, packets: Iterable[tuple[int, int, int, bytes]]) -> int:
    """Keep packets (frame, ts, linktype, bytes) an alert stands on; returns how many new."""
    c = store.conn
    rows = [(sha256, f, ts, lt, data) for f, ts, lt, data in packets]
    if not rows:
        return 0
    c.execute("BEGIN IMMEDIATE")
    try:
        cur = c.executemany(
            "INSERT INTO evidence_packets VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
        )
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return max(cur.rowcount, 0)


def evidence_wanted(store: Store, sha256: str, after_rowid: int) -> tuple[list[int], int]:
    """Frames that alerts on this sensor's capture cite and that are not kept yet
    (evidence rows after ``after_rowid``), and the newest evidence row looked at."""
    frames: set[int] = set()
    top = after_rowid
    prefix = sha256 + "#"
    for rowid, text in store.conn.execute(
        "SELECT rowid, frames FROM alert_evidence WHERE rowid > ? "
        "AND substr(capture_sha256, 1, ?) = ?",
        (after_rowid, len(prefix), prefix),
    ):
        frames.update(json.loads(text))
        top = max(top, rowid)
    if frames:
        kept = {
            f
            for (f,) in store.conn.execute(
                "SELECT frame FROM evidence_packets WHERE capture_sha256 = ?", (sha256,)
            )
        }
        frames -= kept
    return sorted(frames), top


def kept_evidence(store: Store, sha256: str, frames: Iterable[int]) -> list[tuple[int, int, bytes]]:
    """Packets kept for these frames: (ts, linktype, bytes) in frame order."""
    want = sorted(set(frames))
    out = []
    for i in range(0, len(want), 500):
        part = want[i : i + 500]
        marks = ",".join("?" * len(part))
        out += store.conn.execute(
            f"SELECT ts, linktype, data FROM evidence_packets WHERE capture_sha256 = ? "
            f"AND frame IN ({marks}) ORDER BY frame",
            (sha256, *part),
        ).fetchall()
    return [(int(t), int(lt), bytes(d)) for t, lt, d in out]


def sensors_brief(store: Store) -> list[dict[str, Any]]:
    """Name, interface, state and times of every sensor (what a report lists)."""
    return list(
        store.query(
            "SELECT name, interface, state, started_at, updated_at FROM sensors ORDER BY id"
        )
    )


def sensor_rows(store: Store) -> list[dict[str, Any]]:
    """Every sensor with its health, for `conduit sensor status` and the console."""
    out = []
    for r in store.query(
        "SELECT s.*, c.packets AS capture_packets, c.first_ts, c.last_ts FROM sensors s "
        "JOIN captures c ON c.id = s.capture_id ORDER BY s.id"
    ):
        r["health"] = json.loads(r["health"] or "{}")
        r["cursor"] = json.loads(r["cursor"] or "{}")
        out.append(r)
    return out


def seed_of(store: Store, sensor: SensorRow) -> dict[str, Any]:
    """The totals a restarted sensor goes on from: operations per function per
    conversation, operation counts, problem rows kept."""
    c = store.conn
    functions: dict[tuple[str, str, str, int, int, str], dict[str, int]] = {}
    for t, cl, sv, port, vlan, proto, text in c.execute(
        "SELECT v.transport, v.client_ip, v.server_ip, v.server_port, v.vlan, v.protocol, "
        "s.functions FROM conversation_stats s JOIN conversations v ON v.id = s.conversation_id "
        "WHERE s.capture_id = ? AND s.functions IS NOT NULL",
        (sensor.capture_id,),
    ):
        functions[(t, cl, sv, port, vlan, proto)] = json.loads(text)
    (stats,) = c.execute("SELECT stats FROM captures WHERE id = ?", (sensor.capture_id,)).fetchone()
    st = json.loads(stats or "{}")
    (kept,) = c.execute(
        "SELECT count(*) FROM problems WHERE capture_id = ?", (sensor.capture_id,)
    ).fetchone()
    return {
        "functions": functions,
        "operations": int(st.get("operations", 0)),
        "ops_by_status": dict(st.get("operations_by_status", {})),
        "problems_kept": int(kept),
    }
