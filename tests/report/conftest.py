"""Report fixtures: the synthetic lab plant (tests/report/plant.py) checked against the
example policy and detected on, the project's own captures analysed as the console's
tests do, and a gateway historian with three days of production."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from otconduit.cli.main import app as cli
from otconduit.gateway.model import Quality
from tests.conftest import DATA, REPO
from tests.production.synth import gateway_yaml, write
from tests.report.plant import write_lab_plant

POLICY = REPO / "examples" / "plant-policy.yaml"
GATEWAY = REPO / "examples" / "gateway-plant.yaml"  # source_address: the IDMZ gateway
CAPTURES = [DATA / "modbus_all_functions.pcap", DATA / "enip_cpppo.pcap"]
DAY = 86_400


def run(*args: str) -> Any:
    """``conduit ARGS``; the result (exit code, stdout, stderr)."""
    return CliRunner().invoke(cli, [*args])


def cli_json(*args: str) -> Any:
    res = run(*args, "-f", "json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="session")
def lab_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("report-lab") / "conduit.db"
    write_lab_plant(db)
    res = run("detect", "--db", str(db), "--policy", str(POLICY))
    assert res.exit_code == 0, res.output
    return db


@pytest.fixture(scope="session")
def analysed_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("report-analysed") / "conduit.db"
    res = run("analyze", *map(str, CAPTURES), "--db", str(db), "--policy", str(POLICY), "-q")
    assert res.exit_code == 0, res.output
    return db


PRODUCTION: dict[str, Any] = {
    "timezone": "UTC",
    "shifts": [{"name": "day", "start": "06:00", "end": "22:00"}],
    "grid_factor": 0.4,
    "machines": [
        {
            "oee": {
                "state": {
                    "tag": "area/line1/press/state",
                    "names": {1: "RUNNING", 3: "FAULT"},
                    "producing": ["RUNNING"],
                },
                "counters": {"good": "area/line1/press/good", "scrap": "area/line1/press/scrap"},
                "planned_cycle_time": "5s",
            },
        },
        {"name": "meter", "energy": {"kwh": "area/line1/meter/kwh"}},
    ],
}
FAULT = (2 * 3600, 3 * 3600)  # 08:00-09:00 each day: one hour down inside the shift


def history(days: int = 3) -> list[tuple[str, float, Any, Quality]]:
    """``days`` days from 06:00 UTC: the press runs but for an hour's fault each day and
    makes a part every 6 s while it runs; the meter counts 10 kWh an hour."""
    g = Quality.GOOD
    out: list[tuple[str, float, Any, Quality]] = []
    good = 0
    for t in range(-60, days * DAY + 1, 60):
        fault = FAULT[0] <= t % DAY < FAULT[1]
        out.append(("press/state", t, 3 if fault else 1, g))
        if not fault and t >= 0:
            good += 10
        out.append(("press/good", t, good % 65536, g))
        out.append(("press/scrap", t, 0, g))
    out += [("meter/kwh", t, 10 * (t // 3600), g) for t in range(0, days * DAY + 1, 300)]
    return out


@pytest.fixture(scope="session")
def production(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(gateway config with a production section, its historian)."""
    d = tmp_path_factory.mktemp("report-production")
    cfg = d / "gateway.yaml"
    cfg.write_text(gateway_yaml(PRODUCTION, **{"press/state": {"interval": 60}}))
    db = d / "gateway.db"
    write(db, history())
    return cfg, db
