"""The embedded historian: one SQLite file (``sinks.historian.path``), separate from the
monitor's database.

WAL, one writer connection (the sink's writer thread), read-only connections for queries.
Writes are appended to ``recent`` (sequential pages, cheap whatever the number of tags)
and moved into ``samples`` in key order by :meth:`SQLiteHistorian.flush`, which runs when
``flush_rows`` rows are buffered, when the sink is idle, before maintenance and at close.
Both steps are single transactions, so a crash at any point loses nothing committed and
never leaves half a batch; queries read ``samples`` and ``recent`` in one read
transaction and let a buffered row win over a stored one at the same time.

Durability: ``synchronous=NORMAL`` (the default here) keeps every commit across a crash
of the process; after a power loss or OS crash the last commits may be rolled back (the
file stays consistent). ``synchronous="full"`` keeps those too, at some speed.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from otconduit.gateway.historian.schema import (
    COLUMNS,
    MIGRATIONS_TABLE,
    SQLITE_MIGRATIONS,
    Row,
)
from otconduit.gateway.historian.store import (
    UPSERT,
    HistorianError,
    HistorianUnavailable,
    SampleRow,
    SqlHistorian,
)

FLUSH_ROWS = 50_000
# Primary result codes that describe a passing condition rather than a broken setup.
_TRANSIENT = {
    5: "SQLITE_BUSY",
    6: "SQLITE_LOCKED",
    10: "SQLITE_IOERR",
    13: "SQLITE_FULL",
    15: "SQLITE_PROTOCOL",
}


class SQLiteHistorian(SqlHistorian):
    """The historian in a SQLite file. ``readonly=True`` for queries (never creates or
    migrates the file). One thread owns an instance."""

    backend = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        synchronous: str = "normal",
        flush_rows: int = FLUSH_ROWS,
        busy_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.target = str(self.path)
        self.readonly = readonly
        self.flush_rows = flush_rows
        self._recent = 0
        if synchronous.lower() not in ("normal", "full"):
            raise HistorianError(f"synchronous must be normal or full, not {synchronous!r}")
        with self._translate(opening=True):
            if readonly:
                if not self.path.exists():
                    raise HistorianError(
                        f"no historian database at {self.path}: run the gateway first, or "
                        "point to its sinks.historian.path"
                    )
                self.conn = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, isolation_level=None
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                self._setup(readonly, synchronous, busy_timeout)
            except BaseException:
                self.conn.close()
                raise

    def _setup(self, readonly: bool, synchronous: str, busy_timeout: float) -> None:
        c = self.conn
        c.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        c.execute("PRAGMA cache_size=-65536")  # 64 MiB: a page per tag stays cached
        if readonly:
            self._check_schema()
            return
        c.execute("PRAGMA journal_mode=WAL")
        c.execute(f"PRAGMA synchronous={synchronous.upper()}")
        c.execute("PRAGMA wal_autocheckpoint=4000")  # pages (~16 MiB) between checkpoints
        c.execute("PRAGMA temp_store=MEMORY")
        self._migrate()
        self._recent = int(c.execute("SELECT count(*) FROM recent").fetchone()[0])

    # -- lifecycle -------------------------------------------------------------
    def _migrate(self) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")  # one process migrates; others wait, then see it done
        try:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in c.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
            for name, sql in SQLITE_MIGRATIONS:
                if name in done:
                    continue
                for stmt in sql.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} VALUES (?, ?)",
                    (name, datetime.now(UTC).isoformat(timespec="seconds")),
                )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _check_schema(self) -> None:
        try:
            done = set(self._migrations_applied())
        except sqlite3.OperationalError as exc:
            raise HistorianError(f"{self.path} is not a Conduit historian ({exc})") from exc
        missing = [n for n, _ in SQLITE_MIGRATIONS if n not in done]
        if missing:
            raise HistorianError(
                f"historian {self.path} needs migration {missing[0]}: start the gateway once "
                "to upgrade it"
            )

    def _migrations_applied(self) -> list[str]:
        return [
            r[0] for r in self.conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY name")
        ]

    def close(self) -> None:
        if getattr(self, "conn", None) is None:
            return
        try:
            if not self.readonly:
                with contextlib.suppress(HistorianError):
                    self.flush()
        finally:
            self.conn.close()
            self.conn = None  # type: ignore[assignment]

    # -- dialect hooks -----------------------------------------------------------
    @contextlib.contextmanager
    def _translate(self, opening: bool = False) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None
            if primary in _TRANSIENT:
                raise HistorianUnavailable(
                    f"historian {self.path}: {exc} ({_TRANSIENT[primary]}), will retry"
                ) from exc
            hint = " (is it a Conduit historian?)" if opening else ""
            raise HistorianError(f"historian {self.path}: {exc}{hint}") from exc

    @contextlib.contextmanager
    def _write_txn(self) -> Iterator[sqlite3.Cursor]:
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _read_txn(self) -> Iterator[sqlite3.Cursor]:
        cur = self.conn.cursor()
        nested = self.conn.in_transaction
        if not nested:
            cur.execute("BEGIN")  # one snapshot over samples and recent
        try:
            yield cur
        finally:
            if not nested and self.conn is not None and self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def _insert_rows(self, cur: Any, rows: list[Row]) -> None:
        cur.executemany(f"INSERT INTO recent ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows)

    def _written(self, n: int) -> None:
        self._recent += n
        if self._recent >= self.flush_rows:
            # The batch is committed whatever happens here; a flush that cannot run now
            # (database busy) runs on a later write, when idle or at close.
            with contextlib.suppress(HistorianUnavailable):
                self.flush()

    def flush(self) -> int:
        """Move the append buffer into ``samples`` (key order, last write wins)."""
        if self.readonly or not self._recent:
            return 0
        with self._translate(), self._write_txn() as cur:
            cur.execute(
                f"INSERT INTO samples ({COLUMNS}) SELECT {COLUMNS} FROM recent WHERE true "
                f"ORDER BY tag_id, ts_ns, rowid{UPSERT}"
            )
            cur.execute("DELETE FROM recent")
        moved, self._recent = self._recent, 0
        return moved

    @property
    def buffered(self) -> int:
        """Rows written but not yet flushed into ``samples``."""
        return self._recent

    def _recent_summary(self, cur: Any) -> tuple[dict[int, int], dict[int, SampleRow]]:
        cur.execute(
            "SELECT r.tag_id, count(DISTINCT r.ts_ns) FROM recent r WHERE NOT EXISTS "
            "(SELECT 1 FROM samples s WHERE s.tag_id = r.tag_id AND s.ts_ns = r.ts_ns) "
            "GROUP BY r.tag_id"
        )
        extra = {tid: n for tid, n in cur.fetchall()}
        last: dict[int, SampleRow] = {}
        cur.execute(
            "SELECT tag_id, ts_ns, value, value_text, quality, flags FROM recent ORDER BY rowid"
        )
        for tid, *row in cur:
            prev = last.get(tid)
            if prev is None or row[0] >= prev[0]:
                last[tid] = tuple(row)
        return extra, last

    def _recent_rows(self, cur: Any, tag_id: int, lo: int, hi: int) -> list[SampleRow]:
        cur.execute(
            "SELECT ts_ns, value, value_text, quality, flags FROM recent "
            "WHERE tag_id = ? AND ts_ns >= ? AND ts_ns < ? ORDER BY rowid",
            (tag_id, lo, hi),
        )
        by_ts: dict[int, SampleRow] = {r[0]: tuple(r) for r in cur.fetchall()}
        return [by_ts[ts] for ts in sorted(by_ts)]
