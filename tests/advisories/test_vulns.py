"""`conduit vulns` and the assets' `advisories` on a small store built by hand: the row
contract, candidates kept apart, and identities that match nothing said as such."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otconduit.advisories.vulns import COLUMNS, vulnerabilities
from otconduit.store import Store, views
from tests.advisories.handstore import build

CONDUIT = Path(sys.executable).with_name("conduit")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build(tmp_path / "c.db")


def test_rows_and_candidates(db: Path) -> None:
    with Store(db, readonly=True) as st:
        rep = vulnerabilities(st)
    got = [(r["ip"], r["advisory"], r["status"]) for r in rep.rows]
    assert got == [
        ("10.0.0.1", "EX-HIGH", "affected"),
        ("10.0.0.1", "EX-LOW", "fixed"),  # V3.2.6 is past < V3.X.5
        ("10.0.0.2", "EX-HIGH", "version_unknown"),
        ("10.0.0.2", "EX-LOW", "version_unknown"),
    ]
    assert list(rep.rows[0])[: len(COLUMNS)] == COLUMNS
    assert [a["ip"] for a in rep.unmatched] == ["10.0.0.3"]  # an identity, nothing found
    assert rep.no_identity == 1  # 10.0.0.4 states a vendor only
    with Store(db, readonly=True) as st:
        assert [r["advisory"] for r in vulnerabilities(st, min_cvss=9).rows] == [
            "EX-HIGH",
            "EX-HIGH",
        ]
        assert vulnerabilities(st, ip="10.0.0.2", statuses=("affected",)).rows == []
        assets = {a["ip"]: a["advisories"] for a in views.assets(st)}
    assert assets["10.0.0.1"] == [
        {"id": "EX-HIGH", "cvss": 9.8, "status": "affected"},
        {"id": "EX-LOW", "cvss": 4.3, "status": "fixed"},
    ]
    assert [x["status"] for x in assets["10.0.0.2"]] == ["version_unknown"] * 2
    assert assets["10.0.0.3"] == [] and assets["10.0.0.4"] == []


def test_cli_says_what_matched_nothing(db: Path) -> None:
    env = dict(os.environ, COLUMNS="200")
    res = subprocess.run(
        [str(CONDUIT), "vulns", "--db", str(db)], capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stderr
    assert "10.0.0.3 (Acme Widget 3000): no stored advisory names this identity" in res.stderr
    assert "Candidates" in res.stdout
    rows = json.loads(
        subprocess.run(
            [str(CONDUIT), "vulns", "--db", str(db), "-f", "json", "--ip", "10.0.0.0/30"],
            capture_output=True,
            text=True,
            env=env,
        ).stdout
    )
    assert {r["ip"] for r in rows} == {"10.0.0.1", "10.0.0.2"}


def test_no_advisories_imported(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    Store(db).close()
    res = subprocess.run(
        [str(CONDUIT), "vulns", "--db", str(db), "-f", "json"], capture_output=True, text=True
    )
    assert res.returncode == 0 and json.loads(res.stdout) == []
    assert "no advisories stored" in res.stderr
