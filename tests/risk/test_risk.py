"""Risk per asset, explained: the factors on their own, then a synthetic store of the
built-in plant scored against examples/plant-policy.yaml (and without it), through the
library and the CLI (`conduit risk`, assets JSON `risk`)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otconduit.policy import load_policy, parse_policy
from otconduit.risk import factors, risk_rows
from otconduit.risk.factors import Grant
from otconduit.store import Store
from tests.conftest import REPO
from tests.risk.plantstore import ATTACKER, CONVEYOR, HISTORIAN, HMI, OFFICE, PRESS, REMOTE_IO
from tests.risk.plantstore import build as build_plant

CONDUIT = Path(sys.executable).with_name("conduit")
POLICY = REPO / "examples" / "plant-policy.yaml"


def conduit(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [str(CONDUIT), *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def plant_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_plant(tmp_path_factory.mktemp("risk") / "c.db")


# -- factors ------------------------------------------------------------------------------
def test_criticality_stated_beats_level() -> None:
    assert factors.criticality("critical", "zone x criticality", 3.0, "policy").points == 20
    by_level = factors.criticality(None, "", 1.0, "inferred")
    assert by_level.points == 15 and "inferred from roles" in by_level.detail
    assert factors.criticality(None, "", 4.0, "policy").points == 0
    assert factors.criticality(None, "", None, "unknown").points == 5


def test_vulnerabilities_counted_apart() -> None:
    rs = factors.vulnerabilities(
        [
            {"id": "A", "cvss": 7.5, "status": "affected"},
            {"id": "B", "cvss": 5.0, "status": "affected"},
            {"id": "C", "cvss": 9.8, "status": "version_unknown"},
            {"id": "D", "cvss": 10.0, "status": "fixed"},
        ]
    )
    assert [(r.factor, r.points) for r in rs] == [
        ("vulnerabilities", 20),  # 2.5 x 7.5 rounded, + 1 for the second advisory
        ("unconfirmed_vulnerabilities", 10),
    ]
    assert "2 advisories affect" in rs[0].detail
    # Together never more than the group's 30.
    big = factors.vulnerabilities(
        [{"id": str(i), "cvss": 10.0, "status": "affected"} for i in range(9)]
        + [{"id": "u", "cvss": 10.0, "status": "version_unknown"}]
    )
    assert sum(r.points for r in big) == 30
    only_fixed = factors.vulnerabilities([{"id": "D", "cvss": 10.0, "status": "fixed"}])
    assert [(r.points, r.detail) for r in only_fixed] == [
        (0, "no advisory confirmed to affect it; 1 fixed in its firmware")
    ]


def test_alerts_and_dangerous_operations() -> None:
    r = factors.alerts({"high": 2, "info": 5}, acknowledged=3)
    assert (
        r.points == 11 and r.detail == "open alerts: 2 high, 5 info; 3 acknowledged (not counted)"
    )
    assert factors.alerts({"critical": 30}, 0).points == 20  # capped
    assert factors.alerts({}, 0).points == 0
    d = factors.dangerous_operations(
        [Grant("eng", "supervisory", ("program",), "weekly"), Grant("hmi", "sup", ("write",), None)]
    )
    assert d.points == 5
    assert factors.dangerous_operations([Grant("eng", "sup", ("firmware",), None)]).points == 10
    assert [factors.rating(s) for s in (0, 19, 20, 45, 70, 100)] == [
        "low", "low", "medium", "high", "critical", "critical",
    ]  # fmt: skip


# -- the plant ----------------------------------------------------------------------------
def _by_ip(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(r["ip"]): r for r in rows}


def test_plant_with_policy(plant_db: Path) -> None:
    with Store(plant_db, readonly=True) as st:
        rows = risk_rows(st, load_policy(POLICY))
    assert [r["ip"] for r in rows] == [
        PRESS, REMOTE_IO, CONVEYOR, HISTORIAN, ATTACKER, HMI, OFFICE,
    ]  # fmt: skip
    press = _by_ip(rows)[PRESS]
    assert (press["score"], press["rating"], press["zone"]) == (74, "critical", "cell-1")
    reasons = {r["factor"]: r for r in press["reasons"]}  # type: ignore[attr-defined]
    assert [r["factor"] for r in press["reasons"]] == [  # type: ignore[attr-defined]
        "criticality", "it_reachability", "dangerous_operations", "cleartext_control",
        "vulnerabilities", "alerts",
    ]  # fmt: skip
    assert sum(r["points"] for r in reasons.values()) == 74  # the score is its reasons
    assert reasons["criticality"]["points"] == 15  # cell-1 states none: level 1 is high
    assert reasons["it_reachability"] == {
        "factor": "it_reachability",
        "group": "exposure",
        "points": 10,
        "detail": "reachable from IT through the IDMZ: office-pc-1 -> historian "
        "[office-trends] -> press-plc [historian-collection]",
    }
    assert "engineering-changes (supervisory: firmware/program/control/write in window " \
        "weekly-maintenance)" in reasons["dangerous_operations"]["detail"]  # fmt: skip
    assert reasons["dangerous_operations"]["points"] == 5  # windowed program, open write
    assert reasons["cleartext_control"]["detail"] == (
        "cleartext control across zones: s7comm from enterprise, idmz, supervisory"
    )
    assert reasons["vulnerabilities"]["points"] == 24  # EX-HIGH 9.8 affected; EX-LOW fixed
    assert reasons["alerts"]["detail"] == "open alerts: 1 critical"
    assert press["missing"] == []
    rio = _by_ip(rows)[REMOTE_IO]
    unconfirmed = [r for r in rio["reasons"] if r["factor"] == "unconfirmed_vulnerabilities"]  # type: ignore[attr-defined]
    assert unconfirmed[0]["points"] == 10 and "version_unknown" in unconfirmed[0]["detail"]
    alerts = [r for r in rio["reasons"] if r["factor"] == "alerts"]  # type: ignore[attr-defined]
    assert alerts[0]["detail"] == "no open alerts; 1 acknowledged (not counted)"
    office = _by_ip(rows)[OFFICE]
    assert office["score"] == 0 and office["why"] == "nothing adds to it"
    assert any(
        r["detail"] == "in IT zone enterprise itself"
        for r in office["reasons"]  # type: ignore[attr-defined]
    )


def test_zone_and_asset_criticality(plant_db: Path, tmp_path: Path) -> None:
    text = POLICY.read_text().replace(
        "    sl_t: 3                       # target security level\n",
        "    sl_t: 3                       # target security level\n    criticality: critical\n",
        1,
    )
    policy = parse_policy(text)
    assert policy.zone("cell-1").criticality == "critical"
    with Store(plant_db, readonly=True) as st:
        press = _by_ip(risk_rows(st, policy, PRESS))[PRESS]
    crit = press["reasons"][0]  # type: ignore[index]
    assert crit == {
        "factor": "criticality",
        "group": "criticality",
        "points": 20,
        "detail": "zone cell-1 criticality: critical",
    }
    assert press["score"] == 79


def test_plant_without_policy_says_what_is_missing(plant_db: Path) -> None:
    with Store(plant_db, readonly=True) as st:
        rows = risk_rows(st, None)
    press = _by_ip(rows)[PRESS]
    assert press["score"] == 54 and press["exposure"] == 0
    assert [m["factor"] for m in press["missing"]] == [  # type: ignore[attr-defined]
        "criticality", "it_reachability", "dangerous_operations", "cleartext_control",
    ]  # fmt: skip
    assert "level 1 (inferred from roles) counts as high" in str(press["why"])


def test_no_advisories_imported_is_missing_not_zero(tmp_path: Path) -> None:
    db = build_plant(tmp_path / "c.db", advisories=False, alerts=False)
    with Store(db, readonly=True) as st:
        press = _by_ip(risk_rows(st, load_policy(POLICY)))[PRESS]
    assert {"factor": "vulnerabilities",
            "detail": "no advisories imported (conduit advisories import)"} in press["missing"]  # type: ignore[operator]  # fmt: skip
    assert not any(r["group"] == "vulnerabilities" for r in press["reasons"])  # type: ignore[attr-defined]


# -- CLI ----------------------------------------------------------------------------------
def test_cli_risk_json_csv_and_table(plant_db: Path) -> None:
    res = conduit("risk", "--db", plant_db, "--policy", POLICY, "-f", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows[0]["ip"] == PRESS and rows[0]["score"] == 74
    assert rows[0]["why"].startswith("+15 no criticality stated")
    one = json.loads(
        conduit("risk", "--db", plant_db, "--ip", "127.0.10.0/24", "-f", "json").stdout
    )
    assert [r["ip"] for r in one] == [PRESS, REMOTE_IO, CONVEYOR]
    out = conduit("risk", "--db", plant_db, "--policy", POLICY, "-f", "csv").stdout
    header = next(csv.reader(io.StringIO(out)))
    assert header[:10] == ["ip", "name", "zone", "score", "rating", "criticality", "exposure",
                           "vulnerabilities", "alerts", "why"]  # fmt: skip
    table = conduit("risk", "--db", plant_db)
    assert table.returncode == 0
    assert "not scored: it_reachability: needs a policy (--policy)" in table.stderr
    bad = conduit("risk", "--db", plant_db, "--ip", "10.0.0.300")
    assert bad.returncode == 2


def test_assets_json_gains_risk(plant_db: Path) -> None:
    res = conduit("assets", "--db", plant_db, "--policy", POLICY, "-f", "json")
    assert res.returncode == 0, res.stderr
    press = _by_ip(json.loads(res.stdout))[PRESS]
    risk = press["risk"]
    assert risk["score"] == 74 and risk["missing"] == []  # type: ignore[index]
    assert {r["factor"] for r in risk["reasons"]} >= {"criticality", "it_reachability"}  # type: ignore[index]
    bare = _by_ip(json.loads(conduit("assets", "--db", plant_db, "-f", "json").stdout))[PRESS]
    assert bare["risk"]["score"] == 54  # type: ignore[index]
    assert {m["factor"] for m in bare["risk"]["missing"]} == {  # type: ignore[index]
        "criticality", "it_reachability", "dangerous_operations", "cleartext_control",
    }  # fmt: skip


def test_asset_criticality_claim_beats_the_zone(plant_db: Path) -> None:
    from otconduit.risk import RiskModel

    with Store(plant_db, readonly=True) as st:
        model = RiskModel(st, load_policy(POLICY))
        asset = {
            "ip": HMI,
            "mac": None,
            "vlan": None,
            "roles": ["hmi_scada"],
            "identity": {"criticality": {"value": "Critical", "source": "user"}},
            "advisories": [],
        }
        risk = model.score(asset)
    assert risk["reasons"][0]["detail"] == "the asset's own criticality: critical"
    assert risk["groups"]["criticality"] == 20
