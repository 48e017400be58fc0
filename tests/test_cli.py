"""The command line as a user meets it: output contracts, errors and exit codes."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA

CONDUIT = Path(sys.executable).with_name("conduit")
ALL = DATA / "modbus_all_functions.pcap"
MANIFEST = json.loads((DATA / "modbus_all_functions.json").read_text())


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [str(CONDUIT), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("cli") / "c.db"
    res = run("analyze", ALL, "--db", db)
    assert res.returncode == 0, res.stderr
    assert "Industrial conversations:" in res.stdout and "operations: 51 " in res.stdout
    return db


def test_operations_json_contract(analysed: Path) -> None:
    res = run("operations", "--db", analysed, "-f", "json")
    ops = json.loads(res.stdout)
    required = {
        "ts",
        "protocol",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "operation",
        "function",
        "function_code",
        "unit",
        "address",
        "quantity",
        "status",
        "exception",
        "capture",
        "frame",
    }
    assert ops and all(required <= set(o) for o in ops)
    assert len(ops) == len(MANIFEST["requests"])
    # Every request the lab sent is there, with its unit, address, quantity and outcome.
    ours = sorted((o["transaction_id"], o["unit"], o["function_code"]) for o in ops)
    sent = sorted((r["tid"], r["unit"], r["fc"]) for r in MANIFEST["requests"])
    assert ours == sent
    by_tid = {(o["src_ip"], o["transaction_id"]): o for o in ops}
    for r in MANIFEST["requests"]:
        o = by_tid[(r["client"].split(":")[0], r["tid"])]
        if r["address"] is not None and r["fc"] in (1, 2, 3, 4, 5, 6, 15, 16):
            assert o["address"] == r["address"], r
        if r["exception_code"] is not None:
            assert o["exception_code"] == r["exception_code"], r
        elif r["fc"] != 43 or r.get("extra", {}).get("read_code", 1) in (1, 2, 3, 4):
            assert o["status"] == "ok", (r, o)


def test_writes_carry_values(analysed: Path) -> None:
    res = run("operations", "--db", analysed, "--class", "write", "-f", "json")
    writes = json.loads(res.stdout)
    assert {o["function"] for o in writes} >= {
        "WRITE_SINGLE_COIL",
        "WRITE_SINGLE_REGISTER",
        "WRITE_MULTIPLE_COILS",
        "WRITE_MULTIPLE_REGISTERS",
        "MASK_WRITE_REGISTER",
        "READ_WRITE_MULTIPLE_REGISTERS",
    }
    sent = {r["tid"]: r for r in MANIFEST["requests"] if "values" in r}
    for o in writes:
        r = sent.get(o["transaction_id"])
        if r is not None and r["status"] == "ok" and "values" in r:
            assert o["values"] == r["values"], (r, o)
        assert o["values"], o


def test_assets_identity_from_modbus(analysed: Path) -> None:
    assets = json.loads(run("assets", "--db", analysed, "-f", "json").stdout)
    plc = next(a for a in assets if a["ip"] == MANIFEST["server"]["host"])
    assert plc["vendor"] == MANIFEST["identity"]["VendorName"]
    assert plc["identity"]["vendor"]["source"] == "modbus_43_14"
    assert plc["identity"]["model"]["value"] == MANIFEST["identity"]["ModelName"]
    assert plc["identity"]["revision"]["value"] == MANIFEST["identity"]["MajorMinorRevision"]
    assert "plc" in plc["roles"] or "gateway" in plc["roles"]
    assert "modbus/server" in plc["protocols"]
    hmi = next(a for a in assets if a["ip"] == MANIFEST["clients"][0])
    assert "modbus/client" in hmi["protocols"]
    assert {
        "ip",
        "mac",
        "vlan",
        "vendor",
        "roles",
        "protocols",
        "identity",
        "first_seen",
        "last_seen",
    } <= set(hmi)


def test_csv_and_table(analysed: Path) -> None:
    csv_out = run("conversations", "--db", analysed, "-f", "csv").stdout.splitlines()
    assert csv_out[0].startswith("transport,client_ip,server_ip,server_port")
    assert len(csv_out) >= 4
    table = run("assets", "--db", analysed).stdout
    assert MANIFEST["server"]["host"] in table


def test_reanalysis_does_not_duplicate(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    assert run("analyze", ALL, "--db", db, "-q").returncode == 0
    first = json.loads(run("operations", "--db", db, "-f", "json").stdout)
    assert run("analyze", ALL, "--db", db, "-q").returncode == 0
    again = json.loads(run("operations", "--db", db, "-f", "json").stdout)
    assert len(again) == len(first)
    convs = json.loads(run("conversations", "--db", db, "-f", "json").stdout)
    assert sum(c["connections"] for c in convs if c["protocol"] == "modbus") == 3
    # A second, different capture merges into the same inventory.
    assert run("analyze", DATA / "modbus_nonstandard.pcap", "--db", db, "-q").returncode == 0
    caps = json.loads(run("captures", "--db", db, "-f", "json").stdout)
    assert len(caps) == 2 and all(c["status"] == "complete" for c in caps)


def test_gzip_capture(tmp_path: Path) -> None:
    gz = tmp_path / "all.pcap.gz"
    gz.write_bytes(gzip.compress(ALL.read_bytes()))
    db = tmp_path / "c.db"
    assert run("analyze", gz, "--db", db, "-q").returncode == 0
    assert len(json.loads(run("operations", "--db", db, "-f", "json").stdout)) == len(
        MANIFEST["requests"]
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "not found"), (b"hello, this is not a capture at all", "not a pcap")],
)
def test_bad_capture_is_one_line(tmp_path: Path, content: bytes | None, needle: str) -> None:
    path = tmp_path / "x.pcap"
    if content is not None:
        path.write_bytes(content)
    res = run("analyze", path, "--db", tmp_path / "c.db")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.stderr


def test_truncated_capture_keeps_what_was_read(tmp_path: Path) -> None:
    data = ALL.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    db = tmp_path / "c.db"
    res = run("analyze", cut, "--db", db, "-q")
    assert res.returncode == 0
    assert "warning" in res.stderr and "Traceback" not in res.stderr
    caps = json.loads(run("captures", "--db", db, "-f", "json").stdout)
    assert caps[0]["status"] == "partial" and caps[0]["packets"] > 10
    assert json.loads(run("operations", "--db", db, "-f", "json").stdout)


def test_nothing_readable_exits_nonzero(tmp_path: Path) -> None:
    path = tmp_path / "header-only.pcap"
    path.write_bytes(ALL.read_bytes()[:24])
    res = run("analyze", path, "--db", tmp_path / "c.db", "-q")
    assert res.returncode == 1
    assert "no packets" in res.stderr


def test_unreadable_database_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    res = run("assets", "--db", bad)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "bad.db" in res.stderr
    res = run("assets", "--db", tmp_path / "missing.db")
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_non_modbus_on_502_is_reported(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    assert run("analyze", DATA / "modbus_nonstandard.pcap", "--db", db, "-q").returncode == 0
    problems = json.loads(run("problems", "--db", db, "-f", "json").stdout)
    assert any("not Modbus" in p["reason"] for p in problems)
    convs = json.loads(run("conversations", "--db", db, "-f", "json").stdout)
    # Modbus on a non-standard port is recognised by content.
    manifest = json.loads((DATA / "modbus_nonstandard.json").read_text())
    assert any(c["protocol"] == "modbus" and c["server_port"] != 502 for c in convs), manifest
    assert all(c["protocol"] != "modbus" for c in convs if c["server_port"] == 502)


def test_readonly_commands_do_not_create_db(tmp_path: Path) -> None:
    run("assets", "--db", tmp_path / "none.db")
    assert not (tmp_path / "none.db").exists()


def test_help_lists_commands() -> None:
    out = run("--help").stdout
    for cmd in ("analyze", "assets", "conversations", "operations", "captures", "problems"):
        assert cmd in out
    assert shutil.which(str(CONDUIT)) is not None
