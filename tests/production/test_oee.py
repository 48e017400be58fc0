"""OEE over a synthetic historian whose answer is worked out by hand (ISO 22400-2).

The early shift (06:00-14:00 UTC, 28,800 s) of one press, state sampled every 60 s:

====================  ==================  =====================================
seconds from 06:00    state               counts as
====================  ==================  =====================================
0 - 18,000            RUNNING             APT 18,000
18,000 - 19,800       FAULT               down 1,800
19,800 - 21,540       PLANNED_STOP        planned down 1,740
21,540 - 23,400       (gateway gap)       unknown 1,860: the gap exceeds 180 s
23,400 - 27,000       RUNNING             APT 3,600
27,000 - 27,600       value 9 (unmapped)  unknown 600 (and a note)
27,600 - 28,200       bad quality         unknown 600
28,200 - 28,800       RUNNING             APT 600
====================  ==================  =====================================

APT 22,200, down 1,800, PBT 24,000, unknown 3,060. Good parts 3,700 (one roll-over
of the uint16 counter, one reset), scrap 150, PRI 5 s: availability 0.925,
effectiveness 5 x 3,850 / 22,200, quality 3,700 / 3,850, OEE = 5 x 3,700 / 24,000.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from otconduit.cli.main import app
from otconduit.gateway.model import Quality
from otconduit.production.api import load_plan, oee_report, open_reader
from tests.production.synth import NS, T0, gateway_yaml, write

G, BAD = Quality.GOOD, Quality.BAD
PRODUCTION: dict[str, Any] = {
    "timezone": "UTC",
    "shifts": [
        {"name": "early", "start": "06:00", "end": "14:00"},
        {"name": "late", "start": "14:00", "end": "22:00"},
    ],
    "machines": [
        {
            "oee": {
                "state": {
                    "tag": "area/line1/press/state",
                    "names": {1: "RUNNING", 3: "FAULT", 4: "PLANNED_STOP"},
                    "producing": ["RUNNING"],
                    "planned_stop": ["planned_stop"],
                },
                "counters": {"good": "area/line1/press/good", "scrap": "area/line1/press/scrap"},
                "planned_cycle_time": "5s",
            }
        }
    ],
}


def state_at(t: int) -> int | None:
    if t < 18000 or 23400 <= t < 27000 or t >= 28200:
        return 1
    if t < 19800:
        return 3
    if t < 21600:
        return 4
    if t < 23400:
        return None  # the gateway was down: nothing written
    return 9 if t < 27600 else -1


def press_history() -> list[tuple[str, float, Any, Quality]]:
    out: list[tuple[str, float, Any, Quality]] = []
    for t in range(-60, 28801, 60):
        v = state_at(max(t, 0))
        if v is None:
            continue
        out.append(("press/state", t, v if v >= 0 else 1, BAD if v < 0 else G))
    good = [(-30, 65000), (3600, 65500), (7200, 464), (10800, 964), (18000, 1964)]
    good += [(24000, 100), (27000, 1100), (28500, 1200)]
    out += [("press/good", t, v, G) for t, v in good]
    out += [("press/good", 20000, 0, BAD)]  # a bad reading is skipped, not a reset
    out += [("press/scrap", t, v, G) for t, v in [(-30, 10), (18000, 110), (28500, 160)]]
    return out


@pytest.fixture
def plant(tmp_path: Path) -> tuple[Path, Path]:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(gateway_yaml(PRODUCTION, **{"press/state": {"interval": 60}}))
    db = tmp_path / "gateway.db"
    write(db, press_history())
    return cfg, db


def shift_window() -> tuple[int, int]:
    return T0 * NS, (T0 + 28800) * NS


def test_worked_example(plant: tuple[Path, Path]) -> None:
    cfg, db = plant
    _gw, plan = load_plan(cfg)
    with open_reader(db) as reader:
        rep = oee_report(plan, reader, *shift_window())
    [row] = rep.rows
    assert row["line"] == "line1" and row["machine"] == "press" and row["shift"] is None
    assert row["start"] == "2026-03-02T06:00:00+00:00" and row["end"] == "2026-03-02T14:00:00+00:00"
    assert row["actual_production_time_s"] == 22200
    assert row["down_time_s"] == 1800
    assert row["planned_down_time_s"] == 1740
    assert row["unknown_time_s"] == 3060
    assert row["planned_busy_time_s"] == 24000
    assert (row["produced"], row["good"], row["scrap"]) == (3850, 3700, 150)
    assert (row["counter_rollovers"], row["counter_resets"]) == (1, 1)
    assert row["planned_cycle_time_s"] == 5.0
    assert row["availability"] == 0.925
    assert row["effectiveness"] == round(5 * 3850 / 22200, 4)
    assert row["quality_rate"] == round(3700 / 3850, 4)
    assert row["oee"] == round(5 * 3700 / 24000, 4)
    text = " ".join(rep.notes)
    assert "state value 9 is not in the state map: 600.0 s" in text
    assert "good counter wrapped" in text and "good counter was reset" in text


def test_by_shift_splits_time_and_counts(plant: tuple[Path, Path]) -> None:
    cfg, db = plant
    _gw, plan = load_plan(cfg)
    with open_reader(db) as reader:
        rows = oee_report(plan, reader, T0 * NS, (T0 + 16 * 3600 + 1800) * NS, by="shift").rows
    by = {r["shift"]: r for r in rows}
    assert list(by) == ["early", "late", "off-shift"]
    assert by["early"]["oee"] == round(5 * 3700 / 24000, 4)
    # nothing was written after 14:00: the late shift and the half hour after it are unknown
    assert by["late"]["unknown_time_s"] == 8 * 3600 and by["late"]["planned_busy_time_s"] == 0
    assert by["late"]["availability"] is None and by["late"]["oee"] is None
    assert by["off-shift"]["unknown_time_s"] == 1800
    assert by["off-shift"]["start"] == "2026-03-02T22:00:00+00:00"


def test_off_shift_production_counts_as_busy(tmp_path: Path) -> None:
    """A machine that runs outside its shifts is busy (APT and PBT), so its parts are
    not left without their time; standing still off-shift is not down time."""
    prod = {**PRODUCTION, "shifts": [{"name": "day", "start": "06:00", "end": "07:00"}]}
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(gateway_yaml(prod, **{"press/state": {"interval": 60}}))
    db = tmp_path / "gateway.db"
    samples = [("press/state", t, 1 if t < 5400 else 3, G) for t in range(0, 7201, 60)]
    samples += [("press/good", 0, 0, G), ("press/good", 5400, 1000, G)]
    samples += [("press/scrap", 0, 0, G)]
    write(db, samples)
    _gw, plan = load_plan(cfg)
    with open_reader(db) as reader:
        [row] = oee_report(plan, reader, T0 * NS, (T0 + 7200) * NS).rows
    assert row["actual_production_time_s"] == 5400
    assert row["planned_busy_time_s"] == 5400  # the fault after 07:30 is off-shift
    assert row["down_time_s"] == 0


def test_by_line_sums_machines(tmp_path: Path) -> None:
    prod = dict(PRODUCTION)
    oven = {
        "oee": {
            "state": {"tag": "area/line1/oven/state", "names": "packml"},
            "counters": {"good": "area/line1/oven/good", "scrap": "area/line1/oven/scrap"},
            "planned_cycle_time": 10,
        }
    }
    prod["machines"] = [*PRODUCTION["machines"], oven]
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(gateway_yaml(prod))
    db = tmp_path / "gateway.db"
    samples = [("press/state", t, 1, G) for t in range(0, 3601)]
    samples += [("oven/state", t, 6 if t < 1800 else 11, G) for t in range(0, 3601)]
    samples += [("press/good", 0, 0, G), ("press/good", 3600, 600, G), ("press/scrap", 0, 0, G)]
    samples += [("oven/good", 0, 0, G), ("oven/good", 3600, 150, G), ("oven/scrap", 0, 0, G)]
    samples += [("oven/scrap", 3600, 30, G)]
    write(db, samples)
    _gw, plan = load_plan(cfg)
    with open_reader(db) as reader:
        machines = {r["machine"]: r for r in oee_report(plan, reader).rows}
        [line] = oee_report(plan, reader, by="line").rows
    assert machines["oven"]["actual_production_time_s"] == 1800  # PackML Execute
    assert machines["oven"]["down_time_s"] == 1800  # Held: down by default
    assert machines["oven"]["effectiveness"] == 1.0  # 10 s x 180 / 1800 s
    assert line["machine"] is None and line["planned_cycle_time_s"] is None
    assert line["planned_busy_time_s"] == 7200 and line["actual_production_time_s"] == 5400
    assert (line["produced"], line["good"]) == (780, 750)
    assert line["effectiveness"] == round((5 * 600 + 10 * 180) / 5400, 4)


def test_cli_formats(plant: tuple[Path, Path]) -> None:
    cfg, db = plant
    runner = CliRunner()
    args = ["oee", "-c", str(cfg), "--historian", str(db)]
    window = ["--from", "2026-03-02T06:00:00Z", "--to", "2026-03-02T14:00:00Z"]
    res = runner.invoke(app, [*args, *window, "-f", "json"])
    assert res.exit_code == 0, res.output
    [row] = json.loads(res.stdout)
    assert row["oee"] == round(5 * 3700 / 24000, 4)
    res = runner.invoke(app, [*args, *window, "-f", "csv"])
    assert res.exit_code == 0
    header = res.stdout.splitlines()[0].split(",")
    assert header[:17] == [
        "line", "machine", "shift", "start", "end", "planned_busy_time_s",
        "actual_production_time_s", "down_time_s", "unknown_time_s", "produced", "good",
        "scrap", "planned_cycle_time_s", "availability", "effectiveness", "quality_rate", "oee",
    ]  # fmt: skip
    res = runner.invoke(app, [*args, *window, "--by", "shift"])
    assert res.exit_code == 0 and "early" in res.stdout
    assert "note: press: good counter wrapped" in res.stderr


def test_default_window_is_the_data(plant: tuple[Path, Path]) -> None:
    cfg, db = plant
    _gw, plan = load_plan(cfg)
    with open_reader(db) as reader:
        [row] = oee_report(plan, reader).rows
    assert row["start"] == "2026-03-02T05:59:00+00:00"  # the first state sample
    assert row["good"] == 3700
