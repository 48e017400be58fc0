"""What the report says, against the store and against a plant whose answers are known
(tests/report/plant.py): counts equal what the listing commands print, the IDMZ KPI and
the IEC 62443 gaps come out as constructed, the ATT&CK matrix and the map count what
they draw."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from otconduit.detect.attack import attack_table
from otconduit.gateway.config import load_gateway
from otconduit.policy import load_policy
from otconduit.report.build import build_report
from otconduit.report.facts import Window
from otconduit.report.model import Figure, Metrics, Report, Table
from otconduit.store import Store
from tests.report.conftest import GATEWAY, POLICY, cli_json
from tests.report.plant import T0, add_opcua


def report_for(db: Path, *, policy: bool = True, gateway: bool = False, **kw: object) -> Report:
    with Store(db, readonly=True) as st:
        return build_report(
            st,
            db=db,
            policy=load_policy(POLICY) if policy else None,
            gateway=load_gateway(GATEWAY) if gateway else None,
            **kw,  # type: ignore[arg-type]
        )


def metric(report: Report, section: str, label: str) -> str:
    s = next(x for x in report.all_sections() if x.key == section)
    for b in s.blocks:
        if isinstance(b, Metrics):
            for m in b.items:
                if m.label == label:
                    return m.value
    raise AssertionError(f"no metric {label!r} in {section}")


def table(report: Report, title: str) -> Table:
    for s in report.all_sections():
        for b in s.blocks:
            if isinstance(b, Table) and b.title == title:
                return b
    raise AssertionError(f"no table {title!r}")


@pytest.mark.parametrize("fixture", ["lab_db", "analysed_db"])
def test_counts_equal_the_listing_commands(fixture: str, request: pytest.FixtureRequest) -> None:
    db: Path = request.getfixturevalue(fixture)
    rep = report_for(db)
    assets = cli_json("assets", "--db", str(db))
    violations = cli_json("violations", "--db", str(db))
    alerts = cli_json("alerts", "--db", str(db))
    assert rep.data["assets"] == len(assets) > 0
    assert rep.data["violations"] == len(violations) > 0
    assert rep.data["alerts"] == len(alerts) > 0
    assert metric(rep, "identify", "Assets") == f"{len(assets):,}"
    assert metric(rep, "protect", "Policy violations") == f"{len(violations):,}"
    assert metric(rep, "summary", "Alerts") == f"{len(alerts):,}"
    all_hosts = cli_json("assets", "--db", str(db), "--all")
    assert rep.data["scan_targets"] == len(all_hosts) - len(assets)
    firmware = sum(1 for a in assets if a["firmware"])
    assert rep.data["firmware_known"] == firmware
    # Severity chart and table agree with the alerts listing.
    sev = sum(1 for a in alerts if a["severity"] == "critical")
    assert rep.data["critical_alerts"] == sev


def test_idmz_kpi_on_the_constructed_plant(lab_db: Path) -> None:
    rep = report_for(lab_db, gateway=True)
    assert rep.data["idmz_counts"] == {
        "direct": 1,
        "bypass": 1,
        "idmz-other": 0,
        "idmz-read-only": 2,
        "contained": 1,
    }
    assert rep.data["idmz_share"] == pytest.approx(0.5)
    assert metric(rep, "kpis", "Through the IDMZ only, read-only") == "50.0 %"
    off = table(rep, "Level 0-1 assets not yet behind the read-only IDMZ path")
    rows = {r[0].text: (r[2].text, r[3].text) for r in off.rows}
    assert rows == {
        "conveyor-plc (127.0.10.10)": ("direct", "127.0.40.66"),
        "packaging-machine (127.0.10.30)": ("bypass", "127.0.30.10"),
    }
    # The answered direct contact is an observed attack path and exposes the PLC.
    assert rep.data["direct_contacts"] == 1


def test_idmz_kpi_needs_a_policy(lab_db: Path) -> None:
    rep = report_for(lab_db, policy=False)
    assert rep.data["idmz_share"] is None
    text = " ".join(getattr(b, "text", "") for b in rep.kpis.blocks)
    assert "needs --policy" in text


def test_iec62443_gaps_per_zone(lab_db: Path) -> None:
    rep = report_for(lab_db)
    zones = {r[0].text: r for r in table(rep, "Zones: SL-T against observations").rows}
    cell = zones["cell-1"]
    observed, verdict = cell[5].text, cell[6].text
    assert "SR 3.1 RE 1" in observed  # the IDMZ's cleartext Modbus into SL-T 3 cell-1
    assert "SR 1.2" in observed  # program download over S7comm
    assert "OPC UA: 1 conversation(s), security not decoded" in observed
    assert verdict == "3 gaps observed"
    seen = table(rep, "What was seen")
    text = " ".join(c.text for r in seen.rows for c in r)
    assert "127.0.20.20 -> 127.0.10.20 s7comm: program x4" in text
    assert "127.0.35.10 (idmz) -> 127.0.10.50 (cell-1) modbus" in text
    assert metric(rep, "protect", "Unauthenticated engineering") == "1"
    assert metric(rep, "protect", "Cleartext control across SL-T ≥ 3") == "2"


def test_attack_paths_policy_and_observed(lab_db: Path) -> None:
    rep = report_for(lab_db)
    allowed = table(rep, "Allowed paths (policy)")
    assert allowed.rows and all(r[0].text == "enterprise" for r in allowed.rows)
    assert all("idmz" in r[3].text for r in allowed.rows)
    seen = table(rep, "IT hosts that reached level 0-1 directly")
    assert [(r[0].text, r[2].text, r[5].text) for r in seen.rows] == [
        ("127.0.40.66", "conveyor-plc (127.0.10.10)", "yes")
    ]


def test_attack_matrix_counts_techniques_and_alerts(lab_db: Path) -> None:
    rep = report_for(lab_db)
    fig = next(f for f in rep.sections[3].figures() if "ATT&CK" in f.title)
    table_ = attack_table()
    cells = sum(len(t.tactics) for t in table_.techniques.values())
    assert fig.svg.count("<rect") == cells + 4  # + the legend's four swatches
    alerts = cli_json("alerts", "--db", str(lab_db))
    named = {t for a in alerts for t in a["techniques"]}
    assert metric(rep, "detect", "Techniques seen in alerts") == str(len(named))
    for t in named:  # each alerted technique shows its alert count in its cell
        n = sum(1 for a in alerts if t in a["techniques"])
        assert f"{t} ({n})" in fig.svg


def test_network_map_draws_every_asset_and_violation(lab_db: Path) -> None:
    rep = report_for(lab_db)
    nm = rep.data["netmap"]
    assert nm["mode"] == "labelled" and nm["dots"] == rep.data["assets"]
    fig = next(f for f in rep.sections[1].figures() if f.title.startswith("Network map"))
    violations = cli_json("violations", "--db", str(lab_db))
    # One red line per (source, destination) pair that is not "asset in no zone".
    pairs = {(v["src_ip"], v["dst_ip"]) for v in violations if v["rule"] != "asset-in-no-zone"}
    assert nm["violation_lines"] == len(pairs)
    assert fig.svg.count('marker-end="url(#netmap-arrow)"') == len(pairs)
    for zone in ("cell-1", "supervisory", "operations", "idmz", "enterprise"):
        assert f">{zone} (" in fig.svg
    assert ">Level 1<" in fig.svg and ">IDMZ (3.5)<" in fig.svg


def test_window_keeps_what_was_active(lab_db: Path) -> None:
    inside = report_for(lab_db, window=Window(T0 - 10**9, T0 + 10 * 10**9))
    assert inside.data["assets"] == report_for(lab_db).data["assets"]
    later = report_for(lab_db, window=Window(T0 + 3600 * 10**9, None))
    assert later.data["assets"] == 0
    assert later.data["alerts"] == 0 and later.data["violations"] == 0


def test_figures_are_numbered_in_order(lab_db: Path) -> None:
    rep = report_for(lab_db)
    numbers = [f.number for s in rep.all_sections() for f in s.figures()]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 5
    assert all(
        isinstance(f, Figure) and f.svg.startswith("<svg")
        for s in rep.all_sections()
        for f in s.figures()
    )


def test_risk_section_when_the_package_is_there(lab_db: Path) -> None:
    pytest.importorskip("otconduit.risk", reason="per-asset risk is not installed")
    rep = report_for(lab_db)
    assert rep.data["risk"] is True
    rows = table(rep, "Highest-risk assets (conduit risk)").rows
    risk = cli_json("risk", "--db", str(lab_db), "--policy", str(POLICY))
    assert [r[0].text for r in rows] == [
        f"{r['name']} ({r['ip']})" if r["name"] else r["ip"] for r in risk[: len(rows)]
    ]
    assert all(re.match(r"\+\d+ ", r[4].text) for r in rows if r[2].text != "0")


def test_opcua_security_when_decoded(lab_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "conduit.db"
    shutil.copy(lab_db, db)
    add_opcua(db)
    rep = report_for(db)
    rows = table(rep, "OPC UA without message security").rows
    assert [r[0].text for r in rows] == ["127.0.20.10 -> 127.0.10.30 opcua: security mode None"]
    text = " ".join(getattr(b, "text", "") for b in rep.sections[2].blocks)
    assert "2 decoded OPC UA conversation(s): 1 opened a secure channel without" in text
    assert "1 signed or encrypted" in text
    cell1 = {r[0].text: r for r in table(rep, "Zones: SL-T against observations").rows}["cell-1"]
    assert "OPC UA secure channels opened without message security (1)" in cell1[5].text
    assert cell1[6].text == "4 gaps observed"
