"""The monitor store's contract on both backends: the same captures analysed into a SQLite
file and into a PostgreSQL database (a private cluster, see ``tests/pgcluster.py``) give
identical listings from every command and from the console's API, record the same
migrations, and lose the same operations to retention. PostgreSQL specifics (day
partitions made on demand, dropped whole) and the one-line errors for a bad URL, an
unreachable server and a wrong password are checked here too.

The PostgreSQL cases skip, saying why, when the server binaries or psycopg are absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from otconduit.cli.main import app as cli
from otconduit.store import Store, StoreError
from otconduit.store.backend import PgConnection
from otconduit.store.partitions import DAY_NS, existing, name_of
from otconduit.store.retention import cutoff, prune_operations
from tests.conftest import CORPUS, DATA, needs_shared
from tests.console.conftest import CAPTURES, POLICY, make_env
from tests.pgcluster import PgCluster, drop_database, new_database, pg_cluster  # noqa: F401

MODBUS_CORPUS = CORPUS / "iti" / "ModbusTCP" / "ModbusTCP.pcap"
# Wall-clock times of when something was written: they differ between two runs.
VOLATILE = {
    "detected_at",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "checked_at",
    "last_analysed",
}
LISTINGS = [
    ["assets"],
    ["assets", "--all"],
    ["assets", "--protocol", "modbus"],
    ["alerts"],
    ["alerts", "--technique", "T0836"],
    ["alerts", "--severity", "low", "--ip", "127.0.0.0/8"],
    ["alert", "show", "1"],  # evidence records: read back from the chunks by id
    ["alert", "show", "2"],
    ["conversations"],
    ["conversations", "--port", "502"],
    ["operations"],
    ["operations", "--class", "write"],
    ["operations", "--status", "exception", "--limit", "5"],
    ["violations"],
    ["problems"],
    ["captures"],
]


def url_of(cluster: PgCluster, name: str) -> str:
    return f"postgresql://{cluster.superuser}@127.0.0.1:{cluster.port}/{name}"


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:  # noqa: F811
    """A new, empty PostgreSQL database."""
    name = new_database(pg_cluster, "store")
    yield url_of(pg_cluster, name)
    drop_database(pg_cluster, name)


def run(*args: str | Path) -> Any:
    res = CliRunner().invoke(cli, [str(a) for a in args])
    return res


def analyse(target: str, captures: list[Path], *extra: str) -> None:
    res = run("analyze", *captures, "--db", target, "-q", *extra)
    assert res.exit_code == 0, res.output


def listing(target: str, args: list[str]) -> Any:
    res = run(*args, "--db", target, "-f", "json")
    assert res.exit_code == 0, (args, res.output)
    return scrub(json.loads(res.output))


def scrub(value: Any) -> Any:
    """``value`` without wall-clock fields and database ids of captures."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Any:
    """The console's captures (with the example policy) and two with decoding problems,
    analysed into each backend."""
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = new_database(cluster, "contract")
    targets = {
        "sqlite": str(tmp_path_factory.mktemp("contract") / "conduit.db"),
        "postgresql": url_of(cluster, name),
    }
    for target in targets.values():
        analyse(target, CAPTURES, "--policy", str(POLICY))
        analyse(target, [DATA / "modbus_gap.pcap", DATA / "modbus_nonstandard.pcap"])
    yield targets
    drop_database(cluster, name)


# -- what both backends must answer identically ------------------------------------------
@pytest.mark.parametrize("args", LISTINGS, ids=lambda a: " ".join(a))
def test_every_listing_is_identical_on_both_backends(both: dict[str, str], args: list[str]) -> None:
    lite = listing(both["sqlite"], args)
    pg = listing(both["postgresql"], args)
    if args[0] != "captures":
        assert lite, f"{args}: nothing listed, so the comparison proves nothing"
    assert pg == lite


def test_both_record_the_same_migrations(both: dict[str, str]) -> None:
    with Store(both["sqlite"], readonly=True) as a, Store(both["postgresql"], readonly=True) as b:
        assert a.kind == "sqlite" and b.kind == "postgresql"
        assert b.schema_version() == a.schema_version()
        assert a.schema_version()[:7] == [
            "0001_core",
            "0002_policy",
            "0003_alerts",
            "0004_sensor",
            "0005_violation_targets",
            "0006_incidents",
            "0007_advisories",
        ]
        cols = "SELECT name FROM schema_migrations ORDER BY name"
        assert [r["name"] for r in b.query(cols)] == [r["name"] for r in a.query(cols)]


def test_operations_go_into_day_partitions(both: dict[str, str]) -> None:
    with Store(both["postgresql"], readonly=True) as st:
        assert isinstance(st.conn, PgConnection)
        parts = existing(st.conn)
        days = {
            int(r["first_ts"]) // DAY_NS
            for r in st.query("SELECT first_ts FROM op_chunks GROUP BY first_ts")
        }
        assert days and {p.name for p in parts} == {name_of(d) for d in days}
        for p in parts:  # each chunk sits in the partition of its own day
            [(n,)] = st.conn.execute(
                f"SELECT count(*) FROM {p.name} WHERE first_ts < ? OR first_ts >= ?",
                (p.lo, p.hi),
            ).fetchall()
            assert n == 0 and p.hi - p.lo == DAY_NS
        [(parent_rows,)] = st.conn.execute("SELECT count(*) FROM ONLY op_chunks").fetchall()
        assert parent_rows == 0  # the partitioned parent holds nothing itself


def test_console_api_reads_postgresql_as_it_reads_sqlite(
    both: dict[str, str], tmp_path: Path
) -> None:
    """The console over each backend: overview, assets, alerts, conversations and
    operations answer the same JSON (the console's own users stay in a SQLite file)."""
    answers: dict[str, dict[str, Any]] = {}
    for kind, target in both.items():
        folder = tmp_path / kind
        folder.mkdir()
        env = make_env(Path(target), folder)
        try:
            c: TestClient = env.client("analyst")
            got = {}
            for path in (
                "/api/overview",
                "/api/assets",
                "/api/alerts",
                "/api/conversations",
                "/api/operations",
                "/api/violations",
            ):
                r = c.get(path)
                assert r.status_code == 200, (kind, path, r.text)
                got[path] = scrub(r.json())
            alert_id = got["/api/alerts"]["items"][0]["id"]
            r = c.get(f"/api/alerts/{alert_id}")
            assert r.status_code == 200, r.text
            got["alert"] = scrub(r.json())
            answers[kind] = got
            c.close()
        finally:
            env.ctx.close()
    assert answers["sqlite"]["/api/assets"]["items"], "no assets: the comparison is empty"
    for path in answers["sqlite"]:
        assert answers["postgresql"][path] == answers["sqlite"][path], path


@needs_shared
def test_a_corpus_capture_lists_the_same_on_both(pg_url: str, tmp_path: Path) -> None:
    lite = str(tmp_path / "c.db")
    for target in (lite, pg_url):
        analyse(target, [MODBUS_CORPUS])
    for args in (["assets"], ["conversations"], ["operations"], ["alerts"], ["problems"]):
        assert listing(pg_url, args) == listing(lite, args), args
    with Store(pg_url, readonly=True) as st:
        (n,) = st.conn.execute("SELECT coalesce(sum(count), 0) FROM op_chunks").fetchone()
        assert n > 1000  # the capture's Modbus transactions, in partitions


# -- retention -----------------------------------------------------------------------------
def _chunks_over_days(store: Store, day0: int, days: int) -> None:
    """One small chunk starting at noon of each of ``days`` days from ``day0``."""
    cap = store.begin_capture("/x.pcap", f"sha-{day0}", 1, "pcap")
    conv = store.conversation_id("tcp", "10.0.0.1", "10.0.0.2", 502, -1, "modbus")
    starts = [(day0 + d) * DAY_NS + DAY_NS // 2 for d in range(days)]
    store.ensure_partitions(starts)
    with store.transaction():
        store.conn.executemany(
            "INSERT INTO op_chunks (capture_id, conversation_id, first_ts, last_ts, count, "
            "data) VALUES (?, ?, ?, ?, ?, ?)",
            [(cap, conv, t, t + 1000, 10 + i, b"\x00") for i, t in enumerate(starts)],
        )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_retention_removes_the_same_days_on_both(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    target = str(tmp_path / "r.db") if kind == "sqlite" else request.getfixturevalue("pg_url")
    day0 = 20_000  # 2024-10-04
    with Store(target) as st:
        _chunks_over_days(st, day0, 5)
        now = (day0 + 4) * DAY_NS + 3600 * 10**9  # 01:00 on the last day
        done = prune_operations(st, 2 * DAY_NS, now_ns=now)
        assert done.cutoff_ns == (day0 + 2) * DAY_NS == cutoff(2 * DAY_NS, now)
        assert (done.chunks, done.operations) == (2, 10 + 11)
        left = [r["first_ts"] // DAY_NS for r in st.query("SELECT first_ts FROM op_chunks")]
        assert sorted(left) == [day0 + 2, day0 + 3, day0 + 4]
        if isinstance(st.conn, PgConnection):
            assert done.partitions == [name_of(day0), name_of(day0 + 1)]
            assert [p.name for p in existing(st.conn)] == [name_of(day0 + d) for d in (2, 3, 4)]
            # A dropped day is made again when written to.
            _chunks_over_days(st, day0, 1)
            assert name_of(day0) in {p.name for p in existing(st.conn)}
        else:
            assert done.partitions == []
        with pytest.raises(ValueError, match="at least one day"):
            prune_operations(st, 3600 * 10**9, now_ns=now)


def test_retention_command_on_postgresql(pg_url: str) -> None:
    with Store(pg_url) as st:
        _chunks_over_days(st, 15_000, 2)  # 2011: far older than 30 days
    res = run("store", "retention", "--keep", "30d", "--db", pg_url, "-f", "json")
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    assert row["chunks"] == 2 and row["partitions_dropped"] == 2
    res = run("store", "info", "--db", pg_url, "-f", "json")
    assert res.exit_code == 0, res.output
    (info,) = json.loads(res.output)
    assert info["backend"] == "postgresql" and info["partitions"] == 0
    res = run("store", "retention", "--keep", "soon", "--db", pg_url)
    assert res.exit_code == 2 and "--keep" in res.output


# -- errors: one line, exit 2, no password ---------------------------------------------------
def _one_line_error(args: list[str]) -> str:
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    line = _one_line_error(["assets", "--db", "postgresql://someone:s3cret-pw@127.0.0.1:1/conduit"])
    assert "cannot connect to postgresql://someone:***@127.0.0.1:1/conduit" in line
    assert "s3cret-pw" not in line


def test_a_malformed_url_is_one_line() -> None:
    line = _one_line_error(["assets", "--db", "postgresql://u:pw-xyz@127.0.0.1:notaport/db"])
    assert "pw-xyz" not in line and "cannot connect" in line


def test_a_wrong_password_is_one_line(pg_cluster: PgCluster) -> None:  # noqa: F811
    """A role that must give a password (scram), given the wrong one."""
    hba = pg_cluster.data / "pg_hba.conf"
    text = hba.read_text()
    rule = "host all pwcheck 127.0.0.1/32 scram-sha-256\n"
    if rule not in text:
        hba.write_text(rule + text)
        pg_cluster.admin("SELECT pg_reload_conf()")
        pg_cluster.admin("CREATE ROLE pwcheck LOGIN PASSWORD 'right-one'")
    url = f"postgresql://pwcheck:wrong-one@127.0.0.1:{pg_cluster.port}/postgres"
    line = _one_line_error(["alerts", "--db", url])
    assert "password authentication failed" in line and "wrong-one" not in line
    assert "pwcheck:***@" in line


def test_a_postgresql_database_that_is_not_conduits_is_refused_read_only(pg_url: str) -> None:
    with pytest.raises(StoreError, match="is not a Conduit database"):
        Store(pg_url, readonly=True)
    line = _one_line_error(["assets", "--db", pg_url])
    assert re.search(r"not a Conduit database", line)


def test_conduit_db_from_the_environment(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDUIT_DB", pg_url)
    res = CliRunner().invoke(cli, ["analyze", str(CAPTURES[0]), "-q"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["conversations", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)
    with Store(pg_url, readonly=True) as st:
        assert st.kind == "postgresql" and st.captures()[0]["status"] == "complete"


def test_a_sensor_following_a_ring_stores_the_same_on_both(pg_url: str, tmp_path: Path) -> None:
    """`conduit sense --follow` (checkpoints, upserts of conversations and attributes)
    writes the same operations, conversations, assets and alerts into either backend."""
    ring = tmp_path / "ring"
    ring.mkdir()
    shutil.copy(CAPTURES[0], ring / "a.pcap")
    lite = str(tmp_path / "s.db")
    conduit = Path(sys.executable).with_name("conduit")
    for target in (lite, pg_url):
        res = subprocess.run(
            [str(conduit), "sense", "--follow", str(ring), "--db", target, "--duration", "2"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr
        assert "stopped: 126 packets" in res.stdout + res.stderr
    for args in (["operations"], ["conversations"], ["assets"], ["alerts"]):
        assert listing(pg_url, args) == listing(lite, args), args
