"""Schema migrations as files: ``migrations/NNNN_name.sql``, applied in name order, each
in its own transaction, and recorded by name in ``schema_migrations``.

A migration is never edited once released: add a new file instead, so every database
in the field can be brought forward from whatever version it holds. The name recorded is
the file's stem (``0004_sensor``), which is what databases made before the files existed
recorded too.

A file is cut into statements where SQLite itself says a statement ends
(:func:`sqlite3.complete_statement`), never on every ``;``: a semicolon inside a string,
a comment or a trigger body does not end anything. PostgreSQL runs a file whole (one
multi-statement query inside the migration's transaction), so ``$$`` bodies need no care.

Both backends apply the same names in the same order and record them identically. To
add a migration for both:

* write ``migrations/NNNN_name.sql`` in SQL both engines take (``BIGINT`` for numbers,
  ``TEXT`` for JSON, natural keys or ``RETURNING``, no ``AUTOINCREMENT``, no ``PRAGMA``):
  that one file is applied on SQLite and on PostgreSQL; or
* when the engines need different text, also write ``migrations/postgresql/NNNN_name.sql``
  with the same name: PostgreSQL applies it instead of the shared file.

A PostgreSQL file without a shared file of the same name is an error (the histories would
differ), as are two files sharing a number.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.abc import Traversable
from typing import Any

from otconduit.store.backend import POSTGRESQL, SQLITE, PgConnection

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+$")
TABLE = "schema_migrations"


class MigrationError(Exception):
    """A migration file is misnamed or cannot be cut into statements."""


@dataclass(frozen=True, slots=True)
class Migration:
    name: str  # the file's stem, as recorded in schema_migrations
    sql: str


def load(kind: str = SQLITE) -> list[Migration]:
    """Every migration shipped with the package for backend ``kind``, in the order they
    apply (a ``postgresql/`` file replaces the shared one of the same name)."""
    folder = resources.files("otconduit.store").joinpath("migrations")
    shared = _files(folder)
    if kind == POSTGRESQL:
        own = _files(folder.joinpath(POSTGRESQL))
        stray = sorted(set(own) - set(shared))
        if stray:
            raise MigrationError(
                f"postgresql/{stray[0]}.sql has no shared migrations/{stray[0]}.sql: "
                "both backends must record the same names"
            )
        shared.update(own)
    out = [Migration(name, text) for name, text in sorted(shared.items())]
    numbers = [m.name[:4] for m in out]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"two migrations share a number: {numbers}")
    return out


def _files(folder: Traversable) -> dict[str, str]:
    out: dict[str, str] = {}
    if not folder.is_dir():
        return out
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        name = entry.name.removesuffix(".sql")
        if not _NAME.match(name):
            raise MigrationError(f"migration file {entry.name}: name it NNNN_words.sql")
        out[name] = entry.read_text(encoding="utf-8")
    return out


def statements(sql: str) -> list[str]:
    """``sql`` cut into single statements (comment-only pieces dropped)."""
    out: list[str] = []
    start = 0
    for i, ch in enumerate(sql):
        if ch != ";":
            continue
        piece = sql[start : i + 1]
        if sqlite3.complete_statement(piece):
            out.append(piece.strip())
            start = i + 1
    rest = sql[start:]
    if rest.strip():
        if not sqlite3.complete_statement(rest + "\n;"):
            raise MigrationError(f"unterminated statement: {rest.strip()[:60]!r}")
        out.append(rest.strip())
    return [s for s in out if _has_code(s)]


def _has_code(stmt: str) -> bool:
    """False for a piece that holds only comments and a ``;``."""
    text = re.sub(r"--[^\n]*", "", stmt)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return text.strip(" \t\r\n;") != ""


def applied(conn: Any) -> set[str]:
    """Names of the migrations a database records (creating the record table if new)."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied_at TEXT)")
    return {r[0] for r in conn.execute(f"SELECT name FROM {TABLE}")}


def recorded(conn: Any) -> list[str]:
    """Recorded names in order, without creating anything (a read-only connection)."""
    return [r[0] for r in conn.execute(f"SELECT name FROM {TABLE} ORDER BY 1")]


def pending(conn: Any, migrations: list[Migration]) -> list[str]:
    """Migrations a read-only connection sees missing (raises if not a Conduit database)."""
    done = set(recorded(conn))
    return [m.name for m in migrations if m.name not in done]


# Any fixed number: PostgreSQL sessions upgrading the same database take turns.
_PG_LOCK = 0x0C0D_1700


def upgrade(conn: sqlite3.Connection | PgConnection, migrations: list[Migration]) -> list[str]:
    """Apply what the database lacks, each migration atomically with its record (an
    autocommit connection). Returns the names applied."""
    if isinstance(conn, PgConnection):
        conn.execute("SELECT pg_advisory_lock(?)", (_PG_LOCK,))
        try:
            return _upgrade(conn, migrations)
        finally:
            conn.execute("SELECT pg_advisory_unlock(?)", (_PG_LOCK,))
    return _upgrade(conn, migrations)


def _upgrade(conn: sqlite3.Connection | PgConnection, migrations: list[Migration]) -> list[str]:
    done = applied(conn)
    ran = []
    for m in migrations:
        if m.name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if isinstance(conn, PgConnection):
                conn.script(m.sql)
            else:
                for stmt in statements(m.sql):
                    conn.execute(stmt)
            conn.execute(
                f"INSERT INTO {TABLE} VALUES (?, ?)",
                (m.name, datetime.now(UTC).isoformat(timespec="seconds")),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        ran.append(m.name)
    return ran
