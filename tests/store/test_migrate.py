"""The migration runner: files cut where SQLite says a statement ends (not on every
``;``), each migration applied atomically with its record, names kept as released."""

from __future__ import annotations

import sqlite3

import pytest

from otconduit.store.migrate import Migration, MigrationError, load, statements, upgrade

# Databases in the field record these names: a rename would re-run a migration.
RELEASED = [
    "0001_core",
    "0002_policy",
    "0003_alerts",
    "0004_sensor",
    "0005_violation_targets",
    "0006_incidents",
    "0007_advisories",
]

TRICKY = """
-- a comment; with a semicolon
CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT DEFAULT 'a;b', n INTEGER DEFAULT 0);
/* a block comment; also with one */
CREATE TABLE log (what TEXT);
CREATE TRIGGER t_log AFTER INSERT ON t BEGIN
    INSERT INTO log VALUES ('inserted; ' || new.note);
    UPDATE t SET n = n + 1 WHERE id = new.id;
END;
INSERT INTO t (note) VALUES ('semi;colon ''quoted;'' text');
-- trailing comment only
"""


def _conn() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", isolation_level=None)


def test_shipped_migrations_keep_their_released_names() -> None:
    names = [m.name for m in load()]
    assert names[: len(RELEASED)] == RELEASED
    assert names == sorted(names)


def test_statements_respect_strings_comments_and_triggers() -> None:
    got = statements(TRICKY)
    assert len(got) == 4
    assert got[0].startswith("-- a comment") and got[0].endswith("'a;b', n INTEGER DEFAULT 0);")
    assert got[2].startswith("CREATE TRIGGER") and got[2].endswith("END;")
    assert got[3].startswith("INSERT INTO t") and "''quoted;''" in got[3]


def test_statements_take_a_last_statement_without_semicolon() -> None:
    assert statements("CREATE TABLE a (x);\nCREATE TABLE b (y)\n") == [
        "CREATE TABLE a (x);",
        "CREATE TABLE b (y)",
    ]


def test_an_unterminated_statement_is_refused() -> None:
    with pytest.raises(MigrationError, match="unterminated"):
        statements("CREATE TABLE a (x);\nINSERT INTO a VALUES ('never closed);\n")


def test_upgrade_runs_a_trigger_migration() -> None:
    c = _conn()
    assert upgrade(c, [Migration("0001_tricky", TRICKY)]) == ["0001_tricky"]
    assert c.execute("SELECT note, n FROM t").fetchall() == [("semi;colon 'quoted;' text", 1)]
    assert c.execute("SELECT what FROM log").fetchall() == [
        ("inserted; semi;colon 'quoted;' text",)
    ]
    c.execute("INSERT INTO t (id) VALUES (7)")  # the trigger is whole
    assert c.execute("SELECT n FROM t WHERE id = 7").fetchone() == (1,)
    assert upgrade(c, [Migration("0001_tricky", TRICKY)]) == []  # recorded: never again


def test_a_failing_migration_leaves_nothing_behind() -> None:
    c = _conn()
    good = Migration("0001_good", "CREATE TABLE a (x);")
    bad = Migration("0002_bad", "CREATE TABLE b (y);\nINSERT INTO nowhere VALUES (1);")
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        upgrade(c, [good, bad])
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "a" in tables and "b" not in tables
    assert [r[0] for r in c.execute("SELECT name FROM schema_migrations")] == ["0001_good"]
    assert not c.in_transaction
