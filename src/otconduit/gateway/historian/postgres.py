"""The historian in PostgreSQL (``sinks.postgres.dsn``), for sites that outgrow SQLite.

Same tables, columns and queries as the SQLite historian (see
:mod:`otconduit.gateway.historian.schema`); rows go straight into ``samples`` (PostgreSQL
appends to its heap, so SQLite's append buffer buys nothing here). Needs psycopg 3
(``pip install 'psycopg[binary]'``), imported only when this backend is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from otconduit.gateway.historian.schema import (
    COLUMNS,
    MIGRATIONS_TABLE,
    POSTGRES_MIGRATIONS,
    Row,
)
from otconduit.gateway.historian.store import (
    UPSERT,
    HistorianError,
    HistorianUnavailable,
    SqlHistorian,
)

_LOCK_KEY = 0x636F6E64756974  # pg_advisory_xact_lock key for migrations ("conduit")
_VALUES = ", ".join(["%s"] * 6)
_COPY_ROWS = 100  # from this many rows a batch goes through COPY instead of executemany


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise HistorianError(
            "the PostgreSQL historian needs psycopg 3: pip install 'psycopg[binary]'"
        ) from exc
    return psycopg


def redact(dsn: str) -> str:
    """``user@host:port/dbname`` of a DSN, never its password."""
    psycopg = _psycopg()
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    host = info.get("host") or info.get("hostaddr") or "localhost"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{host}{port}/{info.get('dbname', '')}"


class PostgresHistorian(SqlHistorian):
    """The historian in a PostgreSQL database. ``readonly=True`` for queries (read-only
    transactions, no migration). One thread owns an instance."""

    backend = "postgresql"
    _ph = "%s"

    def __init__(self, dsn: str, *, readonly: bool = False, connect_timeout: int = 10) -> None:
        super().__init__()
        self._pg = _psycopg()
        self.dsn = dsn
        self.target = redact(dsn)
        self.readonly = readonly
        self.conn: Any = None
        with self._translate():
            try:
                self._pg.conninfo.conninfo_to_dict(dsn)
            except self._pg.ProgrammingError as exc:
                raise HistorianError(f"sinks.postgres.dsn is not a valid DSN: {exc}") from exc
            self.conn = self._pg.connect(dsn, autocommit=True, connect_timeout=connect_timeout)
            try:
                if readonly:
                    self._check_schema()
                else:
                    self._migrate()
            except BaseException:
                self.conn.close()
                raise

    # -- lifecycle -------------------------------------------------------------
    def _migrate(self) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))  # one migrator
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            cur.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")
            done = {r[0] for r in cur.fetchall()}
            for name, sql in POSTGRES_MIGRATIONS:
                if name in done:
                    continue
                for stmt in sql.split(";"):
                    if stmt.strip():
                        cur.execute(stmt)
                cur.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} VALUES (%s, %s)",
                    (name, datetime.now(UTC).isoformat(timespec="seconds")),
                )

    def _check_schema(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (MIGRATIONS_TABLE,))
            if cur.fetchone()[0] is None:
                raise HistorianError(f"{self.target} holds no Conduit historian")
        done = set(self._migrations_applied())
        missing = [n for n, _ in POSTGRES_MIGRATIONS if n not in done]
        if missing:
            raise HistorianError(
                f"historian {self.target} needs migration {missing[0]}: start the gateway "
                "once to upgrade it"
            )

    def _migrations_applied(self) -> list[str]:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY name")
            return [r[0] for r in cur.fetchall()]

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    # -- dialect hooks -----------------------------------------------------------
    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        pg = self._pg
        try:
            yield
        except pg.OperationalError as exc:
            raise HistorianUnavailable(
                f"historian {self.target}: {str(exc).strip()}, will retry"
            ) from exc
        except pg.Error as exc:
            raise HistorianError(f"historian {self.target}: {str(exc).strip()}") from exc

    @contextlib.contextmanager
    def _write_txn(self) -> Iterator[Any]:
        with self.conn.transaction(), self.conn.cursor() as cur:
            yield cur

    @contextlib.contextmanager
    def _read_txn(self) -> Iterator[Any]:
        if self.conn.info.transaction_status != self._pg.pq.TransactionStatus.IDLE:
            with self.conn.cursor() as cur:
                yield cur
            return
        with self.conn.transaction(), self.conn.cursor() as cur:
            # One snapshot for every statement of the read.
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield cur

    @contextlib.contextmanager
    def _stream(self, cur: Any) -> Iterator[Any]:
        # A server-side cursor: a long history is fetched in chunks, not all at once.
        with self.conn.cursor(name="conduit_history") as named:
            yield named

    def _insert_rows(self, cur: Any, rows: list[Row]) -> None:
        if len(rows) < _COPY_ROWS:
            cur.executemany(f"INSERT INTO samples ({COLUMNS}) VALUES ({_VALUES}){UPSERT}", rows)
            return
        # Large batches: COPY into a scratch table, then one upsert in key order. The last
        # row of a (tag, time) pair wins, as with executemany.
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incoming (ord INTEGER, tag_id INTEGER, "
            "ts_ns BIGINT, value DOUBLE PRECISION, value_text TEXT, quality SMALLINT, "
            "flags SMALLINT) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY incoming (ord, {COLUMNS}) FROM STDIN") as copy:
            for i, row in enumerate(rows):
                copy.write_row((i, *row))
        cur.execute(
            f"INSERT INTO samples ({COLUMNS}) SELECT DISTINCT ON (tag_id, ts_ns) {COLUMNS} "
            f"FROM incoming ORDER BY tag_id, ts_ns, ord DESC{UPSERT}"
        )
