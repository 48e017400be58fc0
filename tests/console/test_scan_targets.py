"""Hosts only ever seen as scan targets are not the plant's assets: listings, counts and
the map leave them out by default and show them on request (CLI ``--all``, console
``all`` / ``unconfirmed``). A SYN sweep (bench/make_scan.py) beside a real Modbus
conversation."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otconduit.cli.main import app as cli
from tests.conftest import DATA, REPO
from tests.console.conftest import Env, make_env

sys.path.insert(0, str(REPO / "bench"))
from make_scan import write_scan

SCANNER = "10.99.0.99"


@pytest.fixture(scope="module")
def scanned_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("scan")
    scan = tmp / "scan.pcap"
    write_scan(scan, 800, 10_000.0, ics_ports=True)  # 200 hosts x 4 ICS ports
    db = tmp / "conduit.db"
    res = CliRunner().invoke(
        cli, ["analyze", str(scan), str(DATA / "modbus_all_functions.pcap"), "--db", str(db),
              "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return db


@pytest.fixture
def scan_env(scanned_db: Path, tmp_path: Path) -> Iterator[Env]:
    e = make_env(scanned_db, tmp_path, policy=None)
    yield e
    e.ctx.close()


def _assets(db: Path, *extra: str) -> list[dict[str, object]]:
    res = CliRunner().invoke(cli, ["assets", "--db", str(db), "-f", "json", *extra])
    assert res.exit_code == 0, res.output
    rows: list[dict[str, object]] = json.loads(res.output)
    return rows


def test_cli_lists_confirmed_assets_unless_all(scanned_db: Path) -> None:
    default, everything = _assets(scanned_db), _assets(scanned_db, "--all")
    assert len(everything) - len(default) >= 150
    assert all(a["confirmed"] for a in default)
    ips = {a["ip"] for a in default}
    assert SCANNER in ips  # the scanner sent traffic of its own: it is real
    assert {"127.0.5.10", "127.0.5.100"} <= ips  # the Modbus server and a client


def test_console_assets_overview_and_map(scan_env: Env) -> None:
    c = scan_env.client("viewer")
    page = c.get("/api/assets", params={"limit": 500}).json()
    everything = c.get("/api/assets", params={"limit": 500, "all": "true"}).json()
    assert everything["total"] - page["total"] >= 150
    assert all(a["confirmed"] for a in page["items"])
    assert any(not a["confirmed"] for a in everything["items"])
    ov = c.get("/api/overview").json()
    assert ov["assets"]["total"] == page["total"]
    assert ov["assets"]["unconfirmed"] == everything["total"] - page["total"]
    graph = c.get("/api/map").json()
    assert graph["hidden_unconfirmed"] == ov["assets"]["unconfirmed"]
    assert graph["assets"] == page["total"]
    shown = c.get("/api/map", params={"unconfirmed": "true"}).json()
    assert shown["assets"] == everything["total"] and shown["hidden_unconfirmed"] == 0
    html = c.get("/assets").text
    assert 'id="hidden-unconfirmed"' in html and "scan targets" in html
