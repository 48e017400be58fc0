"""A database written by an older release (fa6d50c: migrations 0001-0005) opens with
today's Store: the missing migrations run, every row it held is still there unchanged,
and every command that reads or writes the monitor store works on it.

The database is rebuilt from ``tests/data/store_fa6d50c.sql``, which that release's own
commands wrote (``scripts/make_old_store.py``): analyze with a policy, a baseline, an
acknowledged and a closed alert, a SIEM export cursor and a sensor that followed a ring.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otconduit.cli.main import app as cli
from otconduit.store import Store, StoreError
from otconduit.store.migrate import load
from tests.advisories.csafdocs import document, dumps, product
from tests.conftest import DATA, REPO

DUMP = DATA / "store_fa6d50c.sql"
OLD_MIGRATIONS = [
    "0001_core",
    "0002_policy",
    "0003_alerts",
    "0004_sensor",
    "0005_violation_targets",
]
POLICY = REPO / "examples" / "plant-policy.yaml"


def _old_db(tmp_path: Path) -> Path:
    db = tmp_path / "conduit.db"
    conn = sqlite3.connect(db)
    conn.executescript(DUMP.read_text(encoding="utf-8"))
    conn.close()
    return db


def _tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (schema_migrations aside), sorted."""
    conn = sqlite3.connect(db)
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT IN ('schema_migrations', 'sqlite_sequence') ORDER BY name"
        )
    ]
    out = {n: sorted(conn.execute(f'SELECT * FROM "{n}"'), key=repr) for n in names}
    conn.close()
    return out


def _cli(db: Path, *args: str | Path) -> str:
    res = CliRunner().invoke(cli, [*map(str, args), "--db", str(db)])
    assert res.exit_code == 0, (args, res.output)
    assert "Traceback" not in res.output
    return res.output


def _json(db: Path, *args: str | Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(_cli(db, *args, "-f", "json"))
    return rows


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    return _old_db(tmp_path)


def test_fixture_is_the_older_release(old_db: Path) -> None:
    conn = sqlite3.connect(old_db)
    names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY 1")]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert names == OLD_MIGRATIONS
    assert "incidents" not in tables and "advisories" not in tables


def test_read_only_open_asks_for_the_upgrade(old_db: Path) -> None:
    with pytest.raises(StoreError, match="needs migration 0006_incidents"):
        Store(old_db, readonly=True)


def test_upgrade_keeps_every_row(old_db: Path) -> None:
    before = _tables(old_db)
    assert sum(map(len, before.values())) > 150
    with Store(old_db) as st:
        assert st.schema_version() == [m.name for m in load()]
    after = _tables(old_db)
    for name, rows in before.items():
        assert after[name] == rows, name
    assert {"incidents", "incident_history", "advisories", "advisory_products"} <= set(after)
    with Store(old_db) as st:  # a second open applies nothing
        assert st.schema_version() == [m.name for m in load()]
    assert _tables(old_db) == after


def test_every_command_reads_it(old_db: Path, tmp_path: Path) -> None:
    Store(old_db).close()
    assets = _json(old_db, "assets", "--all")
    assert len(assets) == 9 and all(a["first_seen"] for a in assets)
    convs = _json(old_db, "conversations")
    assert {c["protocol"] for c in convs} >= {"modbus", "enip"}
    ops = _json(old_db, "operations")
    (stored,) = sqlite3.connect(old_db).execute("SELECT sum(count) FROM op_chunks").fetchone()
    assert len(ops) == stored > 60 and {o["protocol"] for o in ops} >= {"modbus", "enip"}
    assert _json(old_db, "operations", "--function", "read_coils")
    captures = _json(old_db, "captures")
    assert [c["status"] for c in captures[:2]] == ["complete", "complete"]
    _cli(old_db, "problems")
    alerts = _json(old_db, "alerts")
    assert len(alerts) == 19
    status = {a["id"]: a["status"] for a in alerts}
    assert (status[1], status[2]) == ("acknowledged", "closed")
    shown = _json(old_db, "alert", "show", "1")[0]
    assert [h["to_status"] for h in shown["history"]] == ["acknowledged"]
    assert shown["detected_at"]  # older rows have created_at only: shown in its place
    violations = _json(old_db, "violations")
    assert len(violations) == 11 and all(v["policy"] == "conduit-lab" for v in violations)
    _cli(old_db, "baseline", "show")
    _cli(old_db, "sensor", "status")
    _cli(old_db, "risk")
    _cli(old_db, "vulns")
    _cli(old_db, "advisories", "list")
    # Evidence is cut from the capture files, found again where they are now.
    pcap = tmp_path / "evidence.pcap"
    _cli(old_db, "evidence", "1", "-w", pcap, "--capture-dir", DATA)
    assert pcap.stat().st_size > 24
    sensor_alerts = [
        a for a in alerts if any(e["capture"].startswith("ring:") for e in a["evidence"])
    ]
    if sensor_alerts:  # kept out of the ring in the store itself
        kept = tmp_path / "kept.pcap"
        _cli(old_db, "evidence", str(sensor_alerts[0]["id"]), "-w", kept)


def test_every_command_writes_it(old_db: Path, tmp_path: Path) -> None:
    Store(old_db).close()
    (left,) = sqlite3.connect(old_db).execute("SELECT last_change FROM export_cursors").fetchone()
    _cli(old_db, "alert", "reopen", "2", "--user", "upgrade", "--comment", "again")
    alerts = _json(old_db, "alerts")
    assert {a["id"]: a["status"] for a in alerts}[2] == "open"
    # From the cursor the old release left: what its sensor raised after the export, and
    # the alert just reopened -- nothing sent before.
    newer = [a["id"] for a in sorted(alerts, key=lambda a: a["change"]) if a["change"] > left]
    assert 2 in newer and 1 not in newer
    out = tmp_path / "siem.jsonl"
    _cli(old_db, "export", "--sink", "fixture-siem", "--output", out)
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == newer
    _cli(old_db, "detect")  # re-detection keeps what analysts did with the alerts
    again = {a["id"]: a for a in _json(old_db, "alerts")}
    assert (again[1]["status"], again[2]["status"]) == ("acknowledged", "open")
    _cli(old_db, "baseline", "learn")
    _cli(old_db, "violations", "--policy", POLICY)
    doc = document(
        "EX-UPGRADE",
        [product("P1", "Example", "Widget", "vers:all/<2")],
        {"known_affected": ["P1"]},
    )
    (tmp_path / "a.json").write_bytes(dumps(doc))
    _cli(old_db, "advisories", "import", tmp_path / "a.json")
    assert [a["id"] for a in _json(old_db, "advisories", "list")] == ["EX-UPGRADE"]
    _cli(old_db, "analyze", DATA / "modbus_vlan.pcap", "-q")
    assert len(_json(old_db, "captures")) == 5


def test_console_serves_it(old_db: Path, tmp_path: Path) -> None:
    from tests.console.conftest import make_env

    env = make_env(old_db, tmp_path, policy=POLICY)
    try:
        c = env.client("analyst")
        for path in (
            "/api/overview",
            "/api/assets?all=true",
            "/api/conversations",
            "/api/operations",
            "/api/alerts",
            "/api/alerts/1",
            "/api/violations",
            "/api/incidents",
            "/api/map",
        ):
            r = c.get(path)
            assert r.status_code == 200, (path, r.text)
        assert c.get("/api/alerts").json()["total"] == 19
        # Incidents are numbered in the table migration 0006 added, and can be taken on.
        first = c.get("/api/incidents?include_closed=true").json()["items"][0]
        assert first["id"].startswith("INC-")
        r = c.post(f"/api/incidents/{first['id']}", json={"owner": "analyst"})
        assert r.status_code == 200, r.text
        assert [h["new"] for h in r.json()["history"]] == ["analyst"]
        c.close()
    finally:
        env.ctx.close()
