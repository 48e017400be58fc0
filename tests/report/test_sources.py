"""The report's optional sources: production figures from the gateway's historian (three
synthetic days, one hour's fault a day) and known vulnerabilities from the CISA CSAF
snapshot -- present when they can be, left out with a reason when they cannot."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from otconduit.report.production import production_evidence
from tests.conftest import SHARED
from tests.report.conftest import POLICY, cli_json, run
from tests.report.test_evidence import metric, report_for, table

CSAF = SHARED / "reference" / "csaf" / "cisa-ot-csaf-2017-2024.tar.xz"


def test_oee_downtime_and_energy(lab_db: Path, production: tuple[Path, Path]) -> None:
    cfg, historian = production
    pytest.importorskip("otconduit.production.api", reason="production package not available")
    from otconduit.gateway.config import load_gateway

    with_gw = report_for(lab_db, gateway=False)
    assert with_gw.data["production"] is False
    gw = load_gateway(cfg)
    ev = production_evidence(gw, historian, None, None)
    assert ev.available and ev.trend_by == "day" and len(ev.trend) == 4
    oee = cli_json("oee", "--config", str(cfg), "--historian", str(historian))
    assert ev.machines == oee  # the production package's own figures, unchanged
    assert sum(r["down_time_s"] for r in ev.trend) == pytest.approx(3 * 3600)

    out = lab_db.parent / "production.html"
    res = run(
        "report",
        "--db",
        str(lab_db),
        "--policy",
        str(POLICY),
        "--gateway",
        str(cfg),
        "--historian",
        str(historian),
        "-o",
        str(out),
    )
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "OEE per machine (ISO 22400-2)" in html
    assert "Figure" in html and "OEE trend per day" in html
    assert "Unplanned down time per day" in html and "Energy per day" in html
    press = oee[0]
    assert f"{100 * press['oee']:.1f} %" in html
    energy = cli_json("energy", "--config", str(cfg), "--historian", str(historian), "--report")
    assert f"{energy['totals']['kwh']:,.3f} kWh" in html
    assert "3.0 h" in html  # the recover section's down time: three one-hour faults


def test_production_left_out_with_a_reason(lab_db: Path, tmp_path: Path) -> None:
    assert production_evidence(None, None, None, None).reason == (
        "no gateway config given (--gateway)"
    )
    from otconduit.gateway.config import load_gateway
    from tests.report.conftest import GATEWAY

    gw = load_gateway(GATEWAY)  # the lab's config: production section, historian gateway.db
    ev = production_evidence(gw, tmp_path / "missing.db", None, None)
    assert not ev.available and ev.reason == f"no historian at {tmp_path / 'missing.db'}"
    empty = tmp_path / "empty.db"
    from otconduit.gateway.historian.sqlite import SQLiteHistorian

    SQLiteHistorian(empty).close()
    ev = production_evidence(gw, empty, None, None)
    assert not ev.available and "no samples" in (ev.reason or "")


@pytest.mark.shared
@pytest.mark.skipif(not CSAF.exists(), reason=f"{CSAF} is not there")
def test_vulnerabilities_ranked_for_remediation(lab_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "conduit.db"
    shutil.copy(lab_db, db)
    res = run("advisories", "import", str(CSAF), "--db", str(db))
    assert res.exit_code == 0, res.output
    rows = cli_json("vulns", "--db", str(db))
    rep = report_for(db)
    assert rep.data["vulnerability_rows"] == sum(1 for r in rows if r["status"] != "fixed") > 0
    ranked = table(rep, "Remediation priority").rows
    press = [r for r in ranked if r[1].text == "press-plc (127.0.10.20)"]
    # An S7-300 at level 1 that IT does not reach: CVSS 7.5 advisories are "fix soon".
    assert press and press[0][0].text == "2 fix soon"
    assert "level 0-1 device" in press[0][6].text
    assert metric(rep, "identify", "Assets affected") == str(
        len({r["ip"] for r in rows if r["status"] == "affected"})
    )
    # Remediation links are cut to their site: the report holds no URL.
    assert any("support.industry.siemens.com" in r[7].text for r in ranked)
    assert not any("://" in c.text for r in ranked for c in r)
