"""The backend seam without a server: which backend a ``--db`` value names, the explicit
placeholder translation for psycopg, password redaction, and how migrations are chosen
per backend (a PostgreSQL file replaces the shared one of the same name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otconduit.store import backend, migrate
from otconduit.store.backend import POSTGRESQL, SQLITE, TargetError, parse, redact, to_pg


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("conduit.db", (SQLITE, "conduit.db")),
        ("/var/lib/conduit/c.db", (SQLITE, "/var/lib/conduit/c.db")),
        ("sqlite:///var/lib/c.db", (SQLITE, "/var/lib/c.db")),
        ("sqlite:rel/c.db", (SQLITE, "rel/c.db")),
        ("postgresql://u@h:5432/db", (POSTGRESQL, "postgresql://u@h:5432/db")),
        ("postgres://u@h/db", (POSTGRESQL, "postgresql://u@h/db")),
        ("PostgreSQL://u@h/db", (POSTGRESQL, "postgresql://u@h/db")),
        # What typer hands over after a Path option collapsed the '//':
        (
            Path("postgresql://u:pw@127.0.0.1:5432/db"),
            (POSTGRESQL, "postgresql://u:pw@127.0.0.1:5432/db"),
        ),
        ("postgresql:///db", (POSTGRESQL, "postgresql:///db")),  # local socket, default host
        # ... and where only the slashes are left to tell host from database:
        (Path("postgresql:///db"), (POSTGRESQL, "postgresql:///db")),
        (Path("postgresql:///db?host=/run/pg"), (POSTGRESQL, "postgresql:///db?host=/run/pg")),
        (Path("postgresql://u@h"), (POSTGRESQL, "postgresql://u@h")),
        (Path("postgresql://h:5433"), (POSTGRESQL, "postgresql://h:5433")),
    ],
)
def test_parse_tells_backends_apart(given: str | Path, expected: tuple[str, str]) -> None:
    assert parse(given) == expected


def test_a_sqlite_url_without_a_file_is_refused() -> None:
    with pytest.raises(TargetError, match="no file named"):
        parse("sqlite://")


def test_a_url_through_path_round_trips_to_the_same_connection_string() -> None:
    url = "postgresql://conduit@127.0.0.1:5432/conduit?sslmode=disable"
    assert parse(Path(url)) == (POSTGRESQL, url)
    assert parse(str(Path(url))) == (POSTGRESQL, url)


@pytest.mark.parametrize(
    ("sql", "pg"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
        # A '?' or '%' in a string literal is text, not a placeholder.
        (
            "SELECT '?', x FROM t WHERE y LIKE ? || '#%'",
            "SELECT '?', x FROM t WHERE y LIKE %s || '#%%'",
        ),
        ("SELECT 'it''s ?' WHERE a = ?", "SELECT 'it''s ?' WHERE a = %s"),
        ('SELECT "odd?name" FROM t WHERE a = ?', 'SELECT "odd?name" FROM t WHERE a = %s'),
        (
            "SELECT a -- why? 100%\nFROM t WHERE b = ?",
            "SELECT a -- why? 100%%\nFROM t WHERE b = %s",
        ),
        ("SELECT 10 % 3", "SELECT 10 %% 3"),
        ("BEGIN IMMEDIATE", "BEGIN"),
        ("  begin immediate", "BEGIN"),
        ("BEGIN", "BEGIN"),
        ("x LIKE ? ESCAPE '\\'", "x LIKE %s ESCAPE '\\'"),
    ],
)
def test_to_pg_translates_placeholders_only_outside_quotes(sql: str, pg: str) -> None:
    assert to_pg(sql) == pg


def test_redact_hides_passwords_even_in_malformed_urls() -> None:
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u:secret@h:notaport/db") == "postgresql://u:***@h:notaport/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact("postgresql://h/db?password=secret&sslmode=require") == (
        "postgresql://h/db?password=***&sslmode=require"
    )
    assert "secret" not in redact("host=h password=secret user=u")


def test_store_exists_for_urls_and_files(tmp_path: Path) -> None:
    assert backend.store_exists("postgresql://u@h/db")
    assert not backend.store_exists(tmp_path / "none.db")
    (tmp_path / "c.db").write_bytes(b"")
    assert backend.store_exists(tmp_path / "c.db")
    assert backend.store_exists(f"sqlite://{tmp_path / 'c.db'}")


# -- migrations per backend --------------------------------------------------------------
def test_both_backends_apply_the_same_names_in_the_same_order() -> None:
    lite = migrate.load(SQLITE)
    pg = migrate.load(POSTGRESQL)
    assert [m.name for m in pg] == [m.name for m in lite]
    by_name = {m.name: m.sql for m in lite}
    # 0001-0007 have PostgreSQL versions; a portable later migration is shared as is.
    for m in pg:
        if m.name <= "0007":
            assert m.sql != by_name[m.name], m.name
    assert "PARTITION BY RANGE (first_ts)" in pg[0].sql


def _fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        f = root / "migrations" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    monkeypatch.setattr(migrate.resources, "files", lambda _pkg: root)


def test_a_postgresql_file_replaces_the_shared_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_package(
        tmp_path,
        monkeypatch,
        {
            "0001_a.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);",
            "0002_b.sql": "CREATE TABLE b (x BIGINT);",
            "postgresql/0001_a.sql": "CREATE TABLE a (id BIGINT GENERATED BY DEFAULT AS IDENTITY);",
        },
    )
    lite = {m.name: m.sql for m in migrate.load(SQLITE)}
    pg = {m.name: m.sql for m in migrate.load(POSTGRESQL)}
    assert list(pg) == list(lite) == ["0001_a", "0002_b"]
    assert "IDENTITY" in pg["0001_a"] and "INTEGER PRIMARY KEY" in lite["0001_a"]
    assert pg["0002_b"] == lite["0002_b"]


def test_a_postgresql_only_migration_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_package(
        tmp_path,
        monkeypatch,
        {"0001_a.sql": "SELECT 1;", "postgresql/0002_b.sql": "SELECT 1;"},
    )
    assert [m.name for m in migrate.load(SQLITE)] == ["0001_a"]
    with pytest.raises(migrate.MigrationError, match="same names"):
        migrate.load(POSTGRESQL)
