"""Detection as a user meets it on the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otconduit.detect.context import apply
from otconduit.detect.findings import Finding
from otconduit.detect.rules import Severity
from otconduit.policy import load_policy
from tests.conftest import DATA, REPO

CONDUIT = Path(sys.executable).with_name("conduit")
ALL = DATA / "modbus_all_functions.pcap"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [str(CONDUIT), *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "d.db"
    res = run("analyze", ALL, "--db", path)
    assert res.returncode == 0, res.stderr
    assert "detection:" in res.stdout and "new alerts" in res.stdout
    return path


def test_alerts_filters_and_json(db: Path) -> None:
    rows = json.loads(run("alerts", "--db", db, "-f", "json").stdout)
    rules = {r["rule"] for r in rows}
    assert {"comm-restart", "listen-only", "process-write"} <= rules
    high = json.loads(run("alerts", "--db", db, "-f", "json", "--severity", "high").stdout)
    assert high and all(r["severity"] in ("high", "critical") for r in high)
    t0814 = json.loads(run("alerts", "--db", db, "-f", "json", "--technique", "t0814").stdout)
    assert t0814 and all("T0814" in r["techniques"] for r in t0814)
    bad = run("alerts", "--db", db, "--severity", "urgent")
    assert bad.returncode == 2 and "unknown severity 'urgent'" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_alert_show_has_runbook_and_techniques(db: Path) -> None:
    rows = json.loads(run("alerts", "--db", db, "-f", "json", "--rule", "listen-only").stdout)
    res = run("alert", "show", str(rows[0]["id"]), "--db", db)
    assert res.returncode == 0, res.stderr
    for text in ("T0814 Denial of Service", "Runbook", "do not", "IT steps", "OT steps"):
        assert text in res.stdout
    missing = run("alert", "show", "9999", "--db", db)
    assert missing.returncode == 2 and "no alert with id 9999" in missing.stderr


def test_user_text_is_printed_as_written(db: Path) -> None:
    """A comment with rich markup and emoji codes is text: shown verbatim, never a crash."""
    rows = json.loads(run("alerts", "--db", db, "-f", "json", "--rule", "listen-only").stdout)
    aid = str(rows[0]["id"])
    note = "[/] [bold]x[/bold] 00:ab:cd:12 :smile:"
    res = run("alert", "ack", aid, "--db", db, "--user", "[red]eve", "-m", note)
    assert res.returncode == 0, res.stderr
    shown = run("alert", "show", aid, "--db", db)
    assert shown.returncode == 0, shown.stderr
    assert note in shown.stdout and "[red]eve" in shown.stdout


def test_lifecycle_and_evidence_commands(db: Path, tmp_path: Path) -> None:
    rows = json.loads(run("alerts", "--db", db, "-f", "json", "--rule", "comm-restart").stdout)
    aid = str(rows[0]["id"])
    assert run("alert", "ack", aid, "--db", db, "--user", "ana", "-m", "looking").returncode == 0
    assert run("alert", "close", aid, "--db", db, "--user", "ana").returncode == 0
    again = run("alert", "close", aid, "--db", db)
    assert again.returncode == 2 and "is closed; it cannot become closed" in again.stderr
    closed = json.loads(run("alerts", "--db", db, "-f", "json", "--status", "closed").stdout)
    assert [r["id"] for r in closed] == [int(aid)]
    out = tmp_path / "ev.pcap"
    res = run("evidence", aid, "--db", db, "-w", out)
    assert res.returncode == 0 and out.stat().st_size > 24, res.stderr


def test_attack_rules_baseline_and_export(db: Path, tmp_path: Path) -> None:
    cov = json.loads(run("attack", "-f", "json").stdout)
    assert any(r["id"] == "T0843" and "program-download" in r["rules"] for r in cov)
    rules = json.loads(run("rules", "list", "-f", "json").stdout)
    assert {r["rule"] for r in rules} >= {"controller-stop", "port-sweep", "policy-breach"}
    res = run("rules", "check", REPO / "examples" / "rules.yaml")
    assert res.returncode == 0, res.stderr
    learn = run("baseline", "learn", "--db", db)
    assert learn.returncode == 0 and "baseline default: 1 captures" in learn.stdout
    show = json.loads(run("baseline", "show", "--db", db, "-f", "json").stdout)
    assert show[0]["conversations"] >= 1
    assert run("detect", "--db", db).returncode == 0
    first = run("export", "--db", db, "-f", "jsonl", "--sink", "siem")
    lines = [json.loads(x) for x in first.stdout.splitlines()]
    assert lines and all("techniques" in x for x in lines)
    second = run("export", "--db", db, "-f", "cef", "--sink", "siem")
    assert second.returncode == 0 and second.stdout == ""  # nothing new since
    bad = run("export", "--db", db, "--syslog", "nowhere")
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


def test_maintenance_window_and_zone_set_severity() -> None:
    """The issue's example: the same program download is informational from the
    engineering workstation inside its window, one level up outside it, critical from IT."""
    policy = load_policy(REPO / "examples" / "plant-policy.yaml")
    sunday_3am = 1_764_460_800 * 10**9 + 3 * 3600 * 10**9  # 2025-11-30 03:00 UTC, a Sunday
    monday_10am = sunday_3am + 31 * 3600 * 10**9
    import numpy as np

    def finding(src: str) -> Finding:
        ts = np.array([sunday_3am, monday_10am], np.int64)
        return Finding(
            rule="program-download", first_ts=int(ts[0]), last_ts=int(ts[1]), count=2,
            src_ip=src, dst_ip="127.0.10.20", protocol="s7comm", operation="Download Block",
            op_class="program", dst_port=102, ts=ts,
        )  # fmt: skip

    ews = apply(finding("127.0.20.20"), Severity.HIGH, policy)
    by_sev = {f.severity: f for f in ews}
    assert set(by_sev) == {Severity.INFO, Severity.CRITICAL}
    assert by_sev[Severity.INFO].first_ts == sunday_3am and by_sev[Severity.INFO].count == 1
    assert "inside window weekly-maintenance" in by_sev[Severity.INFO].context["verdict"]
    office = apply(finding("127.0.40.50"), Severity.HIGH, policy)
    assert [f.severity for f in office] == [Severity.CRITICAL]
    assert "IT zone enterprise" in office[0].context["verdict"]
