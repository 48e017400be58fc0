"""Energy, peak demand, kWh per good part and CO2e over a synthetic historian.

Two hours (06:00-08:00 UTC) of a line with a meter (a uint32 kWh register that wraps at
2**32 and is later reset, plus a power tag in W) and a press on that meter (sub-metered by
its drive's power in kW, integrated, with a gateway gap). Shifts a (06-07) and b (07-08).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from otconduit.cli.main import app
from otconduit.gateway.model import Quality
from otconduit.production.api import energy_report, load_plan, open_reader, sustainability_report
from tests.production.synth import NS, T0, gateway_yaml, write

G = Quality.GOOD
PRODUCTION: dict[str, Any] = {
    "timezone": "UTC",
    "shifts": [
        {"name": "a", "start": "06:00", "end": "07:00"},
        {"name": "b", "start": "07:00", "end": "08:00"},
    ],
    "grid_factor": 0.4,
    "machines": [
        {
            "oee": {
                "state": {"tag": "area/line1/press/state", "producing": ["Execute"]},
                "counters": {"good": "area/line1/press/good", "scrap": "area/line1/press/scrap"},
                "planned_cycle_time": 3,
            },
            "energy": {"power": "area/line1/press/power", "part_of": "meter"},
        },
        {
            "name": "meter",
            "energy": {"kwh": "area/line1/meter/kwh", "power": "area/line1/meter/power"},
        },
    ],
}
BASE = 2**32 - 50  # the register wraps after five 10 kWh steps
WINDOW = (T0 * NS, (T0 + 7200) * NS)


def meter_register(k: int) -> int:
    """Reading k (every 300 s): 10 kWh per step; wraps at 2**32; reset to 2 at k = 12."""
    if k < 12:
        return (BASE + 10 * k) % 2**32
    return 2 + 10 * (k - 12)


def history() -> list[tuple[str, float, Any, Quality]]:
    out: list[tuple[str, float, Any, Quality]] = [("meter/kwh", -10, BASE, G)]
    out += [("meter/kwh", 300 * k, meter_register(k), G) for k in range(1, 25)]
    out += [
        ("meter/power", t, 150_000.0 if t == 4000 else 120_000.0, G) for t in range(0, 7200, 500)
    ]
    out += [("press/power", t, 20.0, G) for t in range(0, 3600, 60)]  # then nothing until 4000
    out += [("press/power", t, 10.0, G) for t in range(4000, 7260, 60)]
    out += [("press/good", -5, 0, G), ("press/good", 7000, 1000, G), ("press/scrap", -5, 0, G)]
    out += [("press/state", t, 6, G) for t in range(0, 7200, 60)]
    return out


@pytest.fixture
def plant(tmp_path: Path) -> tuple[Path, Path]:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(gateway_yaml(PRODUCTION, **{"press/power": {"interval": 60}}))
    db = tmp_path / "gateway.db"
    write(db, history())
    return cfg, db


# meter readings at 300..6900 s fall in the window: 11 steps of 10 before the reset,
# the reset reading counts its 2 kWh, then 11 more steps of 10
METER_KWH = 110 + 2 + 110
PRESS_KWH = 20 * 3540 / 3600 + 10 * 3200 / 3600  # held until 3540 + gap; from 4000 on


def test_machines(plant: tuple[Path, Path]) -> None:
    cfg, db = plant
    _gw, plan = load_plan(cfg)
    with open_reader(db) as reader:
        rep = energy_report(plan, reader, *WINDOW, market_factor=0.1)
    rows = {r["machine"]: r for r in rep.rows}
    meter, press = rows["meter"], rows["press"]
    assert meter["kwh"] == METER_KWH and meter["source"] == "meter"
    assert meter["peak_kw"] == 150.0  # the power tag in W
    assert meter["co2e_kg"] == pytest.approx(METER_KWH * 0.4)
    assert meter["co2e_market_kg"] == pytest.approx(METER_KWH * 0.1)
    assert meter["kwh_per_good_part"] is None  # a meter makes no parts
    assert meter["unknown_time_s"] is None  # a meter counts through gaps
    assert press["kwh"] == pytest.approx(PRESS_KWH, abs=1e-4) and press["source"] == "power"
    assert press["unknown_time_s"] == 460  # 3540-4000: beyond the 180 s gap limit
    assert press["peak_kw"] == 20.0
    assert press["kwh_per_good_part"] == pytest.approx(PRESS_KWH / 1000, rel=1e-5)
    assert rep.columns.index("co2e_market_kg") == rep.columns.index("co2e_kg") + 1
    notes = " ".join(rep.notes)
    assert "energy register wrapped" in notes and "energy register was reset" in notes


def test_line_counts_sub_meters_once_and_shifts(plant: tuple[Path, Path]) -> None:
    cfg, db = plant
    _gw, plan = load_plan(cfg)
    with open_reader(db) as reader:
        [line] = energy_report(plan, reader, *WINDOW, by="line").rows
        shifts = energy_report(plan, reader, *WINDOW, by="shift", totals=True).rows
    assert line["kwh"] == METER_KWH  # the press is inside the meter
    assert line["kwh_per_good_part"] == pytest.approx(METER_KWH / 1000)
    got = {(r["line"], r["machine"], r["shift"]): r["kwh"] for r in shifts}
    assert got[("line1", "meter", "a")] == 110  # readings 300..3300
    assert got[("line1", "meter", "b")] == 112  # the reset at 3600, then 3900..6900
    assert got[("total", None, "a")] == 110 and got[("total", None, "b")] == 112
    assert got[("total", None, None)] == METER_KWH  # the whole window
    assert got[("line1", "press", "a")] == pytest.approx(20 * 3540 / 3600, abs=1e-4)


def test_peak_from_kwh_alone(tmp_path: Path) -> None:
    prod = {**PRODUCTION}
    prod["machines"] = [{"name": "meter", "energy": {"kwh": "area/line1/meter/kwh"}}]
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(gateway_yaml(prod))
    db = tmp_path / "gateway.db"
    write(db, history())
    _gw, plan = load_plan(cfg)
    with open_reader(db) as reader:
        [row] = energy_report(plan, reader, *WINDOW).rows
    assert row["peak_kw"] == 120.0  # 30 kWh per 15-minute demand period


def test_sustainability_report(plant: tuple[Path, Path]) -> None:
    cfg, db = plant
    _gw, plan = load_plan(cfg)
    with open_reader(db) as reader:
        doc = sustainability_report(plan, reader, *WINDOW)
    json.dumps(doc)  # JSON-ready
    assert doc["period"] == {
        "start": "2026-03-02T06:00:00+00:00",
        "end": "2026-03-02T08:00:00+00:00",
        "timezone": "UTC",
    }
    assert doc["scope2"]["method"] == "location-based"
    assert doc["scope2"]["grid_factor_kg_per_kwh"] == 0.4
    assert doc["totals"]["kwh"] == METER_KWH and doc["totals"]["co2e_kg"] == pytest.approx(88.8)
    assert [r["line"] for r in doc["by_line"]] == ["line1"]
    assert {r["machine"] for r in doc["by_machine"]} == {"press", "meter"}
    assert [(r["line"], r["shift"]) for r in doc["by_shift"]] == [
        ("line1", "a"), ("total", "a"), ("line1", "b"), ("total", "b"), ("total", None),
    ]  # fmt: skip
    assert [r["kwh"] for r in doc["trend"]] == [METER_KWH]  # one local day


def test_cli(plant: tuple[Path, Path]) -> None:
    cfg, db = plant
    base = ["energy", "-c", str(cfg), "--historian", str(db)]
    window = ["--from", "2026-03-02T06:00Z", "--to", "2026-03-02T08:00Z"]
    runner = CliRunner()
    res = runner.invoke(app, [*base, *window, "-f", "json", "--grid-factor", "0.5"])
    assert res.exit_code == 0, res.output
    rows = {r["machine"]: r for r in json.loads(res.stdout)}
    assert rows["meter"]["co2e_kg"] == pytest.approx(METER_KWH * 0.5)
    res = runner.invoke(app, [*base, *window, "--by", "line", "--totals", "-f", "csv"])
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0].startswith("line,machine,shift,start,end,kwh,peak_kw,kwh_per_good_part,co2e_kg")
    assert [x.split(",")[0] for x in lines[1:]] == ["line1", "total"]
    res = runner.invoke(app, [*base, *window, "--report", "-f", "csv"])
    assert res.exit_code == 0
    sections = [x.split(",")[0] for x in res.stdout.splitlines()[1:]]
    assert sections[0] == "totals" and "by_shift" in sections and "trend" in sections
    res = runner.invoke(app, [*base, *window, "--report", "-f", "json"])
    assert json.loads(res.stdout)["totals"]["kwh"] == METER_KWH
