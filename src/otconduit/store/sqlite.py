"""The monitor store: SQLite (WAL, one writer connection) or PostgreSQL, named migrations.

``Store(target)`` opens a SQLite file (a path or ``sqlite:///path``) or a PostgreSQL
database (``postgresql://user@host/db``); :mod:`otconduit.store.backend` tells them apart
and holds the few dialect differences, so every query module runs on both. On PostgreSQL
the operation chunks go into day partitions made on demand (:mod:`.partitions`).

Analysis writes operations in large batches (``executemany``) while a capture is
``running`` and writes its aggregates and the ``complete`` mark in one final
transaction. A crash therefore leaves earlier captures untouched and the broken one
marked ``running``; the next analysis of that file purges and redoes it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from otconduit.store import backend, migrate, partitions
from otconduit.store.backend import POSTGRESQL, SQLITE, Connection, PgConnection, TargetError
from otconduit.store.opchunks import OpBatch, pack


class StoreError(Exception):
    """The database cannot be opened, migrated or written; the message says which and why."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(slots=True)
class AssetRecord:
    """What one analysis learnt about one asset, ready to merge into the store."""

    ip: str
    vlan: int
    mac: str | None
    first_seen: int
    last_seen: int
    packets_sent: int = 0
    packets_received: int = 0
    # (kind, name, value, source, confidence, evidence)
    attributes: list[tuple[str, str, str, str, float, str | None]] = field(default_factory=list)


@dataclass(slots=True)
class ConversationRecord:
    transport: str
    client_ip: str
    server_ip: str
    server_port: int
    vlan: int
    protocol: str
    connections: int
    packets_c2s: int
    packets_s2c: int
    bytes_c2s: int
    bytes_s2c: int
    first_seen: int
    last_seen: int
    functions: dict[str, int]


class Transaction:
    """An open write transaction; long imports commit what they have every so often."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def checkpoint(self) -> None:
        """Commit what is written so far and go on in a new transaction."""
        self._conn.execute("COMMIT")
        self._conn.execute("BEGIN IMMEDIATE")


@dataclass(slots=True)
class CaptureRow:
    id: int
    path: str
    sha256: str
    status: str


class Store:
    """The monitor store (SQLite file or PostgreSQL database). Use as a context manager
    or call :meth:`close`."""

    conn: Connection

    def __init__(self, target: str | Path, *, readonly: bool = False) -> None:
        try:
            self.kind, where = backend.parse(target)
        except TargetError as exc:
            raise StoreError(str(exc)) from None
        # What to pass to open this store again (another thread's writer); ``label`` is
        # what messages name (a URL without its password).
        self.target = where
        self.label = where if self.kind == SQLITE else backend.redact(where)
        self.path = Path(where)
        self._days: set[int] = set()  # PostgreSQL partitions known to exist
        if self.kind == POSTGRESQL:
            self._open_pg(where, readonly)
            return
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(
                        f"database {self.path} does not exist: run `conduit analyze` first "
                        "or pass --db"
                    )
                uri = f"file:{self.path}?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                self.conn = sqlite3.connect(self.path, isolation_level=None)
                # Operation chunks are blobs of megabytes: 64 KiB pages write them about
                # twice as fast as the default 4 KiB (takes effect on a new database only).
                self.conn.execute("PRAGMA page_size=65536")
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA busy_timeout=5000")
            if readonly:
                self._check_schema()
            else:
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot use database {self.path}: {exc} (is it a Conduit database?)"
            ) from exc

    def _open_pg(self, url: str, readonly: bool) -> None:
        import psycopg

        try:
            self.conn = backend.connect_pg(url, readonly=readonly)
        except TargetError as exc:
            raise StoreError(str(exc)) from None
        try:
            if readonly:
                self._check_schema()
            else:
                self._migrate()
        except psycopg.Error as exc:
            self.conn.close()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(f"cannot use database {self.label}: {first}") from None
        except StoreError:
            self.conn.close()
            raise

    # -- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        assert isinstance(self.conn, sqlite3.Connection | PgConnection)
        try:
            migrate.upgrade(self.conn, migrate.load(self.kind))
        except migrate.MigrationError as exc:
            raise StoreError(f"cannot upgrade database {self.label}: {exc}") from exc

    def _check_schema(self) -> None:
        try:
            missing = migrate.pending(self.conn, migrate.load(self.kind))
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path} is not a Conduit database ({exc})") from exc
        except _pg_undefined_table() as exc:
            raise StoreError(f"{self.label} is not a Conduit database (no {migrate.TABLE})") from (
                exc
            )
        if missing:
            raise StoreError(
                f"database {self.label} needs migration {missing[0]}: run any writing command "
                "(e.g. `conduit analyze`) to upgrade it"
            )

    def schema_version(self) -> list[str]:
        return migrate.recorded(self.conn)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction (``BEGIN IMMEDIATE``: the write lock is taken at once, so
        two writers queue instead of failing half-way): committed when the block ends,
        rolled back when it raises."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield Transaction(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query in the block sees the same committed state."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    # -- captures ----------------------------------------------------------
    def find_capture(self, sha256: str) -> CaptureRow | None:
        row = self.conn.execute(
            "SELECT id, path, sha256, status FROM captures WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return CaptureRow(*row) if row else None

    def begin_capture(self, path: str, sha256: str, size: int, fmt: str) -> int:
        """Register a capture as ``running``; replaces any earlier analysis of the same bytes.
        The path is recorded absolute: evidence is cut from the file later, from any folder."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            old = self.find_capture(sha256)
            if old is not None:
                self._purge(old.id)
            (capture_id,) = self.conn.execute(
                "INSERT INTO captures (path, sha256, size, format, status, started_at) "
                "VALUES (?, ?, ?, ?, 'running', ?) RETURNING id",
                (os.path.abspath(path), sha256, size, fmt, _now()),
            ).fetchone()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return int(capture_id)

    def _purge(self, capture_id: int) -> None:
        for table in (
            "op_chunks",
            "problems",
            "problem_counts",
            "conversation_stats",
            "asset_sightings",
            "asset_attributes",
        ):
            self.conn.execute(f"DELETE FROM {table} WHERE capture_id = ?", (capture_id,))
        self.conn.execute("DELETE FROM captures WHERE id = ?", (capture_id,))
        self.conn.execute(
            "DELETE FROM conversations WHERE id NOT IN "
            "(SELECT conversation_id FROM conversation_stats) "
            "AND id NOT IN (SELECT conversation_id FROM op_chunks)"
        )
        self.conn.execute(
            "DELETE FROM assets WHERE id NOT IN (SELECT asset_id FROM asset_sightings) "
            "AND id NOT IN (SELECT asset_id FROM asset_attributes)"
        )

    def asset_id(self, ip: str, vlan: int, mac: str | None) -> int:
        """Id of an asset, created when new; a MAC seen now replaces the one recorded,
        no MAC replaces nothing (inside the caller's transaction). Looked up before
        inserting: PostgreSQL spends a sequence number on every insert that conflicts,
        and ids must not depend on the backend."""
        row = self.conn.execute(
            "SELECT id FROM assets WHERE ip = ? AND vlan = ?", (ip, vlan)
        ).fetchone()
        if row is not None:
            if mac is not None:
                self.conn.execute(
                    "UPDATE assets SET mac = ? WHERE id = ? AND (mac IS NULL OR mac != ?)",
                    (mac, row[0], mac),
                )
            return int(row[0])
        (asset_id,) = self.conn.execute(
            "INSERT INTO assets (ip, vlan, mac) VALUES (?, ?, ?) RETURNING id", (ip, vlan, mac)
        ).fetchone()
        return int(asset_id)

    def conversation_id(
        self,
        transport: str,
        client_ip: str,
        server_ip: str,
        server_port: int,
        vlan: int,
        protocol: str,
    ) -> int:
        """Id of a conversation, creating it (autocommit) so operations can refer to it
        (looked up first, for the reason :meth:`asset_id` gives)."""
        key = (transport, client_ip, server_ip, server_port, vlan, protocol)
        find = (
            "SELECT id FROM conversations WHERE transport=? AND client_ip=? AND server_ip=? "
            "AND server_port=? AND vlan=? AND protocol=?"
        )
        row = self.conn.execute(find, key).fetchone()
        if row is None:
            row = self.conn.execute(
                "INSERT INTO conversations "
                "(transport, client_ip, server_ip, server_port, vlan, protocol) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                key,
            ).fetchone()
            if row is None:  # another writer made it meanwhile
                row = self.conn.execute(find, key).fetchone()
        return int(row[0])

    def insert_op_chunks(self, capture_id: int, chunks: Sequence[tuple[int, OpBatch]]) -> None:
        """Write operation batches (one per conversation) in one transaction."""
        rows = []
        for conv_id, batch in chunks:
            if not len(batch):
                continue
            ts = batch.ints["ts"]
            rows.append(
                (capture_id, conv_id, int(ts.min()), int(ts.max()), len(batch), pack(batch))
            )
        if not rows:
            return
        if self.kind == POSTGRESQL:
            self.ensure_partitions(r[2] for r in rows)
        self.conn.execute("BEGIN")
        try:
            self.conn.executemany(
                "INSERT INTO op_chunks (capture_id, conversation_id, first_ts, last_ts, count, "
                "data) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def finish_capture(
        self,
        capture_id: int,
        *,
        status: str,
        packets: int,
        first_ts: int | None,
        last_ts: int | None,
        error: str | None,
        stats: dict[str, Any],
        assets: Iterable[AssetRecord],
        conversations: Iterable[ConversationRecord],
        problems: Iterable[tuple[int | None, str, str | None, str, str | None, str | None]],
        problem_counts: dict[tuple[str, str], int],
    ) -> None:
        """Write everything a finished analysis learnt, and mark the capture, in one transaction."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for a in assets:
                asset_id = self.asset_id(a.ip, a.vlan, a.mac)
                c.execute(
                    "INSERT INTO asset_sightings VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        asset_id,
                        capture_id,
                        a.mac,
                        a.first_seen,
                        a.last_seen,
                        a.packets_sent,
                        a.packets_received,
                    ),
                )
                c.executemany(
                    "INSERT INTO asset_attributes (asset_id, capture_id, kind, name, "
                    "value, source, confidence, evidence, first_seen, last_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [
                        (asset_id, capture_id, k, n, v, s, conf, ev, a.first_seen, a.last_seen)
                        for (k, n, v, s, conf, ev) in a.attributes
                    ],
                )
            for cv in conversations:
                conv_id = self.conversation_id(
                    cv.transport, cv.client_ip, cv.server_ip, cv.server_port, cv.vlan, cv.protocol
                )
                c.execute(
                    "INSERT INTO conversation_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        conv_id,
                        capture_id,
                        cv.connections,
                        cv.packets_c2s,
                        cv.packets_s2c,
                        cv.bytes_c2s,
                        cv.bytes_s2c,
                        cv.first_seen,
                        cv.last_seen,
                        json.dumps(cv.functions, sort_keys=True),
                    ),
                )
            c.executemany(
                "INSERT INTO problems (capture_id, frame, layer, protocol, reason, src_ip, dst_ip) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(capture_id, *p) for p in problems],
            )
            c.executemany(
                "INSERT INTO problem_counts VALUES (?, ?, ?, ?)",
                [(capture_id, layer, reason, n) for (layer, reason), n in problem_counts.items()],
            )
            c.execute(
                "UPDATE captures SET status=?, packets=?, first_ts=?, last_ts=?, finished_at=?, "
                "error=?, stats=? WHERE id=?",
                (
                    status,
                    packets,
                    first_ts,
                    last_ts,
                    _now(),
                    error,
                    json.dumps(stats, sort_keys=True),
                    capture_id,
                ),
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def ensure_partitions(self, first_ts: Iterable[int]) -> None:
        """PostgreSQL: make the day partitions chunks starting at ``first_ts`` go into
        (outside any transaction; a no-op for days this store already made)."""
        if isinstance(self.conn, PgConnection):
            partitions.ensure(self.conn, {partitions.day_of(t) for t in first_ts}, self._days)

    def forget_partitions(self) -> None:
        """Partitions were dropped: make them again when next written to."""
        self._days.clear()

    # -- queries -----------------------------------------------------------
    def captures(self) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT id, path, sha256, size, format, status, packets, first_ts, last_ts, "
            "started_at, finished_at, error FROM captures ORDER BY id"
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """Run a read query and yield rows as dicts (used by the reporting layer)."""
        cur = self.conn.execute(sql, params)
        cols = [d[0] for d in cur.description]
        for r in cur:
            yield dict(zip(cols, r, strict=True))


def _pg_undefined_table() -> type[Exception]:
    """psycopg's "no such table" error, imported only when PostgreSQL is in use."""
    import psycopg

    return psycopg.errors.UndefinedTable
