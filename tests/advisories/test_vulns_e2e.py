"""End to end, as a user runs it: analyse the shared corpus captures, import the CISA
snapshot, ask `conduit vulns` (and `conduit assets`) what the devices are exposed to."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.advisories.conftest import SNAPSHOT, needs_csaf
from tests.conftest import CORPUS, needs_shared

pytestmark = [needs_shared, needs_csaf, pytest.mark.slow]
CONDUIT = Path(sys.executable).with_name("conduit")
CAPTURES = [
    CORPUS / "icsnpp" / "s7comm" / "s7ident" / "s7ident.pcap",  # CPU 315-2 PN/DP, V3.2.6
    CORPUS / "icsnpp" / "enip" / "enip_cip_example" / "enip_cip_example.pcap",  # 1756-ENBT/A
    CORPUS / "iti" / "s7" / "s7comm_reading_setting_plc_time.pcap",  # IM151-8, no firmware
]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONDUIT), *map(str, args)],
        capture_output=True,
        text=True,
        env=dict(os.environ, COLUMNS="250"),
        timeout=600,
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for cap in CAPTURES:
        if not cap.is_file():
            pytest.skip(f"{cap} is not present")
    path = tmp_path_factory.mktemp("vulns") / "c.db"
    res = run("analyze", "--quiet", "--no-detect", "--db", path, *CAPTURES)
    assert res.returncode == 0, res.stderr
    res = run("advisories", "import", "--db", path, SNAPSHOT)
    assert res.returncode == 0, res.stderr
    assert "2379 new" in res.stdout
    return path


def vulns(db: Path, *args: str) -> list[dict[str, Any]]:
    res = run("vulns", "--db", db, "-f", "json", *args)
    assert res.returncode == 0, res.stderr
    rows: list[dict[str, Any]] = json.loads(res.stdout)
    return rows


def by(rows: list[dict[str, Any]], ip: str, advisory: str) -> dict[str, Any]:
    hits = [r for r in rows if r["ip"] == ip and r["advisory"] == advisory]
    assert len(hits) == 1, (ip, advisory, [(r["ip"], r["advisory"]) for r in rows])
    return hits[0]


def test_rows_say_what_matched(db: Path) -> None:
    rows = vulns(db)
    keys = (
        "ip name advisory title cves cvss vector product matched_on confidence status remediation"
    )
    assert all(set(keys.split()) <= set(r) for r in rows)
    cpu = by(rows, "172.17.0.2", "ICSA-19-283-02")
    assert (cpu["status"], cpu["confidence"]) == ("affected", "high")
    assert cpu["cves"] == ["CVE-2019-10936"] and cpu["cvss"] == 7.5
    assert "6ES7 315-2EH14-0AB0" in cpu["matched_on"] and "V3.2.6" in cpu["matched_on"]
    assert cpu["product"] == "SIMATIC S7-300 CPU 315-2 PN/DP (6ES7315-2EH14-0AB0)"
    assert cpu["remediation"].startswith("vendor_fix: Update to V3.2.17")
    enbt = by(rows, "10.1.1.164", "ICSA-18-310-02")
    assert enbt["status"] == "affected" and "1756-ENBT/A" in enbt["matched_on"]
    im151 = by(rows, "192.168.1.40", "ICSA-19-283-02")
    assert im151["status"] == "version_unknown" and "firmware unknown" in im151["matched_on"]
    assert by(rows, "192.168.1.40", "ICSA-20-105-08")["status"] == "affected"  # all versions
    # Confirmed matches first, candidates after them.
    statuses = [r["status"] == "version_unknown" for r in rows]
    assert statuses == sorted(statuses)


def test_filters(db: Path) -> None:
    rows = vulns(db, "--ip", "10.1.1.164")
    assert {r["ip"] for r in rows} == {"10.1.1.164"}
    high = vulns(db, "--min-cvss", "8")
    assert high and all(r["cvss"] >= 8 for r in high)
    unknown = vulns(db, "--status", "unknown")
    assert unknown and {r["status"] for r in unknown} == {"version_unknown"}
    res = run("vulns", "--db", db, "--status", "afected")
    assert res.returncode == 2 and "did you mean 'affected'" in res.stderr
    res = run("vulns", "--db", db, "--min-cvss", "11")
    assert res.returncode == 2 and "between 0 and 10" in res.stderr


def test_table_and_csv(db: Path) -> None:
    res = run("vulns", "--db", db)
    assert res.returncode == 0, res.stderr
    first, _, second = res.stdout.partition("Candidates")
    assert "Known vulnerabilities" in first and "ICSA-18-310-02" in first
    assert "version_unknown" in second and "version_unknown" not in first
    res = run("vulns", "--db", db, "-f", "csv")
    header = next(csv.reader(io.StringIO(res.stdout)))
    assert header[:12] == [
        "ip", "name", "advisory", "title", "cves", "cvss",
        "vector", "product", "matched_on", "confidence", "status", "remediation",
    ]  # fmt: skip


def test_assets_json_lists_advisories(db: Path) -> None:
    res = run("assets", "--db", db, "-f", "json")
    assets = {a["ip"]: a for a in json.loads(res.stdout)}
    compact = {x["id"]: x for x in assets["172.17.0.2"]["advisories"]}
    assert compact["ICSA-19-283-02"] == {"id": "ICSA-19-283-02", "cvss": 7.5, "status": "affected"}
    im151 = {x["id"]: x["status"] for x in assets["192.168.1.40"]["advisories"]}
    assert im151["ICSA-19-283-02"] == "version_unknown"
    assert all(a["advisories"] == [] for a in assets.values() if not a["model"])
