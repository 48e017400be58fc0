"""The backend seam: where a store target (a SQLite file or a PostgreSQL URL) is told
apart, opened, and the few dialect differences live.

Queries in the store are written once, in the SQL both engines understand (``INSERT ...
ON CONFLICT``, ``RETURNING id``, ``coalesce``...). What cannot be written once is here and
explicit:

* placeholders: the store writes ``?`` (sqlite3's style); :func:`to_pg` turns each ``?``
  outside a quoted string into psycopg's ``%s`` and doubles every literal ``%``;
* ``BEGIN IMMEDIATE`` (SQLite: take the write lock now) is plain ``BEGIN`` on PostgreSQL,
  whose row locks make writers queue anyway;
* SQLite functions the queries use and PostgreSQL lacks (``group_concat``,
  ``json_group_array``, ``json_each`` over text, two-argument ``max``/``min``, the
  ``ip_key`` sort key) are defined in PostgreSQL's schema
  (``migrations/postgresql/0001_core.sql``), so those queries are not rewritten at all;
* tables SQLite gives an implicit ``rowid`` that queries read get an identity column of
  that name on PostgreSQL.

SQLite connections are the plain :class:`sqlite3.Connection` (no wrapper, no per-row cost
on the analysis hot path); PostgreSQL connections are :class:`PgConnection`, the small
part of that interface the store uses, over psycopg 3 in autocommit mode (transactions
are the store's explicit ``BEGIN``/``COMMIT``, as with sqlite3's ``isolation_level=None``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
_PG_SCHEMES = ("postgresql", "postgres")


class Cursor(Protocol):
    """What the store reads from a cursor: sqlite3's and psycopg's both fit."""

    @property
    def description(self) -> Any: ...

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the store asks of a connection: :class:`sqlite3.Connection` as it is, or a
    :class:`PgConnection`. Nothing SQLite-only (``lastrowid``, ``total_changes``,
    ``create_function``) is in it, so mypy finds a query module that relies on one."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Cursor: ...

    def close(self) -> None: ...


class TargetError(ValueError):
    """A ``--db`` value that names no usable database (the message is one line)."""


def is_url(target: str | Path) -> bool:
    """True when ``target`` names a PostgreSQL server rather than a SQLite file."""
    return parse(target)[0] == POSTGRESQL


def parse(target: str | Path) -> tuple[str, str]:
    """``(kind, where)``: ``("sqlite", path)`` or ``("postgresql", url)``.

    A :class:`~pathlib.Path` collapses ``//``: a URL that went through a ``Path`` typed
    option arrives as ``postgresql:/user@host/db``; it is given its second slash back, so
    ``--db`` and ``$CONDUIT_DB`` take a URL without every command changing its type.
    ``sqlite:///abs/path`` and ``sqlite:rel/path`` name a SQLite file explicitly.
    """
    text = str(target)
    scheme, sep, rest = text.partition(":")
    low = scheme.lower()
    if sep and low in _PG_SCHEMES:
        if not rest.startswith("//"):
            rest = _restore_slashes(rest)
        return POSTGRESQL, f"postgresql:{rest}"
    if sep and low == "sqlite":
        path = rest[2:] if rest.startswith("//") else rest
        if not path:
            raise TargetError(f"{text}: no file named (use sqlite:///path/to/conduit.db)")
        return SQLITE, path
    return SQLITE, text


_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@?#]*):[^@/?#]*@", re.I)
_PASSWORD_KV = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", re.I)


def _restore_slashes(rest: str) -> str:
    """The part after ``postgresql:`` as it was before a ``Path`` collapsed ``//``:
    ``/host/db`` was ``//host/db``; a lone ``/db`` (nothing after it but a query) was
    ``///db``, the local socket and database ``db``, unless it names a user or a port
    (``/user@host``, ``/host:5432``), which only a host does."""
    if not rest.startswith("/"):
        return "//" + rest
    path, q, query = rest[1:].partition("?")
    first = path.split("/", 1)[0]
    if "/" in path or "@" in first or ":" in first:
        return "/" + rest
    return "///" + path + q + query


def redact(url: str) -> str:
    """``url`` without its password (``user:***@host``; ``password=***`` in a query or a
    key=value string), fit for a message or a log. Text, not parsing: a malformed URL
    is redacted too."""
    return _PASSWORD_KV.sub(r"\1***", _USERINFO.sub(r"\1:***@", url))


# -- PostgreSQL ------------------------------------------------------------------
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\?|%", re.S)


@lru_cache(maxsize=2048)
def to_pg(sql: str) -> str:
    """``sql`` with sqlite3's ``?`` placeholders as psycopg's ``%s`` (not inside quotes or
    comments), every ``%`` doubled (psycopg reads ``%`` everywhere), and ``BEGIN
    IMMEDIATE`` as ``BEGIN``. Cached: the store's statements are a few hundred constants."""

    def swap(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok == "?":
            return "%s"
        return tok.replace("%", "%%")

    out = _TOKENS.sub(swap, sql)
    if out.lstrip().upper().startswith("BEGIN IMMEDIATE"):
        out = "BEGIN"
    return out


class PgConnection:
    """The part of :class:`sqlite3.Connection` the store uses, over a psycopg connection
    in autocommit mode. ``execute`` returns a psycopg cursor, which iterates, fetches and
    describes its columns as sqlite3's does."""

    kind = POSTGRESQL

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor()
        cur.execute(to_pg(sql), tuple(params))
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor()
        cur.executemany(to_pg(sql), rows)
        return cur

    def script(self, sql: str) -> None:
        """Run several statements as written (no placeholders): a migration file."""
        self.raw.execute(sql.encode())

    def close(self) -> None:
        self.raw.close()


def _numeric_loader() -> type[Any]:
    """``sum()`` of integers is ``numeric`` in PostgreSQL; sqlite3 gives an ``int``. Load
    whole numerics as ``int`` and the rest as ``float``, as SQLite would have typed them."""
    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        def load(self, data: Any) -> Any:
            text = bytes(data).decode()
            if text in ("NaN", "Infinity", "-Infinity"):
                return float(text)
            if "." in text:
                whole, _, frac = text.partition(".")
                return int(whole) if frac.strip("0") == "" else float(text)
            return int(text)

    return NumericLoader


def connect_pg(url: str, *, readonly: bool) -> PgConnection:
    """A PostgreSQL connection for the store; errors are one line, no password in it."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        raise TargetError("PostgreSQL needs psycopg 3: pip install 'psycopg[binary]'") from exc
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TargetError(f"cannot connect to {redact(url)}: {first}") from None
    except ValueError as exc:  # a malformed URL (bad port, ...)
        raise TargetError(f"cannot connect to {redact(url)}: {exc}") from None
    raw.adapters.register_loader("numeric", _numeric_loader())
    if readonly:
        raw.execute("SET default_transaction_read_only = on")
    return PgConnection(raw)


def store_exists(target: str | Path) -> bool:
    """Whether there is a store to read at ``target``: a SQLite file that exists, or any
    PostgreSQL URL (whether the server holds a Conduit database is for opening to say)."""
    kind, where = parse(target)
    return kind == POSTGRESQL or Path(where).exists()


def display(target: str | Path) -> str:
    """``target`` as a message shows it: a file as given, a URL whole and without its
    password (a ``Path`` option has collapsed its ``//``)."""
    try:
        kind, where = parse(target)
    except TargetError:
        return redact(str(target))
    return redact(where) if kind == POSTGRESQL else str(target)


def database_errors() -> tuple[type[Exception], ...]:
    """What a database raises when a statement fails, for either backend (``except
    database_errors():`` imports psycopg only when something was raised)."""
    import sqlite3

    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)
